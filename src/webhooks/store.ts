import { sql, type Insertable, type Kysely, type Selectable, type Updateable } from 'kysely';
import type { DB, WebhookAttempt, WebhookDeliveryStatus, WebhookEndpointsTable } from '../platform/schema.ts';

type Q = Kysely<DB>;
export type EndpointRow = Selectable<WebhookEndpointsTable>;

// ---- endpoints ----

export function insertEndpoint(db: Q, row: Insertable<WebhookEndpointsTable>): Promise<EndpointRow> {
  return db.insertInto('webhook_endpoints').values(row).returningAll().executeTakeFirstOrThrow();
}

export function listEndpoints(db: Q, orgId: string) {
  return db.selectFrom('webhook_endpoints').selectAll().where('org_id', '=', orgId).orderBy('created_at').orderBy('id').execute();
}

export function findEndpoint(db: Q, orgId: string, id: string) {
  return db.selectFrom('webhook_endpoints').selectAll().where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst();
}

export function updateEndpoint(db: Q, orgId: string, id: string, set: Updateable<WebhookEndpointsTable>) {
  return db.updateTable('webhook_endpoints').set(set).where('org_id', '=', orgId).where('id', '=', id).returningAll().executeTakeFirst();
}

export async function deleteEndpoint(db: Q, orgId: string, id: string): Promise<boolean> {
  const r = await db.deleteFrom('webhook_endpoints').where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}

// ---- the delivery log ----

export interface DeliveryView {
  id: string;
  endpoint_id: string;
  status: WebhookDeliveryStatus;
  attempts: number;
  /** null unless pending and waiting: the time of the next attempt (a fresh row's is its creation) */
  next_attempt_at: Date | null;
  /** a dispatcher is sending it now */
  in_flight: boolean;
  last_attempt_at: Date | null;
  last_status_code: number | null;
  last_error: string | null;
  response_snippet: string | null;
  attempt_log: WebhookAttempt[];
  created_at: Date;
  delivered_at: Date | null;
  failed_at: Date | null;
  event_id: string;
  event_type: string;
  occurred_at: Date;
  payload: unknown;
}

// '-infinity' never leaves this file: the drivers would return it as a number.
const deliveryColumns = (now: Date) => sql`
  d.id, d.endpoint_id, d.status, d.attempts,
  CASE WHEN d.status = 'pending' AND (d.lease_until IS NULL OR d.lease_until <= ${now}::timestamptz)
       THEN CASE WHEN isfinite(d.next_attempt_at) THEN d.next_attempt_at ELSE d.created_at END END AS next_attempt_at,
  (d.status = 'pending' AND d.lease_until > ${now}::timestamptz) AS in_flight,
  d.last_attempt_at, d.last_status_code, d.last_error, d.response_snippet, d.attempt_log, d.created_at, d.delivered_at, d.failed_at,
  v.id AS event_id, v.type AS event_type, v.occurred_at, v.payload`;

export async function listDeliveries(db: Q, o: { endpointId: string; status?: WebhookDeliveryStatus; limit: number; offset: number; now: Date }): Promise<DeliveryView[]> {
  const r = await sql<DeliveryView>`
    SELECT ${deliveryColumns(o.now)}
    FROM webhook_deliveries d JOIN webhook_events v ON v.id = d.event_id
    WHERE d.endpoint_id = ${o.endpointId} ${o.status ? sql`AND d.status = ${o.status}` : sql``}
    ORDER BY d.created_at DESC, d.id DESC
    LIMIT ${o.limit} OFFSET ${o.offset}`.execute(db);
  return r.rows;
}

export async function findDelivery(db: Q, endpointId: string, id: string, now: Date): Promise<DeliveryView | undefined> {
  const r = await sql<DeliveryView>`
    SELECT ${deliveryColumns(now)}
    FROM webhook_deliveries d JOIN webhook_events v ON v.id = d.event_id
    WHERE d.endpoint_id = ${endpointId} AND d.id = ${id}`.execute(db);
  return r.rows[0];
}

/**
 * Makes a delivery due at once as the start of a new series (a fresh 24 hours, the backoff from
 * its first step), unless a dispatcher holds it right now. Returns whether it did.
 */
export async function replay(db: Q, endpointId: string, id: string, now: Date): Promise<boolean> {
  const r = await sql`
    UPDATE webhook_deliveries
    SET status = 'pending', next_attempt_at = '-infinity', retry_until = NULL, series_base = attempts, delivered_at = NULL, failed_at = NULL
    WHERE endpoint_id = ${endpointId} AND id = ${id} AND (lease_until IS NULL OR lease_until <= ${now}::timestamptz)`.execute(db);
  return Number(r.numAffectedRows ?? 0) > 0;
}

/** A ping event with its one delivery, to this endpoint only (the fan-out trigger skips pings). */
export async function insertPing(db: Q, orgId: string, endpointId: string, payload: unknown, now: Date): Promise<{ event_id: string; delivery_id: string }> {
  const r = await sql<{ event_id: string; delivery_id: string }>`
    WITH ev AS (
      INSERT INTO webhook_events (org_id, type, payload, occurred_at)
      VALUES (${orgId}, 'ping', ${JSON.stringify(payload)}::jsonb, ${now}::timestamptz)
      RETURNING id
    )
    INSERT INTO webhook_deliveries (org_id, endpoint_id, event_id)
    SELECT ${orgId}, ${endpointId}, ev.id FROM ev
    RETURNING event_id, id AS delivery_id`.execute(db);
  return r.rows[0]!;
}

// ---- the dispatcher's queue ----

export interface ClaimedDelivery {
  id: string;
  org_id: string;
  endpoint_id: string;
  /** counting this one */
  attempts: number;
  series_base: number;
  retry_until: Date;
  url: string;
  secret: string;
  event_id: string;
  type: string;
  payload: unknown;
  occurred_at: Date;
}

/**
 * Claims up to `limit` due deliveries for `holder` until `leaseUntil`, so that no endpoint has more
 * than `perEndpoint` in flight counting those `inFlight` says it already has, endpoints taken in
 * random order: a receiver with a backlog, or one that times out on every request, gets a few of the
 * dispatcher's slots and the others still get theirs. Each endpoint's due rows come from its own
 * index range, so a claim costs a lookup per enabled endpoint whatever the backlog. SKIP LOCKED lets
 * dispatchers take disjoint rows; the lease, written as the row's next attempt time, brings a row
 * back if its holder dies.
 */
export async function claim(
  db: Q,
  o: { holder: string; now: Date; leaseUntil: Date; retryUntil: Date; limit: number; perEndpoint: number; inFlight: ReadonlyMap<string, number> },
): Promise<ClaimedDelivery[]> {
  const inFlight = JSON.stringify(Object.fromEntries(o.inFlight));
  const r = await sql<ClaimedDelivery>`
    WITH busy AS (SELECT ${inFlight}::jsonb AS m),
    picked AS (
      SELECT x.id
      FROM (
        SELECT e.id, ${o.perEndpoint}::int - coalesce((busy.m ->> e.id::text)::int, 0) AS room
        FROM webhook_endpoints e, busy
        WHERE e.enabled AND coalesce((busy.m ->> e.id::text)::int, 0) < ${o.perEndpoint}::int
        ORDER BY random()
      ) e
      CROSS JOIN LATERAL (
        SELECT w.id FROM webhook_deliveries w
        WHERE w.endpoint_id = e.id AND w.status = 'pending' AND w.next_attempt_at <= ${o.now}::timestamptz
        ORDER BY w.next_attempt_at
        LIMIT e.room
        FOR UPDATE SKIP LOCKED
      ) x
      LIMIT ${o.limit}
    )
    UPDATE webhook_deliveries d
    SET attempts = d.attempts + 1, leased_by = ${o.holder}, lease_until = ${o.leaseUntil}::timestamptz, next_attempt_at = ${o.leaseUntil}::timestamptz,
        retry_until = coalesce(d.retry_until, ${o.retryUntil}::timestamptz)
    FROM picked, webhook_endpoints e, webhook_events v
    WHERE d.id = picked.id AND e.id = d.endpoint_id AND v.id = d.event_id
    RETURNING d.id, d.org_id, d.endpoint_id, d.attempts, d.series_base, d.retry_until, e.url, e.secret, v.id AS event_id, v.type, v.payload, v.occurred_at`.execute(db);
  return r.rows;
}

export interface AttemptOutcome {
  id: string;
  status: WebhookDeliveryStatus;
  /** the next attempt, when still pending */
  next_attempt_at: Date | null;
  at: Date;
  status_code: number | null;
  error: string | null;
  response_snippet: string | null;
  duration_ms: number;
}

const LOG_CAP = 25;

/** Writes an attempt, if `holder` still holds the row (a replay or a takeover after its lease wins otherwise). */
export async function recordAttempt(db: Q, holder: string, o: AttemptOutcome): Promise<boolean> {
  const entry: WebhookAttempt = { at: o.at.toISOString(), status_code: o.status_code, error: o.error, duration_ms: o.duration_ms };
  const r = await sql`
    UPDATE webhook_deliveries
    SET status = ${o.status},
        next_attempt_at = coalesce(${o.next_attempt_at}::timestamptz, next_attempt_at),
        leased_by = NULL, lease_until = NULL,
        last_attempt_at = ${o.at}::timestamptz, last_status_code = ${o.status_code}::integer, last_error = ${o.error}::text, response_snippet = ${o.response_snippet}::text,
        attempt_log = (CASE WHEN jsonb_array_length(attempt_log) >= ${LOG_CAP} THEN attempt_log - 0 ELSE attempt_log END) || jsonb_build_array(${JSON.stringify(entry)}::jsonb),
        delivered_at = CASE WHEN ${o.status}::text = 'delivered' THEN ${o.at}::timestamptz END,
        failed_at = CASE WHEN ${o.status}::text = 'failed' THEN ${o.at}::timestamptz END
    WHERE id = ${o.id} AND status = 'pending' AND leased_by = ${holder}`.execute(db);
  return Number(r.numAffectedRows ?? 0) > 0;
}

/**
 * Erasure of one person: their address, and the details of their mail that may name them, go from
 * the events already delivered or given up, and from what the receivers answered to them. Events
 * still pending keep theirs until sent: among them are the withdrawal and deletion that tell the
 * receiver to erase the person too.
 */
/** Returns how many events it cleared. */
export async function eraseSubject(db: Q, orgId: string, emailLower: string, contactIds: readonly string[]): Promise<number> {
  const r = await sql<{ n: number }>`
    WITH erased AS (
      UPDATE webhook_events v
      SET payload = CASE WHEN v.payload ? 'detail' THEN jsonb_set(v.payload, '{detail}', (v.payload->'detail') - 'user_agent' - 'recipient' - 'smtp_response' - 'diagnostic') ELSE v.payload END
                    || jsonb_build_object('email', NULL)
      WHERE v.org_id = ${orgId}
        AND (lower(v.payload->>'email') = ${emailLower} OR (v.payload->>'contact_id') = ANY(${[...contactIds]}::text[]))
        AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = v.id AND d.status = 'pending')
      RETURNING v.id
    ),
    answers AS (
      UPDATE webhook_deliveries d SET response_snippet = NULL FROM erased WHERE d.event_id = erased.id
    )
    SELECT count(*)::int AS n FROM erased`.execute(db);
  return r.rows[0]!.n;
}

/** Deletes up to `limit` events that happened before `before`, with their deliveries; returns how many. */
export async function pruneEvents(db: Q, before: Date, limit: number): Promise<number> {
  const r = await sql`
    DELETE FROM webhook_events WHERE id IN (SELECT id FROM webhook_events WHERE occurred_at < ${before}::timestamptz ORDER BY occurred_at LIMIT ${limit})`.execute(db);
  return Number(r.numAffectedRows ?? 0);
}
