import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Locator, Page } from 'playwright-core';
import { expectStatus } from '../support/harness.ts';
import { loginThroughUi, openBrowser, screenshot, startUiApp, type Browser, type UiApp } from '../support/browser.ts';

/*
 * Adding and editing people from the back office, driven in chromium: a contact added from the grid
 * (with its refusals explained), a field only for one event, a participant and a member registered
 * from the audiences screen with that event's own fields, and a contact edited on its detail screen.
 * Each step is checked through the API.
 */

let ui: UiApp;
let browser: Browser;
let page: Page;
let audienceId: string;
let eventId: string;
let communityId: string;
let adaId: string;
const api = (method: string, url: string, body?: unknown) => ui.app.request(method, url, { token: ui.org.apiKey, body });

const grid = () => page.getByRole('table', { name: 'Contacts' });
const row = (email: string) => grid().getByRole('row').filter({ has: page.getByRole('link', { name: new RegExp(email.replace(/[.]/g, '\\.')) }) });
async function expectCount(n: number) {
  await page.getByRole('status').filter({ hasText: new RegExp(`^${n} contacts?$`) }).waitFor();
}
async function contactByEmail(email: string) {
  const r = await api('POST', `/v1/audiences/${audienceId}/contacts/query`, { filter: { field: 'email', op: 'equals', value: email }, columns: ['email'] });
  expectStatus(r, 200);
  const id = r.body.items[0]?.id as string | undefined;
  if (!id) return undefined;
  const c = await api('GET', `/v1/audiences/${audienceId}/contacts/${id}`);
  expectStatus(c, 200);
  return c.body as { id: string; email: string; first_name: string | null; last_name: string | null; company: string | null; fields: Record<string, unknown>; events: { id: string }[]; communities: { id: string }[] };
}
const focused = (l: Locator) => expect.poll(() => l.evaluate((el) => el === el.ownerDocument.activeElement));
const toast = (text: string) => page.locator('.toast').filter({ hasText: text }).first();

beforeAll(async () => {
  ui = await startUiApp();
  audienceId = (await api('POST', '/v1/audiences', { name: 'Forum 2027' })).body.id;
  eventId = (await api('POST', `/v1/audiences/${audienceId}/events`, { name: 'Lyon day', starts_at: '2027-05-10T07:00:00Z', ends_at: '2027-05-10T16:00:00Z', time_zone: 'Europe/Paris' })).body.id;
  communityId = (await api('POST', `/v1/audiences/${audienceId}/communities`, { name: 'Alumni' })).body.id;
  for (const f of [
    { key: 'size', label: 'Team size', type: 'number' },
    { key: 'vip', label: 'VIP', type: 'boolean' },
    { key: 'topics', label: 'Topics', type: 'multi_choice', options: ['ai', 'web'] },
    { key: 'arrival', label: 'Arrival', type: 'date' },
  ])
    expectStatus(await api('POST', `/v1/audiences/${audienceId}/fields`, f), 201);
  const ada = await api('POST', `/v1/audiences/${audienceId}/contacts`, { email: 'ada@example.com', first_name: 'Ada', last_name: 'Lovelace' });
  expectStatus(ada, 201);
  adaId = ada.body.id;
  browser = await openBrowser();
  page = browser.page;
  await loginThroughUi(page, ui.baseUrl, ui.org.ownerEmail);
});
afterEach(async (ctx) => {
  if (ctx.task.result?.state === 'fail' && browser.problems.pageErrors.length) console.error('page errors:', browser.problems.pageErrors);
  if (ctx.task.result?.state === 'fail') await screenshot(page, `contact-editing-failed-${ctx.task.name.slice(0, 40).replace(/\W+/g, '-')}`).catch(() => {});
});
afterAll(async () => {
  await browser?.close();
  await ui?.close();
});

describe('adding and editing people in chromium', () => {
  it('adds a contact from the grid: a bad or taken email is explained, the values of every type are stored', async () => {
    await page.getByRole('link', { name: 'Contacts of Forum 2027' }).click();
    await expectCount(1);
    const open = page.getByRole('button', { name: 'Add a contact' });
    await open.click();
    const dialog = page.getByRole('dialog', { name: 'Add a contact' });
    const email = dialog.getByLabel('Email (required)');
    // The focus starts in the dialog, on the email.
    await focused(email).toBe(true);

    // Nothing typed: the email is asked for.
    await dialog.getByRole('button', { name: 'Add', exact: true }).click();
    await dialog.getByText('Enter the email address: a contact is known by it.').waitFor();

    // Not an address: refused before asking the server, the focus goes back to the input.
    await email.fill('not-an-email');
    await page.keyboard.press('Enter');
    await dialog.getByRole('alert').getByText('Check the fields marked.').waitFor();
    await dialog.getByText('This is not an email address: write it like name@example.com.').waitFor();
    expect(await email.getAttribute('aria-invalid')).toBe('true');
    await focused(email).toBe(true);

    // The server's own check, shown under the input.
    await email.fill('bad..dots@example.com');
    await dialog.getByRole('button', { name: 'Add', exact: true }).click();
    await dialog.getByText(/^This email address is not accepted: .*bad\.\.dots/).waitFor();

    // Taken: the 409 in words, with a link to the contact that has it.
    await email.fill('ADA@example.com');
    await dialog.getByRole('button', { name: 'Add', exact: true }).click();
    await dialog.getByRole('alert').getByText('A contact with this email already exists in this audience.').waitFor();
    expect(await dialog.getByRole('link', { name: 'Open that contact' }).getAttribute('href')).toBe(`/audiences/${audienceId}/contacts/${adaId}`);
    await dialog.getByText('Already the email of another contact of this audience.').waitFor();
    await screenshot(page, 'contact-editing-add-refused');

    await email.fill('bob@example.com');
    await dialog.getByLabel('First name').fill('Bob');
    await dialog.getByLabel('Last name').fill('Marley');
    await dialog.getByLabel('Company', { exact: true }).fill('Island');
    await dialog.getByLabel('Team size').fill('12,5');
    await dialog.getByLabel('VIP').selectOption({ label: 'Yes' });
    await dialog.getByRole('group', { name: 'Topics' }).getByLabel('ai').check();
    await dialog.getByLabel('Arrival').fill('2027-05-09');
    await dialog.getByRole('button', { name: 'Add', exact: true }).click();
    await dialog.waitFor({ state: 'detached' });
    await toast('Contact bob@example.com added').waitFor();
    // The grid shows the new contact at once, and the focus is back on the button.
    await expectCount(2);
    await row('bob@example.com').getByRole('cell', { name: 'Island', exact: true }).waitFor();
    await focused(open).toBe(true);

    const bob = await contactByEmail('bob@example.com');
    expect(bob).toMatchObject({ first_name: 'Bob', last_name: 'Marley', company: 'Island', fields: { size: 12.5, vip: true, topics: ['ai'], arrival: '2027-05-09' } });
  });

  it('creates a field only for one event with the wrench: the audience and its other scopes do not get it', async () => {
    await page.getByRole('button', { name: 'Field management' }).click();
    const dialog = page.getByRole('dialog', { name: 'Field management' });
    const scope = dialog.getByRole('group', { name: 'Where the field applies' });
    expect(await scope.getByRole('radio', { name: /^All of the audience \(central\)/ }).isChecked()).toBe(true);
    await scope.getByRole('radio', { name: 'Only this event' }).check();
    expect(await scope.getByLabel('Event', { exact: true }).inputValue()).toBe(eventId);
    await dialog.getByRole('heading', { name: 'Fields of Lyon day only' }).waitFor();
    await dialog.getByText('No field of its own yet.').waitFor();
    await dialog.getByLabel('Key').fill('tshirt');
    await dialog.getByLabel('Label').fill('T-shirt size');
    await dialog.getByLabel('Type').selectOption({ label: 'Choice' });
    await dialog.getByLabel('Options').fill('S\nM\nL');
    await screenshot(page, 'contact-editing-event-field');
    await dialog.getByRole('button', { name: 'Create the field' }).click();
    await dialog.waitFor({ state: 'detached' });
    await toast('Field "T-shirt size" created, only in Lyon day').waitFor();

    const inEvent = await api('GET', `/v1/events/${eventId}/fields`);
    expect(inEvent.body.fields.find((f: { key: string }) => f.key === 'tshirt')).toMatchObject({ scope: 'event', type: 'choice', options: ['S', 'M', 'L'], central: false });
    const central = await api('GET', `/v1/audiences/${audienceId}/fields`);
    expect(central.body.fields.map((f: { key: string }) => f.key)).not.toContain('tshirt');
    const inCommunity = await api('GET', `/v1/communities/${communityId}/fields`);
    expect(inCommunity.body.fields.map((f: { key: string }) => f.key)).not.toContain('tshirt');
    // Not a column of the audience's grid.
    expect(await grid().getByRole('columnheader', { name: 'T-shirt size' }).count()).toBe(0);

    // Opened again, the event's list shows it.
    await page.getByRole('button', { name: 'Field management' }).click();
    await dialog.getByRole('group', { name: 'Where the field applies' }).getByRole('radio', { name: 'Only this event' }).check();
    await dialog.getByRole('cell', { name: 'T-shirt size' }).waitFor();
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
  });

  it('adds a participant with the event\'s own field from the audiences screen: the contact gets the central values only', async () => {
    await page.getByRole('navigation').getByRole('link', { name: 'Audiences' }).click();
    await page.getByRole('button', { name: 'Add a participant to Lyon day' }).click();
    const dialog = page.getByRole('dialog', { name: 'Add a participant to Lyon day' });
    await dialog.getByRole('heading', { name: 'Fields of this event only' }).waitFor();
    await dialog.getByRole('heading', { name: 'Fields of the audience' }).waitFor();
    // An email is not required here, but an empty form is not a person.
    await dialog.getByRole('button', { name: 'Add', exact: true }).click();
    await dialog.getByRole('alert').getByText('Fill in at least one field.').waitFor();
    await dialog.getByLabel('Email', { exact: true }).fill('ada@example.com');
    await dialog.getByLabel('T-shirt size').selectOption('M');
    await dialog.getByLabel('Team size').fill('3');
    await screenshot(page, 'contact-editing-participant');
    await dialog.getByRole('button', { name: 'Add', exact: true }).click();
    await dialog.waitFor({ state: 'detached' });
    await toast('Participant added to Lyon day').waitFor();

    const list = await api('GET', `/v1/events/${eventId}/participants?limit=100`);
    expect(list.body.items).toHaveLength(1);
    expect(list.body.items[0]).toMatchObject({ contact_id: adaId, data: { email: 'ada@example.com', tshirt: 'M', size: 3 } });
    const ada = await contactByEmail('ada@example.com');
    expect(ada?.fields.size).toBe(3);
    expect(ada?.fields).not.toHaveProperty('tshirt');
    expect(ada?.events.map((e) => e.id)).toEqual([eventId]);
    // Unchanged by the registration: a value not given does not blank the contact's.
    expect(ada?.first_name).toBe('Ada');

    // The same person again: the API's 409 in words.
    await page.getByRole('button', { name: 'Add a participant to Lyon day' }).click();
    await dialog.getByLabel('Email', { exact: true }).fill('ada@example.com');
    await dialog.getByRole('button', { name: 'Add', exact: true }).click();
    await dialog.getByRole('alert').getByText('This person is already a participant of this event.').waitFor();
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'detached' });
    expect((await api('GET', `/v1/events/${eventId}/participants?limit=100`)).body.items).toHaveLength(1);
  });

  it('adds a member to a community: with an email the person becomes a contact of the audience', async () => {
    await page.getByRole('button', { name: 'Add a member to Alumni' }).click();
    const dialog = page.getByRole('dialog', { name: 'Add a member to Alumni' });
    await dialog.getByLabel('Email', { exact: true }).fill('carol@example.com');
    await dialog.getByLabel('Last name').fill('Shaw');
    await dialog.getByLabel('VIP').selectOption({ label: 'No' });
    await dialog.getByRole('button', { name: 'Add', exact: true }).click();
    await dialog.waitFor({ state: 'detached' });
    await toast('Member added to Alumni').waitFor();
    const members = await api('GET', `/v1/communities/${communityId}/members?limit=100`);
    expect(members.body.items).toHaveLength(1);
    expect(members.body.items[0].data).toMatchObject({ email: 'carol@example.com', last_name: 'Shaw', vip: false });
    const carol = await contactByEmail('carol@example.com');
    expect(carol).toMatchObject({ last_name: 'Shaw', fields: { vip: false } });
    expect(carol?.communities.map((c) => c.id)).toEqual([communityId]);
    expect(members.body.items[0].contact_id).toBe(carol?.id);
  });

  it("edits a contact's fields on its detail screen: cancel keeps them, errors are shown, save stores built-in and custom values", async () => {
    await page.getByRole('link', { name: 'Contacts of Forum 2027' }).click();
    await expectCount(3);
    await page.getByRole('link', { name: 'bob@example.com', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'Bob Marley' }).waitFor();
    const fields = page.getByRole('region', { name: 'Fields' });
    const edit = fields.getByRole('button', { name: 'Edit the fields' });
    await edit.click();
    const form = fields.getByRole('form', { name: 'Edit the fields' });
    // The form starts filled with the stored values; the focus on its first input.
    await focused(form.getByLabel('Last name')).toBe(true);
    expect(await form.getByLabel('Team size').inputValue()).toBe('12.5');
    expect(await form.getByLabel('Arrival').inputValue()).toBe('2027-05-09');
    expect(await form.getByRole('group', { name: 'Topics' }).getByLabel('ai').isChecked()).toBe(true);

    // Cancel: nothing is sent, the table is back, and the focus on the button.
    await form.getByLabel('Company', { exact: true }).fill('Nope');
    await form.getByRole('button', { name: 'Cancel' }).click();
    await fields.getByRole('cell', { name: 'Island', exact: true }).waitFor();
    await focused(edit).toBe(true);
    expect((await contactByEmail('bob@example.com'))?.company).toBe('Island');

    // Escape leaves it too.
    await page.keyboard.press('Enter');
    await form.waitFor();
    await page.keyboard.press('Escape');
    await form.waitFor({ state: 'detached' });

    await edit.click();
    // Another contact's email: refused by the API (409), explained.
    await form.getByLabel('Email (required)').fill('ada@example.com');
    await form.getByRole('button', { name: 'Save' }).click();
    await form.getByRole('alert').getByText('A contact with this email already exists in this audience.').waitFor();
    await form.getByText('Already the email of another contact of this audience.').waitFor();
    // A number that is not one: refused before sending.
    await form.getByLabel('Email (required)').fill('robert@example.com');
    await form.getByLabel('Team size').fill('a dozen');
    await form.getByRole('button', { name: 'Save' }).click();
    await form.getByText('Enter a number, like 12 or 3.5.').waitFor();
    await focused(form.getByLabel('Team size')).toBe(true);
    await screenshot(page, 'contact-editing-form');

    await form.getByLabel('Team size').fill('7');
    await form.getByLabel('First name').fill('Robert');
    await form.getByLabel('Company', { exact: true }).fill('');
    await form.getByLabel('VIP').selectOption({ label: 'No' });
    const topics = form.getByRole('group', { name: 'Topics' });
    await topics.getByLabel('ai').uncheck();
    await topics.getByLabel('web').check();
    await form.getByLabel('Arrival').fill('');
    await form.getByRole('button', { name: 'Save' }).click();
    await form.waitFor({ state: 'detached' });
    await toast('Contact saved').waitFor();
    await page.getByRole('heading', { level: 1, name: 'Robert Marley' }).waitFor();
    await fields.getByRole('cell', { name: 'robert@example.com' }).waitFor();
    await fields.getByRole('row', { name: /Team size/ }).getByRole('cell', { name: '7' }).waitFor();

    expect(await contactByEmail('bob@example.com')).toBeUndefined();
    const robert = await contactByEmail('robert@example.com');
    expect(robert).toMatchObject({ first_name: 'Robert', last_name: 'Marley', company: null, fields: { size: 7, vip: false, topics: ['web'] } });
    expect(robert?.fields.arrival ?? null).toBeNull();
    await screenshot(page, 'contact-editing-detail');
  });

  it('editing the contact does not flow down to its participant record', async () => {
    await page.goto(`${ui.baseUrl}/audiences/${audienceId}/contacts/${adaId}`);
    await page.getByRole('heading', { level: 1, name: 'Ada Lovelace' }).waitFor();
    // The event's own field lives on the participant record: shown under the participation.
    const own = page.getByRole('list', { name: 'Participations' }).getByRole('definition').filter({ hasText: 'M' });
    await page.getByRole('list', { name: 'Participations' }).getByText('T-shirt size').waitFor();
    expect(await own.count()).toBeGreaterThan(0);
    await page.getByRole('button', { name: 'Edit the fields' }).click();
    const form = page.getByRole('form', { name: 'Edit the fields' });
    await form.getByLabel('Team size').fill('4');
    await form.getByRole('button', { name: 'Save' }).click();
    await form.waitFor({ state: 'detached' });
    expect((await contactByEmail('ada@example.com'))?.fields.size).toBe(4);
    const list = await api('GET', `/v1/events/${eventId}/participants?limit=100`);
    expect(list.body.items[0].data.size).toBe(3);
  });

  it('speaks French too', async () => {
    await page.getByLabel('Language').selectOption('fr');
    await page.getByRole('link', { name: 'Contacts de Forum 2027' }).click();
    await page.getByRole('button', { name: 'Ajouter un contact' }).click();
    const dialog = page.getByRole('dialog', { name: 'Ajouter un contact' });
    await dialog.getByLabel('E-mail (obligatoire)').fill('pas-une-adresse');
    await dialog.getByRole('button', { name: 'Ajouter', exact: true }).click();
    await dialog.getByText("Ce n'est pas une adresse e-mail : écrivez-la comme nom@exemple.fr.").waitFor();
    await dialog.getByRole('heading', { name: "Champs de l'audience" }).waitFor();
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    await page.getByLabel('Langue').selectOption('en');
    expect(browser.problems.pageErrors).toEqual([]);
    expect(browser.problems.consoleErrors).toEqual([]);
  });
});
