import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { expectStatus } from '../support/harness.ts';
import { loginThroughUi, openBrowser, screenshot, startUiApp, type Browser, type UiApp } from '../support/browser.ts';

/*
 * The contacts grid, driven in chromium as an organiser would: central field, CSV import into an
 * event, event filter, saved view, bulk edit of a selection, unlock, delete with its confirmation,
 * and "Email the whole view" with the dry-run counts. Each step is checked through the API too.
 */

let ui: UiApp;
let browser: Browser;
let page: Page;
let audienceId: string;
let eventId: string;
const api = (method: string, url: string, body?: unknown) => ui.app.request(method, url, { token: ui.org.apiKey, body });

const grid = () => page.getByRole('table', { name: 'Contacts' });
const row = (email: string) => grid().getByRole('row').filter({ has: page.getByRole('link', { name: new RegExp(email.replace(/[.]/g, '\\.')) }) });
const countBadge = () => page.getByRole('status').filter({ hasText: /\d+ contacts?$/ });
async function expectCount(n: number) {
  await countBadge().filter({ hasText: new RegExp(`^${n} ${n === 1 ? 'contact' : 'contacts'}$`) }).waitFor();
}
async function participants(): Promise<string[]> {
  const r = await api('GET', `/v1/events/${eventId}/participants?limit=100`);
  expectStatus(r, 200);
  return r.body.items.map((p: { data: { email?: string } }) => p.data.email);
}
async function contactByEmail(email: string) {
  const r = await api('POST', `/v1/audiences/${audienceId}/contacts/query`, { filter: { field: 'email', op: 'equals', value: email }, columns: ['email', 'company', 'account_locked', 'failed_attempts'] });
  return r.body.items[0] as Record<string, unknown> | undefined;
}

beforeAll(async () => {
  ui = await startUiApp();
  audienceId = (await api('POST', '/v1/audiences', { name: 'Salon 2027' })).body.id;
  eventId = (await api('POST', `/v1/audiences/${audienceId}/events`, { name: 'Paris day', starts_at: '2027-03-01T09:00:00Z', ends_at: '2027-03-01T18:00:00Z', time_zone: 'Europe/Paris' })).body.id;
  expectStatus(await api('POST', `/v1/audiences/${audienceId}/communities`, { name: 'Exhibitors' }), 201);
  expectStatus(await api('POST', `/v1/audiences/${audienceId}/templates`, { name: 'Spring news', language: 'en', category: 'marketing', subject: 'News', body: '<p>News [UNSUBLINK]</p>' }), 201);
  // A contact whose account is locked after too many wrong passwords.
  expectStatus(await api('POST', `/v1/audiences/${audienceId}/accounts`, { email: 'locked@example.com', password: 'correct horse battery', first_name: 'Lou', last_name: 'Locked' }), 201);
  for (let i = 0; i < 5; i++) await api('POST', `/v1/audiences/${audienceId}/accounts/login`, { email: 'locked@example.com', password: 'wrong password here' });
  expect((await contactByEmail('locked@example.com'))?.account_locked).toBe(true);
  browser = await openBrowser();
  page = browser.page;
  await loginThroughUi(page, ui.baseUrl, ui.org.ownerEmail);
});
afterEach(async (ctx) => {
  // What the page showed when a step failed, next to the test report.
  if (ctx.task.result?.state === 'fail' && browser.problems.pageErrors.length) console.error('page errors:', browser.problems.pageErrors);
  if (ctx.task.result?.state === 'fail') await screenshot(page, `contacts-failed-${ctx.task.name.slice(0, 40).replace(/\W+/g, '-')}`).catch(() => {});
});
afterAll(async () => {
  await browser?.close();
  await ui?.close();
});

describe('the contacts grid in chromium', () => {
  it('opens the grid of an audience from the audiences screen', async () => {
    await page.getByRole('link', { name: 'Contacts of Salon 2027' }).click();
    await page.getByRole('heading', { level: 1, name: 'Contacts of Salon 2027' }).waitFor();
    await expectCount(1);
    await row('locked@example.com').waitFor();
    // The reference's columns are there by default.
    for (const name of ['Last name', 'First name', 'Email', 'Company', 'Job title', 'Company entity', 'Events', 'Event list', 'Communities', 'Account confirmed', 'Account locked', 'Failed attempts', 'Lock end date', 'Creation date', 'Marketing authorisation date'])
      await grid().getByRole('columnheader', { name, exact: true }).waitFor();
    await row('locked@example.com').getByRole('img', { name: 'Account locked' }).waitFor();
  });

  it('creates a central field with the wrench', async () => {
    await page.getByRole('button', { name: 'Field management' }).click();
    const dialog = page.getByRole('dialog', { name: 'Field management' });
    await dialog.getByLabel('Key').fill('dietary');
    await dialog.getByLabel('Label').fill('Dietary needs');
    await dialog.getByRole('button', { name: 'Create the field' }).click();
    await dialog.waitFor({ state: 'detached' });
    await grid().getByRole('columnheader', { name: 'Dietary needs' }).waitFor();
    const fields = await api('GET', `/v1/audiences/${audienceId}/fields`);
    expect(fields.body.fields.map((f: { key: string }) => f.key)).toContain('dietary');
  });

  it('imports a CSV file into an event, and reports the refused line with its number', async () => {
    await page.getByRole('button', { name: 'Import CSV' }).click();
    const dialog = page.getByRole('dialog', { name: 'Import contacts from a CSV file' });
    const csv = ['email,first_name,last_name,company,dietary', 'ada@example.com,Ada,Lovelace,Analytical,vegan', 'alan@example.com,Alan,Turing,Bletchley,', 'grace@example.com,Grace,Hopper,Navy,none', 'not-an-email,Bad,Row,,'].join('\n');
    await dialog.getByLabel('CSV file').setInputFiles({ name: 'contacts.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
    await dialog.getByLabel('Also register them in').selectOption({ label: 'Event: Paris day' });
    await dialog.getByRole('button', { name: 'Import' }).click();
    await dialog.getByRole('heading', { name: 'Import finished' }).waitFor();
    await dialog.getByText('4 lines read: 3 contacts created, 0 updated, 1 refused.').waitFor();
    const refused = dialog.getByRole('table', { name: 'Refused lines' });
    await refused.getByRole('cell', { name: '5', exact: true }).waitFor();
    await dialog.getByRole('button', { name: 'Close' }).last().click();
    await dialog.waitFor({ state: 'detached' });
    await expectCount(4);
    await row('ada@example.com').getByRole('cell', { name: 'vegan' }).waitFor();
    await row('ada@example.com').getByText('Paris day').waitFor();
    expect((await participants()).sort()).toEqual(['ada@example.com', 'alan@example.com', 'grace@example.com']);
  });

  it('reports a one-line import in the singular', async () => {
    await page.getByRole('button', { name: 'Import CSV' }).click();
    const dialog = page.getByRole('dialog', { name: 'Import contacts from a CSV file' });
    await dialog.getByLabel('CSV file').setInputFiles({ name: 'one.csv', mimeType: 'text/csv', buffer: Buffer.from('email,first_name\nada@example.com,Ada\n') });
    await dialog.getByRole('button', { name: 'Import' }).click();
    await dialog.getByRole('heading', { name: 'Import finished' }).waitFor();
    await dialog.getByText('1 line read: 0 contacts created, 1 updated, 0 refused.').waitFor();
    await dialog.getByRole('button', { name: 'Close' }).last().click();
    await dialog.waitFor({ state: 'detached' });
    await expectCount(4);
  });

  it('exports the contacts as a CSV download', async () => {
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Export (CSV)' }).click()]);
    const text = readFileSync((await download.path())!, 'utf8');
    expect(download.suggestedFilename()).toMatch(/\.csv$/);
    expect(text).toContain('ada@example.com');
    expect(text.trim().split(/\r?\n/)).toHaveLength(5);
  });

  it('filters by event and saves the filter as a view', async () => {
    await page.getByRole('button', { name: 'Filters' }).click();
    const panel = page.getByRole('region', { name: 'Filters' });
    await panel.getByRole('group', { name: 'Events' }).getByLabel('Paris day').check();
    await panel.getByRole('button', { name: 'Apply' }).click();
    await expectCount(3);
    expect(await row('locked@example.com').count()).toBe(0);
    await page.getByRole('button', { name: 'Filters (1)' }).waitFor();
    // The export is what is on screen: the three participants, not the whole audience.
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Export these contacts (CSV)' }).click()]);
    const lines = readFileSync((await download.path())!, 'utf8').replace(/^\uFEFF/, '').trim().split(/\r?\n/);
    expect(lines).toHaveLength(4);
    expect(lines.slice(1).map((l) => /[\w.]+@example\.com/.exec(l)?.[0]).sort()).toEqual(['ada@example.com', 'alan@example.com', 'grace@example.com']);

    await page.getByRole('button', { name: 'Save as a view' }).click();
    const dialog = page.getByRole('dialog', { name: 'Save as a view' });
    await dialog.getByLabel('View name').fill('Paris participants');
    await dialog.getByRole('button', { name: 'Save' }).click();
    await dialog.waitFor({ state: 'detached' });
    await expect.poll(() => page.getByLabel('View', { exact: true }).inputValue()).not.toBe('');
    expect(page.url()).toMatch(/[?&]view=/);
    const views = await api('GET', `/v1/audiences/${audienceId}/views`);
    expect(views.body.views).toHaveLength(1);
    expect(views.body.views[0]).toMatchObject({ name: 'Paris participants', filter: { and: [{ event: { in: [eventId] } }] } });
    // The saved view runs on the server with the same result.
    const run = await api('POST', `/v1/audiences/${audienceId}/views/${views.body.views[0].id}/query`, {});
    expect(run.body.total).toBe(3);
  });

  it('modifies a selection in bulk through the "..." menu, choosing the rows with the keyboard', async () => {
    // Rows are sorted by last name: Hopper, Lovelace, Turing. Space ticks, arrows move between rows.
    await row('grace@example.com').getByRole('checkbox').focus();
    await page.keyboard.press('ArrowDown');
    await expect.poll(() => row('ada@example.com').getByRole('checkbox').evaluate((el) => el === el.ownerDocument.activeElement)).toBe(true);
    await page.keyboard.press('Space');
    await page.keyboard.press('ArrowDown');
    await expect.poll(() => row('alan@example.com').getByRole('checkbox').evaluate((el) => el === el.ownerDocument.activeElement)).toBe(true);
    await page.keyboard.press('Space');
    expect(await row('ada@example.com').getByRole('checkbox', { name: 'Select Ada Lovelace' }).isChecked()).toBe(true);
    expect(await row('alan@example.com').getByRole('checkbox', { name: 'Select Alan Turing' }).isChecked()).toBe(true);
    await page.getByText('2 selected').waitFor();
    await page.getByRole('button', { name: 'More actions' }).click();
    const menu = page.getByRole('menu', { name: 'More actions' });
    await menu.getByRole('group', { name: 'Selection (2)' }).getByRole('menuitem', { name: 'Modify the selection' }).click();
    const dialog = page.getByRole('dialog', { name: 'Modify the selection' });
    await dialog.getByLabel('Field').selectOption({ label: 'Company' });
    await dialog.getByLabel('New value').fill('ACME');
    await dialog.getByRole('button', { name: 'Apply to 2 contacts' }).click();
    await dialog.waitFor({ state: 'detached' });
    await page.getByRole('status').getByText('2 contacts updated').waitFor();
    await row('ada@example.com').getByRole('cell', { name: 'ACME', exact: true }).waitFor();
    await row('alan@example.com').getByRole('cell', { name: 'ACME', exact: true }).waitFor();
    expect((await contactByEmail('ada@example.com'))?.company).toBe('ACME');
    expect((await contactByEmail('grace@example.com'))?.company).toBe('Navy');
  });

  it('emails the whole view: the dry run shows the counts per rule, then the campaign is created', async () => {
    await page.getByRole('button', { name: 'More actions' }).click();
    await page.getByRole('menuitem', { name: 'Email the whole view' }).click();
    const dialog = page.getByRole('dialog', { name: 'Email the whole view' });
    await dialog.getByLabel('Template').selectOption({ label: 'Spring news (en)' });
    await dialog.getByRole('button', { name: 'Check the recipients' }).click();
    await dialog.getByRole('heading', { name: 'What the sending policy would do now' }).waitFor();
    // Nobody has given marketing consent: all three are blocked by that rule.
    await expect.poll(() => dialog.getByTestId('dry-total').textContent()).toBe('3');
    expect(await dialog.getByTestId('dry-allowed').textContent()).toBe('0');
    await dialog.getByRole('rowheader', { name: /^Blocked: / }).first().waitFor();
    await dialog.getByLabel('Campaign name').fill('Spring to Paris');
    await dialog.getByRole('button', { name: 'Create the campaign' }).click();
    const link = dialog.getByRole('link', { name: 'Open the campaign' });
    await link.waitFor();
    const campaigns = await api('GET', `/v1/audiences/${audienceId}/campaigns`);
    const made = campaigns.body.campaigns.find((c: { name: string }) => c.name === 'Spring to Paris');
    expect(made.target).toEqual({ view_id: expect.any(String) });
    expect(await link.getAttribute('href')).toBe(`/campaigns/${made.id}`);
    await dialog.getByRole('button', { name: 'Close' }).last().click();
    await dialog.waitFor({ state: 'detached' });
  });

  it('unlocks a locked account from the selection menu', async () => {
    await page.getByLabel('View', { exact: true }).selectOption({ label: 'All contacts' });
    await expectCount(4);
    // Changing the view starts a new selection.
    expect(await page.getByRole('button', { name: 'Clear the selection' }).count()).toBe(0);
    await row('locked@example.com').getByRole('checkbox').check();
    await page.getByRole('button', { name: 'More actions' }).click();
    await page.getByRole('menuitem', { name: 'Unlock' }).click();
    const dialog = page.getByRole('dialog', { name: 'Unlock the accounts' });
    await dialog.getByRole('button', { name: 'Unlock the accounts' }).click();
    await dialog.getByText('1 account unlocked.').waitFor();
    await dialog.getByRole('button', { name: 'Close' }).last().click();
    await row('locked@example.com').getByRole('img', { name: 'Account not locked' }).waitFor();
    const c = await contactByEmail('locked@example.com');
    expect(c?.account_locked).toBe(false);
    expect(c?.failed_attempts).toBe(0);
  });

  it("shows a contact's detail: fields, participations, consent history with its proof, messages received", async () => {
    const ada = (await contactByEmail('ada@example.com'))!;
    expectStatus(await api('POST', `/v1/audiences/${audienceId}/contacts/${ada.id}/consents`, { action: 'given', method: 'back_office', wording: 'Yes, send me the Salon news.', wording_version: '2' }), 201);
    const tpl = await api('POST', `/v1/audiences/${audienceId}/templates`, { name: 'Welcome', language: 'en', category: 'transactional', subject: 'Hi', body: '<p>Hi</p>' });
    expectStatus(await api('POST', '/v1/messages', { template_id: tpl.body.id, to: { contact_id: ada.id } }), 202);
    await page.getByRole('link', { name: 'ada@example.com', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'Ada Lovelace' }).waitFor();
    const fields = page.getByRole('region', { name: 'Fields' });
    await fields.getByRole('cell', { name: 'ACME', exact: true }).waitFor();
    await fields.getByRole('row', { name: /Dietary needs/ }).getByRole('cell', { name: 'vegan' }).waitFor();
    await page.getByRole('list', { name: 'Participations' }).getByText('Paris day').waitFor();
    const consent = page.getByRole('region', { name: 'Consent history' });
    await consent.getByText('« Yes, send me the Salon news. »').waitFor();
    await consent.getByRole('cell', { name: 'Back office', exact: true }).waitFor();
    await page.getByRole('table', { name: 'Messages received' }).getByRole('cell', { name: 'Welcome' }).waitFor();
    await page.getByRole('link', { name: 'Contacts of Salon 2027' }).click();
    await expectCount(4);
  });

  it('deletes a contact after a confirmation naming what is erased, and the contact is gone from the event', async () => {
    // One at a time: with two contacts selected the menu does not offer it.
    await row('ada@example.com').getByRole('checkbox').check();
    await row('grace@example.com').getByRole('checkbox').check();
    await page.getByRole('button', { name: 'More actions' }).click();
    expect(await page.getByRole('menuitem', { name: 'Delete the contact (one at a time)' }).getAttribute('aria-disabled')).toBe('true');
    await page.keyboard.press('Escape');
    await row('ada@example.com').getByRole('checkbox').uncheck();
    await page.getByRole('button', { name: 'More actions' }).click();
    await page.getByRole('menuitem', { name: 'Delete the contact (one at a time)' }).click();
    const dialog = page.getByRole('dialog', { name: 'Delete this contact?' });
    await dialog.getByText('Grace Hopper (grace@example.com) will be erased from the whole audience:').waitFor();
    await dialog.getByText('its participation in 1 event:').waitFor();
    await dialog.getByRole('listitem').filter({ hasText: /^Paris day$/ }).waitFor();
    await dialog.getByText('no membership of any community').waitFor();
    await dialog.getByText('no account', { exact: true }).waitFor();
    // Focus starts on Cancel for a destructive action.
    await expect.poll(() => dialog.getByRole('button', { name: 'Cancel' }).evaluate((b) => b === b.ownerDocument.activeElement)).toBe(true);
    await dialog.getByRole('button', { name: 'Delete everywhere' }).click();
    await dialog.waitFor({ state: 'detached' });
    await expectCount(3);
    expect(await row('grace@example.com').count()).toBe(0);
    expect(await participants()).not.toContain('grace@example.com');
    const closeFilters = page.getByRole('button', { name: 'Close the filters' });
    if (await closeFilters.count()) await closeFilters.click();
    await page.evaluate("document.querySelector('.grid-scroll').scrollLeft = 0");
    await screenshot(page, 'contacts-grid');
  });

  it('modifies the whole view, and only the view', async () => {
    await page.getByLabel('View', { exact: true }).selectOption({ label: 'Paris participants' });
    await expectCount(2);
    await page.getByRole('button', { name: 'More actions' }).click();
    await page.getByRole('menu').getByRole('group', { name: 'Current view' }).getByRole('menuitem', { name: 'Modify the whole view' }).click();
    const dialog = page.getByRole('dialog', { name: 'Modify the whole view' });
    await dialog.getByLabel('Field').selectOption({ label: 'Job title' });
    await dialog.getByLabel('New value').fill('Speaker');
    await dialog.getByRole('button', { name: 'Apply to 2 contacts' }).click();
    await dialog.waitFor({ state: 'detached' });
    await row('alan@example.com').getByRole('cell', { name: 'Speaker', exact: true }).waitFor();
    const titles = await api('POST', `/v1/audiences/${audienceId}/contacts/query`, { columns: ['email', 'job_title'] });
    expect(Object.fromEntries(titles.body.items.map((c: { email: string; job_title: string | null }) => [c.email, c.job_title]))).toEqual({
      'ada@example.com': 'Speaker',
      'alan@example.com': 'Speaker',
      'locked@example.com': null,
    });
  });

  it('renames and deletes the saved view', async () => {
    await expectCount(2);
    await page.getByRole('button', { name: 'Rename the view' }).click();
    const rename = page.getByRole('dialog', { name: 'Rename the view' });
    await rename.getByLabel('View name').fill('Paris 2027');
    await rename.getByRole('button', { name: 'Save' }).click();
    await rename.waitFor({ state: 'detached' });
    await page.getByLabel('View', { exact: true }).locator('option', { hasText: 'Paris 2027' }).waitFor({ state: 'attached' });
    await page.getByRole('button', { name: 'Delete the view' }).click();
    const confirm = page.getByRole('dialog', { name: 'Delete the view?' });
    await confirm.getByRole('button', { name: 'Delete' }).click();
    await confirm.waitFor({ state: 'detached' });
    await expectCount(3);
    expect((await api('GET', `/v1/audiences/${audienceId}/views`)).body.views).toEqual([]);
    expect(browser.problems.pageErrors).toEqual([]);
    expect(browser.problems.consoleErrors).toEqual([]);
  });
});
