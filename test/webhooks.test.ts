import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as orgs from '../src/organisations/service.ts';
import { Worker } from '../src/sending/worker.ts';
import { WebhookDispatcher } from '../src/webhooks/dispatcher.ts';
import { eraseSubjectEvents } from '../src/webhooks/service.ts';
import * as webhookStore from '../src/webhooks/store.ts';
import { expectStatus, startTestApp, type TestApp, type TestOrg } from './support/harness.ts';
import { startSmtpSink, type SmtpSink } from './support/smtp-sink.ts';

/*
 * Outgoing webhooks end to end: a real HTTP receiver on 127.0.0.1 gets the events the database
 * triggers write when contacts, consents and mail change through the API, signed with the secret
 * the creation answer showed; a receiver that fails is retried with backoff (the test clock skips
 * the waits) until delivered or, after 24 hours, failed; replays and pings; and organisations see
 * nothing of each other's events, nor pay for them when they have no webhook.
 */

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  json: any;
}

interface Receiver {
  url(path: string): string;
  received: Received[];
  on(path: string): Received[];
  /** statuses to answer on `path`, one per request, before going back to 200; 0 never answers */
  plan: Map<string, number[]>;
  close(): Promise<void>;
}

async function startReceiver(): Promise<Receiver> {
  const received: Received[] = [];
  const plan = new Map<string, number[]>();
  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const path = req.url ?? '/';
      let json: unknown = null;
      try {
        json = JSON.parse(body);
      } catch {
        /* recorded as is */
      }
      received.push({ path, headers: req.headers, body, json });
      const status = plan.get(path)?.shift() ?? 200;
      // 0: never answer (the connection stays open until the client gives up)
      if (status === 0) return;
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(status < 300 ? 'thanks' : `receiver failure ${status}`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: (path) => `http://127.0.0.1:${port}${path}`,
    received,
    on: (path) => received.filter((r) => r.path === path),
    plan,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

let t: TestApp;
let org: TestOrg;
let other: TestOrg;
let bare: TestOrg;
let receiver: Receiver;
let dispatcher: WebhookDispatcher;
let audienceId: string;
let otherAudienceId: string;
let bareAudienceId: string;
/** the main endpoint of `org`: contact and consent events, on /crm */
let crm: { id: string; secret: string };

const api = (method: string, url: string, body?: unknown, token = org.apiKey) => t.request(method, url, { token, body });
const db = () => t.envoi.ctx.db;

async function waitFor<T>(check: () => Promise<T | undefined | null | false> | T | undefined | null | false, what: string, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`${what}: not reached within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The receiver's side, written from the documentation rather than from src/webhooks/rules.ts. */
function genuine(r: Received, secret: string): boolean {
  const ts = String(r.headers['x-envoi-timestamp']);
  const expected = createHmac('sha256', secret).update(`${ts}.${r.body}`).digest('hex');
  const given = String(r.headers['x-envoi-signature'] ?? '');
  if (!given.startsWith('v1=')) return false;
  const a = Buffer.from(given.slice(3));
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b) && Math.abs(t.clock.now.getTime() / 1000 - Number(ts)) <= 300;
}

async function createWebhook(body: Record<string, unknown>, token = org.apiKey) {
  const r = await api('POST', '/v1/webhooks', body, token);
  expectStatus(r, 201);
  return r.body as { id: string; secret: string; url: string; events: string[] };
}

const outboxCount = async (orgId: string) => {
  const [e, d] = await Promise.all([
    db().selectFrom('webhook_events').select((eb) => eb.fn.countAll<number>().as('n')).where('org_id', '=', orgId).executeTakeFirstOrThrow(),
    db().selectFrom('webhook_deliveries').select((eb) => eb.fn.countAll<number>().as('n')).where('org_id', '=', orgId).executeTakeFirstOrThrow(),
  ]);
  return { events: Number(e.n), deliveries: Number(d.n) };
};

async function deliveries(webhookId: string, query = '') {
  const r = await api('GET', `/v1/webhooks/${webhookId}/deliveries${query}`);
  expectStatus(r, 200);
  return r.body.deliveries as any[];
}

/** Moves the test clock and has the dispatcher look at once. */
function advance(ms: number) {
  t.clock.now = new Date(t.clock.now.getTime() + ms);
  dispatcher.wake();
}

beforeAll(async () => {
  t = await startTestApp();
  org = await t.createOrg('Hooked');
  other = await t.createOrg('Other');
  bare = await t.createOrg('No webhooks');
  receiver = await startReceiver();
  audienceId = (await api('POST', '/v1/audiences', { name: 'Members' })).body.id;
  otherAudienceId = (await api('POST', '/v1/audiences', { name: 'Theirs' }, other.apiKey)).body.id;
  bareAudienceId = (await api('POST', '/v1/audiences', { name: 'Plain' }, bare.apiKey)).body.id;
  expectStatus(await api('POST', `/v1/audiences/${audienceId}/fields`, { key: 'tier', type: 'text' }), 201);
  dispatcher = new WebhookDispatcher(t.envoi.ctx, { pollMs: 20, random: () => 0.5 }).start();
});

afterAll(async () => {
  await dispatcher?.stop();
  await receiver?.close();
  await t?.close();
});

describe('webhooks', () => {
  it('writes no outbox row while nobody has a webhook, and none for an organisation without one', async () => {
    const c = await api('POST', `/v1/audiences/${bareAudienceId}/contacts`, { email: 'early@example.com' }, bare.apiKey);
    expectStatus(c, 201);
    expect(await outboxCount(bare.orgId)).toEqual({ events: 0, deliveries: 0 });

    crm = await createWebhook({ url: receiver.url('/crm'), events: ['contact.created', 'contact.updated', 'contact.deleted', 'consent.changed'], description: 'CRM sync' });
    await createWebhook({ url: receiver.url('/other'), events: ['*'] }, other.apiKey);

    // Now that others have webhooks: the organisation without one still pays nothing, in bulk neither.
    expectStatus(await api('PATCH', `/v1/audiences/${bareAudienceId}/contacts/${c.body.id}`, { first_name: 'Early' }, bare.apiKey), 200);
    expectStatus(await api('POST', `/v1/audiences/${bareAudienceId}/contacts/${c.body.id}/consents`, { action: 'given', method: 'api', wording: 'Newsletter, yes' }, bare.apiKey), 201);
    await sql`INSERT INTO contacts (org_id, audience_id, email, email_lower)
              SELECT ${bare.orgId}, ${bareAudienceId}, 'bulk' || g || '@example.com', 'bulk' || g || '@example.com' FROM generate_series(1, 3000) g`.execute(db());
    await sql`UPDATE contacts SET job_title = 'Guest' WHERE audience_id = ${bareAudienceId}`.execute(db());
    expectStatus(await api('DELETE', `/v1/audiences/${bareAudienceId}/contacts/${c.body.id}`, undefined, bare.apiKey), 200);
    expect(await outboxCount(bare.orgId)).toEqual({ events: 0, deliveries: 0 });
  });

  it('validates webhooks, shows the secret once, and lets viewers read only', async () => {
    const bad = async (body: unknown, code: string, message: RegExp) => {
      const r = await api('POST', '/v1/webhooks', body);
      expectStatus(r, 400);
      expect(r.body.error.code).toBe(code);
      expect(r.body.error.message).toMatch(message);
    };
    await bad({ url: 'http://crm.example.com/hook' }, 'invalid_url', /https/);
    await bad({ url: 'ftp://crm.example.com/hook' }, 'invalid_url', /https/);
    await bad({ url: 'https://user:secret@crm.example.com/hook' }, 'invalid_url', /password/);
    await bad({ url: 'crm.example.com/hook' }, 'invalid_url', /absolute/);
    await bad({ url: 'https://crm.example.com/hook', events: ['contact.exploded'] }, 'invalid_events', /contact\.exploded/);
    await bad({ url: 'https://crm.example.com/hook', events: [] }, 'invalid_request', /events/);
    await bad({ url: 'https://crm.example.com/hook', extra: 1 }, 'invalid_request', /additional/);

    expect(crm.secret).toMatch(/^whsec_[A-Za-z0-9_-]{40,}$/);
    const one = await api('GET', `/v1/webhooks/${crm.id}`);
    expectStatus(one, 200);
    expect(one.body).toMatchObject({ id: crm.id, url: receiver.url('/crm'), description: 'CRM sync', enabled: true, events: ['contact.created', 'contact.updated', 'contact.deleted', 'consent.changed'] });
    expect(JSON.stringify(one.body)).not.toContain(crm.secret);
    const list = await api('GET', '/v1/webhooks');
    expect(list.body.webhooks.map((w: any) => w.id)).toEqual([crm.id]);
    expect(JSON.stringify(list.body)).not.toContain('whsec_');

    const viewer = await orgs.createApiKey(t.envoi.ctx, org.orgId, { name: 'viewer', role: 'viewer' });
    expectStatus(await api('GET', '/v1/webhooks', undefined, viewer.key), 200);
    expectStatus(await api('GET', `/v1/webhooks/${crm.id}/deliveries`, undefined, viewer.key), 200);
    expectStatus(await api('POST', '/v1/webhooks', { url: 'https://crm.example.com/h' }, viewer.key), 403);
    expectStatus(await api('PATCH', `/v1/webhooks/${crm.id}`, { enabled: false }, viewer.key), 403);
    expectStatus(await api('DELETE', `/v1/webhooks/${crm.id}`, undefined, viewer.key), 403);
    expectStatus(await api('POST', `/v1/webhooks/${crm.id}/test`, undefined, viewer.key), 403);
    // An endpoint carries every audience's events: a key limited to one audience may not see it.
    const limited = await orgs.createApiKey(t.envoi.ctx, org.orgId, { name: 'one audience', role: 'owner', audienceIds: [audienceId] });
    expectStatus(await api('GET', '/v1/webhooks', undefined, limited.key), 403);
    expectStatus(await api('POST', '/v1/webhooks', { url: 'https://crm.example.com/h' }, limited.key), 403);
    // A session of the owner works as well as a key.
    expectStatus(await api('GET', '/v1/webhooks', undefined, org.ownerToken), 200);
    expectStatus(await api('PATCH', `/v1/webhooks/${crm.id}`, {}), 400);
    expectStatus(await api('PATCH', `/v1/webhooks/${crm.id}`, { url: 'http://example.com/' }), 400);
  });

  it('delivers contact and consent events, signed, with the payloads documented', async () => {
    const created = await api('POST', `/v1/audiences/${audienceId}/contacts`, { email: 'Ada@Example.com', first_name: 'Ada' });
    expectStatus(created, 201);
    const contactId = created.body.id as string;
    expectStatus(await api('PATCH', `/v1/audiences/${audienceId}/contacts/${contactId}`, { last_name: 'Lovelace', fields: { tier: 'gold' } }), 200);
    // The same values again change nothing: no event.
    expectStatus(await api('PATCH', `/v1/audiences/${audienceId}/contacts/${contactId}`, { last_name: 'Lovelace' }), 200);
    expectStatus(await api('POST', `/v1/audiences/${audienceId}/contacts/${contactId}/consents`, { action: 'given', method: 'api', wording: 'Send me the newsletter' }), 201);
    expectStatus(await api('DELETE', `/v1/audiences/${audienceId}/contacts/${contactId}`), 200);

    const got = await waitFor(() => {
      const r = receiver.on('/crm');
      return r.some((x) => x.json?.type === 'contact.deleted') && r.length >= 5 && r;
    }, 'the contact events at the receiver');
    await new Promise((r) => setTimeout(r, 200));
    const mine = receiver.on('/crm');
    for (const r of mine) {
      expect(genuine(r, crm.secret), `signature of ${r.json?.type}`).toBe(true);
      expect(genuine(r, 'whsec_not-the-secret')).toBe(false);
      expect(r.headers['content-type']).toBe('application/json');
      expect(r.headers['x-envoi-event']).toBe(r.json.type);
      expect(r.json.organisation_id).toBe(org.orgId);
    }
    const byType = (type: string) => mine.filter((r) => r.json.type === type).map((r) => r.json);
    expect(byType('contact.created')).toEqual([
      { id: expect.any(String), type: 'contact.created', occurred_at: expect.any(String), organisation_id: org.orgId, data: { contact_id: contactId, audience_id: audienceId, email: 'Ada@example.com' } },
    ]);
    const updates = byType('contact.updated').map((e) => e.data);
    expect(updates).toContainEqual({ contact_id: contactId, audience_id: audienceId, email: 'Ada@example.com', changed: ['fields.tier', 'last_name'] });
    // recording the consent moves the contact's marketing date: that is a change of the contact too
    expect(updates).toContainEqual(expect.objectContaining({ contact_id: contactId, changed: ['marketing_authorized_at'] }));
    expect(updates).toHaveLength(2);
    expect(byType('consent.changed')).toEqual([
      expect.objectContaining({
        data: { consent_record_id: expect.any(String), contact_id: contactId, audience_id: audienceId, email: 'ada@example.com', purpose: 'marketing', action: 'given', method: 'api', at: expect.any(String) },
      }),
    ]);
    expect(byType('contact.deleted')).toEqual([expect.objectContaining({ data: { contact_id: contactId, audience_id: audienceId, email: 'Ada@example.com' } })]);
    expect(got.length).toBe(5);
    for (const secretish of ['password', 'token', 'secret']) expect(mine.map((r) => r.body).join('\n')).not.toContain(secretish);

    // The log tells the same story: each delivery delivered once, its id the X-Envoi-Delivery header.
    const log = await deliveries(crm.id);
    expect(log).toHaveLength(5);
    for (const d of log) expect(d).toMatchObject({ status: 'delivered', attempts: 1, last_status_code: 200, response_snippet: 'thanks', next_attempt_at: null, in_flight: false });
    expect(new Set(log.map((d) => d.id))).toEqual(new Set(mine.map((r) => r.headers['x-envoi-delivery'])));
    expect(log.find((d) => d.event.type === 'contact.created').event.data.contact_id).toBe(contactId);
    expect(await deliveries(crm.id, '?status=failed')).toEqual([]);
    const page = await api('GET', `/v1/webhooks/${crm.id}/deliveries?limit=2&offset=0`);
    expect(page.body).toMatchObject({ has_more: true, limit: 2 });
    expect(page.body.deliveries).toHaveLength(2);

    // Erasing the person clears their address from the log of what was sent about them.
    expect(await eraseSubjectEvents(db(), org.orgId, 'ada@example.com', [contactId])).toBe(5);
    const erased = await deliveries(crm.id);
    expect(erased.map((d) => d.event.data.email)).toEqual([null, null, null, null, null]);
    expect(erased.every((d) => d.response_snippet === null && d.event.data.contact_id === contactId)).toBe(true);
    expect(await eraseSubjectEvents(db(), other.orgId, 'ada@example.com', [contactId])).toBe(0);
  });

  it('sends message events from a real send, only the types an endpoint follows', async () => {
    const sink: SmtpSink = await startSmtpSink();
    const worker = new Worker(t.envoi.ctx, { smtpUrl: sink.url, pollMs: { transactional: 30, bulk: 30 } }).start();
    try {
      const mail = await createWebhook({ url: receiver.url('/mail'), events: ['message.sent', 'message.opened'] });
      const tpl = await api('POST', `/v1/audiences/${audienceId}/templates`, { name: 'Receipt', category: 'transactional', language: 'en', subject: 'Receipt', body: '<p>Thanks</p>' });
      expectStatus(tpl, 201);
      const msg = await api('POST', '/v1/messages', { template_id: tpl.body.id, to: { email: 'buyer@example.com' } });
      expectStatus(msg, 202);
      const sent = await waitFor(() => receiver.on('/mail').find((r) => r.json?.type === 'message.sent'), 'message.sent at the receiver');
      expect(genuine(sent, mail.secret)).toBe(true);
      expect(sent.json.data).toMatchObject({ message_id: msg.body.id, delivery_id: msg.body.delivery_id, audience_id: audienceId, email: 'buyer@example.com', detail: { smtp_response: expect.any(String) } });
      // 'queued' is envoi's own business, and this endpoint does not follow contacts: only the send came.
      expect(receiver.on('/mail').map((r) => r.json.type)).toEqual(['message.sent']);

      // A bulk insert of events is one trigger run; only the followed types get outbox rows.
      const before = await outboxCount(org.orgId);
      await sql`INSERT INTO message_events (org_id, message_id, delivery_id, type, at, detail)
                SELECT ${org.orgId}, ${msg.body.id}, ${msg.body.delivery_id}, CASE WHEN g % 2 = 0 THEN 'opened' ELSE 'deferred' END, now(), '{}'::jsonb
                FROM generate_series(1, 40) g`.execute(db());
      const after = await outboxCount(org.orgId);
      expect(after.events - before.events).toBe(20);
      expect(after.deliveries - before.deliveries).toBe(20);
      await waitFor(() => receiver.on('/mail').length === 21, 'the opens at the receiver');
    } finally {
      await worker.stop();
      await sink.close();
    }
  });

  it('retries a failing receiver with backoff until it answers, and shows every attempt', async () => {
    const flaky = await createWebhook({ url: receiver.url('/flaky'), events: ['contact.created'] });
    receiver.plan.set('/flaky', [500, 500]);
    expectStatus(await api('POST', `/v1/audiences/${audienceId}/contacts`, { email: 'retry@example.com' }), 201);

    await waitFor(() => receiver.on('/flaky').length === 1, 'the first attempt');
    const first = await waitFor(async () => (await deliveries(flaky.id)).find((d) => d.attempts === 1 && !d.in_flight), 'the first attempt recorded');
    expect(first).toMatchObject({ status: 'pending', last_status_code: 500, last_error: 'HTTP 500', response_snippet: 'receiver failure 500' });
    // random 0.5: exactly the 30 s of the first step
    expect(new Date(first.next_attempt_at).getTime() - new Date(first.last_attempt_at).getTime()).toBe(30_000);
    await new Promise((r) => setTimeout(r, 100));
    expect(receiver.on('/flaky')).toHaveLength(1);

    advance(31_000);
    await waitFor(() => receiver.on('/flaky').length === 2, 'the second attempt');
    const second = await waitFor(async () => (await deliveries(flaky.id)).find((d) => d.attempts === 2 && !d.in_flight), 'the second attempt recorded');
    expect(new Date(second.next_attempt_at).getTime() - new Date(second.last_attempt_at).getTime()).toBe(60_000);

    advance(61_000);
    const third = await waitFor(async () => (await deliveries(flaky.id)).find((d) => d.status === 'delivered'), 'delivered on the third attempt');
    expect(third).toMatchObject({ attempts: 3, last_status_code: 200, last_error: null, next_attempt_at: null });
    expect(third.attempt_log.map((a: any) => a.status_code)).toEqual([500, 500, 200]);
    expect(third.attempt_log.map((a: any) => a.error)).toEqual(['HTTP 500', 'HTTP 500', null]);
    const requests = receiver.on('/flaky');
    expect(requests).toHaveLength(3);
    expect(new Set(requests.map((r) => r.headers['x-envoi-delivery']))).toEqual(new Set([third.id]));
    expect(new Set(requests.map((r) => r.body)).size).toBe(1);
    for (const r of requests) expect(genuine(r, flaky.secret)).toBe(true);

    // Replay: the same delivery once more, now.
    const replay = await api('POST', `/v1/webhooks/${flaky.id}/deliveries/${third.id}/replay`);
    expectStatus(replay, 202);
    expect(replay.body.status).toBe('pending');
    await waitFor(() => receiver.on('/flaky').length === 4, 'the replay at the receiver');
    const replayed = await waitFor(async () => (await deliveries(flaky.id)).find((d) => d.status === 'delivered' && d.attempts === 4), 'the replay recorded');
    expect(replayed.attempt_log).toHaveLength(4);
    expect(receiver.on('/flaky')[3]!.headers['x-envoi-delivery']).toBe(third.id);

    // Another organisation's key knows neither the webhook nor its deliveries.
    expectStatus(await api('POST', `/v1/webhooks/${flaky.id}/deliveries/${third.id}/replay`, undefined, other.apiKey), 404);
    expectStatus(await api('GET', `/v1/webhooks/${flaky.id}/deliveries`, undefined, other.apiKey), 404);
    expectStatus(await api('POST', `/v1/webhooks/${crm.id}/deliveries/${third.id}/replay`), 404);
    expectStatus(await api('DELETE', `/v1/webhooks/${flaky.id}`), 204);
    expectStatus(await api('GET', `/v1/webhooks/${flaky.id}`), 404);
  });

  it('gives up after 24 hours, and a replay starts a new series', async () => {
    const dead = await createWebhook({ url: receiver.url('/dead'), events: ['contact.created'] });
    receiver.plan.set('/dead', Array(50).fill(503));
    expectStatus(await api('POST', `/v1/audiences/${audienceId}/contacts`, { email: 'lost@example.com' }), 201);
    await waitFor(async () => (await deliveries(dead.id)).find((d) => d.attempts === 1 && !d.in_flight), 'the first attempt');

    advance(25 * 3_600_000);
    const failed = await waitFor(async () => (await deliveries(dead.id)).find((d) => d.status === 'failed'), 'failed after 24 hours');
    expect(failed).toMatchObject({ attempts: 2, last_status_code: 503, next_attempt_at: null });
    expect(failed.last_error).toMatch(/HTTP 503; still failing after 2 attempts over 24 hours/);
    expect(failed.failed_at).toBeTruthy();
    expect((await deliveries(dead.id, '?status=failed')).map((d) => d.id)).toEqual([failed.id]);
    await new Promise((r) => setTimeout(r, 100));
    expect(receiver.on('/dead')).toHaveLength(2);

    expectStatus(await api('POST', `/v1/webhooks/${dead.id}/deliveries/${failed.id}/replay`), 202);
    const again = await waitFor(async () => (await deliveries(dead.id)).find((d) => d.attempts === 3 && !d.in_flight && d.status === 'pending'), 'the replayed attempt');
    // first step of a new series, not the 2 h ceiling
    expect(new Date(again.next_attempt_at).getTime() - new Date(again.last_attempt_at).getTime()).toBe(30_000);

    // A disabled webhook gets nothing new and cannot be pinged or replayed until enabled again.
    expectStatus(await api('PATCH', `/v1/webhooks/${dead.id}`, { enabled: false }), 200);
    expectStatus(await api('POST', `/v1/webhooks/${dead.id}/test`), 409);
    expectStatus(await api('POST', `/v1/webhooks/${dead.id}/deliveries/${failed.id}/replay`), 409);
    expectStatus(await api('POST', `/v1/audiences/${audienceId}/contacts`, { email: 'unseen@example.com' }), 201);
    expect(await deliveries(dead.id)).toHaveLength(1);
    expectStatus(await api('DELETE', `/v1/webhooks/${dead.id}`), 204);
  });

  it('pings a webhook on demand', async () => {
    const before = receiver.on('/crm').length;
    const r = await api('POST', `/v1/webhooks/${crm.id}/test`);
    expectStatus(r, 202);
    const ping = await waitFor(() => receiver.on('/crm').slice(before).find((x) => x.json?.type === 'ping'), 'the ping');
    expect(ping.headers['x-envoi-event']).toBe('ping');
    expect(ping.headers['x-envoi-delivery']).toBe(r.body.delivery_id);
    expect(ping.json.data.webhook_id).toBe(crm.id);
    expect(genuine(ping, crm.secret)).toBe(true);
    await waitFor(async () => (await deliveries(crm.id)).find((d) => d.id === r.body.delivery_id && d.status === 'delivered'), 'the ping delivered');
    expectStatus(await api('POST', `/v1/webhooks/${crm.id}/test`, undefined, other.apiKey), 404);
  });

  it('times out a receiver that does not answer, without holding back the others', async () => {
    await dispatcher.stop();
    const quick = new WebhookDispatcher(t.envoi.ctx, { pollMs: 20, random: () => 0.5, timeoutMs: 1000, concurrency: 2, perEndpoint: 1 }).start();
    try {
      const slow = await createWebhook({ url: receiver.url('/slow'), events: ['contact.created'] });
      receiver.plan.set('/slow', [0, 0, 0]);
      const crmBefore = receiver.on('/crm').length;
      for (const n of [1, 2, 3]) expectStatus(await api('POST', `/v1/audiences/${audienceId}/contacts`, { email: `hurry${n}@example.com` }), 201);
      // The slow endpoint holds one slot at most: the CRM gets all three while its first request hangs.
      await waitFor(() => receiver.on('/crm').length === crmBefore + 3, 'the CRM events while /slow hangs');
      expect(receiver.on('/slow')).toHaveLength(1);
      const settled = async () => (await deliveries(slow.id)).filter((d) => d.attempts === 1 && !d.in_flight);
      await waitFor(async () => (await settled()).length === 3, 'three timed-out attempts', 20_000);
      for (const d of await settled()) expect(d).toMatchObject({ status: 'pending', last_status_code: null, last_error: 'no answer within 1 s', response_snippet: null });
      expect(quick.stats).toMatchObject({ retried: 3 });
      expectStatus(await api('DELETE', `/v1/webhooks/${slow.id}`), 204);
    } finally {
      await quick.stop();
      dispatcher = new WebhookDispatcher(t.envoi.ctx, { pollMs: 20, random: () => 0.5 }).start();
    }
  });

  it('keeps to public addresses unless the instance allows private networks', async () => {
    const config = t.envoi.ctx.config;
    config.webhookPrivateNetworks = false;
    try {
      for (const url of [receiver.url('/private'), 'https://10.0.0.8/h', 'https://169.254.169.254/latest', 'https://[::ffff:7f00:1]/h', 'https://[fd00::1]/h', 'http://localhost:8080/h', 'https://app.localhost/h', 'https://localhost./x', 'https://app.localhost./h']) {
        const r = await api('POST', '/v1/webhooks', { url, events: ['*'] });
        expectStatus(r, 400);
        expect(r.body.error.code, url).toBe('invalid_url');
        expect(r.body.error.message, url).toContain('ENVOI_WEBHOOK_PRIVATE_NETWORKS=allow');
      }
      const publicHook = await createWebhook({ url: 'https://crm.example.com/hook', events: ['contact.created'] });
      expectStatus(await api('DELETE', `/v1/webhooks/${publicHook.id}`), 204);
    } finally {
      config.webhookPrivateNetworks = true;
    }

    // Saved while the instance allowed it; the dispatcher of an instance that no longer does refuses to connect.
    const hook = await createWebhook({ url: receiver.url('/private'), events: ['contact.deleted'] });
    await dispatcher.stop();
    const strict = new WebhookDispatcher({ ...t.envoi.ctx, config: { ...config, webhookPrivateNetworks: false } }, { random: () => 0.5 });
    try {
      const ping = await api('POST', `/v1/webhooks/${hook.id}/test`);
      expectStatus(ping, 202);
      await waitFor(async () => (await strict.runOnce()) > 0, 'the ping claimed');
      const [d] = (await deliveries(hook.id)).filter((x) => x.id === ping.body.delivery_id);
      expect(d).toMatchObject({ status: 'pending', attempts: 1, last_status_code: null });
      expect(d.last_error).toMatch(/^refused: 127\.0\.0\.1 is a private, loopback or reserved address/);
      expect(receiver.on('/private')).toHaveLength(0);
    } finally {
      await strict.stop();
      expectStatus(await api('DELETE', `/v1/webhooks/${hook.id}`), 204);
      dispatcher = new WebhookDispatcher(t.envoi.ctx, { pollMs: 20, random: () => 0.5 }).start();
    }
  });

  it('takes over the deliveries of a dispatcher that died, once its lease has run out', async () => {
    await dispatcher.stop();
    const before = receiver.on('/crm').length;
    expectStatus(await api('POST', `/v1/audiences/${audienceId}/contacts`, { email: 'orphan@example.com' }), 201);
    const now = t.clock.now;
    const [held] = await webhookStore.claim(db(), { holder: 'dead-dispatcher', now, leaseUntil: new Date(now.getTime() + 60_000), retryUntil: new Date(now.getTime() + 86_400_000), limit: 10, perEndpoint: 10, inFlight: new Map() });
    expect(held).toMatchObject({ endpoint_id: crm.id, type: 'contact.created', attempts: 1 });
    expect((await api('GET', `/v1/webhooks/${crm.id}/deliveries/${held!.id}`)).body).toMatchObject({ status: 'pending', in_flight: true, next_attempt_at: null });
    expectStatus(await api('POST', `/v1/webhooks/${crm.id}/deliveries/${held!.id}/replay`), 409);

    dispatcher = new WebhookDispatcher(t.envoi.ctx, { pollMs: 20, random: () => 0.5 }).start();
    await new Promise((r) => setTimeout(r, 150));
    expect(receiver.on('/crm').length).toBe(before);
    advance(61_000);
    await waitFor(async () => (await api('GET', `/v1/webhooks/${crm.id}/deliveries/${held!.id}`)).body.status === 'delivered', 'the delivery taken over');
    expect(receiver.on('/crm').slice(before).map((r) => r.headers['x-envoi-delivery'])).toEqual([held!.id]);
    // the dead dispatcher's late answer is not recorded over the one that counts
    expect(await webhookStore.recordAttempt(db(), 'dead-dispatcher', { id: held!.id, status: 'failed', next_attempt_at: null, at: now, status_code: 500, error: 'late', response_snippet: null, duration_ms: 1 })).toBe(false);
    expect((await api('GET', `/v1/webhooks/${crm.id}/deliveries/${held!.id}`)).body).toMatchObject({ status: 'delivered', attempts: 2 });
  });

  it("keeps each organisation's events to its own webhooks", async () => {
    const theirs = await api('POST', `/v1/audiences/${otherAudienceId}/contacts`, { email: 'theirs@example.com' }, other.apiKey);
    expectStatus(theirs, 201);
    const got = await waitFor(() => receiver.on('/other').find((r) => r.json?.type === 'contact.created'), "the other organisation's event");
    expect(got.json.data.contact_id).toBe(theirs.body.id);
    await new Promise((r) => setTimeout(r, 200));
    // everything this organisation did above, on every endpoint it has: none of it reached the other's '*' endpoint
    expect(receiver.on('/other').map((r) => r.json.organisation_id)).toEqual([other.orgId]);
    expect(receiver.on('/crm').every((r) => r.json.organisation_id === org.orgId)).toBe(true);
    expect(receiver.on('/crm').some((r) => r.json.data?.contact_id === theirs.body.id)).toBe(false);
    // and its ids are not found from here
    const [otherHook] = (await api('GET', '/v1/webhooks', undefined, other.apiKey)).body.webhooks;
    for (const [method, path] of [
      ['GET', `/v1/webhooks/${otherHook.id}`],
      ['PATCH', `/v1/webhooks/${otherHook.id}`],
      ['DELETE', `/v1/webhooks/${otherHook.id}`],
      ['GET', `/v1/webhooks/${otherHook.id}/deliveries`],
      ['POST', `/v1/webhooks/${otherHook.id}/test`],
    ] as const) {
      expectStatus(await api(method, path, method === 'PATCH' ? { enabled: false } : undefined), 404);
    }
    expect((await api('GET', `/v1/webhooks/${otherHook.id}`, undefined, other.apiKey)).body.enabled).toBe(true);
  });

  it('names every column of contacts in contact.updated', async () => {
    // The update trigger of 0011_webhooks.sql lists the columns it compares: a new column needs its line there.
    const r = await sql<{ column_name: string }>`SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'contacts' ORDER BY column_name`.execute(db());
    const compared = ['audience_id', 'company', 'company_id', 'email', 'fields', 'first_name', 'job_title', 'last_name', 'marketing_authorized_at', 'marketing_withdrawn_at'];
    const ignored = ['created_at', 'email_lower', 'id', 'org_id', 'updated_at'];
    expect(r.rows.map((c) => c.column_name)).toEqual([...compared, ...ignored].sort());
  });

  it('a bulk edit of contacts is one outbox insert per statement, for subscribed organisations only', async () => {
    // Inside a transaction that is rolled back, so the dispatcher never sees these rows.
    const counts = await db()
      .transaction()
      .execute(async (trx) => {
        await sql`INSERT INTO contacts (org_id, audience_id, email, email_lower)
                  SELECT ${org.orgId}, ${audienceId}, 'many' || g || '@example.com', 'many' || g || '@example.com' FROM generate_series(1, 2000) g`.execute(trx);
        await sql`UPDATE contacts SET job_title = 'Speaker', fields = fields || '{"tier":"silver"}' WHERE audience_id = ${audienceId} AND email_lower LIKE 'many%'`.execute(trx);
        const rows = await sql<{ type: string; n: number; changed: unknown }>`
          SELECT type, count(*)::int AS n, min(payload->>'changed') AS changed FROM webhook_events WHERE org_id = ${org.orgId} AND type IN ('contact.created', 'contact.updated')
            AND payload->>'email' LIKE 'many%' GROUP BY type ORDER BY type`.execute(trx);
        const d = await sql<{ n: number }>`SELECT count(*)::int AS n FROM webhook_deliveries w JOIN webhook_events e ON e.id = w.event_id WHERE e.payload->>'email' LIKE 'many%'`.execute(trx);
        throw Object.assign(new Error('rollback'), { result: { rows: rows.rows, deliveries: d.rows[0]!.n } });
      })
      .catch((e) => e.result);
    expect(counts.rows).toEqual([
      { type: 'contact.created', n: 2000, changed: null },
      { type: 'contact.updated', n: 2000, changed: '["fields.tier", "job_title"]' },
    ]);
    // one endpoint (/crm) follows contacts in this organisation
    expect(counts.deliveries).toBe(4000);
  });
});
