import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { ARTIFACTS, loginThroughUi, openBrowser, screenshot, startUiApp, type Browser, type UiApp } from '../support/browser.ts';

/*
 * The grid never loads an audience whole: a page of 100 rows at a time as the user scrolls, and only
 * the rows in sight in the DOM. 5,000 contacts by default; ENVOI_UI_SCALE_CONTACTS=1000000 measures
 * the same on a million (figures in test-artifacts/grid-scale.json).
 */

const N = Number(process.env.ENVOI_UI_SCALE_CONTACTS ?? 5000);
const PAGE = 100;
let ui: UiApp;
let browser: Browser;
let page: Page;
let audienceId: string;
/** the grid's page requests (limit 100), and apart from them its counting requests (limit 1, count) */
const queries: { ms: number; body: Record<string, unknown> }[] = [];
const counts: { ms: number; body: Record<string, unknown> }[] = [];
const figures: Record<string, number | string> = { contacts: N, database: 'pglite' };

const rendered = () => page.evaluate<number>("document.querySelectorAll('table.grid tbody tr:not(.spacer)').length");
const badge = (n: number) => page.getByRole('status').filter({ hasText: new RegExp(`^${n.toLocaleString('en-GB')} contacts$`) });

beforeAll(async () => {
  ui = await startUiApp();
  const api = (method: string, url: string, body?: unknown) => ui.app.request(method, url, { token: ui.org.apiKey, body });
  audienceId = (await api('POST', '/v1/audiences', { name: 'Big audience' })).body.id;
  const eventId = (await api('POST', `/v1/audiences/${audienceId}/events`, { name: 'Summit', starts_at: '2027-03-01T09:00:00Z', ends_at: '2027-03-01T18:00:00Z', time_zone: 'Europe/Paris' })).body.id;
  const db = ui.app.envoi.database.db;
  const started = Date.now();
  // Set-based seeding: the import path is measured elsewhere (bench grid); here only the grid matters.
  await sql`INSERT INTO contacts (org_id, audience_id, email, email_lower, first_name, last_name, company, created_at)
    SELECT ${ui.org.orgId}::uuid, ${audienceId}::uuid, 'c' || g || '@example.com', 'c' || g || '@example.com', 'First' || g, 'Last' || lpad(g::text, 7, '0'), 'Company ' || (g % 100),
           now() - g * interval '1 second'
    FROM generate_series(1, ${N}::int) g`.execute(db);
  await sql`INSERT INTO participants (org_id, audience_id, event_id, contact_id, data)
    SELECT org_id, audience_id, ${eventId}::uuid, id, '{}'::jsonb FROM contacts WHERE audience_id = ${audienceId}::uuid AND right(last_name, 1) IN ('0', '3', '6')`.execute(db);
  await sql`ANALYZE contacts`.execute(db);
  await sql`ANALYZE participants`.execute(db);
  figures.seed_ms = Date.now() - started;
  browser = await openBrowser();
  page = browser.page;
  // Time from sending the request to the end of the response, as chromium saw it.
  page.on('requestfinished', (req) => {
    if (!req.url().endsWith('/contacts/query')) return;
    const timing = req.timing();
    const body = req.postDataJSON();
    (body.count ? counts : queries).push({ ms: Math.round(timing.responseEnd - timing.requestStart), body });
  });
  await loginThroughUi(page, ui.baseUrl, ui.org.ownerEmail);
}, 600_000);

afterEach(async (ctx) => {
  if (ctx.task.result?.state === 'fail') await screenshot(page, `grid-scale-failed-${ctx.task.name.slice(0, 30).replace(/\W+/g, '-')}`).catch(() => {});
});

afterAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  writeFileSync(join(ARTIFACTS, 'grid-scale.json'), `${JSON.stringify({ ...figures, pages: queries.map((q) => ({ ms: q.ms, cursor: Boolean(q.body.cursor), sort: q.body.sort ?? null, filter: Boolean(q.body.filter) })), counts: counts.map((q) => ({ ms: q.ms, filter: Boolean(q.body.filter) })) }, null, 2)}\n`);
  await browser?.close();
  await ui?.close();
});

describe(`the contacts grid on ${N.toLocaleString('en-GB')} contacts`, () => {
  it('shows the first page and the total without loading the rest', async () => {
    const t0 = Date.now();
    await page.goto(`${ui.baseUrl}/audiences/${audienceId}/contacts`);
    await page.getByRole('table', { name: 'Contacts' }).getByRole('link', { name: 'c1@example.com', exact: true }).waitFor({ timeout: 120_000 });
    figures.first_rows_ms = Date.now() - t0;
    await badge(N).waitFor({ timeout: 120_000 });
    figures.total_shown_ms = Date.now() - t0;
    figures.first_page_ms = queries[0]!.ms;
    figures.total_ms = counts[0]!.ms;
    expect(queries).toHaveLength(1);
    expect(queries[0]!.body).toMatchObject({ limit: PAGE, count: false });
    expect(counts).toHaveLength(1);
    expect(counts[0]!.body).toMatchObject({ limit: 1, count: true });
    expect(await rendered()).toBeLessThan(60);
  });

  it('loads one page per screenful while scrolling, by keyset cursor, keeping the DOM small', async () => {
    const steps = 30;
    const t0 = Date.now();
    for (let i = 0; i < steps; i++) {
      const before = queries.length;
      await page.evaluate("(() => { const s = document.querySelector('.grid-scroll'); s.scrollTop = s.scrollHeight; })()");
      // Each jump to the bottom asks for exactly one more page.
      await expect.poll(() => queries.length, { timeout: 60_000, interval: 50 }).toBe(before + 1);
      await expect.poll(() => page.evaluate<number>("Number(document.querySelector('table.grid').getAttribute('aria-rowcount'))"), { interval: 50 }).toBe(N + 1);
    }
    figures.scroll_30_pages_ms = Date.now() - t0;
    const later = queries.slice(1);
    expect(later.every((q) => typeof q.body.cursor === 'string' && q.body.count === false)).toBe(true);
    // Scrolling never counts again.
    expect(counts).toHaveLength(1);
    // The first row of the page the last jump loaded is in sight; everything after it is still unloaded.
    await page.getByRole('link', { name: `c${steps * PAGE + 1}@example.com`, exact: true }).waitFor();
    expect(await rendered()).toBeLessThan(60);
    const ms = later.map((q) => q.ms).sort((a, b) => a - b);
    figures.next_page_p50_ms = ms[Math.floor(ms.length / 2)]!;
    figures.next_page_p95_ms = ms[Math.floor(ms.length * 0.95)]!;
  });

  it('sorts and filters on the server', async () => {
    const before = queries.length;
    await page.getByRole('button', { name: 'Last name' }).click();
    await page.getByRole('link', { name: 'c1@example.com', exact: true }).waitFor();
    await page.getByRole('button', { name: 'Last name' }).click();
    await page.getByRole('link', { name: `c${N}@example.com`, exact: true }).waitFor({ timeout: 60_000 });
    expect(queries[before + 1]!.body.sort).toEqual({ field: 'last_name', dir: 'desc' });
    figures.sort_desc_ms = queries[before + 1]!.ms;
    expect(counts).toHaveLength(1);

    await page.getByRole('button', { name: 'Filters' }).click();
    await page.getByRole('region', { name: 'Filters' }).getByRole('checkbox', { name: 'Summit' }).check();
    await page.getByRole('region', { name: 'Filters' }).getByRole('button', { name: 'Apply' }).click();
    const inEvent = Math.floor(N / 10) * 3 + [0, 3, 6].filter((d) => d <= N % 10 && d > 0).length;
    await badge(inEvent).waitFor({ timeout: 120_000 });
    figures.event_filter_page_ms = queries[queries.length - 1]!.ms;
    figures.event_filter_total_ms = counts[counts.length - 1]!.ms;
    expect(counts).toHaveLength(2);
    expect(await rendered()).toBeLessThan(60);
  });
});
