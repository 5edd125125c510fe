import { sql, type Insertable, type Kysely, type Selectable, type Updateable } from 'kysely';
import type { DB, ProgramEntriesTable, ProgramEntryStatus, ProgramsTable } from '../platform/schema.ts';

type Q = Kysely<DB>;
export type ProgramRow = Selectable<ProgramsTable>;
export type EntryRow = Selectable<ProgramEntriesTable>;

// ---- programs ----

export function insertProgram(db: Q, row: Insertable<ProgramsTable>): Promise<ProgramRow> {
  return db.insertInto('programs').values(row).returningAll().executeTakeFirstOrThrow();
}

export function findProgram(db: Q, orgId: string, id: string) {
  return db.selectFrom('programs').selectAll().where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst();
}

export function findProgramById(db: Q, id: string) {
  return db.selectFrom('programs').selectAll().where('id', '=', id).executeTakeFirst();
}

export function listPrograms(db: Q, audienceId: string) {
  return db.selectFrom('programs').selectAll().where('audience_id', '=', audienceId).orderBy('created_at').orderBy('id').execute();
}

export function updateProgram(db: Q, id: string, set: Updateable<ProgramsTable>) {
  return db.updateTable('programs').set(set).where('id', '=', id).returningAll().executeTakeFirstOrThrow();
}

export async function deleteProgram(db: Q, id: string) {
  await db.deleteFrom('programs').where('id', '=', id).execute();
}

/** The organisation's enabled message-triggered programs, as edges trigger template -> sent template. */
export async function messageEdges(db: Q, orgId: string, exceptId: string | null) {
  let q = db.selectFrom('programs').select(['id', 'name', 'trigger_template_id', 'template_id']).where('org_id', '=', orgId).where('enabled', '=', true).where('trigger_template_id', 'is not', null);
  if (exceptId) q = q.where('id', '!=', exceptId);
  const rows = await q.execute();
  return rows.map((r) => ({ name: r.name, triggerTemplateId: r.trigger_template_id!, templateId: r.template_id }));
}

export async function entryCounts(db: Q, programIds: readonly string[]): Promise<Map<string, Partial<Record<ProgramEntryStatus, number>>>> {
  const out = new Map<string, Partial<Record<ProgramEntryStatus, number>>>();
  if (programIds.length === 0) return out;
  const rows = await db
    .selectFrom('program_entries')
    .select(['program_id', 'status', (eb) => eb.fn.countAll<string>().as('n')])
    .where('program_id', 'in', [...programIds])
    .groupBy(['program_id', 'status'])
    .execute();
  for (const r of rows) {
    const m = out.get(r.program_id) ?? {};
    m[r.status] = Number(r.n);
    out.set(r.program_id, m);
  }
  return out;
}

// ---- external events ----

export function findExternalEventByKey(db: Q, orgId: string, key: string) {
  return db.selectFrom('external_events').selectAll().where('org_id', '=', orgId).where('idempotency_key', '=', key).executeTakeFirst();
}

export async function insertExternalEvent(db: Q, row: Insertable<DB['external_events']>): Promise<string | undefined> {
  const r = await db
    .insertInto('external_events')
    .values(row)
    .onConflict((oc) => oc.columns(['org_id', 'idempotency_key']).where('idempotency_key', 'is not', null).doNothing())
    .returning('id')
    .executeTakeFirst();
  return r?.id;
}

/** Enters the contact into every enabled program of the audience triggered by this event's name. */
export async function enterExternal(db: Q, e: { id: string; orgId: string; audienceId: string; contactId: string; name: string; occurredAt: Date; properties: unknown; now: Date }): Promise<number> {
  const context = JSON.stringify({ type: 'external_event', name: e.name, event_id: e.id, occurred_at: e.occurredAt.toISOString(), properties: e.properties });
  const r = await sql`
    INSERT INTO program_entries (org_id, program_id, contact_id, trigger_key, trigger_at, context, due_at, created_at, updated_at)
    SELECT p.org_id, p.id, ${e.contactId}, ${e.id}, ${e.occurredAt}::timestamptz, ${context}::jsonb,
           ${e.occurredAt}::timestamptz + make_interval(secs => p.wait_seconds), ${e.now}::timestamptz, ${e.now}::timestamptz
    FROM programs p
    WHERE p.org_id = ${e.orgId} AND p.audience_id = ${e.audienceId} AND p.enabled AND p.trigger_type = 'external_event' AND p.trigger_name = ${e.name}
    ON CONFLICT (program_id, contact_id, trigger_key) DO NOTHING`.execute(db);
  return Number(r.numAffectedRows ?? 0);
}

/** How many events of `name` the contact had in [since, until]. */
export async function countEvents(db: Q, contactId: string, name: string, since: Date | null, until: Date): Promise<number> {
  let q = db.selectFrom('external_events').select((eb) => eb.fn.countAll<string>().as('n')).where('contact_id', '=', contactId).where('name', '=', name).where('occurred_at', '<=', until);
  if (since) q = q.where('occurred_at', '>=', since);
  return Number((await q.executeTakeFirstOrThrow()).n);
}

// ---- entries ----

/**
 * Leases up to `limit` due waiting entries of enabled programs to `holder`; an entry another runner
 * leased is skipped until its lease ends (a killed runner's entries come back then). A disabled
 * program's entries wait, and go on when it is enabled again.
 */
export async function claimEntries(db: Q, holder: string, now: Date, leaseUntil: Date, limit: number): Promise<EntryRow[]> {
  const r = await sql<EntryRow>`
    WITH due AS (
      SELECT e.id FROM program_entries e JOIN programs p ON p.id = e.program_id
      WHERE e.status = 'waiting' AND e.due_at <= ${now}::timestamptz AND p.enabled
        AND (e.lease_until IS NULL OR e.lease_until < ${now}::timestamptz)
      ORDER BY e.due_at
      LIMIT ${limit}
      FOR UPDATE OF e SKIP LOCKED
    )
    UPDATE program_entries e SET leased_by = ${holder}, lease_until = ${leaseUntil}::timestamptz, attempts = e.attempts + 1, updated_at = ${now}::timestamptz
    FROM due WHERE e.id = due.id
    RETURNING e.*`.execute(db);
  return r.rows;
}

/** Writes to an entry only while `holder` still holds it: a runner whose lease ran out changes nothing. */
export function updateHeld(db: Q, id: string, holder: string, set: Updateable<ProgramEntriesTable>) {
  return db.updateTable('program_entries').set(set).where('id', '=', id).where('leased_by', '=', holder).where('status', '=', 'waiting').returningAll().executeTakeFirst();
}

export function listEntries(db: Q, programId: string, status: ProgramEntryStatus | undefined, limit: number, offset: number) {
  let q = db.selectFrom('program_entries').selectAll().where('program_id', '=', programId);
  if (status) q = q.where('status', '=', status);
  return q.orderBy('created_at', 'desc').orderBy('id').limit(limit).offset(offset).execute();
}

// ---- date fields ----

/** Leases one date-field program whose next look is due. */
export async function claimDateScan(db: Q, holder: string, now: Date, leaseUntil: Date): Promise<ProgramRow | undefined> {
  const r = await sql<ProgramRow>`
    WITH due AS (
      SELECT id FROM programs
      WHERE enabled AND trigger_type = 'date_field' AND (next_scan_at IS NULL OR next_scan_at <= ${now}::timestamptz)
        AND (scan_lease_until IS NULL OR scan_lease_until < ${now}::timestamptz)
      ORDER BY next_scan_at NULLS FIRST
      LIMIT 1
      FOR UPDATE SKIP LOCKED
    )
    UPDATE programs p SET scan_leased_by = ${holder}, scan_lease_until = ${leaseUntil}::timestamptz
    FROM due WHERE p.id = due.id
    RETURNING p.*`.execute(db);
  return r.rows[0];
}

export function advanceScan(db: Q, id: string, holder: string, set: Updateable<ProgramsTable>) {
  return db.updateTable('programs').set(set).where('id', '=', id).where('scan_leased_by', '=', holder).returningAll().executeTakeFirst();
}

/**
 * Contacts of the audience whose date field `key` falls on one of `monthDays` (MM-DD), a page by id.
 * The one query of this capability on the audience's contacts: audience/service.ts has no lookup
 * by the month-day of a field, and a grid filter cannot say "any year".
 */
export async function contactsOnMonthDays(db: Q, audienceId: string, key: string, monthDays: readonly string[], after: string | null, limit: number): Promise<string[]> {
  const r = await sql<{ id: string }>`
    SELECT id FROM contacts
    WHERE audience_id = ${audienceId}
      AND fields->>${key} ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$'
      AND substr(fields->>${key}, 6, 5) = ANY(${[...monthDays]}::text[])
      AND id > ${after ?? '00000000-0000-0000-0000-000000000000'}::uuid
    ORDER BY id
    LIMIT ${limit}`.execute(db);
  return r.rows.map((x) => x.id);
}

export async function enterDate(db: Q, p: ProgramRow, contactIds: readonly string[], e: { key: string; dueAt: Date; context: unknown; now: Date }): Promise<number> {
  if (contactIds.length === 0) return 0;
  const r = await db
    .insertInto('program_entries')
    .values(
      contactIds.map((contactId) => ({
        org_id: p.org_id,
        program_id: p.id,
        contact_id: contactId,
        trigger_key: e.key,
        trigger_at: e.now,
        context: JSON.stringify(e.context),
        due_at: e.dueAt,
        created_at: e.now,
        updated_at: e.now,
      })),
    )
    .onConflict((oc) => oc.columns(['program_id', 'contact_id', 'trigger_key']).doNothing())
    .executeTakeFirst();
  return Number(r.numInsertedOrUpdatedRows ?? 0);
}
