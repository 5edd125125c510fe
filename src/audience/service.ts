import { sql, type Kysely } from 'kysely';
import type { AppContext } from '../platform/context.ts';
import type { DB, FieldScope, FieldType } from '../platform/schema.ts';
import { AppError, badRequest, conflict, notFound } from '../platform/errors.ts';
import type { Principal } from '../organisations/service.ts';
import {
  BUILTIN_FIELDS,
  contactPatchFromRecordEdit,
  fieldKeyProblem,
  fieldOptionsProblem,
  timeZoneProblem,
  validateValues,
  type ValidatedValues,
} from './rules.ts';
import * as store from './store.ts';

// ---- access: every lookup is scoped to the caller's organisation (and the key's audiences) ----

/** Whether the principal may see the audience at all (an API key may be limited to some audiences). */
export function canSeeAudience(p: Principal, audienceId: string) {
  return p.audienceIds === null || p.audienceIds.includes(audienceId);
}

// A request checks the same audience several times (the template's, the contact's, the fields'):
// the answer is kept for the life of the principal, which is one request.
const seenAudiences = new WeakMap<Principal, Map<string, ReturnType<typeof store.findAudience>>>();

export async function audienceFor(ctx: AppContext, p: Principal, audienceId: string) {
  let seen = seenAudiences.get(p);
  if (!seen) seenAudiences.set(p, (seen = new Map()));
  let found = seen.get(audienceId);
  if (!found) {
    found = canSeeAudience(p, audienceId) ? store.findAudience(ctx.db, p.orgId, audienceId) : Promise.resolve(undefined);
    seen.set(audienceId, found);
  }
  const a = await found;
  if (!a) throw notFound('audience');
  return a;
}

export async function eventFor(ctx: AppContext, p: Principal, eventId: string) {
  const e = await store.findEvent(ctx.db, p.orgId, eventId);
  if (!e || !canSeeAudience(p, e.audience_id)) throw notFound('event');
  return e;
}

export async function communityFor(ctx: AppContext, p: Principal, communityId: string) {
  const c = await store.findCommunity(ctx.db, p.orgId, communityId);
  if (!c || !canSeeAudience(p, c.audience_id)) throw notFound('community');
  return c;
}

export async function contactFor(ctx: AppContext, p: Principal, audienceId: string, contactId: string) {
  await audienceFor(ctx, p, audienceId);
  const c = await store.findContact(ctx.db, audienceId, contactId);
  if (!c) throw notFound('contact');
  return c;
}

// ---- audiences, events, communities ----

export async function createAudience(ctx: AppContext, p: Principal, name: string) {
  if (p.audienceIds !== null) throw new AppError(403, 'forbidden', 'an API key limited to some audiences cannot create audiences');
  return ctx.db.insertInto('audiences').values({ org_id: p.orgId, name: name.trim() }).returningAll().executeTakeFirstOrThrow();
}

export async function listAudiences(ctx: AppContext, p: Principal) {
  let q = ctx.db.selectFrom('audiences').selectAll().where('org_id', '=', p.orgId);
  if (p.audienceIds) q = q.where('id', 'in', p.audienceIds.length ? p.audienceIds : ['00000000-0000-0000-0000-000000000000']);
  return q.orderBy('created_at').execute();
}

export async function renameAudience(ctx: AppContext, p: Principal, audienceId: string, name: string) {
  await audienceFor(ctx, p, audienceId);
  return ctx.db.updateTable('audiences').set({ name: name.trim() }).where('id', '=', audienceId).returningAll().executeTakeFirstOrThrow();
}

function checkEventTimes(startsAt: string, endsAt: string, timeZone: string) {
  const s = new Date(startsAt);
  const e = new Date(endsAt);
  if (Number.isNaN(s.getTime())) throw badRequest('invalid_date', 'starts_at is not a date-time');
  if (Number.isNaN(e.getTime())) throw badRequest('invalid_date', 'ends_at is not a date-time');
  if (e < s) throw badRequest('invalid_dates', 'ends_at is before starts_at');
  const tz = timeZoneProblem(timeZone);
  if (tz) throw badRequest('invalid_time_zone', tz);
  return { s, e };
}

export async function createEvent(ctx: AppContext, p: Principal, audienceId: string, input: { name: string; starts_at: string; ends_at: string; time_zone: string }) {
  await audienceFor(ctx, p, audienceId);
  const { s, e } = checkEventTimes(input.starts_at, input.ends_at, input.time_zone);
  return ctx.db
    .insertInto('events')
    .values({ org_id: p.orgId, audience_id: audienceId, name: input.name.trim(), starts_at: s, ends_at: e, time_zone: input.time_zone })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function updateEvent(ctx: AppContext, p: Principal, eventId: string, input: { name?: string; starts_at?: string; ends_at?: string; time_zone?: string }) {
  const ev = await eventFor(ctx, p, eventId);
  const { s, e } = checkEventTimes(input.starts_at ?? ev.starts_at.toISOString(), input.ends_at ?? ev.ends_at.toISOString(), input.time_zone ?? ev.time_zone);
  return ctx.db
    .updateTable('events')
    .set({ name: input.name?.trim() ?? ev.name, starts_at: s, ends_at: e, time_zone: input.time_zone ?? ev.time_zone })
    .where('id', '=', eventId)
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function listEvents(ctx: AppContext, p: Principal, audienceId: string) {
  await audienceFor(ctx, p, audienceId);
  return ctx.db.selectFrom('events').selectAll().where('audience_id', '=', audienceId).orderBy('starts_at').execute();
}

export async function createCommunity(ctx: AppContext, p: Principal, audienceId: string, name: string) {
  await audienceFor(ctx, p, audienceId);
  return ctx.db.insertInto('communities').values({ org_id: p.orgId, audience_id: audienceId, name: name.trim() }).returningAll().executeTakeFirstOrThrow();
}

export async function listCommunities(ctx: AppContext, p: Principal, audienceId: string) {
  await audienceFor(ctx, p, audienceId);
  return ctx.db.selectFrom('communities').selectAll().where('audience_id', '=', audienceId).orderBy('created_at').execute();
}

// ---- fields ----

export interface FieldInput {
  key: string;
  label?: string;
  type: FieldType;
  options?: string[] | null;
}

const builtinFieldList = () =>
  BUILTIN_FIELDS.map((key) => ({ key, label: key.replace('_', ' '), type: 'text' as FieldType, options: null, scope: 'builtin' as const, central: true }));

/** Creates a central field (on the audience) or a local one (on an event / community). */
export async function createField(ctx: AppContext, p: Principal, target: { audienceId?: string; eventId?: string; communityId?: string }, input: FieldInput) {
  let audienceId: string;
  let scope: FieldScope = 'audience';
  if (target.eventId) {
    audienceId = (await eventFor(ctx, p, target.eventId)).audience_id;
    scope = 'event';
  } else if (target.communityId) {
    audienceId = (await communityFor(ctx, p, target.communityId)).audience_id;
    scope = 'community';
  } else audienceId = (await audienceFor(ctx, p, target.audienceId!)).id;

  const keyProblem = fieldKeyProblem(input.key);
  if (keyProblem) throw badRequest('invalid_field_key', keyProblem);
  const optProblem = fieldOptionsProblem(input.type, input.options);
  if (optProblem) throw badRequest('invalid_field_options', optProblem);

  return ctx.db.transaction().execute(async (trx) => {
    // A local field may not shadow a central one, and a new central field may not collide with a
    // local one anywhere in the audience (it would appear twice in that event's grid).
    let clash = trx.selectFrom('fields').select(['scope']).where('audience_id', '=', audienceId).where('key', '=', input.key);
    if (scope === 'event') clash = clash.where((eb) => eb.or([eb('scope', '=', 'audience'), eb('event_id', '=', target.eventId!)]));
    if (scope === 'community') clash = clash.where((eb) => eb.or([eb('scope', '=', 'audience'), eb('community_id', '=', target.communityId!)]));
    const existing = await clash.executeTakeFirst();
    if (existing) throw conflict('field_exists', `a field "${input.key}" already exists ${existing.scope === 'audience' ? 'on the audience (central)' : `in an ${existing.scope}`}`);
    return trx
      .insertInto('fields')
      .values({
        org_id: p.orgId,
        audience_id: audienceId,
        scope,
        event_id: target.eventId ?? null,
        community_id: target.communityId ?? null,
        key: input.key,
        label: input.label?.trim() || input.key,
        type: input.type,
        options: input.options ? JSON.stringify(input.options) : null,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
  });
}

/** The fields visible in a scope: built-ins, central fields, and the scope's own fields. */
export async function listFields(ctx: AppContext, p: Principal, target: { audienceId?: string; eventId?: string; communityId?: string }) {
  let audienceId: string;
  if (target.eventId) audienceId = (await eventFor(ctx, p, target.eventId)).audience_id;
  else if (target.communityId) audienceId = (await communityFor(ctx, p, target.communityId)).audience_id;
  else audienceId = (await audienceFor(ctx, p, target.audienceId!)).id;
  const rows = await store.fieldsAvailable(ctx.db, audienceId, target);
  return [
    ...builtinFieldList(),
    ...rows.map((f) => ({ id: f.id, key: f.key, label: f.label, type: f.type, options: f.options, scope: f.scope, central: f.scope === 'audience', created_at: f.created_at })),
  ];
}

// ---- companies ----

export async function createCompany(ctx: AppContext, p: Principal, audienceId: string, name: string) {
  await audienceFor(ctx, p, audienceId);
  const n = name.trim();
  if (!n) throw badRequest('invalid_name', 'company name is empty');
  const existing = await ctx.db.selectFrom('companies').selectAll().where('audience_id', '=', audienceId).where((eb) => eb(eb.fn('lower', ['name']), '=', n.toLowerCase())).executeTakeFirst();
  if (existing) throw conflict('company_exists', `a company named "${existing.name}" already exists`, { id: existing.id });
  return ctx.db.insertInto('companies').values({ org_id: p.orgId, audience_id: audienceId, name: n }).returningAll().executeTakeFirstOrThrow();
}

export async function listCompanies(ctx: AppContext, p: Principal, audienceId: string) {
  await audienceFor(ctx, p, audienceId);
  return ctx.db.selectFrom('companies').selectAll().where('audience_id', '=', audienceId).orderBy('name').execute();
}

async function checkCompany(db: Kysely<DB>, audienceId: string, companyId: string | null | undefined) {
  if (!companyId) return;
  const c = await db.selectFrom('companies').select('id').where('audience_id', '=', audienceId).where('id', '=', companyId).executeTakeFirst();
  if (!c) throw badRequest('unknown_company', 'company_id names no company of this audience');
}

// ---- contacts ----

export interface ValuesInput {
  builtins: Record<string, unknown>;
  custom?: Record<string, unknown>;
}

function validated(input: ValuesInput, fields: Awaited<ReturnType<typeof store.fieldsAvailable>>): ValidatedValues {
  const r = validateValues(input, fields.map(store.toFieldDef));
  if (!r.ok) throw badRequest('invalid_values', r.reason, r.problems);
  return r.value;
}

function emailTaken(e: unknown): boolean {
  return (e as { code?: string })?.code === '23505' && /contacts_email/.test(String((e as Error).message) + String((e as any).constraint ?? ''));
}

export async function createContact(ctx: AppContext, p: Principal, audienceId: string, input: ValuesInput & { company_id?: string | null }) {
  await audienceFor(ctx, p, audienceId);
  const fields = await store.fieldsAvailable(ctx.db, audienceId);
  const v = validated(input, fields);
  if (!v.builtins.email) throw badRequest('email_required', 'a contact needs an email');
  await checkCompany(ctx.db, audienceId, input.company_id);
  const existing = await store.findContactByEmail(ctx.db, audienceId, v.emailLower!);
  if (existing) throw conflict('contact_exists', 'a contact with this email already exists in the audience', { id: existing.id });
  try {
    return await store.insertContact(ctx.db, { orgId: p.orgId, audienceId, v, companyId: input.company_id });
  } catch (e) {
    if (emailTaken(e)) throw conflict('contact_exists', 'a contact with this email already exists in the audience');
    throw e;
  }
}

/** Edits the audience contact only: participant and member records keep their own values. */
export async function updateContact(ctx: AppContext, p: Principal, audienceId: string, contactId: string, input: ValuesInput & { company_id?: string | null }) {
  await contactFor(ctx, p, audienceId, contactId);
  const fields = await store.fieldsAvailable(ctx.db, audienceId);
  const v = validated(input, fields);
  if ('email' in input.builtins && input.builtins.email === null) throw badRequest('email_required', 'a contact cannot lose its email');
  await checkCompany(ctx.db, audienceId, input.company_id);
  try {
    await ctx.db.transaction().execute(async (trx) => {
      await store.applyToContact(trx, contactId, v, ctx.now());
      if (input.company_id !== undefined) await trx.updateTable('contacts').set({ company_id: input.company_id }).where('id', '=', contactId).execute();
    });
  } catch (e) {
    if (emailTaken(e)) throw conflict('contact_exists', 'another contact of the audience has this email');
    throw e;
  }
  return getContact(ctx, p, audienceId, contactId);
}

export async function getContact(ctx: AppContext, p: Principal, audienceId: string, contactId: string) {
  const c = await contactFor(ctx, p, audienceId, contactId);
  const [events, communities, account, company] = await Promise.all([
    ctx.db
      .selectFrom('participants')
      .innerJoin('events', 'events.id', 'participants.event_id')
      .select(['participants.id as participant_id', 'events.id', 'events.name', 'events.starts_at', 'events.ends_at', 'participants.data', 'participants.created_at'])
      .where('participants.contact_id', '=', contactId)
      .orderBy('events.starts_at')
      .execute(),
    ctx.db
      .selectFrom('members')
      .innerJoin('communities', 'communities.id', 'members.community_id')
      .select(['members.id as member_id', 'communities.id', 'communities.name', 'members.data', 'members.created_at'])
      .where('members.contact_id', '=', contactId)
      .orderBy('communities.name')
      .execute(),
    ctx.db.selectFrom('contact_accounts').select(['confirmed_at', 'failed_attempts', 'locked_until', 'created_at']).where('contact_id', '=', contactId).executeTakeFirst(),
    c.company_id ? ctx.db.selectFrom('companies').select(['id', 'name']).where('id', '=', c.company_id).executeTakeFirst() : undefined,
  ]);
  const now = ctx.now();
  return {
    ...c,
    company_entity: company ?? null,
    events,
    communities,
    account: account
      ? {
          confirmed: account.confirmed_at !== null,
          confirmed_at: account.confirmed_at,
          locked: account.locked_until !== null && account.locked_until > now,
          // A lock that has ended gives a fresh set of attempts (src/accounts/rules.ts countingFailures).
          failed_attempts: account.locked_until !== null && account.locked_until <= now ? 0 : account.failed_attempts,
          lock_end: account.locked_until && account.locked_until > now ? account.locked_until : null,
          created_at: account.created_at,
        }
      : null,
  };
}

/**
 * Erases one contact everywhere in its audience: the contact, its participant records in every event,
 * its member records in every community, its account and tokens — one transaction.
 */
export async function deleteContact(ctx: AppContext, p: Principal, audienceId: string, contactId: string) {
  await contactFor(ctx, p, audienceId, contactId);
  return ctx.db.transaction().execute(async (trx) => {
    const participants = await trx.deleteFrom('participants').where('contact_id', '=', contactId).executeTakeFirst();
    const members = await trx.deleteFrom('members').where('contact_id', '=', contactId).executeTakeFirst();
    const account = await trx.deleteFrom('contact_accounts').where('contact_id', '=', contactId).executeTakeFirst();
    await trx.deleteFrom('account_tokens').where('contact_id', '=', contactId).execute();
    await trx.deleteFrom('contacts').where('id', '=', contactId).where('audience_id', '=', audienceId).execute();
    return {
      deleted: true,
      participant_records: Number(participants.numDeletedRows),
      member_records: Number(members.numDeletedRows),
      account: Number(account.numDeletedRows) > 0,
    };
  });
}

// ---- participants and members ----

export type RecordKind = 'participant' | 'member';

const KIND = {
  participant: { table: 'participants', scope: 'event_id', what: 'participant' },
  member: { table: 'members', scope: 'community_id', what: 'member' },
} as const;

async function scopeFor(ctx: AppContext, p: Principal, kind: RecordKind, scopeId: string) {
  if (kind === 'participant') {
    const e = await eventFor(ctx, p, scopeId);
    return { audienceId: e.audience_id, fieldScope: { eventId: e.id } };
  }
  const c = await communityFor(ctx, p, scopeId);
  return { audienceId: c.audience_id, fieldScope: { communityId: c.id } };
}

/**
 * Registers a participant (in an event) or a member (in a community). With an email, the person
 * becomes (or is matched to) a contact of the audience and the record's values flow up to it.
 */
export async function addRecord(ctx: AppContext, p: Principal, kind: RecordKind, scopeId: string, input: ValuesInput) {
  const { audienceId, fieldScope } = await scopeFor(ctx, p, kind, scopeId);
  const fields = await store.fieldsAvailable(ctx.db, audienceId, fieldScope);
  const v = validated(input, fields);
  const k = KIND[kind];
  // Two registrations of a new person at once both see no contact; the second insert then hits the
  // unique email. Run again: it now finds the contact the other created and joins it.
  for (let attempt = 0; ; attempt++) {
    try {
      return await insertRecord(ctx, p, k, kind, audienceId, scopeId, v, fields);
    } catch (e) {
      if (attempt >= 2 || !emailTaken(e)) throw e;
    }
  }
}

async function insertRecord(
  ctx: AppContext,
  p: Principal,
  k: (typeof KIND)[RecordKind],
  kind: RecordKind,
  audienceId: string,
  scopeId: string,
  v: ValidatedValues,
  fields: Awaited<ReturnType<typeof store.fieldsAvailable>>,
) {
  return ctx.db.transaction().execute(async (trx) => {
    let contactId: string | null = null;
    let contactCreated = false;
    if (v.builtins.email) {
      const up = contactPatchFromRecordEdit(v, fields.map(store.toFieldDef));
      const existing = await store.findContactByEmail(trx, audienceId, v.emailLower!);
      if (existing) {
        const dup = await (trx as Kysely<any>).selectFrom(k.table).select('id').where(k.scope, '=', scopeId).where('contact_id', '=', existing.id).executeTakeFirst();
        if (dup) throw conflict(`already_${kind}`, `this email is already a ${k.what} here`, { id: dup.id, contact_id: existing.id });
        await store.applyToContact(trx, existing.id, withoutNulls(up), ctx.now());
        contactId = existing.id;
      } else {
        contactId = (await store.insertContact(trx, { orgId: p.orgId, audienceId, v: up })).id;
        contactCreated = true;
      }
    }
    const row = await (trx as Kysely<any>)
      .insertInto(k.table)
      .values({ org_id: p.orgId, audience_id: audienceId, [k.scope]: scopeId, contact_id: contactId, data: JSON.stringify(store.recordData(v)) })
      .returningAll()
      .executeTakeFirstOrThrow();
    return { ...row, contact_created: contactCreated };
  });
}

/** A registration does not blank what the contact already has: only the values it carries flow up. */
function withoutNulls(v: ValidatedValues): ValidatedValues {
  const builtins = Object.fromEntries(Object.entries(v.builtins).filter(([, x]) => x !== null));
  const custom = Object.fromEntries(Object.entries(v.custom).filter(([, x]) => x !== null));
  return { builtins, custom, emailLower: v.emailLower };
}

/** Edits a participant or member record; the built-in and central values written flow up to the contact. */
export async function updateRecord(ctx: AppContext, p: Principal, kind: RecordKind, scopeId: string, recordId: string, input: ValuesInput) {
  const { audienceId, fieldScope } = await scopeFor(ctx, p, kind, scopeId);
  const k = KIND[kind];
  const q = ctx.db as Kysely<any>;
  const rec = await q.selectFrom(k.table).selectAll().where(k.scope, '=', scopeId).where('id', '=', recordId).executeTakeFirst();
  if (!rec) throw notFound(k.what);
  const fields = await store.fieldsAvailable(ctx.db, audienceId, fieldScope);
  const v = validated(input, fields);
  return ctx.db.transaction().execute(async (trx) => {
    let contactId: string | null = rec.contact_id;
    const up = contactPatchFromRecordEdit(v, fields.map(store.toFieldDef));
    if (contactId) {
      if (v.emailLower) {
        const other = await store.findContactByEmail(trx, audienceId, v.emailLower);
        if (other && other.id !== contactId) throw conflict('contact_exists', 'another contact of the audience has this email');
      }
      await store.applyToContact(trx, contactId, up, ctx.now());
    } else if (v.builtins.email) {
      // The email becomes known now: the person becomes a contact (or joins the existing one).
      const existing = await store.findContactByEmail(trx, audienceId, v.emailLower!);
      if (existing) {
        const dup = await (trx as Kysely<any>).selectFrom(k.table).select('id').where(k.scope, '=', scopeId).where('contact_id', '=', existing.id).executeTakeFirst();
        if (dup) throw conflict(`already_${kind}`, `this email is already a ${k.what} here`, { id: dup.id });
        await store.applyToContact(trx, existing.id, withoutNulls(up), ctx.now());
        contactId = existing.id;
      } else {
        const prior = rec.data as Record<string, unknown>;
        const full = validated({ builtins: pickBuiltins({ ...prior, ...store.recordData(v) }), custom: pickCustom({ ...prior, ...store.recordData(v) }) }, fields);
        contactId = (await store.insertContact(trx, { orgId: p.orgId, audienceId, v: contactPatchFromRecordEdit(full, fields.map(store.toFieldDef)) })).id;
      }
    }
    return (trx as Kysely<any>)
      .updateTable(k.table)
      .set({ data: sqlMerge(store.recordData(v)), contact_id: contactId, updated_at: ctx.now() })
      .where('id', '=', recordId)
      .returningAll()
      .executeTakeFirstOrThrow();
  });
}

const sqlMerge = (obj: Record<string, unknown>) => sql`data || ${JSON.stringify(obj)}::jsonb`;
const pickBuiltins = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([k]) => (BUILTIN_FIELDS as readonly string[]).includes(k)));
const pickCustom = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([k]) => !(BUILTIN_FIELDS as readonly string[]).includes(k)));

export async function listRecords(ctx: AppContext, p: Principal, kind: RecordKind, scopeId: string, page: { limit: number; offset: number }) {
  await scopeFor(ctx, p, kind, scopeId);
  const k = KIND[kind];
  const q = ctx.db as Kysely<any>;
  const [rows, total] = await Promise.all([
    q.selectFrom(k.table).selectAll().where(k.scope, '=', scopeId).orderBy('created_at').orderBy('id').limit(page.limit).offset(page.offset).execute(),
    q.selectFrom(k.table).select((eb) => eb.fn.countAll().as('n')).where(k.scope, '=', scopeId).executeTakeFirstOrThrow(),
  ]);
  return { items: rows, total: Number(total.n) };
}

export async function getRecord(ctx: AppContext, p: Principal, kind: RecordKind, scopeId: string, recordId: string) {
  await scopeFor(ctx, p, kind, scopeId);
  const k = KIND[kind];
  const rec = await (ctx.db as Kysely<any>).selectFrom(k.table).selectAll().where(k.scope, '=', scopeId).where('id', '=', recordId).executeTakeFirst();
  if (!rec) throw notFound(k.what);
  return rec;
}

/** Removes a person from one event or community; the audience contact stays. */
export async function removeRecord(ctx: AppContext, p: Principal, kind: RecordKind, scopeId: string, recordId: string) {
  await scopeFor(ctx, p, kind, scopeId);
  const k = KIND[kind];
  const r = await (ctx.db as Kysely<any>).deleteFrom(k.table).where(k.scope, '=', scopeId).where('id', '=', recordId).executeTakeFirst();
  if (Number(r.numDeletedRows) === 0) throw notFound(k.what);
}

/**
 * The audience's contact with this email, created from `input` when there is none: for capabilities
 * acting for a person known by an email (contact accounts). On an existing contact the built-in values
 * only fill blanks: typing an email proves nothing about owning it, so it must not overwrite what the
 * organiser knows.
 */
export async function ensureContactByEmail(ctx: AppContext, p: Principal, audienceId: string, input: ValuesInput): Promise<{ id: string; created: boolean }> {
  await audienceFor(ctx, p, audienceId);
  const v = validated(input, await store.fieldsAvailable(ctx.db, audienceId));
  if (!v.builtins.email) throw badRequest('email_required', 'a contact needs an email');
  for (let attempt = 0; ; attempt++) {
    const existing = await store.findContactByEmail(ctx.db, audienceId, v.emailLower!);
    if (existing) {
      const blanks = Object.fromEntries(Object.entries(v.builtins).filter(([k, x]) => k !== 'email' && x != null && existing[k as keyof typeof existing] == null));
      if (Object.keys(blanks).length) await store.applyToContact(ctx.db, existing.id, { builtins: blanks, custom: {} }, ctx.now());
      return { id: existing.id, created: false };
    }
    try {
      return { id: (await store.insertContact(ctx.db, { orgId: p.orgId, audienceId, v })).id, created: true };
    } catch (e) {
      // A parallel request created it between the lookup and the insert: use that one.
      if (!emailTaken(e) || attempt > 0) throw e;
    }
  }
}

/**
 * Contacts of an organisation with the ids of their events and communities: what the send-time
 * policy and the renderer need per recipient, for a batch at once. Takes no principal: the sending
 * worker acts for the organisation that accepted the message, whose id it holds.
 */
export async function contactsForSending(db: Kysely<DB>, orgId: string, contactIds: readonly string[]): Promise<SendingContactRow[]> {
  if (contactIds.length === 0) return [];
  const r = await sql<SendingContactRow>`SELECT ${SENDING_COLUMNS} FROM contacts c WHERE c.org_id = ${orgId}::uuid AND c.id = any(${[...contactIds]}::uuid[])`.execute(db);
  return r.rows;
}

/** A contact as sending reads it (contactsForSending, and a campaign's pages of recipients). */
export interface SendingContactRow {
  id: string;
  audience_id: string;
  email: string;
  email_lower: string;
  first_name: string | null;
  last_name: string | null;
  company: string | null;
  job_title: string | null;
  fields: Record<string, unknown>;
  marketing_authorized_at: Date | null;
  marketing_withdrawn_at: Date | null;
  event_ids: string[];
  community_ids: string[];
}

/** The columns of a SendingContactRow, from `contacts c`. */
export const SENDING_COLUMNS = sql`c.id, c.audience_id, c.email, c.email_lower, c.first_name, c.last_name, c.company, c.job_title, c.fields,
  c.marketing_authorized_at, c.marketing_withdrawn_at,
  coalesce((select jsonb_agg(p.event_id) from participants p where p.contact_id = c.id), '[]'::jsonb) AS event_ids,
  coalesce((select jsonb_agg(m.community_id) from members m where m.contact_id = c.id), '[]'::jsonb) AS community_ids`;

/** The contacts of one address across the audiences the principal sees: a data subject's records. */
export async function contactsByEmail(ctx: AppContext, p: Principal, emailLower: string) {
  const rows = await ctx.db.selectFrom('contacts').select(['id', 'audience_id']).where('org_id', '=', p.orgId).where('email_lower', '=', emailLower).orderBy('created_at').execute();
  return rows.filter((r) => canSeeAudience(p, r.audience_id));
}
