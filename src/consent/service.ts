/**
 * The consent center's service: recording consent changes with their proof, reading a contact's
 * history, verifying an audience's chain, and the organisation's exclusion list. Other capabilities
 * (the unsubscribe page, double opt-in, re-permission) record through `appendConsent`.
 */
import { Readable, pipeline } from 'node:stream';
import { parse } from 'csv-parse';
import type { Kysely } from 'kysely';
import type { AppContext } from '../platform/context.ts';
import type { ConsentAction, DB } from '../platform/schema.ts';
import { AppError, badRequest, notFound } from '../platform/errors.ts';
import { checkEmail } from '../platform/email-address.ts';
import type { Principal } from '../organisations/service.ts';
import { csvText } from '../audience/csv-encoding.ts';
import { addRecord, audienceFor, contactFor, contactsForSending, eventFor, type ValuesInput } from '../audience/service.ts';
import { currentAnswers, verifyChain, type AnswerRecord, type ChainCheck } from './ledger-rules.ts';
import * as store from './ledger-store.ts';

export interface ConsentInput {
  action: ConsentAction;
  method: string;
  wording?: string | null;
  wording_version?: string | null;
  ip?: string | null;
  user_agent?: string | null;
  message_id?: string | null;
  delivery_id?: string | null;
  campaign_id?: string | null;
  /** who recorded it: 'key:<id>', 'user:<id>', 'contact', 'system' */
  actor: string;
  at?: Date;
}

const oneLine = (s: string | null | undefined, max: number) => (s == null ? null : s.replace(/[\u0000-\u001f\u007f]/g, ' ').slice(0, max));

/**
 * Appends a record for a contact (in `db`'s transaction when it is one, else in a new one). The
 * contact row gives the organisation, audience and address, so a record can only be about a contact
 * that exists where it says.
 */
export async function appendConsent(db: Kysely<DB>, contact: { id: string; org_id: string; audience_id: string; email_lower: string }, input: ConsentInput, now: Date) {
  const run = (trx: Parameters<typeof store.appendRecord>[0]) =>
    store.appendRecord(trx, {
      org_id: contact.org_id,
      audience_id: contact.audience_id,
      contact_id: contact.id,
      email_lower: contact.email_lower,
      purpose: 'marketing',
      action: input.action,
      method: input.method,
      wording: input.wording ?? null,
      wording_version: input.wording_version ?? null,
      ip: oneLine(input.ip, 100),
      user_agent: oneLine(input.user_agent, 500),
      message_id: input.message_id ?? null,
      delivery_id: input.delivery_id ?? null,
      campaign_id: input.campaign_id ?? null,
      actor: input.actor,
      at: input.at ?? now,
    });
  return db.isTransaction ? run(db as Parameters<typeof store.appendRecord>[0]) : db.transaction().execute(run);
}

/** A consent change recorded by a back-office user or an API key (an opt-in collected elsewhere, a withdrawal by phone). */
export async function recordConsent(ctx: AppContext, p: Principal, audienceId: string, contactId: string, input: Omit<ConsentInput, 'actor'>) {
  const c = await contactFor(ctx, p, audienceId, contactId);
  if ((input.action === 'given' || input.action === 'confirmed') && !input.wording) {
    throw badRequest('wording_required', 'an opt-in is only a proof with the exact wording the person agreed to: give wording (and wording_version)');
  }
  const now = ctx.now();
  if (input.at && input.at.getTime() > now.getTime() + 60_000) throw badRequest('invalid_at', 'a consent change cannot be dated in the future');
  // Within the minute of clock slack, a date just ahead of ours is now: a later change must not sort before it.
  const at = input.at && input.at.getTime() > now.getTime() ? now : input.at;
  return publicRecord(await appendConsent(ctx.db, c, { ...input, at, actor: `${p.kind}:${p.id}` }, now));
}

export function publicRecord(r: store.ConsentRecordRow) {
  return {
    id: r.id,
    seq: String(r.seq),
    audience_id: r.audience_id,
    contact_id: r.contact_id,
    email: r.email,
    email_hash: r.email_hash,
    purpose: r.purpose,
    action: r.action,
    method: r.method,
    wording: r.wording,
    wording_version: r.wording_version,
    ip: r.ip,
    user_agent: r.user_agent,
    message_id: r.message_id,
    delivery_id: r.delivery_id,
    campaign_id: r.campaign_id,
    actor: r.actor,
    at: r.at,
    hash: r.hash,
    prev_hash: r.prev_hash,
  };
}

export async function consentHistory(ctx: AppContext, p: Principal, audienceId: string, contactId: string) {
  const c = await contactFor(ctx, p, audienceId, contactId);
  const records = await store.recordsOfContact(ctx.db, p.orgId, c.id);
  return {
    contact_id: c.id,
    marketing_authorized_at: c.marketing_authorized_at,
    marketing_withdrawn_at: (c as { marketing_withdrawn_at?: Date | null }).marketing_withdrawn_at ?? null,
    excluded: (await store.excludedAmong(ctx.db, p.orgId, [c.email_lower])).size > 0,
    records: records.map(publicRecord),
  };
}

/** Recomputes the audience's whole chain, a page at a time. */
export async function verifyLedger(ctx: AppContext, p: Principal, audienceId: string): Promise<ChainCheck & { audience_id: string; verified_at: Date }> {
  await audienceFor(ctx, p, audienceId);
  let after = '0';
  let state = { ok: true as boolean, checked: 0, lastHash: undefined as string | undefined };
  for (;;) {
    const page = await store.chainPage(ctx.db, audienceId, after, 5000);
    if (page.length === 0) break;
    const r = verifyChain(page, state.lastHash, state.checked);
    if (!r.ok) return { ok: false, checked: r.checked, broken_at: r.broken_at, reason: r.reason, audience_id: audienceId, verified_at: ctx.now() };
    state = { ok: true, checked: r.checked, lastHash: r.lastHash };
    after = String(page[page.length - 1]!.seq);
  }
  return { ok: true, checked: state.checked, audience_id: audienceId, verified_at: ctx.now() };
}

// ---- exclusion list ----

export function excludedAmong(db: Kysely<DB>, orgId: string, emailLowers: readonly string[]) {
  return store.excludedAmong(db, orgId, emailLowers);
}

export interface ExclusionInput {
  email: string;
  reason?: string | null;
}

/** A rejected address as the message shows it: in quotes, control characters escaped, a long one cut. */
function quoted(value: unknown): string {
  const text = typeof value === 'string' ? value : String(value);
  return JSON.stringify(text.length > 100 ? `${text.slice(0, 100)}…` : text);
}

/** Adds addresses to the exclusion list; every bad address is reported, none is added then. */
export async function addExclusions(ctx: AppContext, p: Principal, items: ExclusionInput[], source: string) {
  const problems: string[] = [];
  const rows = items.map((it, i) => {
    const e = checkEmail(it.email);
    // The address itself, and its place counted from 1 as a person reads a list.
    if (!e.ok) problems.push(`${quoted(it.email)} (item ${i + 1} of ${items.length}): ${e.reason}`);
    return { org_id: p.orgId, email_lower: e.ok ? e.lower : '', reason: oneLine(it.reason, 500), source, created_by: `${p.kind}:${p.id}`, created_at: ctx.now() };
  });
  if (problems.length) throw badRequest('invalid_email', problems.length === 1 ? problems[0]! : `${problems[0]!}; and ${problems.length - 1} more (details.problems)`, { problems });
  const added = await store.addExclusions(ctx.db, rows);
  return { added, already_listed: rows.length - added };
}

/** What the unsubscribe page does when a person asks to stop all marketing from the organisation. */
export async function excludeAddress(db: Kysely<DB>, orgId: string, emailLower: string, reason: string, source: string, now: Date) {
  return (await store.addExclusions(db, [{ org_id: orgId, email_lower: emailLower, reason, source, created_by: 'contact', created_at: now }])) > 0;
}

export async function removeExclusion(ctx: AppContext, p: Principal, email: string) {
  const e = checkEmail(email);
  const key = e.ok ? e.lower : email.trim().toLowerCase();
  if (!(await store.removeExclusion(ctx.db, p.orgId, key))) throw notFound('exclusion');
}

export async function listExclusions(ctx: AppContext, p: Principal, page: { limit: number; offset: number; q?: string }) {
  const [items, total] = await Promise.all([store.listExclusions(ctx.db, p.orgId, page), store.countExclusions(ctx.db, p.orgId, page.q)]);
  return { items, total };
}

/** Each person's last answer to a re-permission campaign (a NO after a YES is a NO), dated when first given. */
export async function answersOfCampaign(ctx: AppContext, campaignId: string) {
  return currentAnswers((await store.answersOfCampaign(ctx.db, campaignId)) as AnswerRecord[]);
}

// ---- registration with a consent checkbox ----

/**
 * A registration from the organiser's form (reference: inwink-email-policy): the participant is
 * registered, which allows the mail about their participation only; a ticked marketing checkbox is a
 * separate, recorded opt-in with the wording shown.
 */
export async function registerWithConsent(
  ctx: AppContext,
  p: Principal,
  eventId: string,
  input: { participant: ValuesInput; marketing_consent?: { given: boolean; wording: string; wording_version: string }; ip?: string; user_agent?: string },
) {
  const event = await eventFor(ctx, p, eventId);
  const consent = input.marketing_consent;
  if (consent?.given && !input.participant.builtins.email) throw badRequest('email_required', 'a marketing opt-in needs the email it is for');
  const record = (await addRecord(ctx, p, 'participant', event.id, input.participant)) as { id: string; contact_id: string | null; contact_created: boolean };
  let recorded: ReturnType<typeof publicRecord> | null = null;
  if (consent?.given && record.contact_id) {
    const [c] = await contactsForSending(ctx.db, p.orgId, [record.contact_id]);
    if (c) {
      recorded = publicRecord(
        await appendConsent(
          ctx.db,
          { id: c.id, org_id: p.orgId, audience_id: c.audience_id, email_lower: c.email_lower },
          { action: 'given', method: 'registration_checkbox', wording: consent.wording, wording_version: consent.wording_version, ip: input.ip ?? null, user_agent: input.user_agent ?? null, actor: `${p.kind}:${p.id}` },
          ctx.now(),
        ),
      );
    }
  }
  return { participant: record, marketing_consent: recorded };
}

// ---- proofs export ----

export const PROOF_COLUMNS = ['seq', 'at', 'action', 'method', 'email', 'email_hash', 'contact_id', 'wording', 'wording_version', 'ip', 'user_agent', 'message_id', 'campaign_id', 'actor', 'hash', 'prev_hash'] as const;

/** The proofs of an audience (or one contact), in chain order, read a page at a time. */
export async function proofRows(ctx: AppContext, p: Principal, audienceId: string, contactId?: string) {
  await audienceFor(ctx, p, audienceId);
  if (contactId) await contactFor(ctx, p, audienceId, contactId);
  return (async function* () {
    let after = '0';
    for (;;) {
      const page = await store.chainPage(ctx.db, audienceId, after, 2000);
      if (page.length === 0) return;
      for (const r of page) if (!contactId || r.contact_id === contactId) yield { ...publicRecord(r), at: r.at.toISOString() };
      after = String(page[page.length - 1]!.seq);
    }
  })();
}

// ---- exclusion list import ----

export const MAX_EXCLUSION_IMPORT_BYTES = 20 * 1024 * 1024;

/** csv-parse's message without the file's own bytes it may quote (control characters escaped, kept short). */
function csvParseProblem(err: Error): string {
  const message = err.message.replace(/[\u0000-\u001f\u007f-\u009f\uFFFD]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return message.length > 300 ? `${message.slice(0, 300)}…` : message;
}

/**
 * Adds the addresses of a CSV file (a column named email, optionally reason) to the exclusion list:
 * the file whole (the route keeps the size limit), UTF-8 or UTF-16 with its byte order mark as the
 * contacts import takes it; good rows are kept, each bad one is reported with its line number.
 */
export async function importExclusions(ctx: AppContext, p: Principal, file: Uint8Array) {
  const text = csvText(file);
  const parser = parse({ bom: true, columns: (h: string[]) => h.map((x) => x.trim().toLowerCase()), skip_empty_lines: true, relax_column_count: true, info: true, trim: true });
  pipeline(Readable.from([text]), parser, () => {});
  const errors: { line: number; message: string }[] = [];
  let batch: Parameters<typeof store.addExclusions>[1] = [];
  let added = 0;
  let rows = 0;
  const flush = async () => {
    if (batch.length) added += await store.addExclusions(ctx.db, batch);
    batch = [];
  };
  try {
    for await (const { record, info } of parser as AsyncIterable<{ record: Record<string, string>; info: { lines: number } }>) {
      rows++;
      if (rows === 1 && !('email' in record)) throw badRequest('invalid_csv', 'the first line must name the columns, one of them "email" (and optionally "reason")');
      const e = checkEmail(record.email);
      if (!e.ok) {
        if (errors.length < 1000) errors.push({ line: info.lines, message: `email: ${e.reason}` });
        continue;
      }
      batch.push({ org_id: p.orgId, email_lower: e.lower, reason: oneLine(record.reason || null, 500), source: 'import', created_by: `${p.kind}:${p.id}`, created_at: ctx.now() });
      if (batch.length >= 1000) await flush();
    }
  } catch (err) {
    if (err instanceof AppError) throw err;
    await flush();
    throw badRequest('invalid_csv', `the file is not valid CSV: ${csvParseProblem(err as Error)}`, { added, errors });
  }
  await flush();
  return { rows, added, already_listed: rows - errors.length - added, errors };
}
