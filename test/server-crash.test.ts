import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dbKind, freshDatabase } from './support/harness.ts';
import { startSmtpSink, type SmtpSink } from './support/smtp-sink.ts';
import { alive, crashSeed, envoiEnv, freePort, killHard, seededRandom, startServer, startWorker, stopAll, started, untilWith, type Child } from './support/processes.ts';

/*
 * The "Server crash" reliability suite: `envoi serve` takes a burst of triggered sends
 * (POST /v1/messages, many at once, each with its own idempotency key and recipient) and is SIGKILLed
 * in the middle of it, then started again. Every request answered 202 is delivered; a request that
 * got an error or no answer at all (its connection was cut) is delivered only if it was in fact
 * committed, which GET /v1/messages?idempotency_key= tells; retried with the same key, it is then
 * replayed, not sent again.
 *
 * On PostgreSQL the worker is a separate `envoi worker` process that keeps running: every message
 * reaches the SMTP server exactly once. On PGlite (a data folder, the embedded database) the worker
 * runs inside the server process and dies with it: what it had sent but not recorded goes out again
 * after its lease, and those copies are counted against the take-overs the restarted server logs.
 */

const LEASE_SECONDS = 3;
const CONCURRENCY = 32;

let dataDir: string | null = null;
let dropDatabase: (() => Promise<void>) | null = null;
let sink: SmtpSink;

beforeAll(async () => {
  sink = await startSmtpSink();
});

afterAll(async () => {
  await stopAll(started);
  await sink?.close();
  await dropDatabase?.();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

type Outcome = { kind: 'accepted'; id: string } | { kind: 'error'; status: number; body: string } | { kind: 'no answer'; error: string };

interface Request {
  key: string;
  email: string;
  outcome?: Outcome;
}

describe('server crash', () => {
  it(
    `every triggered send answered 202 is delivered after a SIGKILL of the API process mid-burst; unanswered ones only if committed, as GET by idempotency key says (${dbKind})`,
    async () => {
      const seed = crashSeed();
      const random = seededRandom(seed);
      const port = await freePort();
      const base = `http://127.0.0.1:${port}`;
      let env: NodeJS.ProcessEnv;
      let worker: Child | null = null;
      if (dbKind === 'postgres') {
        const fresh = await freshDatabase();
        await fresh.database.close();
        dropDatabase = fresh.drop;
        env = envoiEnv({ DATABASE_URL: fresh.url!, SMTP_URL: sink.url, ENVOI_WORKER_LEASE_SECONDS: String(LEASE_SECONDS) });
      } else {
        dataDir = mkdtempSync(join(tmpdir(), 'envoi-server-crash-'));
        env = envoiEnv({ ENVOI_DATA_DIR: dataDir, SMTP_URL: sink.url, ENVOI_WORKER_LEASE_SECONDS: String(LEASE_SECONDS) });
      }
      let server = await startServer('envoi serve', port, env);
      if (dbKind === 'postgres') {
        worker = (await startWorker('envoi worker', env)).child;
      }

      const call = async (method: string, path: string, token: string | null, body?: unknown) => {
        const r = await fetch(base + path, {
          method,
          headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
          body: body !== undefined ? JSON.stringify(body) : undefined,
        });
        const text = await r.text();
        return { status: r.status, headers: r.headers, body: text ? JSON.parse(text) : null };
      };
      const api = async (method: string, path: string, token: string | null, body?: unknown) => {
        const r = await call(method, path, token, body);
        if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
        return r.body;
      };

      // An organisation, an audience, a transactional template, a key whose rate limit the burst cannot reach.
      const org = await api('POST', '/v1/organisations', null, { name: 'Crash Org', owner_email: 'owner@crash.example.com', owner_password: 'correct horse battery staple' });
      const audience = await api('POST', '/v1/audiences', org.token, { name: 'Guests' });
      const template = await api('POST', `/v1/audiences/${audience.id}/templates`, org.token, {
        name: 'Booking',
        category: 'transactional',
        language: 'en',
        subject: 'Booking {{ vars.booking }} confirmed',
        body: '<p>Hello {{ first_name }}, booking {{ vars.booking }} is confirmed.</p>',
      });
      const key = (await api('POST', '/v1/api-keys', org.token, { name: 'burst', role: 'editor', rate_limit_per_minute: 1_000_000 })).key as string;
      const send = (r: Request) =>
        call('POST', '/v1/messages', key, { template_id: template.id, to: { email: r.email, first_name: 'Guest' }, variables: { booking: r.key }, idempotency_key: r.key });

      // The burst: CONCURRENCY requests at a time; the server is killed once `killAfter` were accepted,
      // and each sender tries a few more against the dead port.
      const killAfter = 100 + Math.floor(random() * 300);
      console.log(`server crash (${dbKind}): seed ${seed} (replay with ENVOI_CRASH_SEED=${seed}); SIGKILL after ${killAfter} accepted requests`);
      const requests: Request[] = [];
      let accepted = 0;
      let killedAt: number | null = null;
      const killed = (async () => {
        await untilWith(server, `${killAfter} accepted requests`, 120_000, () => accepted >= killAfter);
        await killHard(server);
        killedAt = Date.now();
      })();
      const loop = async () => {
        // After the kill, a few more each: they find the port closed.
        for (let after = 0; after < 3; after += killedAt === null ? 0 : 1) {
          const i = requests.length;
          const r: Request = { key: `burst-${seed}-${i}`, email: `guest${i}@burst${i % 20}.example.com` };
          requests.push(r);
          try {
            const res = await send(r);
            if (res.status === 202) {
              r.outcome = { kind: 'accepted', id: res.body.id };
              accepted++;
            } else r.outcome = { kind: 'error', status: res.status, body: JSON.stringify(res.body) };
          } catch (e) {
            r.outcome = { kind: 'no answer', error: String((e as Error & { cause?: unknown }).cause ?? e) };
          }
        }
      };
      await Promise.all([killed, ...Array.from({ length: CONCURRENCY }, loop)]);
      const acceptedBefore = requests.filter((r) => r.outcome?.kind === 'accepted');
      const unanswered = requests.filter((r) => r.outcome?.kind !== 'accepted');
      const errors = unanswered.filter((r) => r.outcome?.kind === 'error');
      expect(acceptedBefore.length).toBeGreaterThanOrEqual(killAfter);
      expect(unanswered.length).toBeGreaterThan(0);

      // Started again on the same data.
      server = await startServer('envoi serve (restarted)', port, env);

      // A request without a 202 was stored or not; GET by its key says which, and sends nothing.
      const committed = new Set<string>();
      for (const r of unanswered) {
        const g = await call('GET', `/v1/messages?idempotency_key=${encodeURIComponent(r.key)}`, key);
        if (g.status === 200) {
          expect(g.body.idempotency_key).toBe(r.key);
          expect(g.body.deliveries.map((d: { email: string }) => d.email)).toEqual([r.email]);
          committed.add(r.key);
        } else expect(g.status, `GET by key ${r.key}: ${JSON.stringify(g.body)}`).toBe(404);
      }
      for (const r of acceptedBefore) {
        const g = await call('GET', `/v1/messages?idempotency_key=${encodeURIComponent(r.key)}`, key);
        expect(g.status, `an accepted request is stored: ${r.key}`).toBe(200);
        expect(g.body.id).toBe((r.outcome as { id: string }).id);
      }

      // Every stored one is delivered; no other.
      const copies = () => {
        const n = new Map<string, number>();
        for (const m of sink.received) for (const to of m.rcptTo) n.set(to, (n.get(to) ?? 0) + 1);
        return n;
      };
      const stored = requests.filter((r) => r.outcome?.kind === 'accepted' || committed.has(r.key));
      await untilWith(worker ?? server, 'every stored message to reach the SMTP server', 120_000, () => {
        const n = copies();
        return stored.every((r) => n.has(r.email));
      });
      const afterRestart = copies();
      const notStored = unanswered.filter((r) => !committed.has(r.key));
      expect(notStored.filter((r) => afterRestart.has(r.email)).map((r) => r.key)).toEqual([]);

      // The client's retry of what got no 202, with the same key: a replay for the stored ones, a first send for the others.
      let replayed = 0;
      for (const r of unanswered) {
        const res = await send(r);
        expect(res.status, `retry of ${r.key}: ${JSON.stringify(res.body)}`).toBe(202);
        const wasReplayed = res.headers.get('idempotent-replayed') === 'true';
        expect(wasReplayed, `retry of ${r.key} is a replay exactly when the first attempt was stored`).toBe(committed.has(r.key));
        if (wasReplayed) replayed++;
      }
      await untilWith(worker ?? server, 'every request to reach the SMTP server', 120_000, () => {
        const n = copies();
        return requests.every((r) => n.has(r.email));
      });

      // Copies: exactly one each when the worker lived on; otherwise extra ones only for what the
      // killed process's worker had in flight, which the restarted server took over after the lease.
      const final = copies();
      expect(final.size).toBe(requests.length);
      const extra = [...final.values()].reduce((a, n) => a + n - 1, 0);
      const tookOver = started
        .flatMap((c) => c.lines)
        .filter((l) => l.includes('took over deliveries whose lease ran out'))
        .reduce((a, l) => a + (JSON.parse(l) as { count: number }).count, 0);
      if (dbKind === 'postgres') {
        expect([...final].filter(([, n]) => n > 1)).toEqual([]);
        expect(alive(worker!)).toBe(true);
      } else {
        expect([...final.values()].every((n) => n <= 2)).toBe(true);
        expect(extra).toBeLessThanOrEqual(tookOver);
      }
      console.log(
        `server crash (${dbKind}, seed ${seed}): ${requests.length} requests, ${acceptedBefore.length} answered 202 before the kill, ` +
          `${unanswered.length} without (${errors.length} error statuses${errors.length ? `: ${[...new Set(errors.map((r) => (r.outcome as { status: number }).status))].join(', ')}` : ''}, ${unanswered.length - errors.length} no answer); ` +
          `${committed.size} of those were committed (found by key, delivered, replayed on retry: ${replayed}), ${notStored.length} were not (not delivered, sent once on retry); ` +
          `SMTP received ${sink.received.length} for ${final.size} recipients: ${extra} duplicate(s)` +
          (dbKind === 'postgres' ? ' (worker process not killed)' : `, ${tookOver} deliveries taken over from the killed process's worker`),
      );
    },
    240_000,
  );
});
