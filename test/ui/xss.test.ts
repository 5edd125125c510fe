import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectStatus } from '../support/harness.ts';
import { loginThroughUi, openBrowser, screenshot, startUiApp, type Browser, type UiApp } from '../support/browser.ts';

/*
 * Markup in contact data is shown as text everywhere: grid, contact detail, dialogs. Nothing may
 * run (no alert), and no element the data describes may appear in the page.
 */

const IMG = '<img src=x onerror=alert(1)>';
const SCRIPT = '<script>alert(2)</script>';
const SVG = '"><svg onload=alert(3)>';

let ui: UiApp;
let browser: Browser;
let audienceId: string;
let contactId: string;
const api = (method: string, url: string, body?: unknown) => ui.app.request(method, url, { token: ui.org.apiKey, body });

beforeAll(async () => {
  ui = await startUiApp();
  audienceId = (await api('POST', '/v1/audiences', { name: `Audience ${SVG}` })).body.id;
  const eventId = (await api('POST', `/v1/audiences/${audienceId}/events`, { name: `Event ${SCRIPT}`, starts_at: '2027-03-01T09:00:00Z', ends_at: '2027-03-01T18:00:00Z', time_zone: 'Europe/Paris' })).body.id;
  expectStatus(await api('POST', `/v1/audiences/${audienceId}/fields`, { key: 'note', label: `Note ${IMG}`, type: 'text' }), 201);
  const p = await api('POST', `/v1/events/${eventId}/participants`, { email: 'xss@example.com', first_name: IMG, last_name: SCRIPT, company: SVG, fields: { note: IMG } });
  expectStatus(p, 201);
  contactId = p.body.contact_id;
  expectStatus(await api('POST', `/v1/audiences/${audienceId}/contacts/${contactId}/consents`, { action: 'given', method: 'back_office', wording: `I agree ${IMG}`, wording_version: '1' }), 201);
  browser = await openBrowser();
  await loginThroughUi(browser.page, ui.baseUrl, ui.org.ownerEmail);
});
afterAll(async () => {
  await browser?.close();
  await ui?.close();
});

async function assertNothingRan() {
  const { page, problems } = browser;
  expect(problems.dialogs).toEqual([]);
  expect(problems.pageErrors).toEqual([]);
  expect(await page.locator('img[src="x"], svg[onload], script:not([src])').count()).toBe(0);
  expect(await page.evaluate<number>('document.querySelectorAll("[onerror], [onload]").length')).toBe(0);
}

describe('contact data with markup in it', () => {
  it('shows as text in the audiences list and the contacts grid', async () => {
    const { page } = browser;
    await page.getByRole('heading', { level: 2, name: `Audience ${SVG}` }).waitFor();
    await page.getByText(`Event ${SCRIPT}`, { exact: true }).waitFor();
    await page.getByRole('link', { name: `Contacts of Audience ${SVG}` }).click();
    const grid = page.getByRole('table', { name: 'Contacts' });
    // The first name and the central field "note" both hold it.
    await expect.poll(() => grid.getByRole('cell', { name: IMG, exact: true }).count()).toBe(2);
    await grid.getByRole('cell', { name: SCRIPT, exact: true }).waitFor();
    await grid.getByRole('cell', { name: SVG, exact: true }).waitFor();
    await grid.getByRole('columnheader', { name: `Note ${IMG}` }).waitFor();
    await grid.getByText(`Event ${SCRIPT}`, { exact: true }).waitFor();
    await grid.getByRole('checkbox', { name: `Select ${IMG} ${SCRIPT}` }).waitFor();
    await screenshot(page, 'xss-grid');
    await assertNothingRan();
  });

  it('shows as text in the dialogs', async () => {
    const { page } = browser;
    await page.getByRole('button', { name: `Delete ${IMG} ${SCRIPT}` }).click();
    const dialog = page.getByRole('dialog', { name: 'Delete this contact?' });
    await dialog.getByText(`${IMG} ${SCRIPT} (xss@example.com) will be erased from the whole audience:`).waitFor();
    await dialog.getByText(`Event ${SCRIPT}`, { exact: true }).waitFor();
    await assertNothingRan();
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'detached' });

    await page.getByRole('checkbox', { name: `Select ${IMG} ${SCRIPT}` }).check();
    await page.getByRole('button', { name: 'Filters' }).click();
    await page.getByRole('region', { name: 'Filters' }).getByRole('checkbox', { name: `Event ${SCRIPT}` }).waitFor();
    await page.getByRole('button', { name: 'Columns' }).click();
    const columns = page.getByRole('dialog', { name: 'Choose the columns' });
    await columns.getByRole('checkbox', { name: new RegExp(`^Note ${IMG.replace(/[()]/g, '\\$&')}`) }).waitFor();
    await assertNothingRan();
    await page.keyboard.press('Escape');
    await columns.waitFor({ state: 'detached' });
  });

  it('shows as text on the contact detail, with the consent proof', async () => {
    const { page } = browser;
    await page.getByRole('link', { name: 'xss@example.com' }).click();
    await page.getByRole('heading', { level: 1, name: `${IMG} ${SCRIPT}` }).waitFor();
    const fields = page.getByRole('region', { name: 'Fields' });
    await fields.getByRole('cell', { name: SVG, exact: true }).waitFor();
    await fields.getByRole('rowheader', { name: `Note ${IMG}` }).waitFor();
    await page.getByRole('region', { name: 'Account' }).getByText(`Event ${SCRIPT}`).waitFor();
    await page.getByRole('region', { name: 'Consent history' }).getByText(`« I agree ${IMG} »`).waitFor();
    await screenshot(page, 'xss-contact');
    await assertNothingRan();
  });
});
