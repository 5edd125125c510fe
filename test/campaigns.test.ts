import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as orgs from '../src/organisations/service.ts';
import { Worker } from '../src/sending/worker.ts';
import { CampaignScheduler } from '../src/campaigns/scheduler.ts';
import { expectStatus, startTestApp, until, type TestApp, type TestOrg } from './support/harness.ts';
import { startSmtpSink, type SmtpSink } from './support/smtp-sink.ts';

/*
 * Marketing campaigns end to end: a saved view and a selection, the dry-run counts per rule against
 * seeded data, the real send through the scheduler, the worker and an SMTP server, pause and resume
 * while it sends, and a recurring run that only writes to the contacts who newly match.
 */

let t: TestApp;
let org: TestOrg;
let other: TestOrg;
let sink: SmtpSink;
let worker: Worker;
let scheduler: CampaignScheduler;
let audienceId: string;
let eventId: string;
let mkt: string;
let tx: string;
let viewId: string;
const ids: Record<string, string> = {};

const api = (method: string, url: string, body?: unknown, token = org.apiKey) => t.request(method, url, { token, body });

const campaign = async (id: string) => {
  const r = await api('GET', `/v1/campaigns/${id}`);
  expectStatus(r, 200);
  return r.body;
};

async function person(email: string, opts: { company?: string; consent?: boolean; event?: boolean } = {}) {
  const r = await api('POST', `/v1/audiences/${audienceId}/contacts`, { email, first_name: email.split('@')[0], company: opts.company ?? 'Acme' });
  expectStatus(r, 201);
  if (opts.consent !== false) {
    expectStatus(await api('POST', `/v1/audiences/${audienceId}/contacts/${r.body.id}/consents`, { action: 'given', method: 'import', wording: 'Newsletter: yes please', wording_version: '2026-01' }), 201);
  }
  if (opts.event) expectStatus(await api('POST', `/v1/events/${eventId}/participants`, { email }), 201);
  ids[email] = r.body.id;
  return r.body.id as string;
}

// The seeded audience of the view (company Acme): 12 with consent, of which 2 excluded, 1 hard-bounced
// and 1 unsubscribed; 3 without consent. Plus 2 people of another company, outside the view.
const EXPECTED = { allowed: 8, blocked: { hard_bounced: 1, excluded: 2, unsubscribed: 1, no_marketing_consent: 3 } };

beforeAll(async () => {
  t = await startTestApp();
  org = await t.createOrg('Campaign Org');
  other = await t.createOrg('Other');
  sink = await startSmtpSink();
  audienceId = (await api('POST', '/v1/audiences', { name: 'Members' })).body.id;
  const day = 86_400_000;
  eventId = (await api('POST', `/v1/audiences/${audienceId}/events`, { name: 'Forum', starts_at: new Date(Date.now() + 10 * day).toISOString(), ends_at: new Date(Date.now() + 11 * day).toISOString(), time_zone: 'Europe/Paris' })).body.id;
  for (let i = 0; i < 12; i++) await person(`fan${i}@example.com`, { event: i < 4 });
  for (let i = 0; i < 3; i++) await person(`cold${i}@example.com`, { consent: false });
  for (let i = 0; i < 2; i++) await person(`outside${i}@example.net`, { company: 'Globex' });
  expectStatus(await api('POST', '/v1/exclusions', { items: [{ email: 'fan0@example.com' }, { email: 'fan1@example.com' }] }), 201);
  await t.envoi.ctx.db.insertInto('suppressions').values({ org_id: org.orgId, email_lower: 'fan2@example.com', reason: 'hard_bounce', created_at: new Date() }).execute();
  expectStatus(await api('POST', `/v1/audiences/${audienceId}/contacts/${ids['fan3@example.com']}/consents`, { action: 'withdrawn', method: 'back_office' }), 201);

  const mk = async (body: Record<string, unknown>) => {
    const r = await api('POST', `/v1/audiences/${audienceId}/templates`, { language: 'en', ...body });
    expectStatus(r, 201);
    return r.body.id as string;
  };
  mkt = await mk({ name: 'Newsletter', category: 'marketing', subject: 'News for {{ first_name }}', body: '<p>Hello {{ first_name }} <a href="https://example.org/news">read</a> [UNSUBLINK]</p>' });
  tx = await mk({ name: 'Receipt', category: 'transactional', subject: 'Receipt', body: '<p>Thanks</p>' });
  const view = await api('POST', `/v1/audiences/${audienceId}/views`, { name: 'Acme people', filter: { field: 'company', op: 'equals', value: 'Acme' } });
  expectStatus(view, 201);
  viewId = view.body.id;
  worker = new Worker(t.envoi.ctx, { smtpUrl: sink.url, pollMs: { transactional: 50, bulk: 50 }, leaseMs: 60_000, concurrency: 2, batchSize: 2 }).start();
  scheduler = new CampaignScheduler(t.envoi.ctx, { pollMs: 50 }).start();
});

afterAll(async () => {
  await scheduler?.stop();
  await worker?.stop();
  await sink?.close();
  await t?.close();
});

describe('campaigns', () => {
  it('dry-runs a view with the exact counts per rule, sending nothing', async () => {
    const r = await api('POST', `/v1/audiences/${audienceId}/campaigns/dry-run`, { template_id: mkt, target: { view_id: viewId } });
    expectStatus(r, 200);
    expect(r.body).toMatchObject({ total: 15, ...EXPECTED });
    expect(r.body.explanations.excluded.fr).toBeTruthy();
    // Each skipped recipient by name, with the rule and the reason that skipped them.
    const named = (rule: string) => (r.body.skipped[rule] as Array<{ email: string; contact_id: string; detail: string }>).map((x) => x.email).sort();
    expect(Object.keys(r.body.skipped).sort()).toEqual(Object.keys(EXPECTED.blocked).sort());
    expect(named('excluded')).toEqual(['fan0@example.com', 'fan1@example.com']);
    expect(named('hard_bounced')).toEqual(['fan2@example.com']);
    expect(named('unsubscribed')).toEqual(['fan3@example.com']);
    expect(named('no_marketing_consent')).toEqual(['cold0@example.com', 'cold1@example.com', 'cold2@example.com']);
    expect(r.body.skipped.excluded[0]).toMatchObject({ contact_id: expect.stringMatching(/^[0-9a-f-]{36}$/), detail: expect.any(String) });
    expect(sink.received).toHaveLength(0);
  });

  it('sends to a whole view: every allowed contact once, the others stored with their rule, then completes', async () => {
    const c = await api('POST', `/v1/audiences/${audienceId}/campaigns`, { name: 'March news', template_id: mkt, target: { view_id: viewId }, start: true });
    expectStatus(c, 201);
    await until(async () => (await campaign(c.body.id)).status === 'completed', 'the campaign to complete');
    const done = await campaign(c.body.id);
    expect(done.progress).toMatchObject({ recipients: 15, sent: 8, blocked: 7, pending: 0, done: 1, blocked_by_rule: EXPECTED.blocked });
    const to = sink.received.flatMap((m) => m.rcptTo).sort();
    expect(to).toEqual([4, 5, 6, 7, 8, 9, 10, 11].map((i) => `fan${i}@example.com`).sort());
    const parsed = await sink.byRecipient('fan4@example.com')[0]!.parse();
    expect(parsed.subject).toBe('News for fan4');
    expect(sink.byRecipient('fan4@example.com')[0]!.raw.toString()).toMatch(/^List-Unsubscribe-Post: List-Unsubscribe=One-Click\r$/m);
    // The message log explains each skipped person.
    const m = await api('GET', `/v1/messages/${done.message_id}`);
    expect(m.body.deliveries.find((d: any) => d.email === 'fan0@example.com')).toMatchObject({ status: 'blocked', rule: 'excluded' });
  });

  it('sends to a selection, refuses transactional templates, bad targets, viewers and other organisations', async () => {
    const before = sink.received.length;
    const sel = await api('POST', `/v1/audiences/${audienceId}/campaigns`, { name: 'Two', template_id: mkt, target: { contact_ids: [ids['fan5@example.com'], ids['cold0@example.com']] }, start: true });
    expectStatus(sel, 201);
    await until(async () => (await campaign(sel.body.id)).status === 'completed', 'the selection campaign');
    expect((await campaign(sel.body.id)).progress).toMatchObject({ sent: 1, blocked_by_rule: { no_marketing_consent: 1 } });
    expect(sink.received.length).toBe(before + 1);

    expectStatus(await api('POST', `/v1/audiences/${audienceId}/campaigns`, { name: 'x', template_id: tx, target: { view_id: viewId } }), 400);
    const bad = await api('POST', `/v1/audiences/${audienceId}/campaigns`, { name: 'x', template_id: mkt, target: { filter: { field: 'nope', op: 'equals', value: 1 } } });
    expectStatus(bad, 400);
    expectStatus(await api('POST', `/v1/audiences/${audienceId}/campaigns`, { name: 'x', template_id: mkt, target: { view_id: viewId, contact_ids: [] } }), 400);
    // A send time already past would send at once: refused, draft or not, with a minute of slack for clocks.
    for (const start of [true, false]) {
      const past = await api('POST', `/v1/audiences/${audienceId}/campaigns`, { name: 'x', template_id: mkt, target: { view_id: viewId }, send_at: '2020-01-01T00:00:00Z', start });
      expectStatus(past, 400);
      expect(past.body.error).toMatchObject({ code: 'send_time_passed', message: expect.stringContaining('2020-01-01T00:00:00.000Z has passed') });
    }
    const justNow = await api('POST', `/v1/audiences/${audienceId}/campaigns`, { name: 'just now', template_id: mkt, target: { view_id: viewId }, send_at: new Date(t.clock.now.getTime() - 30_000).toISOString() });
    expectStatus(justNow, 201);
    expect(justNow.body.status).toBe('draft');
    // A cancelled draft cannot be started, and the refusal says it is cancelled.
    expect((await api('POST', `/v1/campaigns/${justNow.body.id}/cancel`)).body.status).toBe('cancelled');
    const restart = await api('POST', `/v1/campaigns/${justNow.body.id}/start`);
    expectStatus(restart, 409);
    expect(restart.body.error).toMatchObject({ code: 'invalid_transition', message: 'the campaign is cancelled and cannot be started; create a new one', details: { status: 'cancelled' } });
    const viewer = await orgs.createApiKey(t.envoi.ctx, org.orgId, { name: 'viewer', role: 'viewer' });
    expectStatus(await api('POST', `/v1/audiences/${audienceId}/campaigns`, { name: 'x', template_id: mkt, target: { view_id: viewId } }, viewer.key), 403);
    expectStatus(await api('GET', `/v1/campaigns/${sel.body.id}`, undefined, other.apiKey), 404);
    expectStatus(await api('POST', `/v1/campaigns/${sel.body.id}/pause`, undefined, other.apiKey), 404);
    expectStatus(await api('POST', `/v1/audiences/${audienceId}/campaigns/dry-run`, { template_id: mkt, target: { view_id: viewId } }, other.apiKey), 404);
  });

  it('waits for its send time, can be paused before it and resumed', async () => {
    const before = sink.received.length;
    const at = new Date(t.clock.now.getTime() + 3_600_000);
    const c = await api('POST', `/v1/audiences/${audienceId}/campaigns`, { name: 'Later', template_id: mkt, target: { contact_ids: [ids['fan6@example.com']] }, send_at: at.toISOString(), start: true });
    expectStatus(c, 201);
    expect(c.body).toMatchObject({ status: 'scheduled', next_run_at: at.toISOString() });
    expect((await api('POST', `/v1/campaigns/${c.body.id}/pause`)).body.status).toBe('paused');
    expectStatus(await api('POST', `/v1/campaigns/${c.body.id}/pause`), 409);
    t.clock.now = new Date(at.getTime() + 1000);
    scheduler.wake();
    await new Promise((r) => setTimeout(r, 300));
    expect(sink.received.length).toBe(before);
    expect((await api('POST', `/v1/campaigns/${c.body.id}/resume`)).body.status).toBe('scheduled');
    await until(async () => (await campaign(c.body.id)).status === 'completed', 'the resumed campaign');
    expect(sink.received.length).toBe(before + 1);
  });

  it('pauses while sending: the rest waits, and goes on resume, nobody twice', async () => {
    const before = sink.received.length;
    sink.behaviour.delayMs = 150;
    try {
      const c = await api('POST', `/v1/audiences/${audienceId}/campaigns`, { name: 'Slow', template_id: mkt, target: { view_id: viewId }, start: true });
      await until(() => sink.received.length > before, 'a first message');
      const paused = await api('POST', `/v1/campaigns/${c.body.id}/pause`);
      expectStatus(paused, 200);
      await new Promise((r) => setTimeout(r, 600));
      const during = sink.received.length;
      const held = await campaign(c.body.id);
      expect(held.status).toBe('paused');
      expect(held.progress.paused).toBeGreaterThan(0);
      await new Promise((r) => setTimeout(r, 400));
      expect(sink.received.length).toBe(during);
      expectStatus(await api('POST', `/v1/campaigns/${c.body.id}/resume`), 200);
      await until(async () => (await campaign(c.body.id)).status === 'completed', 'the campaign after resume');
      const mine = sink.received.slice(before).flatMap((m) => m.rcptTo);
      expect(mine).toHaveLength(8);
      expect(new Set(mine).size).toBe(8);
    } finally {
      sink.behaviour.delayMs = 0;
    }
  });

  it('recurring: each run writes only to the contacts who newly match the view', async () => {
    const before = sink.received.length;
    const c = await api('POST', `/v1/audiences/${audienceId}/campaigns`, { name: 'Welcome series', template_id: mkt, target: { view_id: viewId }, recurring: true, start: true });
    expectStatus(c, 201);
    expect(c.body.every_minutes).toBe(30);
    await until(async () => (await campaign(c.body.id)).runs === 1 && (await campaign(c.body.id)).status === 'scheduled', 'the first run');
    await until(() => sink.received.length === before + 8, 'the first run to be delivered');
    await person('newcomer@example.com');
    // Blocked by the first run for want of consent, cold0 consents since: the next run reaches them;
    // the others it blocked are not blocked again.
    expectStatus(await api('POST', `/v1/audiences/${audienceId}/contacts/${ids['cold0@example.com']}/consents`, { action: 'given', method: 'api', wording: 'Newsletter: yes please', wording_version: '2026-01' }), 201);
    t.clock.now = new Date(t.clock.now.getTime() + 31 * 60_000);
    scheduler.wake();
    await until(async () => (await campaign(c.body.id)).runs === 2 && (await campaign(c.body.id)).status === 'scheduled', 'the second run');
    await until(() => sink.received.length === before + 10, 'the second run to be delivered');
    expect(sink.received.slice(before + 8).flatMap((m) => m.rcptTo).sort()).toEqual(['cold0@example.com', 'newcomer@example.com']);
    // Campaign outcomes are written in groups, shortly after the server took the messages.
    await until(async () => (await campaign(c.body.id)).all_runs.sent === 10, 'the second run recorded as sent');
    const after = await campaign(c.body.id);
    expect(after.all_runs.sent).toBe(10);
    expect(after.all_runs.blocked).toBe(7);
    expect(new Date(after.next_run_at).getTime()).toBeGreaterThan(t.clock.now.getTime());
  });
});

describe('event lifecycle mail', () => {
  let part: string;
  beforeAll(async () => {
    const r = await api('POST', `/v1/audiences/${audienceId}/templates`, { name: 'Practical', language: 'en', category: 'participation', event_id: eventId, subject: 'See you at {{ event.name }}', body: '<p>Doors open at 9.</p>' });
    expectStatus(r, 201);
    part = r.body.id;
  });

  it('sends practical information now to the current participants only, whatever their marketing consent or exclusion', async () => {
    const before = sink.received.length;
    const r = await api('POST', `/v1/events/${eventId}/mail`, { kind: 'practical_info', template_id: part });
    expectStatus(r, 201);
    expect(r.body).toMatchObject({ kind: 'event', event_mail: 'practical_info', event_id: eventId, status: 'scheduled' });
    await until(async () => (await campaign(r.body.id)).status === 'completed', 'the event mail');
    // fan0-fan3 registered: fan0 and fan1 are excluded and fan3 unsubscribed from marketing, which event mail ignores; fan2's address bounced.
    expect(sink.received.slice(before).flatMap((m) => m.rcptTo).sort()).toEqual(['fan0@example.com', 'fan1@example.com', 'fan3@example.com']);
    expect((await campaign(r.body.id)).progress.blocked_by_rule).toEqual({ hard_bounced: 1 });
  });

  it('schedules the reminder the day before the start at 09:00 in the event time zone, to whoever is registered then', async () => {
    const ev = (await api('GET', `/v1/events/${eventId}`)).body;
    const r = await api('POST', `/v1/events/${eventId}/mail`, { kind: 'reminder', template_id: part });
    expectStatus(r, 201);
    const at = new Date(r.body.send_at);
    const paris = new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Paris', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
    const start = new Date(ev.starts_at);
    expect(paris.format(at)).toBe(paris.format(new Date(start.getTime() - 86_400_000)).replace(/\d{2}:\d{2}$/, '09:00'));
    expect((await api('GET', `/v1/events/${eventId}/mail`)).body.campaigns.map((c: any) => c.event_mail)).toEqual(expect.arrayContaining(['practical_info', 'reminder']));

    expectStatus(await api('POST', `/v1/events/${eventId}/participants`, { email: 'latecomer@example.com' }), 201);
    const before = sink.received.length;
    t.clock.now = new Date(at.getTime() + 1000);
    scheduler.wake();
    await until(async () => (await campaign(r.body.id)).status === 'completed', 'the reminder');
    expect(sink.received.slice(before).flatMap((m) => m.rcptTo).sort()).toEqual(['fan0@example.com', 'fan1@example.com', 'fan3@example.com', 'latecomer@example.com']);
  });

  it('moves a reminder and a thank-you waiting at their default time when the event is postponed; a chosen time stays', async () => {
    const day = 86_400_000;
    const start = new Date(t.clock.now.getTime() + 40 * day);
    const ev = await api('POST', `/v1/audiences/${audienceId}/events`, { name: 'Moving', starts_at: start.toISOString(), ends_at: new Date(start.getTime() + day).toISOString(), time_zone: 'Europe/Paris' });
    expectStatus(ev, 201);
    const tpl = await api('POST', `/v1/audiences/${audienceId}/templates`, { name: 'Moving info', language: 'en', category: 'participation', event_id: ev.body.id, subject: 'Tomorrow', body: '<p>See you</p>' });
    const mail = (body: object) => api('POST', `/v1/events/${ev.body.id}/mail`, { template_id: tpl.body.id, ...body });
    const reminder = (await mail({ kind: 'reminder' })).body;
    const thanks = (await mail({ kind: 'thank_you' })).body;
    const chosenAt = new Date(start.getTime() - 3 * day).toISOString();
    const chosen = (await mail({ kind: 'reminder', send_at: chosenAt })).body;

    const later = new Date(start.getTime() + 30 * day);
    expectStatus(await api('PATCH', `/v1/events/${ev.body.id}`, { starts_at: later.toISOString(), ends_at: new Date(later.getTime() + day).toISOString() }), 200);
    const r = await campaign(reminder.id);
    const k = await campaign(thanks.id);
    // Compared as Paris wall-clock times: 30 days may cross a daylight-saving change.
    const paris = new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Paris', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
    const parisDay = (d: Date) => paris.format(d).slice(0, 10);
    expect(paris.format(new Date(r.send_at))).toBe(`${parisDay(new Date(later.getTime() - day))}, 09:00`);
    expect(r.next_run_at).toBe(r.send_at);
    expect(paris.format(new Date(k.send_at))).toBe(`${parisDay(new Date(later.getTime() + 2 * day))}, 10:00`);
    expect((await campaign(chosen.id)).send_at).toBe(chosenAt);
    // A rename alone moves nothing.
    expectStatus(await api('PATCH', `/v1/events/${ev.body.id}`, { name: 'Moved' }), 200);
    expect((await campaign(reminder.id)).send_at).toBe(r.send_at);
  });

  it('refuses event mail after the end + 7 days, with the reason, and marketing or invitations as event mail', async () => {
    const ev = (await api('GET', `/v1/events/${eventId}`)).body;
    const late = new Date(new Date(ev.ends_at).getTime() + 9 * 86_400_000).toISOString();
    const r = await api('POST', `/v1/events/${eventId}/mail`, { kind: 'thank_you', template_id: part, send_at: late });
    expectStatus(r, 409);
    expect(r.body.error).toMatchObject({ code: 'event_window_closed', details: { closes_at: expect.any(String), explanation: { fr: expect.any(String), en: expect.any(String) } } });
    // The same through the generic campaign endpoint.
    expectStatus(await api('POST', `/v1/audiences/${audienceId}/campaigns`, { name: 'late', template_id: part, target: { view_id: viewId }, send_at: late, start: true }), 409);
    const m = await api('POST', `/v1/events/${eventId}/mail`, { kind: 'new_content', template_id: mkt });
    expectStatus(m, 400);
    expect(m.body.error.code).toBe('not_event_mail');
    expectStatus(await api('POST', `/v1/events/${eventId}/mail`, { kind: 'reminder', template_id: part }, other.apiKey), 404);
  });
});

describe('the way out of marketing mail', () => {
  it('a NO link alone is enough for a re-permission campaign, not for any other', async () => {
    const only = await api('POST', `/v1/audiences/${audienceId}/templates`, { name: 'Still there?', language: 'en', category: 'marketing', subject: 'Still there?', body: '<p><a href="{{ yes_url }}">Yes</a> <a href="{{ no_url }}">No</a></p>' });
    expectStatus(only, 201);
    const plain = await api('POST', `/v1/audiences/${audienceId}/campaigns`, { name: 'Not re-permission', template_id: only.body.id, target: { view_id: viewId } });
    expectStatus(plain, 400);
    expect(plain.body.error.code).toBe('unsubscribe_link_missing');
    const deadline = new Date(t.clock.now.getTime() + 7 * 86_400_000).toISOString();
    expectStatus(await api('POST', `/v1/audiences/${audienceId}/campaigns`, { name: 'Re-permission', template_id: only.body.id, target: { view_id: viewId }, repermission: { deadline } }), 201);
  });
});
