import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as orgs from '../../src/organisations/service.ts';
import { Worker } from '../../src/sending/worker.ts';
import { CampaignScheduler } from '../../src/campaigns/scheduler.ts';
import { expectStatus, until } from '../support/harness.ts';
import { loginThroughUi, openBrowser, screenshot, startUiApp, type Browser, type UiApp } from '../support/browser.ts';

/*
 * Campaigns in chromium, against a real worker and scheduler (development outbox): a campaign to a
 * saved view with its dry run counted per rule against the seeded data, sent and followed to its
 * report; schedule, pause and resume; re-permission answers; the refusal of event mail after the
 * event's window.
 */

let ui: UiApp;
let browser: Browser;
let worker: Worker;
let scheduler: CampaignScheduler;
let audienceId: string;
let templateId: string;
let viewName: string;
const ids: Record<string, string> = {};

const api = (method: string, url: string, body?: unknown) => ui.app.request(method, url, { token: ui.org.apiKey, body });
const nav = (name: string) => browser.page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name });

async function person(email: string, opts: { company?: string; consent?: boolean } = {}) {
  const r = await api('POST', `/v1/audiences/${audienceId}/contacts`, { email, first_name: email.split('@')[0], company: opts.company ?? 'Acme' });
  expectStatus(r, 201);
  if (opts.consent !== false) {
    expectStatus(await api('POST', `/v1/audiences/${audienceId}/contacts/${r.body.id}/consents`, { action: 'given', method: 'import', wording: 'Newsletter: yes please', wording_version: '2026-01' }), 201);
  }
  ids[email] = r.body.id;
  return r.body.id as string;
}

// The view (company Acme): 7 with consent, of which 1 excluded, 1 hard-bounced and 1 unsubscribed;
// 2 without consent. One more person of another company is outside the view.
const EXPECTED = { total: 9, allowed: 4, blocked: { hard_bounced: 1, unsubscribed: 1, excluded: 1, no_marketing_consent: 2 } };

beforeAll(async () => {
  ui = await startUiApp();
  browser = await openBrowser();
  audienceId = (await api('POST', '/v1/audiences', { name: 'Forum members' })).body.id;
  for (let i = 0; i < 7; i++) await person(`fan${i}@example.com`);
  for (let i = 0; i < 2; i++) await person(`cold${i}@example.com`, { consent: false });
  await person('outside@example.net', { company: 'Globex' });
  expectStatus(await api('POST', '/v1/exclusions', { items: [{ email: 'fan0@example.com' }] }), 201);
  await ui.app.envoi.ctx.db.insertInto('suppressions').values({ org_id: ui.org.orgId, email_lower: 'fan1@example.com', reason: 'hard_bounce', created_at: new Date() }).execute();
  expectStatus(await api('POST', `/v1/audiences/${audienceId}/contacts/${ids['fan2@example.com']}/consents`, { action: 'withdrawn', method: 'back_office' }), 201);
  const tpl = await api('POST', `/v1/audiences/${audienceId}/templates`, {
    name: 'Spring news',
    language: 'en',
    category: 'marketing',
    subject: 'Spring news for {{ first_name }}',
    body: '<p>Hello {{ first_name }}, <a href="https://example.org/programme">see the programme</a>. <a href="[UNSUBLINK]">Unsubscribe</a></p>',
  });
  expectStatus(tpl, 201);
  templateId = tpl.body.id;
  viewName = 'Acme people';
  expectStatus(await api('POST', `/v1/audiences/${audienceId}/views`, { name: viewName, filter: { field: 'company', op: 'equals', value: 'Acme' } }), 201);
  worker = new Worker(ui.app.envoi.ctx, { smtpUrl: null, pollMs: { transactional: 50, bulk: 50 } }).start();
  scheduler = new CampaignScheduler(ui.app.envoi.ctx, { pollMs: 100 }).start();
});
afterAll(async () => {
  await scheduler?.stop();
  await worker?.stop();
  await browser?.close();
  await ui?.close();
});

/** The figure of a <dl class="figures"> item, read by its data-figure name. */
const figure = (scope: ReturnType<Browser['page']['getByRole']>, name: string) => scope.locator(`[data-figure="${name}"]`);

describe('campaigns in chromium', () => {
  it('sends a campaign to a saved view: the dry run per rule with its reasons, the live progress, then the report with its chart', async () => {
    const { page } = browser;
    await loginThroughUi(page, ui.baseUrl, ui.org.ownerEmail);
    await nav('Campaigns').click();
    await page.getByRole('heading', { level: 1, name: 'Campaigns' }).waitFor();
    await page.getByRole('button', { name: 'New campaign' }).click();
    const dialog = page.getByRole('dialog', { name: 'New campaign' });
    await dialog.getByLabel('Name').fill('Spring 2027');
    await dialog.getByLabel('Template').selectOption({ label: 'Spring news (marketing)' });
    await dialog.getByLabel('Saved view').selectOption({ label: viewName });
    await dialog.getByRole('button', { name: 'Create (draft)' }).click();
    await page.getByRole('heading', { level: 1, name: 'Spring 2027' }).waitFor();
    await page.getByText('Draft', { exact: true }).waitFor();

    // The dry run: the counts the seeded data gives, each rule named with why it blocks.
    const dry = page.getByRole('region', { name: 'Dry run' });
    await figure(dry, 'total').filter({ hasText: String(EXPECTED.total) }).waitFor();
    expect(await figure(dry, 'allowed').innerText()).toBe(String(EXPECTED.allowed));
    expect(await figure(dry, 'blocked').innerText()).toBe(String(EXPECTED.total - EXPECTED.allowed));
    const rules = dry.getByRole('table', { name: 'Dry run: blocked by rule' });
    for (const [rule, n] of Object.entries(EXPECTED.blocked)) {
      expect(await rules.locator(`tr[data-rule="${rule}"] td`).innerText()).toBe(String(n));
    }
    await rules.getByRole('rowheader', { name: /On the exclusion list.*exclusion list: they get no marketing mail/ }).waitFor();
    await rules.getByRole('rowheader', { name: /No marketing consent.*No recorded marketing consent for this audience/ }).waitFor();
    expect(await rules.locator('tr').count()).toBe(Object.keys(EXPECTED.blocked).length);
    // Who each rule skipped, by name, each a link to the contact.
    const noConsent = rules.locator('tr[data-rule="no_marketing_consent"]');
    await noConsent.getByText('Who', { exact: true }).click();
    const who = noConsent.getByRole('list', { name: 'Skipped by: No marketing consent' });
    expect((await who.getByRole('link').allInnerTexts()).sort()).toEqual(['cold0@example.com', 'cold1@example.com']);
    await rules.locator('tr[data-rule="excluded"]').getByText('Who', { exact: true }).click();
    await rules.locator('tr[data-rule="excluded"]').getByRole('link', { name: 'fan0@example.com' }).waitFor();
    await screenshot(page, 'campaign-dry-run');

    // Send now, after a confirmation; the progress follows until it completes.
    await page.getByRole('button', { name: 'Send now' }).click();
    const confirm = page.getByRole('dialog', { name: 'Send now' });
    await confirm.getByRole('button', { name: 'Send now' }).click();
    await confirm.waitFor({ state: 'detached' });
    await page.getByText('Completed', { exact: true }).waitFor({ timeout: 60_000 });
    const progress = page.getByRole('region', { name: 'Progress' });
    await figure(progress, 'sent').filter({ hasText: String(EXPECTED.allowed) }).waitFor();
    expect(await figure(progress, 'blocked').innerText()).toBe(String(EXPECTED.total - EXPECTED.allowed));
    expect(await figure(progress, 'recipients').innerText()).toBe(String(EXPECTED.total));
    const sentRules = progress.getByRole('table', { name: 'Progress: blocked by rule' });
    for (const [rule, n] of Object.entries(EXPECTED.blocked)) expect(await sentRules.locator(`tr[data-rule="${rule}"] td`).innerText()).toBe(String(n));
    // The mail itself is in the outbox, to the allowed contacts only.
    const outbox = (await api('GET', '/v1/outbox?limit=100')).body.items.map((m: { envelope_to: string }) => m.envelope_to).sort();
    expect(outbox).toEqual(['fan3@example.com', 'fan4@example.com', 'fan5@example.com', 'fan6@example.com']);

    // A click, so that the report has a link and a person who clicked it.
    const campaign = (await api('GET', `/v1/audiences/${audienceId}/campaigns`)).body.campaigns.find((c: { name: string }) => c.name === 'Spring 2027');
    const mail = (await api('GET', '/v1/outbox?limit=100')).body.items.find((m: { envelope_to: string }) => m.envelope_to === 'fan3@example.com');
    const html = (await api('GET', `/v1/outbox/${mail.id}/html`)).text;
    const click = html.match(/href="http:\/\/127\.0\.0\.1:8080(\/c\/[^"]+)"/)![1]!;
    expect((await ui.app.request('GET', click)).status).toBe(302);

    // The report: totals with rates, the chart, the links and who clicked, CSV exports.
    await progress.getByRole('link', { name: 'Report', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'Report: Spring 2027' }).waitFor();
    await page.locator('[data-figure="sent"]').filter({ hasText: String(EXPECTED.allowed) }).waitFor();
    await page.getByRole('figure', { name: 'Trend chart' }).getByRole('application').waitFor();
    expect(await page.getByRole('figure', { name: 'Trend chart' }).locator('.recharts-line').count()).toBe(7);
    await page.locator('[data-figure="clicked_unique"]').filter({ hasText: '1' }).waitFor({ timeout: 90_000 });
    expect(await page.locator('[data-figure="clicked_unique"] small').innerText()).toBe('25%');
    const links = page.getByRole('region', { name: 'Links' });
    await links.getByRole('table', { name: 'Most clicked links' }).getByRole('row', { name: /https:\/\/example\.org\/programme\s*1\s*1/ }).waitFor();
    await links.getByRole('button', { name: 'Who clicked' }).click();
    await links.getByRole('table', { name: 'People who clicked' }).getByRole('cell', { name: 'fan3@example.com' }).waitFor();
    const csv = await links.getByRole('link', { name: 'Export (CSV)' }).getAttribute('href');
    // The campaign's report covers all its runs: its clickers are the campaign's.
    expect(csv).toContain(`campaign_id=${campaign.id}`);
    expect(csv).toContain('format=csv');
    const clickersCsv = await page.evaluate(async (url) => (await fetch(url!)).text(), csv);
    expect(clickersCsv).toContain('fan3@example.com');
    const seriesCsv = await page.getByRole('region', { name: 'Over time' }).getByRole('link', { name: 'Export (CSV)' }).getAttribute('href');
    const exported = await page.evaluate(async (url) => (await fetch(url!)).text(), seriesCsv);
    expect(exported.split('\n')[0]).toContain('start,sent,delivered');
    await screenshot(page, 'campaign-report');

    expect(browser.problems.pageErrors).toEqual([]);
    expect(browser.problems.consoleErrors).toEqual([]);
  });

  it('schedules a campaign for later, pauses and resumes it, and shows it in the list', async () => {
    const { page } = browser;
    await page.goto(`${ui.baseUrl}/campaigns?audience=${audienceId}`);
    await page.getByRole('button', { name: 'New campaign' }).click();
    const dialog = page.getByRole('dialog', { name: 'New campaign' });
    await dialog.getByLabel('Name').fill('Summer 2027');
    await dialog.getByLabel('At a date and time').check();
    await dialog.getByLabel('Send at').fill('2030-06-01T09:00');
    await dialog.getByLabel('Recurring').check();
    await dialog.getByLabel('Every (minutes)').fill('120');
    await dialog.getByRole('button', { name: 'Create (draft)' }).click();
    await page.getByRole('heading', { level: 1, name: 'Summer 2027' }).waitFor();
    await page.getByText('every 120 min, 0 runs so far').waitFor();
    await page.getByRole('button', { name: /^Schedule for / }).click();
    await page.getByRole('dialog').getByRole('button', { name: /^Schedule for / }).click();
    await page.getByText('Scheduled', { exact: true }).waitFor();
    await page.getByRole('button', { name: 'Pause' }).click();
    await page.getByText('Paused', { exact: true }).waitFor();
    await page.getByRole('button', { name: 'Resume' }).click();
    await page.getByText('Scheduled', { exact: true }).waitFor();
    const c = (await api('GET', `/v1/audiences/${audienceId}/campaigns`)).body.campaigns.find((x: { name: string }) => x.name === 'Summer 2027');
    expect(c).toMatchObject({ status: 'scheduled', every_minutes: 120, send_at: new Date('2030-06-01T09:00').toISOString(), runs: 0 });

    await page.getByRole('link', { name: '← Campaigns' }).click();
    const list = page.getByRole('table', { name: 'Campaigns' });
    await list.getByRole('row', { name: /Summer 2027.*every 120 min.*Scheduled/ }).waitFor();
    await list.getByRole('row', { name: /Spring 2027.*Completed.*Spring news.*View “Acme people”\s*4\s*5/ }).waitFor();
    expect(browser.problems.pageErrors).toEqual([]);
  });

  it('shows the YES and NO lists of a re-permission campaign, exports them and saves the YES list as a view', async () => {
    const { page } = browser;
    const tpl = await api('POST', `/v1/audiences/${audienceId}/templates/from-builtin`, { builtin: 're_permission', language: 'en' });
    expectStatus(tpl, 201);
    const targets = ['cold0@example.com', 'cold1@example.com', 'fan4@example.com'].map((e) => ids[e]!);
    const deadline = new Date(Date.now() + 7 * 86_400_000).toISOString();
    const c = await api('POST', `/v1/audiences/${audienceId}/campaigns`, { name: 'Still with us?', template_id: tpl.body.id, target: { contact_ids: targets }, repermission: { deadline }, start: true });
    expectStatus(c, 201);
    await until(async () => (await api('GET', `/v1/campaigns/${c.body.id}`)).body.status === 'completed', 'the re-permission campaign', 60_000);
    // cold0 answers YES, cold1 NO, fan4 does not answer.
    for (const [email, answer] of [
      ['cold0@example.com', 'yes'],
      ['cold1@example.com', 'no'],
    ] as const) {
      const m = (await api('GET', '/v1/outbox?limit=100')).body.items.find((x: { envelope_to: string; subject: string }) => x.envelope_to === email && /keep receiving/.test(x.subject));
      const html = (await api('GET', `/v1/outbox/${m.id}/html`)).text;
      const link = [...html.matchAll(/href="http:\/\/127\.0\.0\.1:8080(\/r\/[^"]+)"/g)].map((x) => x[1]!).find((l) => l.includes(`.${answer}.`))!;
      expect((await ui.app.request('POST', link, { body: 'lang=en', headers: { 'content-type': 'application/x-www-form-urlencoded' } })).status).toBe(200);
    }

    await page.goto(`${ui.baseUrl}/campaigns/${c.body.id}`);
    await page.getByRole('heading', { level: 1, name: 'Still with us?' }).waitFor();
    const answers = page.getByRole('region', { name: 'Answers' });
    await figure(answers, 'yes').filter({ hasText: '1' }).waitFor();
    expect(await figure(answers, 'no').innerText()).toBe('1');
    expect(await figure(answers, 'unanswered').innerText()).toBe('1');
    expect(await figure(answers, 'sent').innerText()).toBe('3');
    await answers.getByRole('table', { name: 'YES list (new consents)' }).getByRole('cell', { name: 'cold0@example.com' }).waitFor();
    await answers.getByRole('table', { name: 'NO list (unsubscribed)' }).getByRole('cell', { name: 'cold1@example.com' }).waitFor();
    expect(await answers.getByRole('table', { name: 'YES list (new consents)' }).getByText('cold1@example.com').count()).toBe(0);
    const yesCsv = await answers.getByRole('link', { name: 'Export the YES list (CSV)' }).getAttribute('href');
    const noCsv = await answers.getByRole('link', { name: 'Export the NO list (CSV)' }).getAttribute('href');
    const [yesText, noText] = await page.evaluate(async (urls) => Promise.all(urls.map(async (u) => (await fetch(u!)).text())), [yesCsv, noCsv]);
    expect(yesText).toContain('cold0@example.com');
    expect(yesText).not.toContain('cold1@example.com');
    expect(noText).toContain('cold1@example.com');
    expect(noText).not.toContain('cold0@example.com');

    await answers.getByRole('button', { name: 'Save the YES list as a view' }).click();
    await page.getByRole('status').getByText('View “YES: Still with us?” saved.').waitFor();
    const views = (await api('GET', `/v1/audiences/${audienceId}/views`)).body.views;
    const yesView = views.find((v: { name: string }) => v.name === 'YES: Still with us?');
    expect(yesView).toBeTruthy();
    const members = await api('POST', `/v1/audiences/${audienceId}/views/${yesView.id}/query`, {});
    expect(members.body.items.map((x: { email: string }) => x.email)).toEqual(['cold0@example.com']);
    await screenshot(page, 'repermission');
    expect(browser.problems.pageErrors).toEqual([]);
    expect(browser.problems.consoleErrors).toEqual([]);
  });

  it('schedules event mail, and shows why it is refused after the end of the event and its window', async () => {
    const { page } = browser;
    const day = 86_400_000;
    const mk = async (name: string, start: number) => {
      const e = await api('POST', `/v1/audiences/${audienceId}/events`, { name, starts_at: new Date(start).toISOString(), ends_at: new Date(start + 8 * 3_600_000).toISOString(), time_zone: 'Europe/Paris' });
      expectStatus(e, 201);
      expectStatus(await api('POST', `/v1/events/${e.body.id}/participants`, { email: 'fan5@example.com' }), 201);
      const t = await api('POST', `/v1/audiences/${audienceId}/templates`, { name: `Thanks, ${name}`, language: 'en', category: 'participation', event_id: e.body.id, subject: 'Thank you', body: '<p>Thanks for coming to {{ event.name }}</p>' });
      expectStatus(t, 201);
      return e.body.id as string;
    };
    await mk('Future fair', Date.now() + 20 * day);
    await mk('Old fair', Date.now() - 30 * day);

    await page.goto(`${ui.baseUrl}/campaigns?audience=${audienceId}`);
    await page.getByRole('link', { name: 'Event mail' }).click();
    await page.getByRole('heading', { level: 1, name: 'Event mail' }).waitFor();
    const future = page.getByRole('region', { name: 'Future fair' });
    await future.getByRole('button', { name: 'Schedule an event email for Future fair' }).click();
    let dialog = page.getByRole('dialog', { name: 'Schedule an event email' });
    await dialog.getByLabel('Kind').selectOption('reminder');
    await dialog.getByText('By default the day before the start').waitFor();
    await dialog.getByRole('button', { name: 'Schedule an event email' }).click();
    await dialog.waitFor({ state: 'detached' });
    // Left unnamed, it is named in the interface language: "Reminder (D-1): Future fair", not the API's "reminder: Future fair".
    await future.getByRole('table', { name: 'Event mail of Future fair' }).getByRole('row', { name: /Reminder \(D-1\)\s+Reminder \(D-1\): Future fair\s+Scheduled/ }).waitFor();
    // The default time, 09:00 in the event's zone, shown in that zone whatever the browser's.
    await future.getByRole('columnheader', { name: 'Send at (Europe/Paris time)' }).waitFor();
    await future.getByRole('row', { name: /Reminder \(D-1\).*Scheduled.*09:00/ }).waitFor();

    const old = page.getByRole('region', { name: 'Old fair' });
    await old.getByRole('button', { name: 'Schedule an event email for Old fair' }).click();
    dialog = page.getByRole('dialog', { name: 'Schedule an event email' });
    await dialog.getByLabel('Kind').selectOption('thank_you');
    await dialog.getByRole('button', { name: 'Schedule an event email' }).click();
    await dialog.getByRole('alert').filter({ hasText: 'Refused: The event ended longer ago than the period allowed for mail to its participants.' }).waitFor();
    await screenshot(page, 'event-mail-refused');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    await old.getByText('No event mail yet.').waitFor();
    expect(browser.problems.pageErrors).toEqual([]);
  });

  it('shows a viewer the campaigns, templates and consent center without their write buttons', async () => {
    await orgs.createUser(ui.app.envoi.ctx, ui.org.orgId, { email: 'viewer@example.com', password: 'viewer password 123', role: 'viewer' });
    const other = await openBrowser();
    try {
      const { page } = other;
      await loginThroughUi(page, ui.baseUrl, 'viewer@example.com', 'viewer password 123');
      await page.goto(`${ui.baseUrl}/campaigns?audience=${audienceId}`);
      await page.getByRole('table', { name: 'Campaigns' }).getByRole('link', { name: 'Summer 2027' }).click();
      await page.getByRole('heading', { level: 1, name: 'Summer 2027' }).waitFor();
      await page.getByRole('region', { name: 'Dry run' }).locator('[data-figure="total"]').waitFor();
      for (const name of ['Pause', 'Cancel the campaign', 'New campaign']) expect(await page.getByRole('button', { name }).count()).toBe(0);
      await page.goto(`${ui.baseUrl}/templates/${audienceId}/${templateId}`);
      await page.getByRole('heading', { level: 1, name: 'Spring news' }).waitFor();
      expect(await page.getByRole('form', { name: 'Template' }).getByLabel('Subject').isDisabled()).toBe(true);
      for (const name of ['Save', 'Send a test', 'Delete']) expect(await page.getByRole('button', { name, exact: true }).count()).toBe(0);
      // The preview still renders for a viewer.
      await page.frameLocator('iframe[title="Rendered email"]').getByText('Hello Camille').waitFor();
      await page.goto(`${ui.baseUrl}/consent`);
      await page.getByRole('heading', { level: 1, name: 'Consent center' }).waitFor();
      await page.getByRole('link', { name: 'Export (CSV)' }).waitFor();
      for (const name of ['Add addresses', 'Import a CSV file']) expect(await page.getByRole('button', { name }).count()).toBe(0);
      expect(other.problems.pageErrors).toEqual([]);
    } finally {
      await other.close();
    }
  });
});
