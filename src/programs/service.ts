/**
 * Follow-up programs (the "Interactions" of a triggered-email product): a trigger enters a contact,
 * the program waits, checks a condition on the contact when the wait is over, and sends a template.
 *
 * Entering: message triggers are entered by a database trigger on message_events (0013), in the
 * transaction that records the event; external events (POST /v1/external-events) enter here, in the
 * transaction that stores the event; date fields are entered by the runner, once per local day of
 * the program's zone. Each passage is a row with its due time, unique per (program, contact,
 * trigger): a repeated trigger enters nobody twice, and a restart loses no waiting step.
 *
 * Sending goes through the sending capability like any mail: transactional and participation
 * templates as triggered mail (the person's own action caused it: their purchase, their session),
 * marketing templates as a one-recipient bulk message, so that the consent policy decides.
 */
import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { AppContext } from '../platform/context.ts';
import type { DB, MessageCategory, ProgramEntryStatus } from '../platform/schema.ts';
import { AppError, badRequest, conflict, notFound } from '../platform/errors.ts';
import type { Principal } from '../organisations/service.ts';
import { audienceFor, contactFor, contactsForSending, ensureContactByEmail, listFields } from '../audience/service.ts';
import { templateFor } from '../mail/template-service.ts';
import * as sending from '../sending/service.ts';
import {
  categoryProblem,
  checkCondition,
  checkTrigger,
  checkWait,
  countKey,
  countsNeeded,
  cycleProblem,
  dateDueAt,
  daysToScan,
  evaluate,
  eventName,
  lateProblem,
  localDay,
  nextScanAt,
  occurrenceKey,
  occurrenceOn,
  presentWait,
  type Condition,
  type FieldInfo,
  type Trigger,
} from './rules.ts';
import * as store from './store.ts';

// ---- waking runners of this process ----

const wakers = new WeakMap<object, Set<() => void>>();

/** A runner in this process hears of a new entry at once (an event mapped to mail with no wait) instead of at its next poll. */
export function onEntered(db: Kysely<DB>, waker: () => void): () => void {
  let set = wakers.get(db);
  if (!set) wakers.set(db, (set = new Set()));
  set.add(waker);
  return () => set!.delete(waker);
}

function notifyEntered(db: Kysely<DB>) {
  for (const w of wakers.get(db) ?? []) w();
}

// ---- programs ----

export interface ProgramInput {
  name: string;
  trigger: unknown;
  wait: unknown;
  condition?: unknown;
  template_id: string;
  enabled?: boolean;
}

export type ProgramPatch = Partial<Omit<ProgramInput, 'trigger'>> & { trigger?: unknown };

async function programFor(ctx: AppContext, p: Principal, id: string) {
  const row = await store.findProgram(ctx.db, p.orgId, id);
  if (!row) throw notFound('program');
  await audienceFor(ctx, p, row.audience_id).catch(() => {
    throw notFound('program');
  });
  return row;
}

/** The fields a condition may name: built-ins and the audience's central fields (a local field belongs to one event). */
async function conditionFields(ctx: AppContext, p: Principal, audienceId: string): Promise<FieldInfo[]> {
  return (await listFields(ctx, p, { audienceId })).filter((f) => f.central).map((f) => ({ key: f.key, type: f.type, options: f.options as string[] | null }));
}

function checkedCondition(raw: unknown, fields: FieldInfo[]): Condition | null {
  if (raw === undefined || raw === null) return null;
  const r = checkCondition(raw, fields);
  if (!r.ok) throw badRequest('invalid_condition', r.problems.join('; '), { problems: r.problems });
  return r.value;
}

function checkedWait(raw: unknown): number {
  const w = checkWait(raw);
  if (!w.ok) throw badRequest('invalid_wait', w.problem);
  return w.seconds;
}

/** What the trigger names must exist in the audience, and the template must be mail this trigger may cause. */
async function checkSend(ctx: AppContext, p: Principal, audienceId: string, trigger: Trigger, templateId: string, fields: FieldInfo[], programId: string | null) {
  let triggerCategory: MessageCategory | null = null;
  if ('template_id' in trigger) {
    const tt = await templateFor(ctx, p, trigger.template_id, audienceId).catch(() => {
      throw badRequest('invalid_trigger', `trigger.template_id: no template ${trigger.template_id} in this audience`);
    });
    triggerCategory = tt.category;
  }
  if (trigger.type === 'date_field') {
    const f = fields.find((x) => x.key === trigger.field);
    if (!f || f.type !== 'date') {
      throw badRequest('invalid_trigger', f ? `trigger.field: "${trigger.field}" is a ${f.type} field; a date-field trigger needs a date field` : `trigger.field: "${trigger.field}" is not a central field of the audience`);
    }
  }
  const t = await templateFor(ctx, p, templateId, audienceId).catch(() => {
    throw badRequest('invalid_template', `template_id: no template ${templateId} in this audience`);
  });
  const problem = categoryProblem(trigger, triggerCategory, t.category);
  if (problem) throw badRequest('invalid_template', `template_id: ${problem}`);
  const cycle = cycleProblem({ triggerTemplateId: 'template_id' in trigger ? trigger.template_id : null, templateId: t.id }, await store.messageEdges(ctx.db, p.orgId, programId));
  if (cycle) throw badRequest('program_cycle', cycle);
  return t;
}

export async function createProgram(ctx: AppContext, p: Principal, audienceId: string, input: ProgramInput) {
  await audienceFor(ctx, p, audienceId);
  const tr = checkTrigger(input.trigger);
  if (!tr.ok) throw badRequest('invalid_trigger', tr.problems.join('; '), { problems: tr.problems });
  const trigger = tr.value;
  const wait = checkedWait(input.wait);
  const fields = await conditionFields(ctx, p, audienceId);
  const condition = checkedCondition(input.condition, fields);
  const enabled = input.enabled ?? true;
  const t = await checkSend(ctx, p, audienceId, trigger, input.template_id, fields, null);
  const now = ctx.now();
  const row = await store.insertProgram(ctx.db, {
    org_id: p.orgId,
    audience_id: audienceId,
    name: input.name.trim(),
    trigger: JSON.stringify(trigger),
    trigger_type: trigger.type,
    trigger_template_id: 'template_id' in trigger ? trigger.template_id : null,
    trigger_name: trigger.type === 'external_event' ? trigger.name : null,
    wait_seconds: wait,
    condition: condition ? JSON.stringify(condition) : null,
    template_id: t.id,
    enabled,
    created_by: `${p.kind}:${p.id}`,
    created_at: now,
    updated_at: now,
  });
  if (trigger.type === 'date_field') notifyEntered(ctx.db);
  return present(row, new Map());
}

export async function listPrograms(ctx: AppContext, p: Principal, audienceId: string) {
  await audienceFor(ctx, p, audienceId);
  const rows = await store.listPrograms(ctx.db, audienceId);
  const counts = await store.entryCounts(ctx.db, rows.map((r) => r.id));
  return rows.map((r) => present(r, counts));
}

export async function getProgram(ctx: AppContext, p: Principal, id: string) {
  const row = await programFor(ctx, p, id);
  return present(row, await store.entryCounts(ctx.db, [row.id]));
}

export async function updateProgram(ctx: AppContext, p: Principal, id: string, patch: ProgramPatch) {
  const row = await programFor(ctx, p, id);
  if (patch.trigger !== undefined) throw badRequest('trigger_immutable', "a program's trigger cannot change (who entered, and once per which trigger, depends on it): create a new program");
  const trigger = row.trigger as unknown as Trigger;
  const fields = await conditionFields(ctx, p, row.audience_id);
  const set: Parameters<typeof store.updateProgram>[2] = { updated_at: ctx.now() };
  if (patch.name !== undefined) set.name = patch.name.trim();
  if (patch.wait !== undefined) set.wait_seconds = checkedWait(patch.wait);
  if (patch.condition !== undefined) {
    const c = checkedCondition(patch.condition, fields);
    set.condition = c ? JSON.stringify(c) : null;
  }
  if (patch.enabled !== undefined) set.enabled = patch.enabled;
  // Enabling again re-checks the template: what it may send, and that no loop appeared meanwhile.
  if (patch.template_id !== undefined || patch.enabled === true) set.template_id = (await checkSend(ctx, p, row.audience_id, trigger, patch.template_id ?? row.template_id, fields, row.id)).id;
  const updated = await store.updateProgram(ctx.db, row.id, set);
  if (updated.enabled) notifyEntered(ctx.db);
  return present(updated, await store.entryCounts(ctx.db, [row.id]));
}

/** Deletes the program and its entries: waiting steps are dropped, mail already sent stays in the message log. */
export async function deleteProgram(ctx: AppContext, p: Principal, id: string) {
  const row = await programFor(ctx, p, id);
  await store.deleteProgram(ctx.db, row.id);
}

function present(r: store.ProgramRow, counts: Map<string, Partial<Record<ProgramEntryStatus, number>>>) {
  const c = counts.get(r.id) ?? {};
  return {
    id: r.id,
    audience_id: r.audience_id,
    name: r.name,
    trigger: r.trigger,
    wait: presentWait(r.wait_seconds),
    wait_seconds: r.wait_seconds,
    condition: r.condition,
    template_id: r.template_id,
    enabled: r.enabled,
    entries: { waiting: c.waiting ?? 0, sent: c.sent ?? 0, skipped: c.skipped ?? 0, failed: c.failed ?? 0 },
    created_at: r.created_at,
    updated_at: r.updated_at,
  };
}

export async function listEntries(ctx: AppContext, p: Principal, id: string, q: { status?: ProgramEntryStatus; limit: number; offset: number }) {
  const row = await programFor(ctx, p, id);
  const entries = await store.listEntries(ctx.db, row.id, q.status, q.limit, q.offset);
  const contacts = new Map((await contactsForSending(ctx.db, p.orgId, [...new Set(entries.map((e) => e.contact_id))])).map((c) => [c.id, c]));
  return {
    items: entries.map((e) => ({
      id: e.id,
      contact_id: e.contact_id,
      email: contacts.get(e.contact_id)?.email ?? null,
      trigger_key: e.trigger_key,
      trigger_at: e.trigger_at,
      context: e.context,
      due_at: e.due_at,
      status: e.status,
      reason: e.reason,
      message_id: e.message_id,
      attempts: e.attempts,
      created_at: e.created_at,
      finished_at: e.finished_at,
    })),
    limit: q.limit,
    offset: q.offset,
  };
}

// ---- external events ----

export interface ExternalEventInput {
  audience_id: string;
  contact: { contact_id?: string; email?: string; first_name?: string | null; last_name?: string | null; company?: string | null; job_title?: string | null; fields?: Record<string, unknown> };
  name: string;
  occurred_at?: string;
  properties?: Record<string, unknown>;
  idempotency_key?: string;
}

/** Systems report events as they see them; a clock a little ahead is tolerated, a date in the future is a mistake. */
const FUTURE_SLACK_MS = 5 * 60_000;
const MAX_PROPERTIES_BYTES = 16 * 1024;

function eventHash(input: ExternalEventInput): string {
  const { idempotency_key: _k, ...rest } = input;
  const canonical = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(canonical) : v && typeof v === 'object' ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])])) : v;
  return createHash('sha256').update(JSON.stringify(canonical(rest))).digest('hex');
}

function replayEvent(e: { id: string; contact_id: string; request_hash: string }, hash: string) {
  if (e.request_hash !== hash) throw conflict('idempotency_key_reused', 'this idempotency_key was already used for a different event; use a new key for a new event', { event_id: e.id });
  return { id: e.id, contact_id: e.contact_id, entered: 0, replayed: true };
}

/**
 * Records what a contact did elsewhere (a purchase, a session attended) and enters them into the
 * programs this event's name triggers, due at occurred_at + each program's wait. The contact is
 * created from the email when new, as the triggered API does. With an idempotency key, a repeat
 * stores and enters nothing.
 */
export async function recordExternalEvent(ctx: AppContext, p: Principal, input: ExternalEventInput) {
  const hash = eventHash(input);
  const key = input.idempotency_key;
  if (key !== undefined) {
    const existing = await store.findExternalEventByKey(ctx.db, p.orgId, key);
    if (existing) return replayEvent(existing, hash);
  }
  const audienceId = (await audienceFor(ctx, p, input.audience_id)).id;
  const n = eventName(input.name);
  if (!n.ok) throw badRequest('invalid_event_name', `name: ${n.problem}`);
  const now = ctx.now();
  const occurredAt = input.occurred_at ? new Date(input.occurred_at) : now;
  if (Number.isNaN(occurredAt.getTime())) throw badRequest('invalid_occurred_at', 'occurred_at is not a date-time');
  if (occurredAt.getTime() > now.getTime() + FUTURE_SLACK_MS) throw badRequest('invalid_occurred_at', `occurred_at is in the future (${occurredAt.toISOString()}); report events once they happened`);
  const properties = input.properties ?? {};
  if (Buffer.byteLength(JSON.stringify(properties)) > MAX_PROPERTIES_BYTES) throw badRequest('properties_too_large', `properties: at most ${MAX_PROPERTIES_BYTES / 1024} KB of JSON`);

  const to = input.contact;
  if ((to.contact_id === undefined) === (to.email === undefined)) throw badRequest('invalid_contact', 'contact needs either contact_id or email');
  let contactId: string;
  if (to.contact_id) contactId = (await contactFor(ctx, p, audienceId, to.contact_id)).id;
  else {
    const { fields, contact_id: _none, ...builtins } = to;
    contactId = (await ensureContactByEmail(ctx, p, audienceId, { builtins, custom: fields ?? {} })).id;
  }

  const created = await ctx.db.transaction().execute(async (trx) => {
    const id = await store.insertExternalEvent(trx, {
      org_id: p.orgId,
      audience_id: audienceId,
      contact_id: contactId,
      name: n.value,
      occurred_at: occurredAt,
      properties: JSON.stringify(properties),
      idempotency_key: key ?? null,
      request_hash: hash,
      created_by: `${p.kind}:${p.id}`,
      created_at: now,
    });
    if (!id) return null; // a concurrent request with the same key won
    const entered = await store.enterExternal(trx, { id, orgId: p.orgId, audienceId, contactId, name: n.value, occurredAt, properties, now });
    return { id, entered };
  });
  if (!created) {
    const winner = await store.findExternalEventByKey(ctx.db, p.orgId, key!);
    if (!winner) throw new AppError(409, 'idempotency_conflict', 'a concurrent request with this idempotency_key failed; retry');
    return replayEvent(winner, hash);
  }
  if (created.entered) notifyEntered(ctx.db);
  return { id: created.id, contact_id: contactId, entered: created.entered, replayed: false };
}

// ---- the runner's work ----

/** The program's creator, as the runner acts for them; a program of a revoked key still runs for its organisation (as campaigns do). */
function principalOf(r: store.ProgramRow): Principal {
  const [kind, id] = r.created_by.split(':') as ['user' | 'key', string];
  return { orgId: r.org_id, role: 'owner', kind: kind === 'user' ? 'user' : 'key', id: id ?? 'programs', audienceIds: null, rateLimitPerMinute: null };
}

/** A step that keeps failing for a reason that is not the caller's (the database, a bug) is given up after this many tries. */
export const MAX_ATTEMPTS = 5;
const retryDelayMs = (attempts: number) => Math.min(60_000 * 2 ** (attempts - 1), 3_600_000);

type Outcome = { status: 'sent' | 'skipped' | 'failed'; reason: string | null; message_id?: string | null };

export type RunLog = (level: 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>) => void;

/** Claims a batch of due entries and takes each to its end. Returns how many were claimed. */
export async function runDueEntries(ctx: AppContext, holder: string, opts: { leaseMs?: number; batch?: number; log?: RunLog } = {}): Promise<number> {
  const leaseMs = opts.leaseMs ?? 60_000;
  const batch = opts.batch ?? 20;
  const now = ctx.now();
  const entries = await store.claimEntries(ctx.db, holder, now, new Date(now.getTime() + leaseMs), batch);
  for (const e of entries) {
    let outcome: Outcome;
    try {
      outcome = e.attempts > MAX_ATTEMPTS ? { status: 'failed', reason: `gave up after ${MAX_ATTEMPTS} attempts` } : await step(ctx, holder, e);
    } catch (err) {
      if (err instanceof AppError) outcome = { status: 'failed', reason: err.message };
      else {
        // Not the program's fault: the same entry is tried again after a delay (the lease doubles as it).
        const t = ctx.now();
        await store.updateHeld(ctx.db, e.id, holder, { leased_by: null, lease_until: new Date(t.getTime() + retryDelayMs(e.attempts)), reason: `retrying: ${String((err as Error)?.message ?? err).slice(0, 500)}`, updated_at: t });
        opts.log?.('error', 'program entry failed; will retry', { entry: e.id, program: e.program_id, attempts: e.attempts, error: String((err as Error)?.stack ?? err) });
        continue;
      }
    }
    const t = ctx.now();
    await store.updateHeld(ctx.db, e.id, holder, {
      status: outcome.status,
      reason: outcome.reason?.slice(0, 1000) ?? null,
      ...(outcome.message_id !== undefined ? { message_id: outcome.message_id } : {}),
      leased_by: null,
      lease_until: null,
      finished_at: t,
      updated_at: t,
    });
  }
  return entries.length;
}

/** One entry whose wait is over: is it still wanted, does the condition hold, then the mail. */
async function step(ctx: AppContext, holder: string, e: store.EntryRow): Promise<Outcome> {
  const program = await store.findProgramById(ctx.db, e.program_id);
  if (!program) return { status: 'skipped', reason: 'the program was deleted' };
  const now = ctx.now();
  const late = lateProblem(e.due_at, now);
  if (late) return { status: 'skipped', reason: late };
  const [contact] = await contactsForSending(ctx.db, program.org_id, [e.contact_id]);
  if (!contact) return { status: 'skipped', reason: 'the contact was deleted' };
  const trigger = program.trigger as unknown as Trigger;
  if (trigger.type === 'date_field') {
    // The date was corrected since the contact entered: this occurrence is no longer theirs.
    const current = occurrenceKey((contact.fields as Record<string, unknown>)[trigger.field], Number(e.trigger_key.slice(0, 4)));
    if (current !== e.trigger_key) return { status: 'skipped', reason: `${trigger.field} no longer falls on ${e.trigger_key}` };
  }
  if (program.condition) {
    const condition = program.condition as unknown as Condition;
    const counts = new Map<string, number>();
    for (const c of countsNeeded(condition)) {
      counts.set(countKey(c.name, c.withinDays), await store.countEvents(ctx.db, contact.id, c.name, c.withinDays ? new Date(now.getTime() - c.withinDays * 86_400_000) : null, now));
    }
    const { id: _id, audience_id: _a, email_lower: _l, fields, event_ids: _e, community_ids: _c, marketing_authorized_at: _m, marketing_withdrawn_at: _w, ...builtins } = contact;
    const r = evaluate(condition, { values: { ...(fields as Record<string, unknown>), ...builtins }, counts });
    if (!r.pass) return { status: 'skipped', reason: `condition not met: ${r.reason}` };
  }

  const p = principalOf(program);
  const t = await templateFor(ctx, p, program.template_id);
  const variables = { trigger: e.context };
  if (t.category !== 'marketing') {
    // The key makes a retry after a crash between the send and the bookkeeping answer the first message.
    const r = await sending.acceptTriggered(ctx, p, { template_id: t.id, to: { contact_id: contact.id }, variables, idempotency_key: `envoi:program-entry:${e.id}`, tags: ['program'] });
    if (r.status === 'blocked') return { status: 'skipped', reason: `blocked by the sending policy: ${r.rule}${r.detail ? ` (${r.detail})` : ''}`, message_id: r.id };
    return { status: 'sent', reason: null, message_id: r.id };
  }
  // Marketing: the message is recorded on the entry before its recipient is written, so a retry
  // writes to the same message, where the (message, contact) unique index keeps it to one copy.
  let msg: sending.BulkMessage;
  if (e.message_id) msg = await sending.bulkMessage(ctx, p, e.message_id);
  else {
    msg = await sending.createBulkMessage(ctx, p, { templateId: t.id, variables });
    if (!(await store.updateHeld(ctx.db, e.id, holder, { message_id: msg.id, updated_at: ctx.now() }))) throw new Error('lease lost before the message was recorded');
  }
  const r = await sending.enqueueBatch(ctx, msg, [contact.id]);
  if (r.allowed > 0) return { status: 'sent', reason: null, message_id: msg.id };
  const rules = Object.keys(r.blocked);
  return { status: 'skipped', reason: rules.length ? `blocked by the sending policy: ${rules.join(', ')}` : 'the contact is no longer in the audience', message_id: msg.id };
}

const SCAN_PAGE = 1000;

/**
 * Enters the contacts of one date-field program whose date falls on the days not yet scanned, in
 * the program's time zone (there is no organisation zone; the trigger names its own, UTC by
 * default). Returns false when no program was due.
 */
export async function scanDateFields(ctx: AppContext, holder: string, leaseMs = 60_000): Promise<boolean> {
  const now = ctx.now();
  const program = await store.claimDateScan(ctx.db, holder, now, new Date(now.getTime() + leaseMs));
  if (!program) return false;
  const trigger = program.trigger as unknown as Extract<Trigger, { type: 'date_field' }>;
  let entered = 0;
  for (const day of daysToScan(program.scanned_through, localDay(now, trigger.time_zone))) {
    const { key, monthDays } = occurrenceOn(day, trigger.offset_days);
    const dueAt = dateDueAt(day, trigger, program.wait_seconds);
    const context = { type: 'date_field', field: trigger.field, date: key };
    let after: string | null = null;
    for (;;) {
      const ids = await store.contactsOnMonthDays(ctx.db, program.audience_id, trigger.field, monthDays, after, SCAN_PAGE);
      if (ids.length === 0) break;
      entered += await store.enterDate(ctx.db, program, ids, { key, dueAt, context, now: ctx.now() });
      after = ids[ids.length - 1]!;
      const t = ctx.now();
      if (!(await store.advanceScan(ctx.db, program.id, holder, { scan_lease_until: new Date(t.getTime() + leaseMs) }))) return true;
    }
    if (!(await store.advanceScan(ctx.db, program.id, holder, { scanned_through: day }))) return true;
  }
  await store.advanceScan(ctx.db, program.id, holder, { next_scan_at: nextScanAt(now, trigger.time_zone), scan_leased_by: null, scan_lease_until: null });
  if (entered) notifyEntered(ctx.db);
  return true;
}
