import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { DB, FieldType } from '../platform/schema.ts';
import { escapeLike } from '../platform/like-pattern.ts';
import {
  excludesMissing,
  keysetBranches,
  numberMatches,
  type Bound,
  type Column,
  type Condition,
  type CursorPosition,
  type Predicate,
  type Sort,
} from './grid-rules.ts';

// SQL for the contacts grid. Everything a caller sends reaches PostgreSQL as a bound parameter:
// column names come from the fixed lists below (central field keys, already checked against the
// fields table, are parameters of `fields -> $n`), values are always parameters.
//
// Filters read `contacts c` of one audience; what lives in another table (company, account, events,
// communities) is reached by EXISTS / NOT EXISTS, which PostgreSQL runs as semi- and anti-joins, so
// the same WHERE clause serves the page, the total and the bulk UPDATE. The page's ids are chosen on
// contacts alone; only those rows are then joined to everything the columns show.

type Q = Kysely<DB>;
type Frag = RawBuilder<unknown>;

/** PostgreSQL types the sort values and parameters are cast to; fixed words, never input. */
type SqlType = 'text' | 'numeric' | 'int8' | 'int4' | 'timestamptz' | 'boolean' | 'uuid';

/** What every piece of SQL below may depend on besides the contact row. */
export interface Env {
  audienceId: string;
  /** "locked" means locked_until is after this instant (the test clock moves it) */
  now: Date;
}

const raw = (s: string): Frag => sql.raw(s);
const and = (parts: Frag[]): Frag => (parts.length === 0 ? sql`true` : parts.length === 1 ? parts[0]! : sql`(${sql.join(parts, sql` AND `)})`);
const or = (parts: Frag[]): Frag => (parts.length === 1 ? parts[0]! : sql`(${sql.join(parts, sql` OR `)})`);
const param = (v: unknown, type: SqlType): Frag => sql`${v}::${raw(type)}`;

const CONTACT_COLUMNS: Record<string, { expr: string; type: SqlType }> = {
  last_name: { expr: 'c.last_name', type: 'text' },
  first_name: { expr: 'c.first_name', type: 'text' },
  // Sorted and compared on the lower-case key, which has the (audience_id, email_lower) indexes.
  email: { expr: 'c.email_lower', type: 'text' },
  company: { expr: 'c.company', type: 'text' },
  job_title: { expr: 'c.job_title', type: 'text' },
  company_id: { expr: 'c.company_id', type: 'uuid' },
  created_at: { expr: 'c.created_at', type: 'timestamptz' },
  updated_at: { expr: 'c.updated_at', type: 'timestamptz' },
  marketing_authorized_at: { expr: 'c.marketing_authorized_at', type: 'timestamptz' },
};

/** A value of the contact row itself: a column, or a central field inside `c.fields`. */
function ownValue(col: Column): { expr: Frag; type: SqlType } | null {
  if (col.source === 'field') {
    const v = sql`(c.fields -> ${col.key}::text)`;
    const txt = sql`(c.fields ->> ${col.key}::text)`;
    // Read with the field's type; a stale value of another type reads as missing, never as an error.
    if (col.type === 'number') return { expr: sql`(CASE WHEN jsonb_typeof(${v}) = 'number' THEN ${txt}::numeric END)`, type: 'numeric' };
    if (col.type === 'boolean') return { expr: sql`(CASE WHEN jsonb_typeof(${v}) = 'boolean' THEN ${txt}::boolean END)`, type: 'boolean' };
    // text, choice, day (YYYY-MM-DD compares as text), multi_choice (its JSON text)
    return { expr: sql`nullif(${txt}, '')`, type: 'text' };
  }
  const own = CONTACT_COLUMNS[col.key];
  return own ? { expr: raw(own.expr), type: own.type } : null;
}

/** As src/accounts/rules.ts countingFailures: a lock that has ended gives a fresh set of attempts. */
const failedAttempts = (a: string, now: Date): Frag =>
  sql`(CASE WHEN ${raw(a)}.locked_until <= ${param(now, 'timestamptz')} THEN 0 ELSE ${raw(a)}.failed_attempts END)`;

/** The account conditions behind the boolean columns, on the account row aliased `a`. */
function accountFlag(key: string, a: string, now: Date): Frag | null {
  if (key === 'has_account') return sql`${raw(a)}.contact_id IS NOT NULL`;
  if (key === 'account_confirmed') return sql`${raw(a)}.confirmed_at IS NOT NULL`;
  if (key === 'account_locked') return sql`${raw(a)}.locked_until > ${param(now, 'timestamptz')}`;
  return null;
}

/**
 * A value from a table holding at most one row per contact: `from` and `link` select that row,
 * `value` reads it.
 */
function related(key: string, now: Date): { from: Frag; link: Frag; value: Frag; type: SqlType } | null {
  if (key === 'company_name') return { from: sql`companies co`, link: sql`co.id = c.company_id`, value: sql`co.name`, type: 'text' };
  if (key === 'failed_attempts') return { from: sql`contact_accounts a`, link: sql`a.contact_id = c.id`, value: failedAttempts('a', now), type: 'int4' };
  if (key === 'lock_end') {
    return { from: sql`contact_accounts a`, link: sql`a.contact_id = c.id AND a.locked_until > ${param(now, 'timestamptz')}`, value: sql`a.locked_until`, type: 'timestamptz' };
  }
  return null;
}

/**
 * Participations (memberships) per contact of the audience, as one grouped pass over the audience's
 * events: joined by hash to all the contacts at once, instead of one count per contact.
 */
function countsTable(key: string, audienceId: string): Frag | null {
  const a = param(audienceId, 'uuid');
  if (key === 'events_count') {
    return sql`(SELECT p.contact_id, count(*) AS n FROM participants p
      WHERE p.event_id IN (SELECT e.id FROM events e WHERE e.audience_id = ${a}) AND p.contact_id IS NOT NULL GROUP BY p.contact_id)`;
  }
  if (key === 'communities_count') {
    return sql`(SELECT m.contact_id, count(*) AS n FROM members m
      WHERE m.community_id IN (SELECT k.id FROM communities k WHERE k.audience_id = ${a}) AND m.contact_id IS NOT NULL GROUP BY m.contact_id)`;
  }
  return null;
}

function bound(expr: Frag, b: Bound, side: 'lower' | 'upper', type: SqlType): Frag {
  const op = side === 'lower' ? (b.inclusive ? '>=' : '>') : b.inclusive ? '<=' : '<';
  return sql`${expr} ${raw(op)} ${param(b.value, type)}`;
}

/** A predicate only a present value satisfies (everything but ne, empty and is_false). */
function positive(expr: Frag, col: Column, pred: Predicate, valueType: SqlType): Frag {
  // Numbers given by the caller may have decimals whatever the column's integer type.
  const type = col.type === 'number' ? 'numeric' : valueType;
  switch (pred.kind) {
    case 'eq':
      return sql`${expr} = ${param(pred.value, type)}`;
    case 'range':
      return and([...(pred.lower ? [bound(expr, pred.lower, 'lower', type)] : []), ...(pred.upper ? [bound(expr, pred.upper, 'upper', type)] : [])]);
    case 'contains':
      return sql`${col.key === 'email' ? sql`c.email` : expr} ILIKE ${`%${escapeLike(pred.text)}%`}`;
    case 'starts_with':
      // email_lower LIKE 'prefix%' can use the text_pattern_ops index; other columns are ILIKE.
      return col.key === 'email' ? sql`c.email_lower LIKE ${`${escapeLike(pred.text.toLowerCase())}%`}` : sql`${expr} ILIKE ${`${escapeLike(pred.text)}%`}`;
    case 'in':
      if (col.type === 'multi_choice') return sql`(c.fields -> ${col.key}::text) ?| ${pred.values}::text[]`;
      return sql`${expr} = ANY(${pred.values}::${raw(type)}[])`;
    case 'not_empty':
      return sql`${expr} IS NOT NULL`;
    case 'is_true':
      return sql`${expr} IS TRUE`;
    default:
      throw new Error(`${pred.kind} is not a positive predicate`);
  }
}

function leafSql(col: Column, pred: Predicate, env: Env): Frag {
  const counts = countsTable(col.key, env.audienceId);
  if (counts) {
    // A contact with no participation has no row in the counts: test the complement when 0 matches.
    const test = pred.kind === 'ne' ? sql`x.n <> ${param(pred.value, 'numeric')}` : positive(sql`x.n`, col, pred, 'numeric');
    return numberMatches(pred, 0)
      ? sql`NOT EXISTS (SELECT 1 FROM ${counts} x WHERE x.contact_id = c.id AND NOT (${test}))`
      : sql`EXISTS (SELECT 1 FROM ${counts} x WHERE x.contact_id = c.id AND ${test})`;
  }
  const flag = accountFlag(col.key, 'a', env.now);
  if (flag) {
    const exists = sql`EXISTS (SELECT 1 FROM contact_accounts a WHERE a.contact_id = c.id AND ${flag})`;
    return pred.kind === 'is_true' ? exists : sql`NOT ${exists}`;
  }
  const rel = related(col.key, env.now);
  if (rel) {
    const exists = (p: Frag) => sql`EXISTS (SELECT 1 FROM ${rel.from} WHERE ${rel.link} AND ${p})`;
    if (pred.kind === 'ne') return sql`NOT ${exists(positive(rel.value, col, { kind: 'eq', value: pred.value }, rel.type))}`;
    if (pred.kind === 'empty') return sql`NOT ${exists(sql`${rel.value} IS NOT NULL`)}`;
    return exists(positive(rel.value, col, pred, rel.type));
  }
  const own = ownValue(col);
  if (!own) throw new Error(`grid column ${col.key} has no SQL`);
  const { expr, type } = own;
  switch (pred.kind) {
    case 'ne':
      return sql`${expr} IS DISTINCT FROM ${param(pred.value, col.type === 'number' ? 'numeric' : type)}`;
    case 'empty':
      if (col.type === 'multi_choice') return sql`coalesce(c.fields ->> ${col.key}::text, '') IN ('', '[]')`;
      return sql`${expr} IS NULL`;
    case 'not_empty':
      if (col.type === 'multi_choice') return sql`coalesce(c.fields ->> ${col.key}::text, '') NOT IN ('', '[]')`;
      return sql`${expr} IS NOT NULL`;
    case 'is_false':
      return sql`${expr} IS FALSE`;
    default:
      return positive(expr, col, pred, type);
  }
}

function membershipSql(cond: Extract<Condition, { kind: 'membership' }>): Frag {
  const [table, alias, scope] = cond.of === 'event' ? ['participants', 'p', 'event_id'] : ['members', 'm', 'community_id'];
  const exists = (ids: string[]) =>
    sql`EXISTS (SELECT 1 FROM ${raw(table)} ${raw(alias)} WHERE ${raw(alias)}.contact_id = c.id AND ${raw(alias)}.${raw(scope)} = ANY(${ids}::uuid[]))`;
  if (cond.mode === 'any') return exists(cond.ids);
  if (cond.mode === 'none') return sql`NOT ${exists(cond.ids)}`;
  return and(cond.ids.map((id) => exists([id])));
}

function neverNull(cond: Condition): boolean {
  if (cond.kind === 'membership' || cond.kind === 'repermission') return true;
  if (cond.kind === 'not') return neverNull(cond.item);
  if (cond.kind === 'and' || cond.kind === 'or') return cond.items.every(neverNull);
  return false;
}

/** The WHERE condition of a checked filter, on `contacts c`. */
export function conditionSql(cond: Condition, env: Env): Frag {
  switch (cond.kind) {
    case 'and':
      return and(cond.items.map((x) => conditionSql(x, env)));
    case 'or':
      return or(cond.items.map((x) => conditionSql(x, env)));
    case 'not':
      // A comparison with a missing value is NULL, and NOT NULL is NULL: coalesce keeps `not` exact.
      // EXISTS is never NULL, and a bare NOT EXISTS can run as an anti-join.
      return neverNull(cond.item) ? sql`NOT ${conditionSql(cond.item, env)}` : sql`NOT coalesce(${conditionSql(cond.item, env)}, false)`;
    case 'leaf':
      return leafSql(cond.column, cond.pred, env);
    case 'membership':
      return membershipSql(cond);
    case 'repermission': {
      // The last answer counts: a NO after a YES takes the person off the list.
      const [mine, other] = cond.answer === 'yes' ? ['repermission_yes', 'repermission_no'] : ['repermission_no', 'repermission_yes'];
      const id = param(cond.campaignId, 'uuid');
      return sql`EXISTS (SELECT 1 FROM consent_records r WHERE r.contact_id = c.id AND r.campaign_id = ${id} AND r.action = ${mine}
        AND NOT EXISTS (SELECT 1 FROM consent_records r2 WHERE r2.contact_id = c.id AND r2.campaign_id = ${id} AND r2.action = ${other} AND r2.seq > r.seq))`;
    }
  }
}

/** Quick search: every word must appear in the first name, last name or email. */
export function quickSearchSql(q: string): Frag | null {
  const words = q.trim().split(/\s+/).filter(Boolean).slice(0, 8);
  if (!words.length) return null;
  return and(words.map((w) => sql`concat_ws(' ', c.first_name, c.last_name, c.email) ILIKE ${`%${escapeLike(w)}%`}`));
}

export interface Scope extends Env {
  condition: Condition | null;
  q?: string | null;
}

export function whereSql(s: Scope): Frag {
  const parts: Frag[] = [sql`c.audience_id = ${param(s.audienceId, 'uuid')}`];
  if (s.condition) parts.push(conditionSql(s.condition, s));
  const q = s.q ? quickSearchSql(s.q) : null;
  if (q) parts.push(q);
  return and(parts);
}

export async function countContacts(db: Q, s: Scope): Promise<number> {
  const r = await sql<{ n: number }>`SELECT count(*) AS n FROM contacts c WHERE ${whereSql(s)}`.execute(db);
  return Number(r.rows[0]!.n);
}

/**
 * The sort value of each contact. Values from other tables come through one join (`s`) rather than
 * a subquery per contact: sorting all the audience by them is then a hash join and one sort.
 */
function sortSource(col: Column, env: Env): { expr: Frag; type: SqlType; join: Frag | null } {
  const own = ownValue(col);
  if (own) return { ...own, join: null };
  const counts = countsTable(col.key, env.audienceId);
  if (counts) return { expr: sql`coalesce(s.n, 0)`, type: 'int8', join: sql`LEFT JOIN ${counts} s ON s.contact_id = c.id` };
  if (col.key === 'company_name') return { expr: sql`s.name`, type: 'text', join: sql`LEFT JOIN companies s ON s.id = c.company_id` };
  const account = sql`LEFT JOIN contact_accounts s ON s.contact_id = c.id`;
  const flag = accountFlag(col.key, 's', env.now);
  if (flag) return { expr: sql`coalesce(${flag}, false)`, type: 'boolean', join: account };
  if (col.key === 'failed_attempts') return { expr: failedAttempts('s', env.now), type: 'int4', join: account };
  if (col.key === 'lock_end') return { expr: sql`(CASE WHEN s.locked_until > ${param(env.now, 'timestamptz')} THEN s.locked_until END)`, type: 'timestamptz', join: account };
  throw new Error(`grid column ${col.key} cannot be sorted`);
}

export interface PageRequest {
  sort: Sort;
  columns: Column[];
  cursor: CursorPosition | null;
  limit: number;
  offset: number;
}

export interface RawGridRow {
  id: string;
  /** the sort value in PostgreSQL's text form, for the next cursor */
  sort_key: string | null;
  [column: string]: unknown;
}

/**
 * One page. The inner query picks the page's ids on contacts alone (filter, sort, keyset or offset,
 * limit); only those rows are then joined to their company, account, events and communities.
 */
export async function fetchPage(db: Q, s: Scope, page: PageRequest): Promise<RawGridRow[]> {
  const src = sortSource(page.sort.column, s);
  const dir = raw(page.sort.dir === 'asc' ? 'ASC' : 'DESC');
  const after = raw(page.sort.dir === 'asc' ? '>' : '<');
  const where = whereSql(s);
  const take = page.offset + page.limit;
  const from = src.join ? sql`contacts c ${src.join}` : sql`contacts c`;
  const nullable = page.sort.column.nullable && !excludesMissing(s.condition, page.sort.column.key);

  // Both parts order by (value, id): in the part without values that is the order of the ids, and
  // it is the order of an index on (audience_id, column, id), which can then serve it directly.
  const branches = keysetBranches(nullable, page.cursor).map((b) => {
    const conds = [where];
    if (!b.nulls) {
      if (nullable) conds.push(sql`${src.expr} IS NOT NULL`);
      if (b.after) conds.push(sql`(${src.expr}, c.id) ${after} (${param(b.after.value, src.type)}, ${param(b.after.id, 'uuid')})`);
    } else {
      conds.push(sql`${src.expr} IS NULL`);
      if (b.afterId) conds.push(sql`c.id ${after} ${param(b.afterId, 'uuid')}`);
    }
    return sql`SELECT c.id, ${src.expr} AS sort_value FROM ${from} WHERE ${and(conds)} ORDER BY sort_value ${dir}, c.id ${dir} LIMIT ${take}`;
  });
  const ids =
    branches.length === 1
      ? sql`${branches[0]!} OFFSET ${page.offset}`
      : sql`SELECT * FROM ((${branches[0]!}) UNION ALL (${branches[1]!})) u ORDER BY sort_value ${dir} NULLS LAST, id ${dir} LIMIT ${page.limit} OFFSET ${page.offset}`;

  const keys = new Set(page.columns.map((x) => x.key));
  const select: Frag[] = [sql`c.id`, sql`page.sort_value::text AS sort_key`];
  const joins: Frag[] = [];
  for (const key of ['email', 'first_name', 'last_name', 'company', 'job_title', 'company_id', 'created_at', 'updated_at', 'marketing_authorized_at']) {
    if (keys.has(key)) select.push(raw(`c.${key}`));
  }
  if (page.columns.some((x) => x.source === 'field')) select.push(sql`c.fields`);
  if (keys.has('company_name')) {
    select.push(sql`co.name AS company_name`);
    joins.push(sql`LEFT JOIN companies co ON co.id = c.company_id`);
  }
  if (['has_account', 'account_confirmed', 'account_locked', 'failed_attempts', 'lock_end'].some((k) => keys.has(k))) {
    const now = param(s.now, 'timestamptz');
    select.push(
      sql`${accountFlag('has_account', 'a', s.now)} AS has_account`,
      sql`${accountFlag('account_confirmed', 'a', s.now)} AS account_confirmed`,
      sql`coalesce(${accountFlag('account_locked', 'a', s.now)}, false) AS account_locked`,
      sql`${failedAttempts('a', s.now)} AS failed_attempts`,
      sql`CASE WHEN a.locked_until > ${now} THEN a.locked_until END AS lock_end`,
    );
    joins.push(sql`LEFT JOIN contact_accounts a ON a.contact_id = c.id`);
  }
  // Events and communities of the page's contacts: one grouped join over the page, not a
  // subquery per row (which PostgreSQL may answer by scanning every event of every audience).
  const ctes: Frag[] = [sql`page AS MATERIALIZED (${ids})`];
  if (keys.has('events') || keys.has('events_count')) {
    ctes.push(sql`ev AS (
      SELECT p.contact_id, count(*) AS n, json_agg(json_build_object('id', e.id, 'name', e.name) ORDER BY e.starts_at, e.id) AS list
      FROM page JOIN participants p ON p.contact_id = page.id JOIN events e ON e.id = p.event_id GROUP BY p.contact_id)`);
    select.push(sql`coalesce(ev.n, 0) AS events_count`, sql`coalesce(ev.list, '[]'::json) AS events`);
    joins.push(sql`LEFT JOIN ev ON ev.contact_id = c.id`);
  }
  if (keys.has('communities') || keys.has('communities_count')) {
    ctes.push(sql`cm AS (
      SELECT m.contact_id, count(*) AS n, json_agg(json_build_object('id', k.id, 'name', k.name) ORDER BY k.name, k.id) AS list
      FROM page JOIN members m ON m.contact_id = page.id JOIN communities k ON k.id = m.community_id GROUP BY m.contact_id)`);
    select.push(sql`coalesce(cm.n, 0) AS communities_count`, sql`coalesce(cm.list, '[]'::json) AS communities`);
    joins.push(sql`LEFT JOIN cm ON cm.contact_id = c.id`);
  }

  const r = await sql<RawGridRow>`
    WITH ${sql.join(ctes)}
    SELECT ${sql.join(select)}
    FROM page JOIN contacts c ON c.id = page.id
    ${joins.length ? sql.join(joins, sql` `) : sql``}
    ORDER BY page.sort_value ${dir} NULLS LAST, page.id ${dir}`.execute(db);
  return r.rows;
}

export interface BulkSet {
  builtins: Record<string, string | null>;
  companyId?: string | null;
  fields: Record<string, unknown>;
}

export type BulkTarget = { kind: 'scope'; scope: Scope } | { kind: 'ids'; audienceId: string; ids: string[] };

/** One set-based UPDATE over the whole selection; returns how many contacts it changed. */
export async function bulkUpdate(db: Q, target: BulkTarget, set: BulkSet, now: Date): Promise<number> {
  const assignments: Frag[] = [sql`updated_at = ${param(now, 'timestamptz')}`];
  for (const key of ['first_name', 'last_name', 'company', 'job_title']) {
    if (key in set.builtins) assignments.push(sql`${raw(key)} = ${param(set.builtins[key], 'text')}`);
  }
  if (set.companyId !== undefined) assignments.push(sql`company_id = ${param(set.companyId, 'uuid')}`);
  if (Object.keys(set.fields).length) assignments.push(sql`fields = c.fields || ${JSON.stringify(set.fields)}::jsonb`);
  const where =
    target.kind === 'scope'
      ? whereSql(target.scope)
      : sql`c.audience_id = ${param(target.audienceId, 'uuid')} AND c.id = ANY(${target.ids}::uuid[])`;
  const r = await sql`UPDATE contacts AS c SET ${sql.join(assignments)} WHERE ${where}`.execute(db);
  return Number(r.numAffectedRows ?? 0);
}

/** Ids of a target in id order, a page after `after`: the primary key walks it without sorting. */
export async function matchingIds(db: Q, target: BulkTarget, after: string | null, limit: number): Promise<string[]> {
  return (await matchingRows<{ id: string }>(db, target, after, limit, sql`c.id`)).map((x) => x.id);
}

/** The next `limit` contacts of the target after `after`, in id order, as `columns` (of `contacts c`) read them. */
export async function matchingRows<T>(db: Q, target: BulkTarget, after: string | null, limit: number, columns: RawBuilder<unknown>): Promise<T[]> {
  const where =
    target.kind === 'scope'
      ? whereSql(target.scope)
      : sql`c.audience_id = ${param(target.audienceId, 'uuid')} AND c.id = ANY(${target.ids}::uuid[])`;
  const r = await sql<T>`SELECT ${columns} FROM contacts c WHERE ${where} ${after ? sql`AND c.id > ${param(after, 'uuid')}` : sql``} ORDER BY c.id LIMIT ${limit}`.execute(db);
  return r.rows;
}

/** Which of these ids are events (communities) of the audience. */
export async function existingScopeIds(db: Q, table: 'events' | 'communities', audienceId: string, ids: string[]): Promise<Set<string>> {
  if (!ids.length) return new Set();
  const rows = await db.selectFrom(table).select('id').where('audience_id', '=', audienceId).where(sql<boolean>`id = ANY(${ids}::uuid[])`).execute();
  return new Set(rows.map((r) => r.id));
}

// ---- saved views ----

export function listViews(db: Q, audienceId: string) {
  return db.selectFrom('saved_views').selectAll().where('audience_id', '=', audienceId).orderBy(sql`lower(name)`).orderBy('id').execute();
}

export function findView(db: Q, audienceId: string, viewId: string) {
  return db.selectFrom('saved_views').selectAll().where('audience_id', '=', audienceId).where('id', '=', viewId).executeTakeFirst();
}

// ---- what a grid request needs before its page ----

export interface GridSetup {
  /** the audience is one of the organisation's */
  found: boolean;
  /** the audience-wide central fields, in the order of `fieldsAvailable` */
  fields: Array<{ key: string; type: FieldType; options: string[] | null; label: string }>;
  /** their JSON text: equal texts, equal fields */
  fieldsText: string;
  /** which of the candidate ids are events (communities) of the audience */
  events: Set<string>;
  communities: Set<string>;
  view: { id: string; name: string; definition: unknown } | null;
}

/**
 * The audience (within the organisation), its central fields, which of the given ids are its events
 * and communities, and a saved view: one statement, so a page costs one round trip before its query
 * rather than one per lookup. Read fresh on every request (nothing is cached across requests), so a
 * field changed by another process counts at once. The ids must be UUIDs (checked by the caller).
 */
export async function gridSetup(
  db: Q,
  orgId: string,
  audienceId: string,
  lookups: { eventIds: string[]; communityIds: string[]; viewId: string | null },
): Promise<GridSetup> {
  const a = param(audienceId, 'uuid');
  const r = await sql<{ found: boolean; fields: string | null; events: string[] | null; communities: string[] | null; view: GridSetup['view'] }>`
    SELECT
      EXISTS (SELECT 1 FROM audiences x WHERE x.org_id = ${param(orgId, 'uuid')} AND x.id = ${a}) AS found,
      (SELECT json_agg(json_build_object('key', f.key, 'type', f.type, 'options', f.options, 'label', f.label) ORDER BY f.created_at, f.key)
        FROM fields f WHERE f.audience_id = ${a} AND f.scope = 'audience')::text AS fields,
      ${lookups.eventIds.length ? sql`(SELECT json_agg(e.id) FROM events e WHERE e.audience_id = ${a} AND e.id = ANY(${lookups.eventIds}::uuid[]))` : sql`NULL::json`} AS events,
      ${lookups.communityIds.length ? sql`(SELECT json_agg(k.id) FROM communities k WHERE k.audience_id = ${a} AND k.id = ANY(${lookups.communityIds}::uuid[]))` : sql`NULL::json`} AS communities,
      ${lookups.viewId ? sql`(SELECT json_build_object('id', v.id, 'name', v.name, 'definition', v.definition) FROM saved_views v WHERE v.audience_id = ${a} AND v.id = ${param(lookups.viewId, 'uuid')})` : sql`NULL::json`} AS view`.execute(db);
  const row = r.rows[0]!;
  return {
    found: row.found,
    fields: row.fields === null ? [] : (JSON.parse(row.fields) as GridSetup['fields']),
    fieldsText: row.fields ?? '[]',
    events: new Set(row.events ?? []),
    communities: new Set(row.communities ?? []),
    view: row.view ?? null,
  };
}
