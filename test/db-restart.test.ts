import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dbKind } from './support/harness.ts';
import { startSmtpSink, type SmtpSink } from './support/smtp-sink.ts';
import { startPgCluster, type PgCluster } from './support/pg-cluster.ts';
import { alive, envoiEnv, freePort, problems, startServer, startWorker, stopAll, started, summarise, untilWith } from './support/processes.ts';

/*
 * The "Database faults" reliability suite: PostgreSQL fails under a running campaign, `envoi serve`
 * and two `envoi worker` processes must reconnect by themselves, the campaign completes, every
 * allowed recipient gets the message, and the deliveries marked sent are exactly what the SMTP
 * server received. Copies sent twice (sent during the outage, not recorded) are counted and bounded
 * by what the workers can hold in flight.
 *
 * - the server restarted twice: a crash (`pg_ctl stop -m immediate`, recovered from the WAL) while
 *   the recipients are being resolved, and a stop (`-m fast`, down longer than a worker retries a
 *   write) while the mail is being sent;
 * - every connection of the envoi processes cut (pg_terminate_backend) while resolving and while
 *   sending, the server staying up: what a restarted connection pooler or proxy does.
 *
 * The machine's shared PostgreSQL serves other tests meanwhile, so this runs on a throwaway cluster
 * of its own (test/support/pg-cluster.ts). Nothing to restart on PGlite: skipped there.
 */

const CONTACTS = 4_000;
const WORKERS = 2;
// Longer than the outage while sending: rows in flight then are still the worker's when the server is back.
const LEASE_SECONDS = 10;
/** The most rows one worker holds at once (src/sending/worker.ts: two bulk batches of 250 in hand). */
const IN_HAND = 2 * 250;
const consents = (i: number) => i % 20 !== 7;
const email = (i: number) => `fan${i}@crowd${i % 50}.example.com`;
const EMAIL_SQL = `'fan' || i || '@crowd' || (i % 50) || '.example.com'`;

let cluster: PgCluster | null = null;
const pools: pg.Pool[] = [];
const sinks: SmtpSink[] = [];

beforeAll(async () => {
  if (dbKind !== 'postgres') return;
  cluster = await startPgCluster();
});

afterAll(async () => {
  await stopAll(started);
  for (const p of pools) await p.end().catch(() => {});
  for (const s of sinks) await s.close();
  await cluster?.destroy();
});

interface Fault {
  /** while the recipients are written, or once this share of the allowed recipients was received */
  when: 'resolving' | number;
  /** does it, and says what it did */
  act: () => Promise<string>;
}

/** A campaign through envoi processes on database `name` of the cluster, with `faults` on the way; resolves with what it saw. */
async function campaignThrough(name: string, faults: Fault[]) {
  const admin = new pg.Client({ connectionString: cluster!.url() });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = cluster!.url(name);
  const sink = await startSmtpSink();
  sinks.push(sink);
  // The test's own connections see the faults too: a pool replaces its lost clients, and a client it
  // has not yet seen die fails one query: the next attempt gets a fresh one.
  const db = new pg.Pool({ connectionString: url, max: 2 });
  db.on('error', () => {});
  pools.push(db);
  const query = async <T extends pg.QueryResultRow>(text: string, params: unknown[] = []): Promise<T[]> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return (await db.query<T>(text, params)).rows;
      } catch (e) {
        if (attempt >= 5) throw e;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  };

  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const env = envoiEnv({ DATABASE_URL: url, SMTP_URL: sink.url, ENVOI_WORKER_LEASE_SECONDS: String(LEASE_SECONDS), ENVOI_WORKER_CONCURRENCY: '8' });
  const server = await startServer(`envoi serve (${name})`, port, env);
  const workers = await Promise.all(Array.from({ length: WORKERS }, (_, i) => startWorker(`worker ${i + 1} (${name})`, env)));
  const everyone = [server, ...workers.map((w) => w.child)];
  const allAlive = () => {
    for (const c of everyone) if (!alive(c)) throw new Error(`${c.name} died:\n${c.lines.slice(-30).join('\n')}`);
  };

  const api = async (method: string, path: string, token: string | null, body?: unknown) => {
    const r = await fetch(base + path, {
      method,
      headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    const text = await r.text();
    if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${text}`);
    return JSON.parse(text);
  };
  const org = await api('POST', '/v1/organisations', null, { name: 'Faults Org', owner_email: 'owner@faults.example.com', owner_password: 'correct horse battery staple' });
  const token = org.token as string;
  const audience = await api('POST', '/v1/audiences', token, { name: 'Crowd' });
  await query(
    `INSERT INTO contacts (org_id, audience_id, email, email_lower, first_name, marketing_authorized_at)
     SELECT $1, $2, ${EMAIL_SQL}, ${EMAIL_SQL}, 'Fan' || i, CASE WHEN i % 20 <> 7 THEN now() - interval '30 days' END
     FROM generate_series(0, $3::int - 1) AS i`,
    [org.organisation.id, audience.id, CONTACTS],
  );
  await query('ANALYZE contacts');
  const allowed = new Set(Array.from({ length: CONTACTS }, (_, i) => i).filter(consents).map(email));
  const template = await api('POST', `/v1/audiences/${audience.id}/templates`, token, {
    name: 'News',
    category: 'marketing',
    language: 'en',
    subject: 'News for {{ first_name }}',
    body: '<p>Hello {{ first_name }}, <a href="https://example.org/programme">the programme</a> is out.</p><p><a href="[UNSUBLINK]">Unsubscribe</a></p>',
  });
  const view = await api('POST', `/v1/audiences/${audience.id}/views`, token, { name: 'Everyone', filter: { and: [] } });
  const t0 = Date.now();
  const campaign = await api('POST', `/v1/audiences/${audience.id}/campaigns`, token, { name: 'Faults news', template_id: template.id, target: { view_id: view.id }, start: true });
  const status = async () => (await query<{ status: string; message_id: string | null; last_error: string | null }>('SELECT status, message_id, last_error FROM campaigns WHERE id = $1', [campaign.id]))[0]!;
  const stopped = (c: { status: string; last_error: string | null }) => {
    if (c.status === 'paused' || c.status === 'cancelled') throw new Error(`the campaign stopped (${c.status}): ${c.last_error}`);
  };

  const timeline: string[] = [];
  for (const f of faults) {
    if (f.when === 'resolving') {
      await untilWith(null, 'the campaign to be resolving', 60_000, async () => {
        allAlive();
        return (await status()).status === 'resolving';
      });
      const what = await f.act();
      const back = Date.now();
      await untilWith(null, `the recipients to be resolved after: ${what}`, 240_000, async () => {
        allAlive();
        const c = await status();
        stopped(c);
        return ['sending', 'completed'].includes(c.status);
      });
      timeline.push(`${what} while resolving: resolution finished ${((Date.now() - back) / 1000).toFixed(1)} s later`);
    } else {
      const share = f.when;
      await untilWith(null, `the campaign to send ${share * 100}% of its mail`, 240_000, async () => {
        allAlive();
        stopped(await status());
        return sink.received.length >= allowed.size * share;
      });
      const at = sink.received.length;
      const what = await f.act();
      const back = Date.now();
      const n = sink.received.length;
      await untilWith(null, `a message sent after: ${what}`, 60_000, () => {
        allAlive();
        return sink.received.length > n;
      });
      timeline.push(`${what} at ${at} received: sending again ${((Date.now() - back) / 1000).toFixed(1)} s later`);
    }
  }

  await untilWith(null, 'the campaign to complete', 240_000, async () => {
    allAlive();
    const c = await status();
    stopped(c);
    return c.status === 'completed';
  });
  const seconds = (Date.now() - t0) / 1000;
  expect((await api('GET', `/v1/campaigns/${campaign.id}`, token)).status).toBe('completed');
  allAlive();

  // Nothing lost: every allowed recipient sent (and received), the others blocked, no row left over.
  const { message_id: messageId } = await status();
  const byStatus = await query<{ status: string; rule: string | null; n: number }>('SELECT status, rule, count(*)::int AS n FROM deliveries WHERE message_id = $1 GROUP BY 1, 2 ORDER BY 1', [messageId]);
  const leftOver = await query("SELECT email, status, attempts, last_error, smtp_response FROM deliveries WHERE message_id = $1 AND status NOT IN ('sent', 'blocked') LIMIT 5", [messageId]);
  expect(byStatus.map((r) => [r.status, r.rule, r.n]), `deliveries neither sent nor blocked, first ones: ${JSON.stringify(leftOver)}`).toEqual([
    ['blocked', 'no_marketing_consent', CONTACTS - allowed.size],
    ['sent', null, allowed.size],
  ]);
  const copies = new Map<string, number>();
  for (const m of sink.received) for (const r of m.rcptTo) copies.set(r, (copies.get(r) ?? 0) + 1);
  const recorded = new Set((await query<{ email: string }>("SELECT email FROM deliveries WHERE message_id = $1 AND status = 'sent'", [messageId])).map((r) => r.email));
  expect([...allowed].filter((a) => !copies.has(a)).slice(0, 10)).toEqual([]);
  expect([...copies.keys()].filter((a) => !recorded.has(a)).slice(0, 10)).toEqual([]);
  expect([...recorded].filter((a) => !allowed.has(a)).slice(0, 10)).toEqual([]);
  const sentEvents = (await query<{ n: number }>("SELECT count(*)::int AS n FROM message_events WHERE message_id = $1 AND type = 'sent'", [messageId]))[0]!.n;
  expect(sentEvents).toBe(allowed.size);

  // Sent twice: at most what the workers held at each fault.
  const duplicates = [...copies.values()].reduce((a, n) => a + n - 1, 0);
  expect([...copies.values()].every((n) => n <= 1 + faults.length)).toBe(true);
  expect(duplicates).toBeLessThanOrEqual(faults.length * WORKERS * IN_HAND);

  await stopAll(everyone);
  const logged = everyone.flatMap(problems);
  return (
    `${CONTACTS} recipients, ${allowed.size} allowed, completed in ${seconds.toFixed(1)} s by ${WORKERS} workers (lease ${LEASE_SECONDS} s); ${timeline.join('; ')}; ` +
    `SMTP received ${sink.received.length}: ${duplicates} duplicate(s); ${logged.length} warning/error lines logged by server and workers${logged.length ? `: ${summarise(logged)}` : ''}`
  );
}

describe('database faults', () => {
  it.skipIf(dbKind !== 'postgres')(
    'PostgreSQL restarted twice during a campaign (crashed while resolving, stopped 5 s while sending): server and workers reconnect, the campaign completes, nothing lost (skipped on PGlite: no server to restart)',
    async () => {
      const summary = await campaignThrough('envoi_restart', [
        { when: 'resolving', act: async () => `crash (-m immediate), down ${(await cluster!.restart('immediate', { downMs: 2000 })).ms} ms` },
        { when: 0.4, act: async () => `stop (-m fast), down ${(await cluster!.restart('fast', { downMs: 5000 })).ms} ms` },
      ]);
      console.log(`database restart (throwaway PostgreSQL cluster): ${summary}`);
    },
    480_000,
  );

  it.skipIf(dbKind !== 'postgres')(
    "connections of envoi's processes cut (pg_terminate_backend), the server up: the one writing the recipients, then all of them while sending; the campaign completes, nothing lost (skipped on PGlite)",
    async () => {
      const terminate = async (which: string, where: string, atLeastOne = false) => {
        const c = new pg.Client({ connectionString: cluster!.url() });
        await c.connect();
        try {
          for (const end = Date.now() + 30_000; ; ) {
            const r = await c.query(
              `SELECT count(*)::int AS n FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
               WHERE datname = 'envoi_cut' AND pid <> pg_backend_pid() AND backend_type = 'client backend' AND ${where}) t`,
            );
            if (r.rows[0].n > 0 || !atLeastOne) return `${which} cut (${r.rows[0].n})`;
            if (Date.now() > end) throw new Error(`found no connection to cut: ${which} (${where})`);
            await new Promise((res) => setTimeout(res, 10));
          }
        } finally {
          await c.end();
        }
      };
      const summary = await campaignThrough('envoi_cut', [
        // What a dropped connection, a pooler's restart or an administrator does to one session; the others work on.
        { when: 'resolving', act: () => terminate('the connection writing the recipients', `state = 'active' AND query ~* 'insert\\s+into\\s+"?deliveries'`, true) },
        { when: 0.4, act: () => terminate('every connection', 'true') },
      ]);
      console.log(`connections cut (throwaway PostgreSQL cluster): ${summary}`);
    },
    480_000,
  );
});
