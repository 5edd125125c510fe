/**
 * The answers of store.ts computed the slow way, by scanning message_events: the reference the
 * rollups are checked against (integration test, benchmark). Never used to serve a request.
 *
 * A delivery's "first" open (click, bounce...) is its earliest event of that type; the rollup's is
 * the first one to arrive. They agree whenever events are written in the order they happened.
 */
import { sql, type Kysely } from 'kysely';
import type { DB } from '../platform/schema.ts';
import type { BucketRow } from './rules.ts';
import type { Scope } from './store.ts';

const TRACKED = sql`('opened', 'clicked', 'bounced', 'complained', 'unsubscribed')`;

function scopeFilter(scope: Scope) {
  if (scope.kind === 'message') return sql`e.message_id = ${scope.id} AND m.origin = 'campaign'`;
  if (scope.kind === 'campaign') return sql`m.campaign_id = ${scope.id} AND m.origin = 'campaign'`;
  return scope.kind === 'audience' ? sql`m.audience_id = ${scope.id}` : sql`m.template_id = ${scope.id}`;
}

export async function scanSeriesRows(db: Kysely<DB>, orgId: string, scope: Scope, starts: readonly Date[], end: Date): Promise<BucketRow[]> {
  const thresholds = `{${starts.map((s) => `"${s.toISOString()}"`).join(',')}}`;
  const r = await sql<BucketRow>`
    WITH ev AS (
      SELECT e.id, e.delivery_id, e.type, e.at
      FROM message_events e JOIN messages m ON m.id = e.message_id
      WHERE e.org_id = ${orgId} AND ${scopeFilter(scope)}
    ),
    firsts AS (
      SELECT DISTINCT ON (delivery_id, type) delivery_id, type, at
      FROM ev WHERE delivery_id IS NOT NULL AND type IN ${TRACKED}
      ORDER BY delivery_id, type, at, id
    ),
    measures AS (
      SELECT date_trunc('hour', at, 'UTC') AS hour, type, count(*) AS total, 0::bigint AS uniq FROM ev GROUP BY 1, 2
      UNION ALL
      SELECT date_trunc('hour', at, 'UTC'), type, 0, count(*) FROM firsts GROUP BY 1, 2
      UNION ALL
      SELECT date_trunc('hour', coalesce(d.sent_at, f.at), 'UTC'), CASE WHEN d.sent_at IS NULL THEN 'bounced:unsent' ELSE 'bounced:sent_hour' END, count(*), count(*)
      FROM firsts f JOIN deliveries d ON d.id = f.delivery_id WHERE f.type = 'bounced' GROUP BY 1, 2
    )
    SELECT width_bucket(hour, ${thresholds}::timestamptz[]) - 1 AS bucket, type, sum(total) AS total, sum(uniq) AS uniq
    FROM measures
    WHERE hour >= ${starts[0]!}::timestamptz AND hour < ${end}::timestamptz
    GROUP BY 1, 2`.execute(db);
  return r.rows.map((x) => ({ bucket: Number(x.bucket), type: x.type, total: Number(x.total), uniq: Number(x.uniq) }));
}

export async function scanTopLinks(db: Kysely<DB>, orgId: string, scope: Scope, limit: number) {
  const r = await sql<{ url: string; clicks: number; unique_clickers: number }>`
    SELECT e.detail->>'url' AS url, count(*) AS clicks, count(DISTINCT e.delivery_id) AS unique_clickers
    FROM message_events e JOIN messages m ON m.id = e.message_id
    WHERE e.org_id = ${orgId} AND ${scopeFilter(scope)} AND e.type = 'clicked' AND e.delivery_id IS NOT NULL AND e.detail->>'url' IS NOT NULL
    GROUP BY 1
    ORDER BY clicks DESC, unique_clickers DESC, url
    LIMIT ${limit}`.execute(db);
  return r.rows.map((x) => ({ url: x.url, clicks: Number(x.clicks), unique_clickers: Number(x.unique_clickers) }));
}
