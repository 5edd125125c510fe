import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as orgs from '../src/organisations/service.ts';
import { Worker } from '../src/sending/worker.ts';
import { CampaignScheduler } from '../src/campaigns/scheduler.ts';
import { createEnvoi } from '../src/app.ts';
import { expectStatus, startTestApp, until, type TestApp, type TestOrg } from './support/harness.ts';

// API routes added for the template, campaign, consent, report and outbox screens of the web UI.

let t: TestApp;
let a: TestOrg;
let b: TestOrg;
let viewerKey: string;
let worker: Worker;
let scheduler: CampaignScheduler;
let audienceId: string;
let eventId: string;
let contactId: string;

const api = (method: string, url: string, body?: unknown, token = a.apiKey) => t.request(method, url, { token, body });
const local = (url: string) => url.replace(/^http:\/\/127\.0\.0\.1:8080/, '');
const form = (url: string) => t.request('POST', url, { body: 'lang=en', headers: { 'content-type': 'application/x-www-form-urlencoded' } });

async function outboxTo(email: string, subject?: RegExp) {
  let found: { id: string; subject: string } | undefined;
  await until(async () => {
    const items = (await api('GET', '/v1/outbox?limit=500')).body.items as { id: string; envelope_to: string; subject: string }[];
    found = items.find((m) => m.envelope_to === email && (!subject || subject.test(m.subject)));
    return found !== undefined;
  }, `mail to ${email} in the outbox`);
  return found!;
}

beforeAll(async () => {
  t = await startTestApp();
  a = await t.createOrg('UI B org');
  b = await t.createOrg('Other org');
  viewerKey = (await orgs.createApiKey(t.envoi.ctx, a.orgId, { name: 'viewer', role: 'viewer' })).key;
  worker = new Worker(t.envoi.ctx, { smtpUrl: null, pollMs: { transactional: 50, bulk: 50 } }).start();
  scheduler = new CampaignScheduler(t.envoi.ctx, { pollMs: 50 }).start();
  audienceId = (await api('POST', '/v1/audiences', { name: 'Salon' })).body.id;
  eventId = (await api('POST', `/v1/audiences/${audienceId}/events`, { name: 'Lyon day', starts_at: '2027-05-01T09:00:00Z', ends_at: '2027-05-01T18:00:00Z', time_zone: 'Europe/Paris' })).body.id;
  const c = await api('POST', `/v1/audiences/${audienceId}/contacts`, { email: 'rita@example.com', first_name: '<img src=x onerror=alert(1)>', company: 'Acme' });
  expectStatus(c, 201);
  contactId = c.body.id;
});
afterAll(async () => {
  await scheduler?.stop();
  await worker?.stop();
  await t?.close();
});

describe('POST /v1/audiences/:audienceId/templates/render (the live preview of a draft)', () => {
  const draft = { language: 'en', subject: 'Hello {{ first_name }}', body: '<p style="color:#c00">Hi {{ first_name }} at {{ event.name }}, {{ vars.code }}</p>', event_id: '' };

  it('renders unsaved HTML for a stored contact, escaped, and serves it as a sandboxed document', async () => {
    const r = await api('POST', `/v1/audiences/${audienceId}/templates/render`, { template: { ...draft, event_id: eventId }, contact_id: contactId, variables: { code: 'A1' } });
    expectStatus(r, 200);
    expect(r.body.subject).toBe('Hello <img src=x onerror=alert(1)>');
    expect(r.body.html).toContain('Hi &lt;img src=x onerror=alert(1)&gt; at Lyon day, A1');
    expect(r.body.html_url).toMatch(new RegExp(`^/v1/audiences/${audienceId}/templates/previews/[A-Za-z0-9_-]{22}$`));

    const doc = await api('GET', r.body.html_url);
    expectStatus(doc, 200);
    expect(doc.headers['content-type']).toMatch(/^text\/html/);
    expect(doc.headers['content-security-policy']).toMatch(/^sandbox;/);
    expect(doc.headers['content-security-policy']).toContain("default-src 'none'");
    expect(doc.headers['content-security-policy']).not.toContain('script');
    expect(doc.text).toBe(r.body.html);
    // Another organisation, or the right token under another audience, gets nothing.
    expectStatus(await api('GET', r.body.html_url, undefined, b.apiKey), 404);
    const otherAudience = (await api('POST', '/v1/audiences', { name: 'Other audience' })).body.id;
    expectStatus(await api('GET', r.body.html_url.replace(audienceId, otherAudience)), 404);
    expectStatus(await api('GET', `/v1/audiences/${audienceId}/templates/previews/nope`), 404);
  });

  it('keeps previews in the database: another API process serves the frame; ten minutes, a few per editor', async () => {
    const render = async () => {
      const r = await api('POST', `/v1/audiences/${audienceId}/templates/render`, { template: { ...draft, event_id: eventId }, variables: { code: 'B2' } });
      expectStatus(r, 200);
      return r.body as { html: string; html_url: string };
    };
    const first = await render();
    // A second server on the same database, as behind a load balancer: no memory shared with the first.
    const second = await createEnvoi({ config: t.envoi.ctx.config, database: t.envoi.ctx.database, ctx: { now: () => t.clock.now } });
    try {
      const doc = await second.http.inject({ method: 'GET', url: first.html_url, headers: { authorization: `Bearer ${a.apiKey}` } });
      expect(doc.statusCode).toBe(200);
      expect(doc.body).toBe(first.html);
      expect(doc.headers['content-security-policy']).toMatch(/^sandbox;/);
    } finally {
      await second.http.close();
    }
    // The token is not stored as such: the table alone does not give the URL away.
    const token = first.html_url.split('/').pop()!;
    const stored = await t.envoi.ctx.db.selectFrom('template_previews').select(['token_hash']).execute();
    expect(stored.some((r) => Buffer.from(r.token_hash).toString('base64url') === token || Buffer.from(r.token_hash).toString() === token)).toBe(false);
    // An editor rendering at every pause keeps a handful of rows, not one per keystroke.
    for (let i = 0; i < 30; i++) await render();
    const rows = await t.envoi.ctx.db.selectFrom('template_previews').select((eb) => eb.fn.countAll<number>().as('n')).where('org_id', '=', a.orgId).executeTakeFirstOrThrow();
    expect(Number(rows.n)).toBeLessThanOrEqual(8);
    const latest = await render();
    expectStatus(await api('GET', latest.html_url), 200);
    t.clock.now = new Date(t.clock.now.getTime() + 10 * 60_000 + 1000);
    try {
      const expired = await api('GET', latest.html_url);
      expectStatus(expired, 404);
      expect(expired.body.error.message).toContain('render it again');
    } finally {
      t.clock.now = new Date(t.clock.now.getTime() - 10 * 60_000 - 1000);
    }
  });

  it('renders MJML for the sample person, viewers included', async () => {
    const r = await api(
      'POST',
      `/v1/audiences/${audienceId}/templates/render`,
      { template: { language: 'fr', format: 'mjml', subject: 'Bonjour', body: '<mjml><mj-body><mj-section><mj-column><mj-text>Bonjour {{ first_name }}</mj-text></mj-column></mj-section></mj-body></mjml>' } },
      viewerKey,
    );
    expectStatus(r, 200);
    expect(r.body.html).toMatch(/<html[^>]*lang="fr"/);
    expect(r.body.html).toContain('Bonjour Camille');
    expect(r.body.text).toContain('Bonjour Camille');
  });

  it('refuses with a 400 naming the problem: a missing variable, bad Liquid, an event of no audience of its own', async () => {
    const missing = await api('POST', `/v1/audiences/${audienceId}/templates/render`, { template: { ...draft, event_id: eventId }, contact_id: contactId });
    expectStatus(missing, 400);
    expect(missing.body.error.message).toContain('code');
    const syntax = await api('POST', `/v1/audiences/${audienceId}/templates/render`, { template: { language: 'en', subject: 'x', body: '<p>{% if %}</p>' } });
    expectStatus(syntax, 400);
    const otherEvent = (await api('POST', `/v1/audiences/${audienceId}/events`, { name: 'x', starts_at: '2027-01-01T09:00:00Z', ends_at: '2027-01-01T18:00:00Z', time_zone: 'UTC' })).body.id;
    const foreign = await t.request('POST', `/v1/audiences/${(await t.request('POST', '/v1/audiences', { token: b.apiKey, body: { name: 'B' } })).body.id}/templates/render`, {
      token: b.apiKey,
      body: { template: { ...draft, event_id: otherEvent }, variables: { code: 1 } },
    });
    expectStatus(foreign, 400);
    expect(foreign.body.error.code).toBe('unknown_event');
  });
});

describe('POST /v1/audiences/:audienceId/templates/:id/test', () => {
  it('sends the saved version of a marketing template to one address, marked as a test, into the outbox', async () => {
    const tpl = await api('POST', `/v1/audiences/${audienceId}/templates`, { name: 'News', language: 'en', category: 'marketing', format: 'mjml', subject: 'News for {{ first_name }}', preheader: 'The {{ vars.month }} news', body: '<mjml><mj-body><mj-section><mj-column><mj-text>Hello {{ first_name }}, {{ vars.month }} <a href="[UNSUBLINK]">stop</a></mj-text></mj-column></mj-section></mj-body></mjml>' });
    expectStatus(tpl, 201);
    // A marketing template cannot go through the triggered API...
    expectStatus(await api('POST', '/v1/messages', { template_id: tpl.body.id, to: { email: 'me@example.com' }, variables: { month: 'May' } }), 422);
    // ...but its test can, with the variables it needs, rendered with the values of the address's contact.
    expectStatus(await api('POST', `/v1/audiences/${audienceId}/contacts`, { email: 'me@example.com', first_name: 'Maud' }), 201);
    const missing = await api('POST', `/v1/audiences/${audienceId}/templates/${tpl.body.id}/test`, { email: 'me@example.com' });
    expectStatus(missing, 400);
    expect(missing.body.error.message).toContain('month');
    const sent = await api('POST', `/v1/audiences/${audienceId}/templates/${tpl.body.id}/test`, { email: 'me@example.com', variables: { month: 'May' } });
    expectStatus(sent, 202);
    expect(sent.body).toMatchObject({ status: 'queued' });
    const m = await outboxTo('me@example.com');
    expect(m.subject).toBe('[Test] News for Maud');
    const msg = await api('GET', `/v1/outbox/${m.id}/message`);
    expectStatus(msg, 200);
    expect(msg.body).toMatchObject({ subject: '[Test] News for Maud', to: expect.stringContaining('me@example.com'), has_html: true, html_url: `/v1/outbox/${m.id}/html` });
    expect(msg.body.headers).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'subject', value: '[Test] News for Maud' })]));
    expect(msg.body.text).toContain('Hello Maud, May');
    const html = await api('GET', msg.body.html_url);
    expectStatus(html, 200);
    expect(html.headers['content-security-policy']).toMatch(/^sandbox;/);
    expect(html.text).toContain('The May news');
    expect(html.text).toContain('Hello Maud, May');
    // Not tracked, and not in the template's report.
    expect(html.text).not.toContain('/c/');
    const report = await api('GET', `/v1/reports/series?template_id=${tpl.body.id}`);
    expect(report.body.totals.sent).toBe(0);
  });

  it('is for editors of the organisation only', async () => {
    const tpl = (await api('GET', `/v1/audiences/${audienceId}/templates`)).body.templates[0];
    expectStatus(await api('POST', `/v1/audiences/${audienceId}/templates/${tpl.id}/test`, { email: 'me@example.com', variables: { month: 'May' } }, viewerKey), 403);
    expectStatus(await api('POST', `/v1/audiences/${audienceId}/templates/${tpl.id}/test`, { email: 'me@example.com', variables: { month: 'May' } }, b.apiKey), 404);
    expectStatus(await api('POST', `/v1/audiences/${audienceId}/templates/${tpl.id}/test`, { email: 'not an address', variables: { month: 'May' } }), 400);
  });
});

describe('GET /v1/audiences/:audienceId/unsubscribes', () => {
  it('lists the withdrawals and unsubscribes of the audience, newest first, with paging, and nothing else', async () => {
    for (const email of ['u1@example.com', 'u2@example.com', 'u3@example.com']) {
      const c = await api('POST', `/v1/audiences/${audienceId}/contacts`, { email });
      expectStatus(await api('POST', `/v1/audiences/${audienceId}/contacts/${c.body.id}/consents`, { action: 'given', method: 'import', wording: 'Newsletter: yes' }), 201);
      expectStatus(await api('POST', `/v1/audiences/${audienceId}/contacts/${c.body.id}/consents`, { action: 'withdrawn', method: 'back_office' }), 201);
    }
    const first = await api('GET', `/v1/audiences/${audienceId}/unsubscribes?limit=2`);
    expectStatus(first, 200);
    expect(first.body.items.map((r: any) => [r.email, r.action])).toEqual([
      ['u3@example.com', 'withdrawn'],
      ['u2@example.com', 'withdrawn'],
    ]);
    expect(first.body.has_more).toBe(true);
    const next = await api('GET', `/v1/audiences/${audienceId}/unsubscribes?limit=2&offset=2`);
    expect(next.body).toMatchObject({ items: [expect.objectContaining({ email: 'u1@example.com', method: 'back_office' })], has_more: false });
    expectStatus(await api('GET', `/v1/audiences/${audienceId}/unsubscribes`, undefined, b.apiKey), 404);
    expectStatus(await api('GET', `/v1/audiences/${audienceId}/unsubscribes?limit=0`), 400);
  });
});

describe('re-permission NO list, report series as CSV', () => {
  it('lists and exports the NO answers beside the YES list; the series of the campaign exports as CSV', async () => {
    const people = ['yes', 'no'].map((n) => `${n}-rp@example.com`);
    const idsOf: string[] = [];
    for (const email of people) idsOf.push((await api('POST', `/v1/audiences/${audienceId}/contacts`, { email })).body.id);
    const tpl = await api('POST', `/v1/audiences/${audienceId}/templates/from-builtin`, { builtin: 're_permission', language: 'en' });
    const deadline = new Date(t.clock.now.getTime() + 7 * 86_400_000).toISOString();
    const c = await api('POST', `/v1/audiences/${audienceId}/campaigns`, { name: 'Still there?', template_id: tpl.body.id, target: { contact_ids: idsOf }, repermission: { deadline }, start: true });
    expectStatus(c, 201);
    await until(async () => (await api('GET', `/v1/campaigns/${c.body.id}`)).body.status === 'completed', 'the campaign', 30_000);
    for (const [email, answer] of [
      ['yes-rp@example.com', 'yes'],
      ['no-rp@example.com', 'no'],
    ] as const) {
      const m = await outboxTo(email);
      const html = (await api('GET', `/v1/outbox/${m.id}/html`)).text;
      const link = [...html.matchAll(/href="(http:\/\/127\.0\.0\.1:8080\/r\/[^"]+)"/g)].map((x) => local(x[1]!)).find((l) => l.includes(`.${answer}.`))!;
      expectStatus(await form(link), 200);
    }
    const r = await api('GET', `/v1/campaigns/${c.body.id}/repermission`);
    expectStatus(r, 200);
    expect(r.body).toMatchObject({ yes: 1, no: 1, consenting: [expect.objectContaining({ email: 'yes-rp@example.com', late: false })], refusing: [expect.objectContaining({ email: 'no-rp@example.com', late: false })] });
    const noCsv = await api('GET', `/v1/campaigns/${c.body.id}/repermission?format=csv&answer=no`);
    expect(noCsv.headers['content-disposition']).toContain('repermission-no-');
    expect(noCsv.text).toContain('no-rp@example.com');
    expect(noCsv.text).not.toContain('yes-rp@example.com');
    const yesCsv = await api('GET', `/v1/campaigns/${c.body.id}/repermission?format=csv`);
    expect(yesCsv.text).toContain('yes-rp@example.com');
    expect(yesCsv.text).not.toContain('no-rp@example.com');
    // The NO answer is an unsubscribe of the audience.
    expect((await api('GET', `/v1/audiences/${audienceId}/unsubscribes`)).body.items[0]).toMatchObject({ email: 'no-rp@example.com', action: 'repermission_no' });

    const messageId = (await api('GET', `/v1/campaigns/${c.body.id}`)).body.message_id;
    const csv = await api('GET', `/v1/reports/series?message_id=${messageId}&bucket=hour&format=csv`);
    expectStatus(csv, 200);
    expect(csv.headers['content-type']).toMatch(/text\/csv/);
    const lines = csv.text.trim().split(/\r?\n/);
    expect(lines[0]).toBe('start,sent,delivered,opened,opened_unique,clicked,clicked_unique,bounced,complained,unsubscribed,blocked,deferred,failed,delivered_rate,open_rate,click_rate,bounce_rate,complaint_rate,unsubscribe_rate');
    const json = await api('GET', `/v1/reports/series?message_id=${messageId}&bucket=hour`);
    expect(lines).toHaveLength(json.body.buckets.length + 1);
    const sent = lines.slice(1).reduce((n, l) => n + Number(l.split(',')[1]), 0);
    expect(sent).toBe(json.body.totals.sent);
    expect(sent).toBe(2);
    expectStatus(await api('GET', `/v1/reports/series?message_id=${messageId}&format=csv`, undefined, b.apiKey), 404);
  });
});
