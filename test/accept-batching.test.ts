// The accept path of POST /v1/messages batches concurrent requests: one lookup query and one write
// (one commit) for all the requests ready together. These tests send many requests at once so that
// they do share batches, and check that each request still gets its own answer.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as orgs from '../src/organisations/service.ts';
import { openPostgres } from '../src/platform/database.ts';
import { createContext } from '../src/platform/context.ts';
import { Worker } from '../src/sending/worker.ts';
import { acceptTriggered, checkRateLimit } from '../src/sending/service.ts';
import { acceptWriterFor } from '../src/sending/accept-writer.ts';
import { rateCounterFor } from '../src/sending/accept-rate.ts';
import type { TriggeredRow } from '../src/sending/store.ts';
import { dbKind, expectStatus, startTestApp, until, type TestApp, type TestOrg } from './support/harness.ts';
import { startSmtpSink, type SmtpSink } from './support/smtp-sink.ts';

let t: TestApp;
let org: TestOrg;
let sink: SmtpSink;
let worker: Worker;
let audienceId: string;
let templateId: string;
let contactIds: string[] = [];

const post = (body: unknown, token = org.apiKey, headers?: Record<string, string>) => t.request('POST', '/v1/messages', { token, body, headers });
const message = (i: number, extra: Record<string, unknown> = {}) => ({ template_id: templateId, to: { contact_id: contactIds[i] }, variables: { code: `C-${i}` }, ...extra });

beforeAll(async () => {
  t = await startTestApp();
  org = await t.createOrg('Batch Org');
  sink = await startSmtpSink();
  const a = await t.request('POST', '/v1/audiences', { token: org.apiKey, body: { name: 'Customers' } });
  expectStatus(a, 201);
  audienceId = a.body.id;
  const tpl = await t.request('POST', `/v1/audiences/${audienceId}/templates`, {
    token: org.apiKey,
    body: { name: 'Code', category: 'transactional', language: 'en', subject: 'Your code, {{ first_name }}', body: '<p>Hello {{ first_name }}, your code is {{ vars.code }}.</p>' },
  });
  expectStatus(tpl, 201);
  templateId = tpl.body.id;
  for (let i = 0; i < 60; i++) {
    const c = await t.request('POST', `/v1/audiences/${audienceId}/contacts`, { token: org.apiKey, body: { email: `person${i}@example.com`, first_name: `P${i}` } });
    expectStatus(c, 201);
    contactIds.push(c.body.id);
  }
  worker = new Worker(t.envoi.ctx, { smtpUrl: sink.url, pollMs: { transactional: 50, bulk: 50 }, leaseMs: 60_000 }).start();
});

afterAll(async () => {
  await worker?.stop();
  await sink?.close();
  await t?.close();
});

describe('accept batching', () => {
  it('writes concurrent requests together, each answered 202 only once its row is committed', async () => {
    const writer = acceptWriterFor(t.envoi.ctx.db);
    const before = { ...writer.stats };
    const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => post(message(i))));
    for (const a of answers) expectStatus(a, 202);
    // Shared commits: fewer writes than requests.
    expect(writer.stats.items - before.items).toBe(30);
    expect(writer.stats.runs - before.runs).toBeLessThan(30);
    expect(writer.stats.largest).toBeGreaterThan(1);
    // Each 202 names rows that are already there, with their first event.
    const ids = answers.map((a) => a.body.id as string);
    const rows = await t.envoi.ctx.db
      .selectFrom('messages as m')
      .innerJoin('deliveries as d', 'd.message_id', 'm.id')
      .innerJoin('message_events as e', 'e.delivery_id', 'd.id')
      .select(['m.id', 'd.id as delivery_id', 'e.type'])
      .where('m.id', 'in', ids)
      .execute();
    expect(rows).toHaveLength(30);
    expect(new Set(rows.map((r) => r.id))).toEqual(new Set(ids));
    for (const a of answers) expect(rows.find((r) => r.id === a.body.id)?.delivery_id).toBe(a.body.delivery_id);
    expect(rows.every((r) => r.type === 'queued')).toBe(true);
    await sink.waitFor(() => contactIds.slice(0, 30).every((_, i) => sink.byRecipient(`person${i}@example.com`).length === 1), 30_000);
    const parsed = await sink.byRecipient('person7@example.com')[0]!.parse();
    expect(parsed.subject).toBe('Your code, P7');
    expect(parsed.text).toContain('your code is C-7');
  });

  it('answers duplicate idempotency keys inside one batch with the first message, and sends it once', async () => {
    const same = message(40, { idempotency_key: 'dup-same' });
    // Key "dup-mixed": two different requests under one key; the first written wins, the other is refused.
    const mixed = [message(41, { idempotency_key: 'dup-mixed' }), message(42, { idempotency_key: 'dup-mixed' })];
    const sent = [...Array.from({ length: 10 }, () => same), ...mixed, ...mixed, ...Array.from({ length: 5 }, (_, i) => message(43 + i))];
    const answers = await Promise.all(sent.map((b) => post(b)));

    const sameAnswers = answers.slice(0, 10);
    for (const a of sameAnswers) expectStatus(a, 202);
    expect(new Set(sameAnswers.map((a) => a.body.id)).size).toBe(1);
    for (const a of sameAnswers) expect(a.body).toEqual(sameAnswers[0]!.body);
    expect(sameAnswers.filter((a) => a.headers['idempotent-replayed'] !== 'true')).toHaveLength(1);

    const mixedAnswers = answers.slice(10, 14);
    const winners = await t.envoi.ctx.db.selectFrom('messages').select(['id', 'variables']).where('org_id', '=', org.orgId).where('idempotency_key', '=', 'dup-mixed').execute();
    expect(winners).toHaveLength(1);
    const winnerCode = (winners[0]!.variables as { code: string }).code;
    mixedAnswers.forEach((a, i) => {
      const body = sent[10 + i]!;
      if ((body.variables as { code: string }).code === winnerCode) {
        expectStatus(a, 202);
        expect(a.body.id).toBe(winners[0]!.id);
      } else {
        expectStatus(a, 409);
        expect(a.body.error.code).toBe('idempotency_key_reused');
      }
    });
    for (const a of answers.slice(14)) expectStatus(a, 202);

    const rows = await t.envoi.ctx.db.selectFrom('messages').select('id').where('org_id', '=', org.orgId).where('idempotency_key', '=', 'dup-same').execute();
    expect(rows).toHaveLength(1);
    await sink.waitFor(() => sink.byRecipient('person40@example.com').length >= 1 && sink.byRecipient('person47@example.com').length === 1, 30_000);
    // Nothing more comes for the duplicates.
    await new Promise((r) => setTimeout(r, 300));
    expect(sink.byRecipient('person40@example.com')).toHaveLength(1);
    expect(sink.byRecipient('person41@example.com').length + sink.byRecipient('person42@example.com').length).toBe(1);
  });

  it('keeps one bad request of a batch to itself: the others are accepted', async () => {
    const good = Array.from({ length: 12 }, (_, i) => message(48 + i % 12, { custom_id: `good-${i}` }));
    const bad = [
      // PostgreSQL cannot store a NUL character: refused by the database, at the write.
      message(0, { custom_id: 'bad\u0000id' }),
      // no such contact: refused at the lookup
      { ...message(0), to: { contact_id: randomUUID() } },
      // a variable the template needs is missing: refused at the render check
      { template_id: templateId, to: { contact_id: contactIds[1] } },
    ];
    const answers = await Promise.all([...good, ...bad].map((b) => post(b)));
    for (const a of answers.slice(0, good.length)) expectStatus(a, 202);
    const [nul, noContact, noVariable] = answers.slice(good.length);
    expect(nul!.status).toBe(400);
    expectStatus(noContact!, 404);
    expectStatus(noVariable!, 400);
    expect(noVariable!.body.error.code).toBe('template_missing_variable');
    const stored = await t.envoi.ctx.db.selectFrom('messages').select('custom_id').where('org_id', '=', org.orgId).where('custom_id', 'like', 'good-%').execute();
    expect(stored).toHaveLength(good.length);
  });

  it('answers each row of a failing batch write alone (the batch is written again in halves)', async () => {
    const writer = acceptWriterFor(t.envoi.ctx.db);
    const now = t.clock.now;
    const row = (contactId: string, i: number, eventId: string | null = null): TriggeredRow => ({
      id: randomUUID(),
      org_id: org.orgId,
      audience_id: audienceId,
      category: 'transactional',
      template_id: null,
      template_version: null,
      event_id: eventId,
      community_id: null,
      inline: { language: 'en', subject: 'Direct', html: '<p>Direct</p>', text: null },
      variables: {},
      sensitive: false,
      idempotency_key: `direct-${i}-${randomUUID()}`,
      request_hash: 'test',
      custom_id: null,
      tags: [],
      send_at: new Date(now.getTime() + 86_400_000),
      created_by: 'test',
      created_at: now,
      delivery: {
        id: randomUUID(),
        contact_id: contactId,
        email: 'direct@example.com',
        lane: 'transactional',
        priority: 0,
        status: 'queued',
        rule: null,
        rule_detail: null,
        due_at: new Date(now.getTime() + 86_400_000),
        expires_at: new Date(now.getTime() + 2 * 86_400_000),
      },
      event: { type: 'queued', detail: {} },
    });
    // The third is about an event that does not exist (deleted meanwhile): a foreign-key violation.
    const rows = [row(contactIds[0]!, 0), row(contactIds[1]!, 1), row(contactIds[6]!, 2, randomUUID()), row(contactIds[2]!, 3)];
    const outcomes = await Promise.allSettled(rows.map((r) => writer.submit(r)));
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    expect(outcomes.filter((o) => o.status === 'fulfilled').every((o) => (o as PromiseFulfilledResult<boolean>).value === true)).toBe(true);
    const failure = (outcomes[2] as PromiseRejectedResult).reason as { status?: number; code?: string };
    expect(failure.status).toBe(409);
    expect(failure.code).toBe('changed_meanwhile');
    const written = await t.envoi.ctx.db.selectFrom('messages').select('id').where('id', 'in', rows.map((r) => r.id)).execute();
    expect(new Set(written.map((w) => w.id))).toEqual(new Set([rows[0]!.id, rows[1]!.id, rows[3]!.id]));

    // Three rows of one batch holding one key: the first is written, the others are told the key is taken.
    const key = `direct-same-${randomUUID()}`;
    const same = [row(contactIds[3]!, 4), row(contactIds[4]!, 5), row(contactIds[5]!, 6)].map((r) => ({ ...r, idempotency_key: key }));
    const runsBefore = writer.stats.runs;
    expect(await Promise.all(same.map((r) => writer.submit(r)))).toEqual([true, false, false]);
    expect(writer.stats.runs - runsBefore).toBe(1);
    const holders = await t.envoi.ctx.db.selectFrom('messages').select('id').where('org_id', '=', org.orgId).where('idempotency_key', '=', key).execute();
    expect(holders.map((h) => h.id)).toEqual([same[0]!.id]);
  });

  it('enforces the rate limit across a batch: exactly the limit is accepted', async () => {
    const limited = await orgs.createApiKey(t.envoi.ctx, org.orgId, { name: 'limited', role: 'editor', rateLimitPerMinute: 5 });
    const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => post(message(i, { custom_id: `limited-${i}` }), limited.key)));
    const accepted = answers.filter((a) => a.status === 202);
    const refused = answers.filter((a) => a.status === 429);
    expect(accepted).toHaveLength(5);
    expect(refused).toHaveLength(7);
    expect(accepted.map((a) => Number(a.headers['x-ratelimit-remaining'])).sort()).toEqual([0, 1, 2, 3, 4]);
    for (const r of refused) {
      expect(r.body.error.code).toBe('rate_limited');
      expect(Number(r.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    }
    // The shared counter gets every request of the window, written in batches.
    await rateCounterFor(t.envoi.ctx.db).flush();
    const counter = await t.envoi.ctx.db.selectFrom('rate_counters').select('count').where('key', '=', `key:${limited.id}`).execute();
    expect(counter.reduce((n, c) => n + c.count, 0)).toBe(12);
  });

  it.skipIf(dbKind === 'pglite')('shares the count with another API process on the same database', async () => {
    const limited = await orgs.createApiKey(t.envoi.ctx, org.orgId, { name: 'shared', role: 'editor', rateLimitPerMinute: 6 });
    for (let i = 0; i < 4; i++) expectStatus(await post(message(i, { custom_id: `shared-${i}` }), limited.key), 202);
    await rateCounterFor(t.envoi.ctx.db).flush();
    // A second process: its own connections and its own counter, the same rows.
    const other = await openPostgres(t.envoi.config.databaseUrl!, 2);
    try {
      const ctx = createContext(t.envoi.ctx.config, other, { now: () => t.clock.now });
      const p = (await orgs.authenticate(ctx, limited.key))!;
      const checks = [];
      for (let i = 0; i < 3; i++) checks.push(await checkRateLimit(ctx, p));
      expect(checks.map((c) => c.limited)).toEqual([false, false, true]);
      await rateCounterFor(ctx.db).flush();
    } finally {
      await other.close();
    }
  });
});

describe('prepared accept statements', () => {
  it.skipIf(dbKind === 'pglite')('runs the cohort lookup and the batch write as named statements, batch after batch', async () => {
    // One connection, so that pg_prepared_statements (per session) shows what the accepts prepared.
    const single = await openPostgres(t.envoi.config.databaseUrl!, 1);
    try {
      const ctx = createContext(t.envoi.ctx.config, single, { now: () => t.clock.now });
      const p = (await orgs.authenticate(ctx, org.apiKey))!;
      for (let round = 0; round < 3; round++) {
        const accepted = await Promise.all(
          Array.from({ length: 5 }, (_, i) => acceptTriggered(ctx, p, { template_id: templateId, to: { contact_id: contactIds[40 + i] }, variables: { code: `N-${round}-${i}` }, idempotency_key: `named-${round}-${i}` })),
        );
        expect(accepted.map((a) => a.status)).toEqual(Array(5).fill('queued'));
      }
      // A repeat is still answered from the first request.
      const again = await acceptTriggered(ctx, p, { template_id: templateId, to: { contact_id: contactIds[40] }, variables: { code: 'N-0-0' }, idempotency_key: 'named-0-0' });
      expect(again.replayed).toBe(true);
      const names = (await single.db.selectFrom('pg_prepared_statements' as never).select('name' as never).execute()).map((r) => (r as { name: string }).name);
      expect(names.some((n) => n.startsWith('envoi_accept_context_'))).toBe(true);
      expect(names.some((n) => n.startsWith('envoi_accept_write_'))).toBe(true);
      const stored = await single.db.selectFrom('messages').select('id').where('idempotency_key', 'like', 'named-%').execute();
      expect(stored).toHaveLength(15);
    } finally {
      await single.close();
    }
  });
});

describe('API key lookups kept briefly', () => {
  it('honours a revocation at once in this process, and within seconds when made elsewhere', async () => {
    const k1 = await orgs.createApiKey(t.envoi.ctx, org.orgId, { name: 'revoked here', role: 'editor' });
    expectStatus(await t.request('GET', '/v1/me', { token: k1.key }), 200);
    expectStatus(await t.request('DELETE', `/v1/api-keys/${k1.id}`, { token: org.ownerToken }), 204);
    expectStatus(await t.request('GET', '/v1/me', { token: k1.key }), 401);

    const k2 = await orgs.createApiKey(t.envoi.ctx, org.orgId, { name: 'revoked elsewhere', role: 'editor' });
    expectStatus(await t.request('GET', '/v1/me', { token: k2.key }), 200);
    // What another process's revocation looks like from here: the row changes, nothing is told.
    await t.envoi.ctx.db.updateTable('api_keys').set({ revoked_at: new Date() }).where('id', '=', k2.id).execute();
    await until(async () => (await t.request('GET', '/v1/me', { token: k2.key })).status === 401, 'the revocation to be seen', 15_000);
  });
});
