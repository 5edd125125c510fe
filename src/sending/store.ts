import { sql, type Insertable, type Kysely, type Selectable } from 'kysely';
import type { DB, DeliveriesTable, DeliveryStatus, Lane, MessageEventsTable, MessagesTable } from '../platform/schema.ts';
import type { TemplateWithContent } from '../mail/template-store.ts';
import { nextRowId } from '../platform/uuid-v7.ts';

type Q = Kysely<DB>;

export type MessageRow = Selectable<MessagesTable>;
export type DeliveryRow = Selectable<DeliveriesTable>;

// ---- rate limit ----

/**
 * Adds each delta to its (key, window) counter and returns the totals: every key a process counted
 * since its last write, in one statement (see accept-rate.ts). Sorted, so that two processes writing
 * the same keys lock them in the same order.
 */
export async function addToRateCounters(db: Q, rows: readonly { key: string; windowStart: Date; delta: number }[]): Promise<{ key: string; windowStart: Date; count: number }[]> {
  if (rows.length === 0) return [];
  const sorted = [...rows].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.windowStart.getTime() - b.windowStart.getTime()));
  const r = await sql<{ key: string; window_start: Date | string; count: number }>`
    INSERT INTO rate_counters (key, window_start, count)
    SELECT * FROM unnest(${sorted.map((x) => x.key)}::text[], ${sorted.map((x) => x.windowStart.toISOString())}::timestamptz[], ${sorted.map((x) => x.delta)}::int[])
    ON CONFLICT (key, window_start) DO UPDATE SET count = rate_counters.count + excluded.count
    RETURNING key, window_start, count`.execute(db);
  return r.rows.map((x) => ({ key: x.key, windowStart: new Date(x.window_start), count: Number(x.count) }));
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

// ---- the accept side of the triggered API: lookups and writes for a batch of requests at once ----

/** The messages holding these idempotency keys, each key with its organisation. */
export async function messagesByKeys(db: Q, keys: readonly { orgId: string; key: string }[]) {
  if (keys.length === 0) return [];
  const r = await sql<{ id: string; org_id: string; idempotency_key: string; request_hash: string | null }>`
    SELECT m.id, m.org_id, m.idempotency_key, m.request_hash
    FROM messages m
    JOIN unnest(${keys.map((k) => k.orgId)}::uuid[], ${keys.map((k) => k.key)}::text[]) AS k(org_id, key)
      ON m.org_id = k.org_id AND m.idempotency_key = k.key`.execute(db);
  return r.rows;
}

/** Templates (not deleted) with the content of their current version, each id with its organisation. */
export async function templatesByIds(db: Q, ids: readonly { orgId: string; id: string }[]): Promise<TemplateWithContent[]> {
  if (ids.length === 0) return [];
  const r = await sql<TemplateWithContent>`
    SELECT t.id, t.org_id, t.audience_id, t.event_id, t.community_id, t.name, t.builtin_kind, t.version, t.created_at, t.updated_at, t.deleted_at,
           v.category, v.language, v.subject, v.preheader, v.format, v.body, v.text_body, v.tracking, v.from_name, v.from_email, v.reply_to
    FROM templates t
    JOIN template_versions v ON v.template_id = t.id AND v.version = t.version
    JOIN unnest(${ids.map((k) => k.orgId)}::uuid[], ${ids.map((k) => k.id)}::uuid[]) AS k(org_id, id) ON t.org_id = k.org_id AND t.id = k.id
    WHERE t.deleted_at IS NULL`.execute(db);
  return r.rows;
}

export function organisationsByIds(db: Q, ids: readonly string[]) {
  if (ids.length === 0) return Promise.resolve([]);
  return db.selectFrom('organisations').select(['id', 'name', 'settings']).where('id', '=', sql<string>`any(${[...ids]}::uuid[])`).execute();
}

/** Events, each id with its organisation. */
export async function eventsByIds(db: Q, ids: readonly { orgId: string; id: string }[]) {
  if (ids.length === 0) return [];
  const r = await sql<{ id: string; org_id: string; audience_id: string; name: string; starts_at: Date; ends_at: Date; time_zone: string }>`
    SELECT e.id, e.org_id, e.audience_id, e.name, e.starts_at, e.ends_at, e.time_zone
    FROM events e
    JOIN unnest(${ids.map((k) => k.orgId)}::uuid[], ${ids.map((k) => k.id)}::uuid[]) AS k(org_id, id) ON e.org_id = k.org_id AND e.id = k.id`.execute(db);
  return r.rows;
}

/** The custom fields (audience scope) of each audience, in their display order: what a template may name. */
export async function audienceFieldKeysOf(db: Q, audiences: readonly { orgId: string; audienceId: string }[]) {
  if (audiences.length === 0) return [];
  const r = await sql<{ audience_id: string; key: string }>`
    SELECT f.audience_id, f.key
    FROM fields f
    JOIN unnest(${audiences.map((k) => k.orgId)}::uuid[], ${audiences.map((k) => k.audienceId)}::uuid[]) AS k(org_id, audience_id)
      ON f.org_id = k.org_id AND f.audience_id = k.audience_id
    WHERE f.scope = 'audience'
    ORDER BY f.created_at, f.key`.execute(db);
  return r.rows;
}

/** Everything accepting a message from a stored template to a contact id needs, for one request. */
export interface AcceptContextRow {
  i: number;
  existing_id: string | null;
  existing_hash: string | null;
  org_name: string | null;
  org_settings: unknown;
  /** the template with its current content; null when there is none (deleted, or another organisation's) */
  template: TemplateWithContent | null;
  event: { id: string; org_id: string; audience_id: string; name: string; starts_at: Date; ends_at: Date; time_zone: string } | null;
  contact: {
    id: string;
    audience_id: string;
    email: string;
    email_lower: string;
    first_name: string | null;
    last_name: string | null;
    company: string | null;
    job_title: string | null;
    fields: unknown;
    marketing_authorized_at: Date | null;
    marketing_withdrawn_at: Date | null;
    event_ids: string[];
    community_ids: string[];
  } | null;
  hard_bounced_at: Date | null;
  complained_at: Date | null;
  excluded: boolean;
  field_keys: string[];
}

/**
 * The accept context of many requests (template id + contact id) in one query: the message already
 * holding the idempotency key, the organisation, the template and its event, the contact with its
 * events and communities, the suppressions and exclusion of its address, the audience's custom fields.
 * Every join is scoped by the request's organisation. Rows come back by request index `i` (0-based).
 */
export async function acceptContexts(db: Q, reqs: readonly { orgId: string; templateId: string; contactId: string; key: string | null }[]): Promise<AcceptContextRow[]> {
  if (reqs.length === 0) return [];
  const r = await sql<Record<string, any>>`
    SELECT (r.i - 1)::int AS i,
           m.id AS existing_id, m.request_hash AS existing_hash,
           o.name AS org_name, o.settings AS org_settings,
           t.id AS t_id, t.org_id AS t_org_id, t.audience_id AS t_audience_id, t.event_id AS t_event_id, t.community_id AS t_community_id, t.name AS t_name,
           t.builtin_kind AS t_builtin_kind, t.version AS t_version, t.created_at AS t_created_at, t.updated_at AS t_updated_at, t.deleted_at AS t_deleted_at,
           v.category AS v_category, v.language AS v_language, v.subject AS v_subject, v.preheader AS v_preheader, v.format AS v_format, v.body AS v_body,
           v.text_body AS v_text_body, v.tracking AS v_tracking, v.from_name AS v_from_name, v.from_email AS v_from_email, v.reply_to AS v_reply_to,
           e.id AS e_id, e.org_id AS e_org_id, e.audience_id AS e_audience_id, e.name AS e_name, e.starts_at AS e_starts_at, e.ends_at AS e_ends_at, e.time_zone AS e_time_zone,
           c.id AS c_id, c.audience_id AS c_audience_id, c.email AS c_email, c.email_lower AS c_email_lower, c.first_name AS c_first_name, c.last_name AS c_last_name,
           c.company AS c_company, c.job_title AS c_job_title, c.fields AS c_fields, c.marketing_authorized_at AS c_marketing_authorized_at,
           c.marketing_withdrawn_at AS c_marketing_withdrawn_at,
           coalesce((SELECT jsonb_agg(p.event_id) FROM participants p WHERE p.contact_id = c.id), '[]'::jsonb) AS c_event_ids,
           coalesce((SELECT jsonb_agg(mb.community_id) FROM members mb WHERE mb.contact_id = c.id), '[]'::jsonb) AS c_community_ids,
           (SELECT max(s.created_at) FROM suppressions s WHERE s.org_id = r.org_id AND s.email_lower = c.email_lower AND s.reason = 'hard_bounce') AS hard_bounced_at,
           (SELECT max(s.created_at) FROM suppressions s WHERE s.org_id = r.org_id AND s.email_lower = c.email_lower AND s.reason = 'complaint') AS complained_at,
           EXISTS (SELECT 1 FROM exclusions x WHERE x.org_id = r.org_id AND x.email_lower = c.email_lower) AS excluded,
           coalesce((SELECT jsonb_agg(f.key ORDER BY f.created_at, f.key) FROM fields f WHERE f.org_id = r.org_id AND f.audience_id = t.audience_id AND f.scope = 'audience'), '[]'::jsonb) AS field_keys
    FROM unnest(${reqs.map((x) => x.orgId)}::uuid[], ${reqs.map((x) => x.templateId)}::uuid[], ${reqs.map((x) => x.contactId)}::uuid[], ${reqs.map((x) => x.key)}::text[])
         WITH ORDINALITY AS r(org_id, template_id, contact_id, key, i)
    LEFT JOIN organisations o ON o.id = r.org_id
    LEFT JOIN messages m ON m.org_id = r.org_id AND m.idempotency_key = r.key
    LEFT JOIN templates t ON t.org_id = r.org_id AND t.id = r.template_id AND t.deleted_at IS NULL
    LEFT JOIN template_versions v ON v.template_id = t.id AND v.version = t.version
    LEFT JOIN events e ON e.org_id = r.org_id AND e.id = t.event_id
    LEFT JOIN contacts c ON c.org_id = r.org_id AND c.id = r.contact_id`.execute(db);
  return r.rows.map((x) => ({
    i: x.i,
    existing_id: x.existing_id,
    existing_hash: x.existing_hash,
    org_name: x.org_name,
    org_settings: x.org_settings,
    template:
      x.t_id && x.v_subject !== null && x.v_subject !== undefined
        ? {
            id: x.t_id,
            org_id: x.t_org_id,
            audience_id: x.t_audience_id,
            event_id: x.t_event_id,
            community_id: x.t_community_id,
            name: x.t_name,
            builtin_kind: x.t_builtin_kind,
            version: x.t_version,
            created_at: x.t_created_at,
            updated_at: x.t_updated_at,
            deleted_at: x.t_deleted_at,
            category: x.v_category,
            language: x.v_language,
            subject: x.v_subject,
            preheader: x.v_preheader,
            format: x.v_format,
            body: x.v_body,
            text_body: x.v_text_body,
            tracking: x.v_tracking,
            from_name: x.v_from_name,
            from_email: x.v_from_email,
            reply_to: x.v_reply_to,
          }
        : null,
    event: x.e_id ? { id: x.e_id, org_id: x.e_org_id, audience_id: x.e_audience_id, name: x.e_name, starts_at: x.e_starts_at, ends_at: x.e_ends_at, time_zone: x.e_time_zone } : null,
    contact: x.c_id
      ? {
          id: x.c_id,
          audience_id: x.c_audience_id,
          email: x.c_email,
          email_lower: x.c_email_lower,
          first_name: x.c_first_name,
          last_name: x.c_last_name,
          company: x.c_company,
          job_title: x.c_job_title,
          fields: x.c_fields,
          marketing_authorized_at: x.c_marketing_authorized_at,
          marketing_withdrawn_at: x.c_marketing_withdrawn_at,
          event_ids: x.c_event_ids,
          community_ids: x.c_community_ids,
        }
      : null,
    hard_bounced_at: x.hard_bounced_at,
    complained_at: x.complained_at,
    excluded: x.excluded === true,
    field_keys: x.field_keys ?? [],
  }));
}

/** One triggered message as the accept batch writes it: the message, its one delivery, its first event. */
export interface TriggeredRow {
  id: string;
  org_id: string;
  audience_id: string;
  category: MessagesTable['category'];
  template_id: string | null;
  template_version: number | null;
  event_id: string | null;
  community_id: string | null;
  inline: unknown;
  variables: unknown;
  sensitive: boolean;
  idempotency_key: string | null;
  request_hash: string;
  custom_id: string | null;
  tags: string[];
  send_at: Date | null;
  created_by: string;
  created_at: Date;
  delivery: { id: string; contact_id: string; email: string; lane: Lane; priority: number; status: 'queued' | 'blocked'; rule: string | null; rule_detail: string | null; due_at: Date; expires_at: Date };
  event: { type: string; detail: unknown };
}

/**
 * Writes triggered messages with their delivery and first event, any number in one statement (one
 * commit for all of them, and one run of the message_events statement triggers). A message whose
 * idempotency key another message holds is skipped with its delivery and event; returns the ids of the
 * messages written. Rows go in (organisation, key) order, so that concurrent batches holding the same
 * keys wait for each other instead of deadlocking. Workers of other processes hear of messages due
 * now at commit (NOTIFY, once per lane).
 */
export async function insertTriggered(db: Q, rows: readonly TriggeredRow[]): Promise<Set<string>> {
  if (rows.length === 0) return new Set();
  const json = JSON.stringify(
    rows.map((m, ord) => ({
      ord,
      id: m.id,
      org_id: m.org_id,
      audience_id: m.audience_id,
      category: m.category,
      template_id: m.template_id,
      template_version: m.template_version,
      event_id: m.event_id,
      community_id: m.community_id,
      inline: m.inline,
      variables: m.variables,
      sensitive: m.sensitive,
      idempotency_key: m.idempotency_key,
      request_hash: m.request_hash,
      custom_id: m.custom_id,
      tags: m.tags,
      send_at: m.send_at ? m.send_at.toISOString() : null,
      created_by: m.created_by,
      created_at: m.created_at.toISOString(),
      delivery_id: m.delivery.id,
      contact_id: m.delivery.contact_id,
      email: m.delivery.email,
      lane: m.delivery.lane,
      priority: m.delivery.priority,
      status: m.delivery.status,
      rule: m.delivery.rule,
      rule_detail: m.delivery.rule_detail,
      due_at: m.delivery.due_at.toISOString(),
      expires_at: m.delivery.expires_at.toISOString(),
      event_type: m.event.type,
      event_detail: m.event.detail,
    })),
  );
  const r = await sql<{ id: string; notice: boolean }>`
    WITH v AS (
      SELECT * FROM jsonb_to_recordset(${json}::jsonb) AS v(
        ord int, id uuid, org_id uuid, audience_id uuid, category text, template_id uuid, template_version int, event_id uuid, community_id uuid,
        inline jsonb, variables jsonb, sensitive boolean, idempotency_key text, request_hash text, custom_id text, tags text[], send_at timestamptz,
        created_by text, created_at timestamptz, delivery_id uuid, contact_id uuid, email text, lane text, priority smallint, status text,
        rule text, rule_detail text, due_at timestamptz, expires_at timestamptz, event_type text, event_detail jsonb)
    ),
    m AS (
      INSERT INTO messages (id, org_id, audience_id, origin, category, template_id, template_version, event_id, community_id, inline, variables,
                            sensitive, idempotency_key, request_hash, custom_id, tags, send_at, created_by, created_at)
      SELECT id, org_id, audience_id, 'triggered', category, template_id, template_version, event_id, community_id, inline, coalesce(variables, '{}'::jsonb),
             sensitive, idempotency_key, request_hash, custom_id, coalesce(tags, '{}'), send_at, created_by, created_at
      FROM v
      ORDER BY org_id, idempotency_key, ord
      ON CONFLICT (org_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
      RETURNING id
    ),
    d AS (
      INSERT INTO deliveries (id, org_id, message_id, contact_id, email, lane, priority, status, rule, rule_detail, due_at, expires_at, created_at, updated_at)
      SELECT v.delivery_id, v.org_id, v.id, v.contact_id, v.email, v.lane, v.priority, v.status, v.rule, v.rule_detail, v.due_at, v.expires_at, v.created_at, v.created_at
      FROM v JOIN m ON m.id = v.id
      ORDER BY v.ord
      RETURNING id
    ),
    ev AS (
      INSERT INTO message_events (org_id, message_id, delivery_id, type, at, detail)
      SELECT v.org_id, v.id, v.delivery_id, v.event_type, v.created_at, coalesce(v.event_detail, '{}'::jsonb)
      FROM v JOIN d ON d.id = v.delivery_id
      ORDER BY v.ord
    )
    SELECT m.id::text AS id, false AS notice FROM m
    UNION ALL
    SELECT pg_notify(${QUEUED_CHANNEL}, l.lane)::text, true FROM (SELECT DISTINCT v.lane FROM v JOIN m ON m.id = v.id WHERE v.status = 'queued' AND v.due_at <= v.created_at) l`.execute(db);
  return new Set(r.rows.flatMap((x) => (x.notice ? [] : [x.id])));
}

/** The channel workers LISTEN on (payload: the lane). */
export const QUEUED_CHANNEL = 'envoi_queued';

export async function notifyWorkers(db: Q, lane: Lane) {
  await sql`select pg_notify(${QUEUED_CHANNEL}, ${lane})`.execute(db);
}

const CHUNK = 1000;

/** What the deliveries of one page of a bulk send share. */
export interface RecipientsPage {
  org_id: string;
  message_id: string;
  lane: Lane;
  priority: number;
  due_at: Date;
  expires_at: Date;
  /** created_at and updated_at of the deliveries, `at` of their events */
  now: Date;
  /** queued, or paused (a campaign held while it was resolved) */
  allowedStatus: 'queued' | 'paused';
}

/** One recipient of the page: `rule` null when the policy allows it. */
export interface PageRecipient {
  contact_id: string;
  email: string;
  rule: string | null;
  rule_detail: string | null;
}

const PAGE_CHUNK = 5000;

/**
 * Writes a page of a bulk send's recipients: a delivery each, and its `queued` or `blocked` event,
 * in one statement per 5,000, in one transaction (a (message, contact) already written is left alone, and gets no second
 * event). Returns how many were queued. One array per varying column (unnest), the shared values once:
 * the statement is parsed and planned in the same time whatever the page, and the rows are neither
 * sent back nor sent again for their events (BENCHMARKS.md, Campaign).
 */
export async function insertRecipients(db: Q, page: RecipientsPage, rows: readonly PageRecipient[]): Promise<number> {
  if (rows.length > PAGE_CHUNK && !db.isTransaction) return db.transaction().execute((trx) => insertRecipients(trx, page, rows));
  let queued = 0;
  for (let i = 0; i < rows.length; i += PAGE_CHUNK) {
    const part = rows.slice(i, i + PAGE_CHUNK);
    const now = page.now.toISOString();
    const r = await sql<{ queued: number }>`
      WITH v AS (
        SELECT * FROM unnest(${part.map(() => nextRowId())}::uuid[], ${part.map((x) => x.contact_id)}::uuid[], ${part.map((x) => x.email)}::text[],
                             ${part.map((x) => x.rule)}::text[], ${part.map((x) => x.rule_detail)}::text[])
                 WITH ORDINALITY AS v(id, contact_id, email, rule, rule_detail, ord)
      ),
      d AS (
        INSERT INTO deliveries (id, org_id, message_id, contact_id, email, lane, priority, status, rule, rule_detail, due_at, expires_at, created_at, updated_at)
        SELECT id, ${page.org_id}::uuid, ${page.message_id}::uuid, contact_id, email, ${page.lane}, ${page.priority}::smallint,
               CASE WHEN rule IS NULL THEN ${page.allowedStatus} ELSE 'blocked' END, rule, rule_detail,
               ${page.due_at.toISOString()}::timestamptz, ${page.expires_at.toISOString()}::timestamptz, ${now}::timestamptz, ${now}::timestamptz
        FROM v ORDER BY ord
        ON CONFLICT (message_id, contact_id) WHERE contact_id IS NOT NULL DO NOTHING
        RETURNING id, status, rule, rule_detail
      ),
      e AS (
        INSERT INTO message_events (org_id, message_id, delivery_id, type, at, detail)
        SELECT ${page.org_id}::uuid, ${page.message_id}::uuid, d.id, CASE WHEN d.status = 'blocked' THEN 'blocked' ELSE 'queued' END, ${now}::timestamptz,
               CASE WHEN d.status = 'blocked' THEN jsonb_build_object('rule', d.rule, 'detail', d.rule_detail) ELSE '{}'::jsonb END
        FROM d ORDER BY d.id
      )
      SELECT count(*) FILTER (WHERE status = 'queued')::int AS queued FROM d`.execute(db);
    queued += r.rows[0]?.queued ?? 0;
  }
  return queued;
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

/**
 * Among these contacts, those an earlier run of the campaign already reached (a delivery other than
 * blocked) and those it only ever blocked (no consent then, excluded...).
 */
export async function campaignRecipientsAmong(db: Q, campaignId: string, contactIds: readonly string[]): Promise<{ reached: Set<string>; blockedOnly: Set<string> }> {
  if (contactIds.length === 0) return { reached: new Set(), blockedOnly: new Set() };
  const rows = await db
    .selectFrom('deliveries as d')
    .innerJoin('messages as m', 'm.id', 'd.message_id')
    .select(['d.contact_id', (eb) => eb.fn.countAll<string>().filterWhere('d.status', '!=', 'blocked').as('reached')])
    .where('m.campaign_id', '=', campaignId)
    .where('d.contact_id', 'in', [...contactIds])
    .groupBy('d.contact_id')
    .execute();
  const reached = new Set<string>();
  const blockedOnly = new Set<string>();
  for (const r of rows) (Number(r.reached) > 0 ? reached : blockedOnly).add(r.contact_id!);
  return { reached, blockedOnly };
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

/** Events in the order given (their ids increase with it); one array per column, as insertDeliveries. */
export async function insertEvents(db: Q, rows: readonly Insertable<MessageEventsTable>[]) {
  const iso = (at: Date | string | undefined) => (at === undefined || typeof at === 'string' ? (at ?? null) : at.toISOString());
  const json = (d: unknown) => (d === undefined ? '{}' : typeof d === 'string' ? d : JSON.stringify(d));
  for (let i = 0; i < rows.length; i += CHUNK) {
    const part = rows.slice(i, i + CHUNK);
    await sql`
      INSERT INTO message_events (org_id, message_id, delivery_id, type, at, detail)
      SELECT org_id, message_id, delivery_id, type, at, detail
      FROM unnest(${part.map((r) => r.org_id)}::uuid[], ${part.map((r) => r.message_id)}::uuid[], ${part.map((r) => r.delivery_id ?? null)}::uuid[],
                  ${part.map((r) => r.type)}::text[], ${part.map((r) => iso(r.at))}::timestamptz[], ${part.map((r) => json(r.detail))}::jsonb[])
           WITH ORDINALITY AS v(org_id, message_id, delivery_id, type, at, detail, ord)
      ORDER BY ord`.execute(db);
  }
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
  const rows = await db.selectFrom('suppressions').select(['email_lower', 'reason', 'created_at']).where('org_id', '=', orgId).where('email_lower', '=', sql<string>`any(${[...new Set(emailLowers)]}::text[])`).execute();
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
  // Runs on a timer beside the same worker's outcome writes, which lock some of these rows in another
  // order: skipping rows locked right now (they are being finished) means the renewal never waits, so
  // the two can never deadlock.
  const r = await db
    .updateTable('deliveries')
    .set({ lease_until: leaseUntil, due_at: leaseUntil, updated_at: now })
    .where('id', 'in', (qb) =>
      qb.selectFrom('deliveries').select('id').where('leased_by', '=', workerId).where('status', '=', 'sending').forUpdate().skipLocked(),
    )
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
