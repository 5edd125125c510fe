/**
 * Data-subject rights: everything held about one person (by address, across the audiences the
 * caller sees) as JSON, and its erasure. Erasing appends a withdrawal to each audience's ledger
 * first, so that the hashed address kept there proves the person withdrew, then anonymises the
 * message log and deletes the contacts with their participations, memberships and account.
 *
 * What stays: the ledger's digests (no clear address, IP or user agent), the anonymous counts of the
 * message log, and the exclusion list entry if the person asked never to get marketing (deleting it
 * would let a later import write to them again; their objection outlives the erasure).
 */
import type { AppContext } from '../platform/context.ts';
import { badRequest, notFound } from '../platform/errors.ts';
import { checkEmail } from '../platform/email-address.ts';
import type { Principal } from '../organisations/service.ts';
import { contactsByEmail, deleteContact, getContact } from '../audience/service.ts';
import { anonymiseSubject, subjectMessages } from '../sending/service.ts';
import { eraseSubjectEvents } from '../webhooks/service.ts';
import { appendConsent, publicRecord } from './service.ts';
import * as store from './ledger-store.ts';
import { sha256 } from './ledger-rules.ts';

function address(email: string): string {
  const e = checkEmail(email);
  if (!e.ok) throw badRequest('invalid_email', `email: ${e.reason}`);
  return e.lower;
}

export async function exportSubject(ctx: AppContext, p: Principal, email: string) {
  const lower = address(email);
  const contacts = await contactsByEmail(ctx, p, lower);
  const [excluded, messages] = await Promise.all([
    store.excludedAmong(ctx.db, p.orgId, [lower]),
    subjectMessages(ctx, p.orgId, contacts.map((c) => c.id), lower),
  ]);
  if (contacts.length === 0 && messages.length === 0 && excluded.size === 0) throw notFound('data subject');
  return {
    email: lower,
    exported_at: ctx.now(),
    contacts: await Promise.all(
      contacts.map(async (c) => ({
        ...(await getContact(ctx, p, c.audience_id, c.id)),
        consents: (await store.recordsOfContact(ctx.db, p.orgId, c.id)).map(publicRecord),
      })),
    ),
    messages,
    exclusion: excluded.size > 0,
  };
}

export async function eraseSubject(ctx: AppContext, p: Principal, email: string) {
  const lower = address(email);
  const contacts = await contactsByEmail(ctx, p, lower);
  const now = ctx.now();
  for (const c of contacts) {
    await appendConsent(ctx.db, { id: c.id, org_id: p.orgId, audience_id: c.audience_id, email_lower: lower }, { action: 'withdrawn', method: 'erasure', actor: `${p.kind}:${p.id}` }, now);
  }
  const anonymised = await ctx.db.transaction().execute((trx) => anonymiseSubject(trx, p.orgId, contacts.map((c) => c.id), lower));
  const erased = [];
  for (const c of contacts) erased.push({ audience_id: c.audience_id, contact_id: c.id, ...(await deleteContact(ctx, p, c.audience_id, c.id)) });
  // Webhook notices already delivered no longer need the address; pending ones keep it to tell the CRM.
  await eraseSubjectEvents(ctx.db, p.orgId, lower, contacts.map((c) => c.id));
  if (erased.length === 0 && anonymised === 0) throw notFound('data subject');
  return { email_hash: sha256(lower), contacts: erased, messages_anonymised: anonymised, exclusion_kept: (await store.excludedAmong(ctx.db, p.orgId, [lower])).size > 0 };
}
