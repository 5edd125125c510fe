import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as orgs from '../src/organisations/service.ts';
import { enqueueToContacts } from '../src/sending/service.ts';
import { dbKind, expectStatus, startTestApp, until, type TestApp, type TestOrg } from './support/harness.ts';
import { startSmtpSink, type SmtpSink } from './support/smtp-sink.ts';
import { envoiEnv, killHard, startWorker, stopAll, started } from './support/processes.ts';

/*
 * `envoi worker` as real processes against one PostgreSQL: one is killed with SIGKILL in the middle
 * of a batch, two more start at once and finish the work. PGlite is a single-process database, so
 * there is no separate worker process to kill there: the test is skipped on that project.
 * (test/campaign-crash.test.ts is the larger suite: a campaign, five kills at random moments.)
 */

const N = 400;
const LEASE_SECONDS = 3;

let t: TestApp;
let org: TestOrg;
let sink: SmtpSink;

beforeAll(async () => {
  if (dbKind !== 'postgres') return;
  t = await startTestApp();
  org = await t.createOrg('Crash Org');
  sink = await startSmtpSink({ delayMs: 8 });
});

afterAll(async () => {
  await stopAll(started);
  await sink?.close();
  await t?.close();
});

describe('worker crash', () => {
  it.skipIf(dbKind !== 'postgres')(
    'loses nothing when a worker is SIGKILLed mid-batch; two workers then finish without sending a row twice (skipped on PGlite: a single-process database has no separate worker process)',
    async () => {
      const ctx = t.envoi.ctx;
      const audienceId = (await t.request('POST', '/v1/audiences', { token: org.apiKey, body: { name: 'Crowd' } })).body.id;
      const day = 86_400_000;
      const e = await t.request('POST', `/v1/audiences/${audienceId}/events`, {
        token: org.apiKey,
        body: { name: 'Festival', starts_at: new Date(Date.now() + 10 * day).toISOString(), ends_at: new Date(Date.now() + 11 * day).toISOString(), time_zone: 'UTC' },
      });
      const tpl = await t.request('POST', `/v1/audiences/${audienceId}/templates`, {
        token: org.apiKey,
        body: { name: 'Info', category: 'participation', language: 'en', event_id: e.body.id, subject: 'Practical info, {{ first_name }}', body: '<p>Hello {{ first_name }}</p>' },
      });
      expectStatus(tpl, 201);
      const rows = Array.from({ length: N }, (_, i) => ({ org_id: org.orgId, audience_id: audienceId, email: `p${i}@example.com`, email_lower: `p${i}@example.com`, first_name: `P${i}`, fields: '{}' }));
      const contacts = await ctx.db.insertInto('contacts').values(rows).returning('id').execute();
      await ctx.db.insertInto('participants').values(contacts.map((c) => ({ org_id: org.orgId, audience_id: audienceId, event_id: e.body.id, contact_id: c.id, data: '{}' }))).execute();
      const principal = (await orgs.authenticate(ctx, org.apiKey))!;
      const queued = await enqueueToContacts(ctx, principal, { templateId: tpl.body.id, contactIds: contacts.map((c) => c.id) });
      expect(queued.queued).toBe(N);

      // 1. One worker process, killed without warning in the middle of its second batch.
      const env = envoiEnv({ DATABASE_URL: t.envoi.config.databaseUrl!, SMTP_URL: sink.url, ENVOI_WORKER_LEASE_SECONDS: String(LEASE_SECONDS), ENVOI_WORKER_CONCURRENCY: '4' });
      const first = await startWorker('first worker', env);
      await until(() => sink.received.length >= 130, 'the first worker to send 130 messages', 60_000);
      await killHard(first.child);
      const killedAt = Date.now();
      const receivedAtKill = sink.received.length;
      const inFlight = await ctx.db.selectFrom('deliveries').select(['id', 'email', 'leased_by']).where('message_id', '=', queued.message_id).where('status', '=', 'sending').execute();
      const abandoned = new Set(inFlight.map((r) => r.email));
      expect([...new Set(inFlight.map((r) => r.leased_by))]).toEqual([first.id]);

      // 2. Two workers at once take over after the lease runs out and finish the job.
      const [second, third] = await Promise.all([startWorker('second worker', env), startWorker('third worker', env)]);
      await until(
        async () => {
          const left = await ctx.db.selectFrom('deliveries').select('id').where('message_id', '=', queued.message_id).where('status', '!=', 'sent').limit(1).execute();
          return left.length === 0;
        },
        'every delivery to be sent',
        90_000,
      );
      const recoveredAfterMs = Date.now() - killedAt;
      await stopAll([second.child, third.child]);
      expect(second.child.proc.exitCode).toBe(0);
      expect(third.child.proc.exitCode).toBe(0);

      // Nothing lost: every row sent, every recipient reached.
      const statuses = await ctx.db.selectFrom('deliveries').select(['status', (eb) => eb.fn.countAll<number>().as('n')]).where('message_id', '=', queued.message_id).groupBy('status').execute();
      expect(statuses.map((s) => [s.status, Number(s.n)])).toEqual([['sent', N]]);
      const seen = new Map<string, number>();
      for (const m of sink.received) for (const r of m.rcptTo) seen.set(r, (seen.get(r) ?? 0) + 1);
      expect(seen.size).toBe(N);
      // Sent twice only what the killed worker had in flight (sent, not yet recorded), never more.
      const twice = [...seen].filter(([, n]) => n > 1).map(([a]) => a);
      expect([...seen.values()].every((n) => n <= 2)).toBe(true);
      expect(twice.every((a) => abandoned.has(a))).toBe(true);
      expect(twice.length).toBeLessThanOrEqual(inFlight.length);
      // The take-over is in the survivors' logs, and both survivors worked.
      const logs = [...second.child.lines, ...third.child.lines].join('\n');
      expect(logs).toMatch(/took over deliveries whose lease ran out/);
      const events = await ctx.db.selectFrom('message_events').select(['type', (eb) => eb.fn.countAll<number>().as('n')]).where('message_id', '=', queued.message_id).groupBy('type').execute();
      expect(Object.fromEntries(events.map((x) => [x.type, Number(x.n)]))).toEqual({ queued: N, sent: N });

      console.log(
        `worker crash (postgres): ${N} deliveries; first worker SIGKILLed after the sink received ${receivedAtKill}; ` +
          `${inFlight.length} rows were leased by it and unrecorded; ${twice.length} recipients received a second copy (all among those ${inFlight.length}); ` +
          `all ${N} sent ${recoveredAfterMs} ms after the kill (lease ${LEASE_SECONDS} s) by two workers at once; SMTP saw ${sink.received.length} messages`,
      );
    },
    120_000,
  );
});
