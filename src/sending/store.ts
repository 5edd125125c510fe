import { sql, type Insertable, type Kysely, type Selectable } from 'kysely';
import type { DB, DeliveriesTable, DeliveryStatus, Lane, MessageEventsTable, MessagesTable } from '../platform/schema.ts';

type Q = Kysely<DB>;

export type MessageRow = Selectable<MessagesTable>;
export type DeliveryRow = Selectable<DeliveriesTable>;

// ---- rate limit ----

/** Counts one request in its window and returns the window's count: one statement, any number of API processes. */
export async function countRequest(db: Q, key: string, windowStart: Date): Promise<number> {
  const r = await db
    .insertInto('rate_counters')
    .values({ key, window_start: windowStart, count: 1 })
    .onConflict((oc) => oc.columns(['key', 'window_start']).doUpdateSet({ count: sql`rate_counters.count + 1` }))
    .returning('count')
    .executeTakeFirstOrThrow();
  return r.count;
}

export async function purgeRateCounters(db: Q, before: Date) {
  await db.deleteFrom('rate_counters').where('window_start', '<', before).execute();
}

// ---- messages ----

export function findMessageByKey(db: Q, orgId: string, idempotencyKey: string) {
  return db.selectFrom('messages').selectAll().where('org_id', '=', orgId).where('idempotency_key', '=', idempotencyKey).executeTakeFirst();
}

/** Inserts a message; undefined when another one already holds its idempotency key. */
export async function insertMessage(db: Q, row: Insertable<MessagesTable>): Promise<string | undefined> {
  const r = await db
    .insertInto('messages')
    .values(row)
    .onConflict((oc) => oc.columns(['org_id', 'idempotency_key']).where('idempotency_key', 'is not', null).doNothing())
    .returning('id')
    .executeTakeFirst();
  return r?.id;
}

/**
 * A triggered message with its one delivery and its first event, in one statement (atomic without a
 * transaction, one round trip instead of five). The ids are made by the caller so that the three rows
 * need nothing back from each other; the delivery and event are written only if the message was
 * (another message may hold the idempotency key). Returns whether it was written.
 */
export async function insertTriggered(
  db: Q,
  message: Insertable<MessagesTable> & { id: string },
  d: { id: string; contact_id: string; email: string; lane: Lane; priority: number; status: 'queued' | 'blocked'; rule: string | null; rule_detail: string | null; due_at: Date; expires_at: Date },
  e: { type: string; detail: string },
): Promise<boolean> {
  const at = message.created_at as Date;
  const r = await db
    .with('m', (q) => q.insertInto('messages').values(message).onConflict((oc) => oc.columns(['org_id', 'idempotency_key']).where('idempotency_key', 'is not', null).doNothing()).returning('id'))
    .with('d', (q) =>
      q
        .insertInto('deliveries')
        .columns(['id', 'org_id', 'message_id', 'contact_id', 'email', 'lane', 'priority', 'status', 'rule', 'rule_detail', 'due_at', 'expires_at', 'created_at', 'updated_at'])
        .expression((eb) =>
          eb
            .selectFrom('m')
            .select([
              sql<string>`${d.id}::uuid`.as('id'),
              sql<string>`${message.org_id}::uuid`.as('org_id'),
              'm.id as message_id',
              sql<string>`${d.contact_id}::uuid`.as('contact_id'),
              sql<string>`${d.email}::text`.as('email'),
              sql<Lane>`${d.lane}::text`.as('lane'),
              sql<number>`${d.priority}::smallint`.as('priority'),
              sql<DeliveryStatus>`${d.status}::text`.as('status'),
              sql<string | null>`${d.rule}::text`.as('rule'),
              sql<string | null>`${d.rule_detail}::text`.as('rule_detail'),
              sql<Date>`${d.due_at}::timestamptz`.as('due_at'),
              sql<Date>`${d.expires_at}::timestamptz`.as('expires_at'),
              sql<Date>`${at}::timestamptz`.as('created_at'),
              sql<Date>`${at}::timestamptz`.as('updated_at'),
            ]),
        )
        .returning(['id', 'message_id']),
    )
    .with('ev', (q) =>
      q
        .insertInto('message_events')
        .columns(['org_id', 'message_id', 'delivery_id', 'type', 'at', 'detail'])
        .expression((eb) =>
          eb
            .selectFrom('d')
            .select([
              sql<string>`${message.org_id}::uuid`.as('org_id'),
              'd.message_id',
              'd.id as delivery_id',
              sql<string>`${e.type}::text`.as('type'),
              sql<Date>`${at}::timestamptz`.as('at'),
              sql<unknown>`${e.detail}::jsonb`.as('detail'),
            ]),
        ),
    )
    .selectFrom('m')
    .select('m.id')
    // Workers of other processes hear of a message due now at commit, instead of at their next poll.
    .$if(d.status === 'queued' && d.due_at.getTime() <= at.getTime(), (q) => q.select(sql<string>`pg_notify(${QUEUED_CHANNEL}, ${d.lane})`.as('notified')))
    .executeTakeFirst();
  return r !== undefined;
}

/** The channel workers LISTEN on (payload: the lane). */
export const QUEUED_CHANNEL = 'envoi_queued';

export async function notifyWorkers(db: Q, lane: Lane) {
  await sql`select pg_notify(${QUEUED_CHANNEL}, ${lane})`.execute(db);
}

const CHUNK = 1000;

/** `skipExisting`: a (message, contact) already written is left alone and not returned. */
export async function insertDeliveries(db: Q, rows: Insertable<DeliveriesTable>[], opts: { skipExisting?: boolean } = {}): Promise<{ id: string; contact_id: string | null; status: DeliveryStatus }[]> {
  const out: { id: string; contact_id: string | null; status: DeliveryStatus }[] = [];
  for (let i = 0; i < rows.length; i += CHUNK) {
    let q = db.insertInto('deliveries').values(rows.slice(i, i + CHUNK));
    if (opts.skipExisting) q = q.onConflict((oc) => oc.columns(['message_id', 'contact_id']).where('contact_id', 'is not', null).doNothing());
    out.push(...(await q.returning(['id', 'contact_id', 'status']).execute()));
  }
  return out;
}

/** Moves a message's pending deliveries to 'paused', or back to 'queued' (keeping their due time). */
export async function setHeld(db: Q, messageId: string, hold: boolean, now: Date): Promise<number> {
  const r = await db
    .updateTable('deliveries')
    .set({ status: hold ? 'paused' : 'queued', updated_at: now })
    .where('message_id', '=', messageId)
    .where('status', 'in', hold ? ['queued', 'deferred'] : ['paused'])
    .executeTakeFirst();
  return Number(r.numUpdatedRows);
}

export async function campaignRecipientsAmong(db: Q, campaignId: string, contactIds: readonly string[]): Promise<Set<string>> {
  if (contactIds.length === 0) return new Set();
  const rows = await db
    .selectFrom('deliveries as d')
    .innerJoin('messages as m', 'm.id', 'd.message_id')
    .select('d.contact_id')
    .where('m.campaign_id', '=', campaignId)
    .where('d.contact_id', 'in', [...contactIds])
    .execute();
  return new Set(rows.map((r) => r.contact_id!));
}

/** Deliveries of every message of a campaign, by status. */
export async function campaignDeliveryCounts(db: Q, campaignId: string) {
  const rows = await db
    .selectFrom('deliveries as d')
    .innerJoin('messages as m', 'm.id', 'd.message_id')
    .select(['d.status', (eb) => eb.fn.countAll<string>().as('n')])
    .where('m.campaign_id', '=', campaignId)
    .groupBy('d.status')
    .execute();
  return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)])) as Partial<Record<DeliveryStatus, number>>;
}

export async function campaignBlockedByRule(db: Q, campaignId: string): Promise<Record<string, number>> {
  const rows = await db
    .selectFrom('deliveries as d')
    .innerJoin('messages as m', 'm.id', 'd.message_id')
    .select(['d.rule', (eb) => eb.fn.countAll<string>().as('n')])
    .where('m.campaign_id', '=', campaignId)
    .where('d.status', '=', 'blocked')
    .groupBy('d.rule')
    .execute();
  return Object.fromEntries(rows.map((r) => [r.rule ?? 'unknown', Number(r.n)]));
}

export async function blockedByRule(db: Q, messageId: string): Promise<Record<string, number>> {
  const rows = await db
    .selectFrom('deliveries')
    .select(['rule', (eb) => eb.fn.countAll<string>().as('n')])
    .where('message_id', '=', messageId)
    .where('status', '=', 'blocked')
    .groupBy('rule')
    .execute();
  return Object.fromEntries(rows.map((r) => [r.rule ?? 'unknown', Number(r.n)]));
}

export async function insertEvents(db: Q, rows: Insertable<MessageEventsTable>[]) {
  for (let i = 0; i < rows.length; i += CHUNK) await db.insertInto('message_events').values(rows.slice(i, i + CHUNK)).execute();
}

export function findMessage(db: Q, orgId: string, id: string) {
  return db.selectFrom('messages').selectAll().where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst();
}

export function deliveriesOf(db: Q, messageId: string, limit: number) {
  return db.selectFrom('deliveries').selectAll().where('message_id', '=', messageId).orderBy('created_at').orderBy('id').limit(limit).execute();
}

export async function deliveryCounts(db: Q, messageId: string) {
  const rows = await db.selectFrom('deliveries').select(['status', (eb) => eb.fn.countAll<number>().as('n')]).where('message_id', '=', messageId).groupBy('status').execute();
  return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)])) as Partial<Record<DeliveryStatus, number>>;
}

export function eventsOf(db: Q, messageId: string, limit: number) {
  return db.selectFrom('message_events').select(['id', 'delivery_id', 'type', 'at', 'detail']).where('message_id', '=', messageId).orderBy('id').limit(limit).execute();
}

export async function firstEvent(db: Q, messageId: string) {
  return db.selectFrom('message_events').select(['type', 'delivery_id']).where('message_id', '=', messageId).orderBy('id').limit(1).executeTakeFirst();
}

// ---- suppressions ----

export async function suppressionsFor(db: Q, orgId: string, emailLowers: readonly string[]) {
  const map = new Map<string, { hardBouncedAt: Date | null; complainedAt: Date | null }>();
  if (emailLowers.length === 0) return map;
  const rows = await db.selectFrom('suppressions').select(['email_lower', 'reason', 'created_at']).where('org_id', '=', orgId).where('email_lower', 'in', [...new Set(emailLowers)]).execute();
  for (const r of rows) {
    const s = map.get(r.email_lower) ?? { hardBouncedAt: null, complainedAt: null };
    if (r.reason === 'hard_bounce') s.hardBouncedAt = r.created_at;
    else s.complainedAt = r.created_at;
    map.set(r.email_lower, s);
  }
  return map;
}

export function listSuppressions(db: Q, orgId: string, limit: number, offset: number) {
  return db.selectFrom('suppressions').selectAll().where('org_id', '=', orgId).orderBy('created_at', 'desc').limit(limit).offset(offset).execute();
}

// ---- the work queue ----

export interface ClaimedDelivery {
  id: string;
  org_id: string;
  message_id: string;
  contact_id: string | null;
  email: string;
  lane: Lane;
  attempts: number;
  expires_at: Date;
  /** status before this claim: 'sending' means the previous holder's lease ran out */
  previous_status: DeliveryStatus;
  previous_worker: string | null;
}

/**
 * Claims up to `limit` due deliveries of one lane for `workerId` until `leaseUntil`. A row is due when
 * it is queued or deferred and its time has come, or when it is 'sending' and the lease of the worker
 * that took it has run out (its `due_at` is its lease end). SKIP LOCKED lets concurrent workers take
 * disjoint batches without waiting for each other; the status change in the same statement keeps
 * a row from being taken again while its lease lasts.
 */
export async function claim(db: Q, o: { lane: Lane; workerId: string; now: Date; leaseUntil: Date; limit: number }): Promise<ClaimedDelivery[]> {
  const r = await sql<ClaimedDelivery>`
    WITH due AS (
      SELECT id, status AS previous_status, leased_by AS previous_worker
      FROM deliveries
      WHERE lane = ${o.lane} AND status IN ('queued', 'deferred', 'sending') AND due_at <= ${o.now}::timestamptz
      ORDER BY priority, due_at
      LIMIT ${o.limit}
      FOR UPDATE SKIP LOCKED
    )
    UPDATE deliveries d
    SET status = 'sending', attempts = d.attempts + 1, leased_by = ${o.workerId}, lease_until = ${o.leaseUntil}::timestamptz, due_at = ${o.leaseUntil}::timestamptz, updated_at = ${o.now}::timestamptz
    FROM due
    WHERE d.id = due.id
    RETURNING d.id, d.org_id, d.message_id, d.contact_id, d.email, d.lane, d.attempts, d.expires_at, due.previous_status, due.previous_worker`.execute(db);
  return r.rows;
}

/** Extends every lease `workerId` holds: a slow batch keeps its rows. */
export async function renewLeases(db: Q, workerId: string, now: Date, leaseUntil: Date): Promise<number> {
  const r = await db
    .updateTable('deliveries')
    .set({ lease_until: leaseUntil, due_at: leaseUntil, updated_at: now })
    .where('leased_by', '=', workerId)
    .where('status', '=', 'sending')
    .executeTakeFirst();
  return Number(r.numUpdatedRows);
}

export interface Outcome {
  id: string;
  status: Exclude<DeliveryStatus, 'queued' | 'sending' | 'paused'>;
  /** next attempt, for a deferral */
  due_at?: Date | null;
  last_error?: string | null;
  smtp_response?: string | null;
  rule?: string | null;
  rule_detail?: string | null;
  /** message_events.type and detail */
  event: string;
  detail: Record<string, unknown>;
  /** email_lower to suppress (hard bounce) */
  suppress?: string | null;
}

/**
 * Writes the outcomes of sends in one statement: the delivery rows, their events, and the
 * suppressions of hard-bounced addresses. Only rows this worker still holds are written (a lease that
 * ran out belongs to whoever took the row over); returns the ids written.
 */
export async function recordOutcomes(db: Q, workerId: string, now: Date, outcomes: readonly Outcome[]): Promise<string[]> {
  if (outcomes.length === 0) return [];
  const json = JSON.stringify(
    outcomes.map((o) => ({
      id: o.id,
      status: o.status,
      due_at: o.due_at ? o.due_at.toISOString() : null,
      last_error: o.last_error ?? null,
      smtp_response: o.smtp_response ?? null,
      rule: o.rule ?? null,
      rule_detail: o.rule_detail ?? null,
      event: o.event,
      detail: o.detail,
      suppress: o.suppress ?? null,
    })),
  );
  const r = await sql<{ delivery_id: string }>`
    WITH v AS (
      SELECT * FROM jsonb_to_recordset(${json}::jsonb) AS v(
        id uuid, status text, due_at timestamptz, last_error text, smtp_response text, rule text, rule_detail text, event text, detail jsonb, suppress text)
    ),
    upd AS (
      UPDATE deliveries d
      SET status = v.status,
          due_at = coalesce(v.due_at, d.due_at),
          sent_at = CASE WHEN v.status = 'sent' THEN ${now}::timestamptz ELSE d.sent_at END,
          lease_until = NULL,
          leased_by = NULL,
          last_error = CASE WHEN v.status = 'sent' THEN d.last_error ELSE v.last_error END,
          smtp_response = coalesce(v.smtp_response, d.smtp_response),
          rule = v.rule,
          rule_detail = v.rule_detail,
          updated_at = ${now}::timestamptz
      FROM v
      WHERE d.id = v.id AND d.status = 'sending' AND d.leased_by = ${workerId}
      RETURNING d.id, d.org_id, d.message_id, d.status
    ),
    scrub AS (
      UPDATE messages m SET variables = '{}'::jsonb
      FROM upd
      WHERE m.id = upd.message_id AND m.sensitive AND upd.status IN ('sent', 'bounced', 'failed', 'blocked')
    ),
    sup AS (
      INSERT INTO suppressions (org_id, email_lower, reason, created_at, delivery_id, detail)
      SELECT upd.org_id, v.suppress, 'hard_bounce', ${now}::timestamptz, upd.id, v.smtp_response
      FROM upd JOIN v ON v.id = upd.id
      WHERE v.suppress IS NOT NULL
      ON CONFLICT DO NOTHING
    )
    INSERT INTO message_events (org_id, message_id, delivery_id, type, at, detail)
    SELECT upd.org_id, upd.message_id, upd.id, v.event, ${now}::timestamptz, v.detail
    FROM upd JOIN v ON v.id = upd.id
    RETURNING delivery_id`.execute(db);
  return r.rows.map((x) => x.delivery_id);
}

/** What a worker needs about the messages of a batch, in one query. */
export async function messagesForSending(db: Q, ids: readonly string[]) {
  if (ids.length === 0) return [];
  return db
    .selectFrom('messages as m')
    .innerJoin('organisations as o', 'o.id', 'm.org_id')
    .leftJoin('template_versions as v', (j) => j.onRef('v.template_id', '=', 'm.template_id').onRef('v.version', '=', 'm.template_version'))
    .leftJoin('events as e', 'e.id', 'm.event_id')
    .leftJoin('campaigns as c', 'c.id', 'm.campaign_id')
    .select([
      'm.campaign_id',
      'c.kind as c_kind',
      'c.deadline as c_deadline',
      'm.id',
      'm.org_id',
      'm.audience_id',
      'm.origin',
      'm.category',
      'm.template_id',
      'm.template_version',
      'm.event_id',
      'm.community_id',
      'm.inline',
      'm.variables',
      'm.sensitive',
      'o.name as org_name',
      'o.settings as org_settings',
      'v.category as v_category',
      'v.language as v_language',
      'v.subject as v_subject',
      'v.preheader as v_preheader',
      'v.format as v_format',
      'v.body as v_body',
      'v.text_body as v_text_body',
      'v.tracking as v_tracking',
      'v.from_name as v_from_name',
      'v.from_email as v_from_email',
      'v.reply_to as v_reply_to',
      'e.name as e_name',
      'e.starts_at as e_starts_at',
      'e.ends_at as e_ends_at',
      'e.time_zone as e_time_zone',
    ])
    .where('m.id', 'in', [...ids])
    .execute();
}

export type MessageForSending = Awaited<ReturnType<typeof messagesForSending>>[number];

// ---- tracking ----

/** A delivery as the open, click and unsubscribe links see it. */
export function deliveryForTracking(db: Q, id: string) {
  return db
    .selectFrom('deliveries as d')
    .innerJoin('messages as m', 'm.id', 'd.message_id')
    .innerJoin('organisations as o', 'o.id', 'd.org_id')
    .innerJoin('audiences as a', 'a.id', 'm.audience_id')
    .leftJoin('campaigns as c', 'c.id', 'm.campaign_id')
    .select(['d.id', 'd.org_id', 'd.message_id', 'd.contact_id', 'd.email', 'd.status', 'm.category', 'm.audience_id', 'm.campaign_id', 'c.kind as campaign_kind', 'c.deadline', 'o.name as org_name', 'a.name as audience_name'])
    .where('d.id', '=', id)
    .executeTakeFirst();
}

// ---- outbox ----

export function listOutbox(db: Q, orgId: string, limit: number, offset: number) {
  return db
    .selectFrom('outbox')
    .select(['id', 'message_id', 'delivery_id', 'envelope_from', 'envelope_to', 'subject', 'created_at'])
    .where('org_id', '=', orgId)
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .limit(limit)
    .offset(offset)
    .execute();
}

export function findOutbox(db: Q, orgId: string, id: string) {
  return db.selectFrom('outbox').selectAll().where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst();
}

// ---- data subjects ----

export function deliveriesOfContacts(db: Q, orgId: string, contactIds: readonly string[], emailLower: string) {
  return db
    .selectFrom('deliveries as d')
    .innerJoin('messages as m', 'm.id', 'd.message_id')
    .select(['d.id', 'd.message_id', 'd.email', 'd.status', 'd.rule', 'd.sent_at', 'd.created_at', 'm.category', 'm.origin', 'm.template_id', 'm.campaign_id', 'm.audience_id'])
    .where('d.org_id', '=', orgId)
    .where((eb) => eb.or([...(contactIds.length ? [eb('d.contact_id', 'in', [...contactIds])] : []), eb(sql`lower(d.email)`, '=', emailLower)]))
    .orderBy('d.created_at')
    .execute();
}

export function eventsOfDeliveries(db: Q, deliveryIds: readonly string[]) {
  if (deliveryIds.length === 0) return Promise.resolve([]);
  return db.selectFrom('message_events').select(['delivery_id', 'type', 'at', 'detail']).where('delivery_id', 'in', [...deliveryIds]).orderBy('id').execute();
}

/** What the message log keeps of an erased person: the fact that mail went, not to whom nor what it said. */
export async function anonymiseDeliveries(db: Q, orgId: string, deliveryIds: readonly string[], emailLower: string) {
  if (deliveryIds.length) {
    const ids = [...deliveryIds];
    await db.deleteFrom('outbox').where('org_id', '=', orgId).where('delivery_id', 'in', ids).execute();
    await db.updateTable('message_events').set({ detail: sql`detail - 'user_agent' - 'recipient' - 'smtp_response' - 'diagnostic'` }).where('delivery_id', 'in', ids).execute();
    // A triggered message is one person's: its variables (an order, a name) go too.
    await db
      .updateTable('messages')
      .set({ variables: '{}', custom_id: null })
      .where('org_id', '=', orgId)
      .where('origin', '=', 'triggered')
      .where('id', 'in', db.selectFrom('deliveries').select('message_id').where('id', 'in', ids))
      .execute();
    await db.updateTable('deliveries').set({ email: 'erased@invalid', contact_id: null, smtp_response: null, last_error: null, rule_detail: null }).where('org_id', '=', orgId).where('id', 'in', ids).execute();
  }
  await db.deleteFrom('suppressions').where('org_id', '=', orgId).where('email_lower', '=', emailLower).execute();
}
