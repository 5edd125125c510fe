import { sql, type Insertable, type Kysely, type Selectable, type Updateable } from 'kysely';
import type { CampaignsTable, CampaignStatus, DB, DeliveryStatus } from '../platform/schema.ts';

type Q = Kysely<DB>;
export type CampaignRow = Selectable<CampaignsTable>;

export async function insertCampaign(db: Q, row: Insertable<CampaignsTable>): Promise<CampaignRow> {
  return db.insertInto('campaigns').values(row).returningAll().executeTakeFirstOrThrow();
}

export function findCampaign(db: Q, orgId: string, id: string) {
  return db.selectFrom('campaigns').selectAll().where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst();
}

export function listCampaigns(db: Q, audienceId: string) {
  return db.selectFrom('campaigns').selectAll().where('audience_id', '=', audienceId).orderBy('created_at', 'desc').orderBy('id').execute();
}

/** Changes a campaign only if it is still in one of `from`: two clicks (or a click and the scheduler) cannot both win. */
export async function updateIf(db: Q, id: string, from: readonly CampaignStatus[], set: Updateable<CampaignsTable>): Promise<CampaignRow | undefined> {
  return db.updateTable('campaigns').set(set).where('id', '=', id).where('status', 'in', [...from]).returningAll().executeTakeFirst();
}

/**
 * Takes one campaign whose run is due (scheduled and its time has come), or whose resolution was
 * left by a scheduler that stopped holding it, and leases it to `holder`.
 */
export async function claimDue(db: Q, holder: string, now: Date, leaseUntil: Date): Promise<(CampaignRow & { previous_status: CampaignStatus }) | undefined> {
  const r = await sql<CampaignRow & { previous_status: CampaignStatus }>`
    WITH due AS (
      SELECT id, status AS previous_status FROM campaigns
      WHERE (status = 'scheduled' AND next_run_at <= ${now}::timestamptz)
         OR (status = 'resolving' AND (lease_until IS NULL OR lease_until < ${now}::timestamptz OR leased_by = ${holder}))
      ORDER BY next_run_at NULLS FIRST
      LIMIT 1
      FOR UPDATE SKIP LOCKED
    )
    UPDATE campaigns c SET status = 'resolving', leased_by = ${holder}, lease_until = ${leaseUntil}::timestamptz, updated_at = ${now}::timestamptz
    FROM due WHERE c.id = due.id
    RETURNING c.*, due.previous_status`.execute(db);
  return r.rows[0];
}

/** Progress of a resolution, written only while `holder` still has the campaign resolving. */
export async function advance(db: Q, id: string, holder: string, set: Updateable<CampaignsTable>) {
  return db.updateTable('campaigns').set(set).where('id', '=', id).where('leased_by', '=', holder).where('status', '=', 'resolving').returningAll().executeTakeFirst();
}

export function sendingCampaigns(db: Q, limit: number) {
  return db.selectFrom('campaigns').select(['id', 'message_id']).where('status', '=', 'sending').orderBy('updated_at').limit(limit).execute();
}

export function listEventCampaigns(db: Q, eventId: string) {
  return db.selectFrom('campaigns').selectAll().where('event_id', '=', eventId).orderBy('send_at').orderBy('id').execute();
}

export async function hasDeliveryIn(db: Q, messageId: string, statuses: readonly DeliveryStatus[]): Promise<boolean> {
  // The statuses as literals: the planner can then prove the partial index deliveries_pending (0015)
  // covers them, which it cannot for bound parameters under a generic plan.
  const row = await db
    .selectFrom('deliveries')
    .select('id')
    .where('message_id', '=', messageId)
    .where('status', 'in', statuses.map((s) => sql.lit(s)))
    .limit(1)
    .executeTakeFirst();
  return row !== undefined;
}
