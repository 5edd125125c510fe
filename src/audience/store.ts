import { sql, type Kysely } from 'kysely';
import type { DB, Field } from '../platform/schema.ts';
import type { FieldDef, ValidatedValues } from './rules.ts';

type Q = Kysely<DB>;

export const toFieldDef = (f: Pick<Field, 'key' | 'type' | 'options' | 'scope'>): FieldDef => ({
  key: f.key,
  type: f.type,
  options: (f.options as string[] | null) ?? null,
  central: f.scope === 'audience',
});

export function findAudience(db: Q, orgId: string, audienceId: string) {
  return db.selectFrom('audiences').selectAll().where('org_id', '=', orgId).where('id', '=', audienceId).executeTakeFirst();
}

export function findEvent(db: Q, orgId: string, eventId: string) {
  return db.selectFrom('events').selectAll().where('org_id', '=', orgId).where('id', '=', eventId).executeTakeFirst();
}

export function findCommunity(db: Q, orgId: string, communityId: string) {
  return db.selectFrom('communities').selectAll().where('org_id', '=', orgId).where('id', '=', communityId).executeTakeFirst();
}

/** Central fields, plus the local fields of one event or community when given. */
export function fieldsAvailable(db: Q, audienceId: string, scope?: { eventId?: string; communityId?: string }) {
  let q = db.selectFrom('fields').selectAll().where('audience_id', '=', audienceId);
  q = q.where((eb) => {
    const ors = [eb('scope', '=', 'audience')];
    if (scope?.eventId) ors.push(eb('event_id', '=', scope.eventId));
    if (scope?.communityId) ors.push(eb('community_id', '=', scope.communityId));
    return eb.or(ors);
  });
  return q.orderBy('created_at').orderBy('key').execute();
}

export function findContact(db: Q, audienceId: string, contactId: string) {
  return db.selectFrom('contacts').selectAll().where('audience_id', '=', audienceId).where('id', '=', contactId).executeTakeFirst();
}

export function findContactByEmail(db: Q, audienceId: string, emailLower: string) {
  return db.selectFrom('contacts').selectAll().where('audience_id', '=', audienceId).where('email_lower', '=', emailLower).executeTakeFirst();
}

/** Writes validated values on a contact: built-ins as columns, custom values merged into `fields`. */
export async function applyToContact(db: Q, contactId: string, v: ValidatedValues, now: Date) {
  const set: Record<string, unknown> = { updated_at: now };
  for (const [k, val] of Object.entries(v.builtins)) {
    if (k === 'email') {
      if (val == null) continue; // a contact always keeps an email
      set.email = val;
      set.email_lower = v.emailLower;
    } else set[k] = val;
  }
  if (Object.keys(v.custom).length) set.fields = sql`fields || ${JSON.stringify(v.custom)}::jsonb`;
  await db.updateTable('contacts').set(set as any).where('id', '=', contactId).execute();
}

export async function insertContact(db: Q, row: { orgId: string; audienceId: string; v: ValidatedValues; companyId?: string | null }) {
  const b = row.v.builtins;
  return db
    .insertInto('contacts')
    .values({
      org_id: row.orgId,
      audience_id: row.audienceId,
      email: b.email!,
      email_lower: row.v.emailLower!,
      first_name: b.first_name ?? null,
      last_name: b.last_name ?? null,
      company: b.company ?? null,
      job_title: b.job_title ?? null,
      company_id: row.companyId ?? null,
      fields: JSON.stringify(row.v.custom),
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** Record values (participant / member `data`) as one flat object: built-ins and custom keys side by side. */
export function recordData(v: ValidatedValues): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, val] of Object.entries(v.builtins)) out[k] = val;
  for (const [k, val] of Object.entries(v.custom)) out[k] = val;
  return out;
}
