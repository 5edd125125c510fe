import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dbKind, expectStatus, startTestApp, type TestApp, type TestOrg } from './support/harness.ts';
import { startSmtpSink, type SmtpSink } from './support/smtp-sink.ts';
import { alive, crashSeed, envoiEnv, killHard, problems, seededRandom, started, startWorker, stopAll, untilWith } from './support/processes.ts';

/*
 * The "Crash" reliability suite: a 20,000-recipient campaign delivered by two `envoi worker`
 * processes into a real SMTP server on loopback, while one of them is SIGKILLed at five random
 * moments and started again. Afterwards every allowed recipient has the message, the SMTP server saw
 * a recipient twice only when it was in the batch the killed worker had sent but not yet recorded,
 * and the deliveries marked sent are exactly the recipients the SMTP server received.
 *
 * The moments are drawn from a seeded generator (printed; ENVOI_CRASH_SEED=<seed> replays it) as
 * numbers of messages received, so a replay kills at the same points of the campaign. What a killed
 * worker held is logged by a trigger on the test's own database as other workers take it over.
 * PGlite is a single-process database: there is no separate worker process to kill there.
 */

const CONTACTS = 20_000;
const KILLS = 5;
const LEASE_SECONDS = 5;
/**
 * The most rows one worker holds at once (src/sending/worker.ts: two bulk batches of 250 in hand), so
 * the most a kill can leave claimed and unrecorded.
 */
const IN_HAND = 2 * 250;
const WORKERS = 2;

// Who is who, from the contact number i, in SQL and in JS alike: 1 in 20 never consented to marketing.
const consents = (i: number) => i % 20 !== 7;
const CONSENT_SQL = 'i % 20 <> 7';
const email = (i: number) => `fan${i}@crowd${i % 50}.example.com`;
const EMAIL_SQL = `'fan' || i || '@crowd' || (i % 50) || '.example.com'`;

let t: TestApp;
let org: TestOrg;
let sink: SmtpSink;

beforeAll(async () => {
  if (dbKind !== 'postgres') return;
  t = await startTestApp();
  org = await t.createOrg('Crash Org');
  sink = await startSmtpSink();
});

afterAll(async () => {
  await stopAll(started);
  await sink?.close();
  await t?.close();
});

interface Kill {
  at: number;
  victim: number;
  /** the lease holder name of the killed process */
  worker: string;
  /** the campaign's status at the kill: resolving while the recipients are still being written */
  campaignStatus: string;
  receivedAtKill: number;
  /** distinct recipients the SMTP server had then */
  recipientsAtKill: number;
  /** its rows read right after the kill (on a slow machine a take-over may already have begun) */
  held: string[];
  /** every row another worker took over from it: what it had claimed and not recorded */
  inFlight: Set<string>;
  duplicates: number;
}

describe('campaign crash', () => {
  it.skipIf(dbKind !== 'postgres')(
    'a 20,000-recipient campaign survives five SIGKILLs of a worker: everyone allowed gets it, duplicates only from the batch in flight at each kill, records match the SMTP server (skipped on PGlite: a single-process database has no separate worker process)',
    async () => {
      const seed = crashSeed();
      const random = seededRandom(seed);
      const ctx = t.envoi.ctx;
      const api = async (method: string, url: string, body?: unknown, status = 201) => {
        const r = await t.request(method, url, { token: org.apiKey, body });
        expectStatus(r, status);
        return r.body;
      };

      // 1. The audience (seeded in one statement), a marketing template and a view of everyone, through the API.
      const audienceId = (await api('POST', '/v1/audiences', { name: 'Crowd' })).id as string;
      await sql`
        INSERT INTO contacts (org_id, audience_id, email, email_lower, first_name, marketing_authorized_at)
        SELECT ${org.orgId}, ${audienceId}, ${sql.raw(EMAIL_SQL)}, ${sql.raw(EMAIL_SQL)}, 'Fan' || i,
               CASE WHEN ${sql.raw(CONSENT_SQL)} THEN now() - interval '30 days' END
        FROM generate_series(0, ${CONTACTS - 1}::int) AS i`.execute(ctx.db);
      await sql`ANALYZE contacts`.execute(ctx.db);
      const allowed = new Set(Array.from({ length: CONTACTS }, (_, i) => i).filter(consents).map(email));
      const template = await api('POST', `/v1/audiences/${audienceId}/templates`, {
        name: 'News',
        category: 'marketing',
        language: 'en',
        subject: 'News for {{ first_name }}',
        body: '<p>Hello {{ first_name }}, <a href="https://example.org/programme">the programme</a> is out.</p><p><a href="[UNSUBLINK]">Unsubscribe</a></p>',
      });
      const view = await api('POST', `/v1/audiences/${audienceId}/views`, { name: 'Everyone', filter: { and: [] } });
      // Instrumentation of this test's own database: every take-over of a row still 'sending' under
      // another worker's lease, logged whenever it happens, so what each killed worker held is known
      // exactly however slow the machine (no race with the reading of it after the kill).
      await sql`CREATE TABLE test_takeovers (delivery_id uuid, email text, from_worker text, to_worker text)`.execute(ctx.db);
      await sql`CREATE FUNCTION test_log_takeover() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN INSERT INTO test_takeovers VALUES (NEW.id, NEW.email, OLD.leased_by, NEW.leased_by); RETURN NEW; END $$`.execute(ctx.db);
      await sql`CREATE TRIGGER test_takeover AFTER UPDATE ON deliveries FOR EACH ROW
        WHEN (OLD.status = 'sending' AND NEW.status = 'sending' AND OLD.leased_by IS DISTINCT FROM NEW.leased_by)
        EXECUTE FUNCTION test_log_takeover()`.execute(ctx.db);

      // 2. Two worker processes (each with its campaign scheduler), then the campaign.
      const env = envoiEnv({
        DATABASE_URL: t.envoi.config.databaseUrl!,
        SMTP_URL: sink.url,
        ENVOI_WORKER_LEASE_SECONDS: String(LEASE_SECONDS),
        ENVOI_WORKER_CONCURRENCY: '8',
      });
      // Each process under its own application_name: after a kill, PostgreSQL still finishes the
      // statement the process had sent (its last outcomes may commit then); its sessions end after.
      type Running = Awaited<ReturnType<typeof startWorker>> & { app: string };
      let processes = 0;
      const launch = async (name: string): Promise<Running> => {
        const app = `crash-test-${++processes}`;
        return { ...(await startWorker(name, { ...env, PGAPPNAME: app })), app };
      };
      const workers: (Running | null)[] = await Promise.all(Array.from({ length: WORKERS }, (_, i) => launch(`worker ${i + 1}`)));
      // A killed worker is started again in the background: the next kill need not wait for it.
      const starting: (Promise<Running> | null)[] = workers.map(() => null);
      const assertAlive = () => {
        for (const w of workers) if (w && !alive(w.child)) throw new Error(`${w.child.name} died:\n${w.child.lines.slice(-20).join('\n')}`);
      };
      const startTime = Date.now();
      const campaign = await api('POST', `/v1/audiences/${audienceId}/campaigns`, { name: 'Crash news', template_id: template.id, target: { view_id: view.id }, start: true });

      // 3. The kills, at numbers of received messages drawn from the seed, spread over the run; each
      // of a worker drawn from the seed among those running then.
      const moments = Array.from({ length: KILLS }, () => Math.floor((0.03 + random() * 0.82) * allowed.size)).sort((a, b) => a - b);
      const draws = moments.map(() => random());
      console.log(`campaign crash: seed ${seed} (replay with ENVOI_CRASH_SEED=${seed}); SIGKILL after ${moments.join(', ')} messages received`);
      let messageId: string | null = null;
      const kills: Kill[] = [];
      for (const [k, at] of moments.entries()) {
        await untilWith(null, `the SMTP server to receive ${at} messages`, 180_000, () => {
          assertAlive();
          return sink.received.length >= at;
        });
        if (workers.every((w) => w === null)) await Promise.race(starting.filter((p) => p !== null));
        const running = workers.flatMap((w, i) => (w ? [i] : []));
        const victim = running[Math.floor(draws[k]! * running.length)]!;
        const dead = workers[victim]!;
        workers[victim] = null;
        await killHard(dead.child);
        await untilWith(null, `the sessions of ${dead.child.name} to end`, 30_000, async () => {
          const r = await sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = ${dead.app}`.execute(ctx.db);
          return r.rows[0]!.n === 0;
        });
        const receivedAtKill = sink.received.length;
        const recipientsAtKill = new Set(sink.received.flatMap((m) => m.rcptTo)).size;
        const c = await ctx.db.selectFrom('campaigns').select(['message_id', 'status']).where('id', '=', campaign.id).executeTakeFirstOrThrow();
        messageId ??= c.message_id;
        const held = await ctx.db.selectFrom('deliveries').select('email').where('message_id', '=', messageId!).where('status', '=', 'sending').where('leased_by', '=', dead.id).execute();
        kills.push({ at, victim, worker: dead.id, campaignStatus: c.status, receivedAtKill, recipientsAtKill, held: held.map((r) => r.email), inFlight: new Set(), duplicates: 0 });
        starting[victim] = launch(`worker ${victim + 1} (restart ${k + 1})`).then((w) => {
          workers[victim] = w;
          starting[victim] = null;
          return w;
        });
      }
      await Promise.all(starting);
      // Each kill fell inside the run: some allowed recipients were still waiting for their message.
      expect(kills.filter((k) => k.recipientsAtKill >= allowed.size).map((k) => k.at)).toEqual([]);

      // 4. The campaign completes.
      await untilWith(null, 'the campaign to complete', 240_000, async () => {
        assertAlive();
        const c = await t.request('GET', `/v1/campaigns/${campaign.id}`, { token: org.apiKey });
        expectStatus(c, 200);
        if (c.body.status === 'paused' || c.body.status === 'cancelled') throw new Error(`the campaign stopped: ${JSON.stringify(c.body)}`);
        return c.body.status === 'completed';
      });
      const seconds = (Date.now() - startTime) / 1000;
      const last = workers.map((w) => w!.child);
      await stopAll(last);
      for (const c of last) expect(c.proc.exitCode, `${c.name} exits cleanly on SIGTERM`).toBe(0);

      // Every allowed recipient was sent the message, the others were blocked, nothing is left over.
      const statuses = await ctx.db
        .selectFrom('deliveries')
        .select(['status', 'rule', (eb) => eb.fn.countAll<number>().as('n')])
        .where('message_id', '=', messageId!)
        .groupBy(['status', 'rule'])
        .orderBy('status')
        .execute();
      const leftOver = await ctx.db
        .selectFrom('deliveries')
        .select(['email', 'status', 'attempts', 'last_error', 'smtp_response'])
        .where('message_id', '=', messageId!)
        .where('status', 'not in', ['sent', 'blocked'])
        .limit(5)
        .execute();
      expect(statuses.map((s) => [s.status, s.rule, Number(s.n)]), `deliveries neither sent nor blocked, first ones: ${JSON.stringify(leftOver)}`).toEqual([
        ['blocked', 'no_marketing_consent', CONTACTS - allowed.size],
        ['sent', null, allowed.size],
      ]);

      // The SMTP server received exactly the recipients recorded as sent, and every allowed one.
      const copies = new Map<string, number>();
      for (const m of sink.received) for (const r of m.rcptTo) copies.set(r, (copies.get(r) ?? 0) + 1);
      const sentRows = await ctx.db.selectFrom('deliveries').select('email').where('message_id', '=', messageId!).where('status', '=', 'sent').execute();
      const recorded = new Set(sentRows.map((r) => r.email));
      expect(recorded.size).toBe(sentRows.length);
      const missing = [...allowed].filter((a) => !copies.has(a));
      const unexpected = [...copies.keys()].filter((a) => !allowed.has(a));
      expect({ missing: missing.slice(0, 10), unexpected: unexpected.slice(0, 10) }).toEqual({ missing: [], unexpected: [] });
      expect([...recorded].filter((a) => !copies.has(a))).toEqual([]);
      expect([...copies.keys()].filter((a) => !recorded.has(a))).toEqual([]);

      // What each killed worker had claimed and not recorded: the rows taken over from it.
      const takeovers = await sql<{ email: string; from_worker: string }>`SELECT email, from_worker FROM test_takeovers`.execute(ctx.db);
      const byWorker = new Map(kills.map((k) => [k.worker, k]));
      const lapsed: string[] = [];
      for (const r of takeovers.rows) {
        const k = byWorker.get(r.from_worker);
        if (k) k.inFlight.add(r.email);
        else lapsed.push(r.email);
      }
      // A second copy only for a recipient a killed worker held, and no more copies than such kills.
      const unexplained: string[] = [];
      for (const [address, n] of copies) {
        if (n === 1) continue;
        const at = kills.filter((k) => k.inFlight.has(address));
        if (n - 1 > at.length) unexplained.push(`${address}: ${n} copies, held by ${at.length} killed worker(s)${lapsed.includes(address) ? ', and taken from a live worker whose lease lapsed' : ''}`);
        for (const k of at) k.duplicates++;
      }
      expect(unexplained).toEqual([]);
      for (const k of kills) {
        // What could be read right after the kill is among what was taken over from it.
        expect(k.held.filter((e) => !k.inFlight.has(e))).toEqual([]);
        expect(k.inFlight.size).toBeLessThanOrEqual(IN_HAND);
        expect(k.duplicates).toBeLessThanOrEqual(k.inFlight.size);
      }
      // One `sent` event per recipient: a copy sent twice is recorded once.
      const sentEvents = await ctx.db.selectFrom('message_events').select((eb) => eb.fn.countAll<number>().as('n')).where('message_id', '=', messageId!).where('type', '=', 'sent').executeTakeFirstOrThrow();
      expect(Number(sentEvents.n)).toBe(allowed.size);

      const duplicates = [...copies.values()].reduce((a, n) => a + n - 1, 0);
      const takeOvers = started.flatMap((c) => c.lines).filter((l) => l.includes('took over deliveries whose lease ran out')).length;
      const warnings = started.flatMap(problems).filter((l) => !l.includes('took over deliveries'));
      console.log(
        `campaign crash (postgres, seed ${seed}): ${CONTACTS} recipients, ${allowed.size} allowed, delivered in ${seconds.toFixed(1)} s by ${WORKERS} workers (lease ${LEASE_SECONDS} s); ` +
          `SMTP received ${sink.received.length} messages, ${duplicates} duplicate(s); ${takeOvers} take-over(s) logged by the workers` +
          (lapsed.length ? `; ${lapsed.length} row(s) taken from a live worker whose lease lapsed` : '') +
          '\n' +
          kills.map((k, i) => `  kill ${i + 1}: worker ${k.victim + 1} after ${k.receivedAtKill} received (campaign ${k.campaignStatus}); ${k.inFlight.size} claimed and unrecorded; ${k.duplicates} of them received twice`).join('\n') +
          (warnings.length ? `\n  other warnings from the workers (${warnings.length}), first: ${warnings.slice(0, 3).join(' | ')}` : ''),
      );
    },
    480_000,
  );
});
