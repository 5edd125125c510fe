/**
 * Operational metrics in Prometheus' text format at GET /metrics.
 *
 * Two kinds: what this process did (claims, send outcomes: counters and a histogram the worker feeds
 * through recordClaim and recordOutcome, plus Node's own process metrics), and the state of the queue,
 * read from the database at scrape time, the same whichever node is scraped (sum the first kind over
 * instances, never the second).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { App } from './http.ts';
import type { AppContext } from './context.ts';
import type { DB, Lane } from './schema.ts';
import { unauthorized } from './errors.ts';

const LANES: readonly Lane[] = ['transactional', 'bulk'];
const PENDING = ['queued', 'deferred', 'sending'] as const;
const OUTCOMES = ['sent', 'deferred', 'bounced', 'failed', 'blocked'] as const;
export type OutcomeStatus = (typeof OUTCOMES)[number];

/** This process's metrics. One per process: the worker records into it without a context. */
export const registry = new Registry();
collectDefaultMetrics({ register: registry });

const outcomes = new Counter({
  name: 'envoi_delivery_outcomes_total',
  help: 'Deliveries this process finished an attempt of, by outcome (sent per second: rate(envoi_delivery_outcomes_total{status="sent"}[1m]))',
  labelNames: ['status'],
  registers: [registry],
});
const claimed = new Counter({ name: 'envoi_claimed_deliveries_total', help: 'Deliveries claimed by this process, by lane', labelNames: ['lane'], registers: [registry] });
const claimSeconds = new Histogram({
  name: 'envoi_claim_duration_seconds',
  help: 'Time of one claim statement (FOR UPDATE SKIP LOCKED) of this process, by lane',
  labelNames: ['lane'],
  buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  registers: [registry],
});
// Every series exists from the start: a rate over a counter that appears late misses its first increase.
for (const s of OUTCOMES) outcomes.inc({ status: s }, 0);
for (const lane of LANES) {
  claimed.inc({ lane }, 0);
  claimSeconds.zero({ lane });
}

/** Called by the worker after each claim, with the claim's duration and the rows it got. */
export function recordClaim(lane: Lane, ms: number, rows: number) {
  claimSeconds.observe({ lane }, ms / 1000);
  claimed.inc({ lane }, rows);
}

/** Called by the worker for each delivery attempt it finishes. */
export function recordOutcome(status: OutcomeStatus) {
  outcomes.inc({ status });
}

interface QueueRow {
  lane: Lane;
  status: (typeof PENDING)[number];
  n: number;
  due: number;
  oldest_due: Date | null;
}

/**
 * The queue across every organisation, in one statement. The filter is the predicate of the
 * deliveries_due index, which holds exactly the pending rows: the scan costs the backlog, not the log.
 */
async function queueState(db: Kysely<DB>, now: Date): Promise<QueueRow[]> {
  const r = await sql<QueueRow>`
    SELECT lane, status, count(*) AS n,
           count(*) FILTER (WHERE due_at <= ${now}::timestamptz) AS due,
           min(due_at) FILTER (WHERE due_at <= ${now}::timestamptz) AS oldest_due
    FROM deliveries
    WHERE status IN ('queued', 'deferred', 'sending')
    GROUP BY lane, status`.execute(db);
  return r.rows.map((x) => ({ ...x, n: Number(x.n), due: Number(x.due), oldest_due: x.oldest_due ? new Date(x.oldest_due) : null }));
}

/** The metrics text: this process's, and the queue's as of now. */
export async function scrape(ctx: AppContext): Promise<string> {
  const now = ctx.now();
  const rows = await queueState(ctx.db, now);
  const queue = new Registry();
  const pending = new Gauge({ name: 'envoi_deliveries', help: 'Deliveries waiting (queued, deferred) or being sent, by lane and status', labelNames: ['lane', 'status'], registers: [queue] });
  const due = new Gauge({
    name: 'envoi_deliveries_due',
    help: 'Deliveries whose time has come and that no worker holds, by lane and status (status "sending": the lease of a worker that stopped ran out)',
    labelNames: ['lane', 'status'],
    registers: [queue],
  });
  const oldest = new Gauge({ name: 'envoi_oldest_due_delivery_age_seconds', help: 'How long the oldest due delivery of a lane has been waiting (0: none)', labelNames: ['lane'], registers: [queue] });
  for (const lane of LANES) {
    const mine = rows.filter((r) => r.lane === lane);
    for (const status of PENDING) {
      const r = mine.find((x) => x.status === status);
      pending.set({ lane, status }, r?.n ?? 0);
      due.set({ lane, status }, r?.due ?? 0);
    }
    const first = Math.min(...mine.map((r) => r.oldest_due?.getTime() ?? Infinity));
    oldest.set({ lane }, Number.isFinite(first) ? Math.max(0, (now.getTime() - first) / 1000) : 0);
  }
  return Registry.merge([registry, queue]).metrics();
}

function sameToken(given: string, expected: string): boolean {
  // Digests have one length: the comparison takes the same time whatever was sent.
  const h = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(h(given), h(expected));
}

/** GET /metrics: open, or behind `Authorization: Bearer <ENVOI_METRICS_TOKEN>` when one is configured. */
export function metricsRoutes(app: App, ctx: AppContext) {
  app.get('/metrics', { schema: { hide: true } }, async (req, reply) => {
    const expected = ctx.config.metricsToken;
    if (expected !== null) {
      const h = req.headers.authorization ?? '';
      const given = /^Bearer\s+/i.test(h) ? h.replace(/^Bearer\s+/i, '').trim() : '';
      if (!sameToken(given, expected)) {
        reply.header('www-authenticate', 'Bearer realm="metrics"');
        throw unauthorized('GET /metrics needs Authorization: Bearer <ENVOI_METRICS_TOKEN>');
      }
    }
    reply.header('content-type', registry.contentType);
    return scrape(ctx);
  });
}
