import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectStatus } from '../support/harness.ts';
import { loginThroughUi, openBrowser, screenshot, startUiApp, type Browser, type UiApp } from '../support/browser.ts';

/*
 * The consent center in chromium: the exclusion list (add with a reason, remove, import a CSV file,
 * export), the unsubscribes of an audience, the proofs export and the ledger verification (valid,
 * then broken at the record someone altered behind envoi's back), and signup forms.
 */

let ui: UiApp;
let browser: Browser;
let audienceId: string;
let dir: string;

const api = (method: string, url: string, body?: unknown) => ui.app.request(method, url, { token: ui.org.apiKey, body });

beforeAll(async () => {
  ui = await startUiApp();
  browser = await openBrowser();
  dir = await mkdtemp(join(tmpdir(), 'envoi-consent-ui-'));
  audienceId = (await api('POST', '/v1/audiences', { name: 'Newsletter readers' })).body.id;
  for (const [email, withdraw] of [
    ['reader1@example.com', false],
    ['reader2@example.com', true],
    ['reader3@example.com', false],
  ] as const) {
    const c = await api('POST', `/v1/audiences/${audienceId}/contacts`, { email });
    expectStatus(await api('POST', `/v1/audiences/${audienceId}/contacts/${c.body.id}/consents`, { action: 'given', method: 'signup_form', wording: 'Send me the newsletter', wording_version: 'v1' }), 201);
    if (withdraw) expectStatus(await api('POST', `/v1/audiences/${audienceId}/contacts/${c.body.id}/consents`, { action: 'withdrawn', method: 'back_office' }), 201);
  }
});
afterAll(async () => {
  await browser?.close();
  await ui?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the consent center in chromium', () => {
  it('adds addresses to the exclusion list with a reason, removes one, imports a CSV file with a bad line, exports', async () => {
    const { page } = browser;
    await loginThroughUi(page, ui.baseUrl, ui.org.ownerEmail);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Consent' }).click();
    await page.getByRole('heading', { level: 1, name: 'Consent center' }).waitFor();
    await page.getByText('The exclusion list is empty.').waitFor();

    await page.getByRole('button', { name: 'Add addresses' }).click();
    const dialog = page.getByRole('dialog', { name: 'Add addresses' });
    await dialog.getByLabel('Addresses').fill('Spam.Hater@Example.com\nquiet@example.org');
    await dialog.getByLabel('Reason').fill('asked by phone');
    await dialog.getByRole('button', { name: 'Add' }).click();
    await dialog.waitFor({ state: 'detached' });
    await page.getByRole('status').getByText('2 added, 0 already listed.').waitFor();
    const table = page.getByRole('table', { name: 'Exclusion list' });
    await table.getByRole('row', { name: /spam\.hater@example\.com.*asked by phone.*Back office/ }).waitFor();
    await table.getByRole('row', { name: /quiet@example\.org/ }).waitFor();
    await page.getByText('2 addresses').waitFor();

    await table.getByRole('button', { name: 'Remove quiet@example.org' }).click();
    const confirm = page.getByRole('dialog', { name: 'Remove quiet@example.org from the exclusion list?' });
    await confirm.getByRole('button', { name: 'Remove' }).click();
    await confirm.waitFor({ state: 'detached' });
    await table.getByRole('row', { name: /quiet@example\.org/ }).waitFor({ state: 'detached' });
    // One address left: the count agrees in number.
    await page.getByText('1 address', { exact: true }).waitFor();
    expect((await api('GET', '/v1/exclusions')).body.items.map((x: { email_lower: string }) => x.email_lower)).toEqual(['spam.hater@example.com']);

    const file = join(dir, 'exclusions.csv');
    await writeFile(file, 'email,reason\nimported@example.com,old list\nnot an address,broken\nspam.hater@example.com,again\n');
    await page.getByLabel('CSV file to import (columns email and reason)').setInputFiles(file);
    await page.getByRole('status').filter({ hasText: 'Import: 3 rows, 1 added, 1 already listed, 1 refused.' }).waitFor();
    await page.getByRole('list', { name: 'Refused rows' }).getByText(/^Line 3: email:/).waitFor();
    await table.getByRole('row', { name: /imported@example\.com.*old list.*Import/ }).waitFor();

    await page.getByRole('searchbox', { name: 'Search an address' }).fill('imported');
    await expect.poll(() => table.getByRole('row').count()).toBe(2);
    // The count beside the search is of the matches, not of the whole list.
    await page.getByText('1 address', { exact: true }).waitFor();
    const href = await page.getByRole('link', { name: 'Export (CSV)' }).getAttribute('href');
    const csv = await page.evaluate(async (u) => (await fetch(u!)).text(), href);
    expect(csv).toContain('imported@example.com');
    expect(csv).toContain('spam.hater@example.com');
    await screenshot(page, 'consent-exclusions');
    // In French, every count agrees with its number too ("1 ajoutée", not "1 ajoutées").
    await page.getByLabel('Language').selectOption('fr');
    await page.getByRole('status').filter({ hasText: 'Import : 3 lignes, 1 ajoutée, 1 déjà présente, 1 refusée.' }).waitFor();
    await page.getByLabel('Langue').selectOption('en');
    expect(browser.problems.pageErrors).toEqual([]);
    expect(browser.problems.consoleErrors).toEqual([]);
  });

  it('lists the unsubscribes of an audience', async () => {
    const { page } = browser;
    await page.getByRole('navigation', { name: 'Consent center sections' }).getByRole('link', { name: 'Unsubscribes' }).click();
    const table = page.getByRole('table', { name: 'Unsubscribes' });
    await table.getByRole('row', { name: /reader2@example\.com.*Consent withdrawn.*Back office/ }).waitFor();
    expect(await table.getByRole('row').count()).toBe(2);
  });

  it('exports the proofs and verifies the ledger: valid, then broken at the altered record', async () => {
    const { page } = browser;
    await page.getByRole('navigation', { name: 'Consent center sections' }).getByRole('link', { name: 'Proofs and ledger' }).click();
    const region = page.getByRole('region', { name: 'Proofs and ledger' });
    const csvHref = await region.getByRole('link', { name: 'Export the proofs (CSV)' }).getAttribute('href');
    const jsonHref = await region.getByRole('link', { name: 'Export the proofs (JSON lines)' }).getAttribute('href');
    const [csv, json] = await page.evaluate(async (urls) => Promise.all(urls.map(async (u) => (await fetch(u!)).text())), [csvHref, jsonHref]);
    expect(csv.split('\n')[0]).toMatch(/^seq,at,action,method,email/);
    expect(csv).toContain('Send me the newsletter');
    expect(json.trim().split('\n')).toHaveLength(4);

    await region.getByRole('button', { name: 'Verify the ledger' }).click();
    await region.getByRole('status').getByText(/Valid: the 4 records chain up unbroken/).waitFor();

    // Someone edits a proof in the database, going around the append-only trigger.
    const db = ui.app.envoi.ctx.db;
    const victim = await db.selectFrom('consent_records').select('seq').where('audience_id', '=', audienceId).orderBy('seq').offset(1).limit(1).executeTakeFirstOrThrow();
    await sql`ALTER TABLE consent_records DISABLE TRIGGER consent_records_append_only`.execute(db);
    try {
      await sql`UPDATE consent_records SET wording = 'I agree to everything' WHERE seq = ${victim.seq}`.execute(db);
    } finally {
      await sql`ALTER TABLE consent_records ENABLE TRIGGER consent_records_append_only`.execute(db);
    }
    await region.getByRole('button', { name: 'Verify again' }).click();
    await region.getByRole('status').getByText(new RegExp(`Broken at record ${victim.seq}: .*altered`)).waitFor();
    await screenshot(page, 'consent-ledger-broken');
  });

  it('creates a signup form and shows its hosted page and the HTML to embed', async () => {
    const { page } = browser;
    await page.getByRole('navigation', { name: 'Consent center sections' }).getByRole('link', { name: 'Signup forms' }).click();
    await page.getByText('No signup form in this audience.').waitFor();
    await page.getByRole('button', { name: 'New signup form' }).click();
    const dialog = page.getByRole('dialog', { name: 'New signup form' });
    await dialog.getByLabel('Name').fill('Footer form');
    await dialog.getByLabel('Language of the form').selectOption('en');
    await dialog.getByLabel('Consent sentence next to the checkbox').fill('Yes, send me the monthly newsletter.');
    await dialog.getByRole('button', { name: 'Create' }).click();
    await dialog.waitFor({ state: 'detached' });
    const form = page.getByRole('article', { name: 'Footer form' });
    const hosted = form.getByRole('link', { name: /\/f\/[0-9a-f-]{36}$/ });
    const url = await hosted.getAttribute('href');
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:8080\/f\//);
    expect(await form.getByLabel('HTML to embed in your site').inputValue()).toContain('Yes, send me the monthly newsletter.');
    // The hosted page answers (same route, on this server).
    const page2 = await ui.app.request('GET', new URL(url!).pathname);
    expect(page2.status).toBe(200);
    expect(page2.text).toContain('Yes, send me the monthly newsletter.');

    // The whole consent center, in French.
    await page.getByLabel('Language').selectOption('fr');
    await page.getByRole('heading', { level: 1, name: 'Centre de consentement' }).waitFor();
    await page.getByRole('navigation', { name: 'Rubriques du centre de consentement' }).getByRole('link', { name: "Liste d'exclusion" }).click();
    await page.getByRole('table', { name: "Liste d'exclusion" }).waitFor();
    await page.getByLabel('Langue').selectOption('en');
    expect(browser.problems.pageErrors).toEqual([]);
    expect(browser.problems.consoleErrors).toEqual([]);
  });
});
