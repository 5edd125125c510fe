import { sql, type Kysely, type Selectable, type Transaction } from 'kysely';
import type { ConsentRecordsTable, DB } from '../platform/schema.ts';
import { escapeLike } from '../platform/like-pattern.ts';
import { GENESIS_HASH, recordHash, sha256, stateAfter, type RecordContent } from './ledger-rules.ts';

type Q = Kysely<DB>;
export type ConsentRecordRow = Selectable<ConsentRecordsTable>;

export interface NewRecord extends Omit<RecordContent, 'email_hash' | 'ip_hash' | 'user_agent_hash'> {
  org_id: string;
  contact_id: string;
  /** the address as the contact has it now; stored in clear (until erasure) and as its digest */
  email_lower: string;
  ip: string | null;
  user_agent: string | null;
}

/**
 * Appends one record to its audience's chain and brings the contact's derived marketing columns in
 * line, in the caller's transaction. The advisory lock serialises appends per audience, so two
 * concurrent records cannot both claim the same predecessor.
 */
export async function appendRecord(trx: Transaction<DB>, r: NewRecord): Promise<ConsentRecordRow> {
  await sql`select pg_advisory_xact_lock(hashtextextended(${`consent:${r.audience_id}`}, 0))`.execute(trx);
  const last = await trx.selectFrom('consent_records').select('hash').where('audience_id', '=', r.audience_id).orderBy('seq', 'desc').limit(1).executeTakeFirst();
  const prev = last?.hash ?? GENESIS_HASH;
  const content: RecordContent = {
    audience_id: r.audience_id,
    email_hash: sha256(r.email_lower),
    purpose: r.purpose,
    action: r.action,
    method: r.method,
    wording: r.wording,
    wording_version: r.wording_version,
    ip_hash: r.ip ? sha256(r.ip) : null,
    user_agent_hash: r.user_agent ? sha256(r.user_agent) : null,
    message_id: r.message_id,
    delivery_id: r.delivery_id,
    campaign_id: r.campaign_id,
    actor: r.actor,
    at: r.at,
  };
  const row = await trx
    .insertInto('consent_records')
    .values({ ...content, org_id: r.org_id, contact_id: r.contact_id, email: r.email_lower, ip: r.ip, user_agent: r.user_agent, prev_hash: prev, hash: recordHash(prev, content) })
    .returningAll()
    .executeTakeFirstOrThrow();
  // The contact's columns follow the latest change by its date, not by when it was recorded: a proof
  // imported with an earlier `at` (an opt-in collected on paper in 2019) must not undo a withdrawal
  // made since, nor an old withdrawal end a newer opt-in. It stays in the ledger either way.
  const state = stateAfter(r.action, r.at);
  if (state) {
    await trx
      .updateTable('contacts')
      .set(state)
      .where('id', '=', r.contact_id)
      .where('org_id', '=', r.org_id)
      .where(sql<boolean>`coalesce(greatest(marketing_authorized_at, marketing_withdrawn_at), '-infinity'::timestamptz) <= ${r.at}`)
      .execute();
  }
  return row;
}

export function recordsOfContact(db: Q, orgId: string, contactId: string) {
  return db.selectFrom('consent_records').selectAll().where('org_id', '=', orgId).where('contact_id', '=', contactId).orderBy('seq').execute();
}

/** One page of an audience's chain, in order, after `afterSeq`. */
export function chainPage(db: Q, audienceId: string, afterSeq: string, limit: number) {
  return db.selectFrom('consent_records').selectAll().where('audience_id', '=', audienceId).where('seq', '>', afterSeq).orderBy('seq').limit(limit).execute();
}

// ---- exclusions ----

export async function excludedAmong(db: Q, orgId: string, emailLowers: readonly string[]): Promise<Set<string>> {
  if (emailLowers.length === 0) return new Set();
  const rows = await db.selectFrom('exclusions').select('email_lower').where('org_id', '=', orgId).where('email_lower', '=', sql<string>`any(${[...new Set(emailLowers)]}::text[])`).execute();
  return new Set(rows.map((r) => r.email_lower));
}

/** Adds addresses; those already listed keep their first reason. Returns how many were new. */
export async function addExclusions(db: Q, rows: { org_id: string; email_lower: string; reason: string | null; source: string; created_by: string; created_at: Date }[]): Promise<number> {
  let added = 0;
  for (let i = 0; i < rows.length; i += 1000) {
    const r = await db.insertInto('exclusions').values(rows.slice(i, i + 1000)).onConflict((oc) => oc.columns(['org_id', 'email_lower']).doNothing()).executeTakeFirst();
    added += Number(r.numInsertedOrUpdatedRows ?? 0);
  }
  return added;
}

export async function removeExclusion(db: Q, orgId: string, emailLower: string): Promise<boolean> {
  const r = await db.deleteFrom('exclusions').where('org_id', '=', orgId).where('email_lower', '=', emailLower).executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}

export function listExclusions(db: Q, orgId: string, page: { limit: number; offset: number; q?: string }) {
  let q = db.selectFrom('exclusions').selectAll().where('org_id', '=', orgId);
  if (page.q) q = q.where('email_lower', 'like', `%${escapeLike(page.q.toLowerCase())}%`);
  return q.orderBy('created_at', 'desc').orderBy('email_lower').limit(page.limit).offset(page.offset).execute();
}

/** How many addresses the list holds, or with `q` how many of them match the search (the total a search's pages run to). */
export async function countExclusions(db: Q, orgId: string, q?: string): Promise<number> {
  let query = db.selectFrom('exclusions').select((eb) => eb.fn.countAll<string>().as('n')).where('org_id', '=', orgId);
  if (q) query = query.where('email_lower', 'like', `%${escapeLike(q.toLowerCase())}%`);
  const r = await query.executeTakeFirstOrThrow();
  return Number(r.n);
}

export function findRecord(db: Q, id: string) {
  return db.selectFrom('consent_records').selectAll().where('id', '=', id).executeTakeFirst();
}

export function answersOfCampaign(db: Q, campaignId: string) {
  return db
    .selectFrom('consent_records')
    .select(['email_hash', 'contact_id', 'email', 'action', 'at'])
    .where('campaign_id', '=', campaignId)
    .where('action', 'in', ['repermission_yes', 'repermission_no'])
    .orderBy('email_hash')
    .orderBy('seq')
    .execute();
}
