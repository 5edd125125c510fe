import { sql, type Kysely } from 'kysely';
import type { DB } from '../platform/schema.ts';
import type { BucketRow } from './rules.ts';

type Q = Kysely<DB>;

/**
 * What a report is about. A message scope is a campaign's message (the rollup keeps no other); a
 * campaign scope is every message (run) of a campaign: a recurring campaign's runs go to different
 * people, so their unique counts add up.
 */
export type Scope = { kind: 'audience' | 'template' | 'message' | 'campaign'; id: string };

const COLUMN = { audience: 'audience_id', template: 'template_id', message: 'message_id' } as const;

/** The rollup rows of a scope (`alias`: the rollup table's, when the query names it). */
function inScope(scope: Scope, alias = '') {
  const column = (name: string) => sql.ref(alias ? `${alias}.${name}` : name);
  return scope.kind === 'campaign'
    ? sql<boolean>`${column('message_id')} IN (SELECT id FROM messages WHERE campaign_id = ${scope.id})`
    : sql<boolean>`${column(COLUMN[scope.kind])} = ${scope.id}`;
}

/** The message a report or a clicker list names, to check it is the caller's (reports read the events of messages). */
export function findMessage(db: Q, orgId: string, id: string) {
  return db.selectFrom('messages').select(['id', 'audience_id', 'origin']).where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst();
}

/**
 * Rollup sums per bucket and type. The bucket of an hour is found by width_bucket against the
 * bucket starts computed by rules.ts, so time-zone arithmetic lives in one place and the database
 * only adds up. Returns 0-based bucket indexes.
 */
export async function seriesRows(db: Q, orgId: string, scope: Scope, starts: readonly Date[], end: Date): Promise<BucketRow[]> {
  if (starts.length === 0) return [];
  const thresholds = `{${starts.map((s) => `"${s.toISOString()}"`).join(',')}}`;
  const rows = await db
    .selectFrom('report_hourly')
    .select((eb) => [
      sql<number>`width_bucket(hour, ${thresholds}::timestamptz[]) - 1`.as('bucket'),
      'type',
      eb.fn.sum<number>('total').as('total'),
      eb.fn.sum<number>('uniq').as('uniq'),
    ])
    .where('org_id', '=', orgId)
    .where(inScope(scope))
    .where('hour', '>=', starts[0]!)
    .where('hour', '<', end)
    .groupBy([sql`1`, 'type'])
    .execute();
  return rows.map((r) => ({ bucket: Number(r.bucket), type: r.type, total: Number(r.total), uniq: Number(r.uniq) }));
}

/** The most clicked links of a scope, with the people who clicked each (first clicks in the range). */
export async function topLinks(db: Q, orgId: string, scope: Scope, range: { from?: Date; to?: Date }, limit: number) {
  const rows = await db
    .selectFrom('report_link_hourly')
    .select((eb) => [sql<string>`min(url)`.as('url'), eb.fn.sum<number>('total').as('clicks'), eb.fn.sum<number>('uniq').as('unique_clickers')])
    .where('org_id', '=', orgId)
    .where(inScope(scope))
    .$if(range.from !== undefined, (q) => q.where('hour', '>=', range.from!))
    .$if(range.to !== undefined, (q) => q.where('hour', '<', range.to!))
    .groupBy('url_hash')
    .orderBy('clicks', 'desc')
    .orderBy('unique_clickers', 'desc')
    .orderBy('url')
    .limit(limit)
    .execute();
  return rows.map((r) => ({ url: r.url, clicks: Number(r.clicks), unique_clickers: Number(r.unique_clickers) }));
}

export interface Clicker {
  delivery_id: string;
  contact_id: string | null;
  email: string;
  url: string;
  first_click_at: Date;
  last_click_at: Date;
  clicks: number;
}

/** first_at as PostgreSQL text: a JS Date drops microseconds, and the cursor would skip or repeat rows. */
export type ClickerCursor = { at: string; deliveryId: string; urlHash: string };

/** Who clicked the links of a campaign message or of all a campaign's runs (or one link), first clickers first. */
export async function clickers(db: Q, orgId: string, scope: Scope & { kind: 'message' | 'campaign' }, url: string | null, page: { limit: number; offset?: number; after?: ClickerCursor | null }) {
  const after = page.after ?? null;
  const rows = await db
    .selectFrom('report_link_clicks as c')
    .innerJoin('deliveries as d', 'd.id', 'c.delivery_id')
    .select(['c.delivery_id', 'd.contact_id', 'd.email', 'c.url', 'c.first_at as first_click_at', 'c.last_at as last_click_at', 'c.clicks', 'c.url_hash'])
    .select(sql<string>`c.first_at::text`.as('cursor_at'))
    .where('c.org_id', '=', orgId)
    .where(inScope(scope, 'c'))
    .$if(url !== null, (q) => q.where('c.url_hash', '=', sql<string>`md5(${url})::uuid`))
    .$if(after !== null, (q) => q.where(sql<boolean>`(c.first_at, c.delivery_id, c.url_hash) > (${after!.at}::timestamptz, ${after!.deliveryId}::uuid, ${after!.urlHash}::uuid)`))
    .orderBy('c.first_at')
    .orderBy('c.delivery_id')
    .orderBy('c.url_hash')
    .limit(page.limit)
    .$if(page.offset !== undefined && page.offset > 0, (q) => q.offset(page.offset!))
    .execute();
  return rows.map(({ url_hash, cursor_at, ...r }) => ({ clicker: { ...r, clicks: Number(r.clicks) } as Clicker, cursor: { at: cursor_at, deliveryId: r.delivery_id, urlHash: url_hash } }));
}
