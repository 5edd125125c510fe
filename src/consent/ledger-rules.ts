/*
 * Pure rules of the consent ledger: what a record proves, how records chain, and what a contact's
 * marketing state is after a record. The store appends; these decide.
 */
import { createHash } from 'node:crypto';
import type { ConsentAction } from '../platform/schema.ts';
import type { MarketingConsent } from './rules.ts';

export const CONSENT_ACTIONS: readonly ConsentAction[] = ['requested', 'given', 'confirmed', 'withdrawn', 'repermission_yes', 'repermission_no', 'unsubscribed', 'excluded', 'restored'];

/** How a consent change was collected: the words a proof export and an auditor read. */
export const CONSENT_METHODS = [
  'registration_checkbox',
  'signup_form',
  'double_opt_in',
  'repermission_click',
  'api',
  'import',
  'back_office',
  'unsubscribe_page',
  'one_click',
  'mailto',
  'erasure',
] as const;
export type ConsentMethod = (typeof CONSENT_METHODS)[number];

/** The hash that starts every audience's chain. */
export const GENESIS_HASH = '0'.repeat(64);

export const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** What a record says, with personal values as digests only (see the migration). */
export interface RecordContent {
  audience_id: string;
  email_hash: string;
  purpose: 'marketing';
  action: ConsentAction;
  method: string;
  wording: string | null;
  wording_version: string | null;
  ip_hash: string | null;
  user_agent_hash: string | null;
  message_id: string | null;
  delivery_id: string | null;
  campaign_id: string | null;
  actor: string;
  at: Date;
}

/** Keys in a fixed order, so that the same record always hashes the same. */
function canonical(c: RecordContent): string {
  return JSON.stringify([
    c.audience_id,
    c.email_hash,
    c.purpose,
    c.action,
    c.method,
    c.wording,
    c.wording_version,
    c.ip_hash,
    c.user_agent_hash,
    c.message_id,
    c.delivery_id,
    c.campaign_id,
    c.actor,
    c.at.toISOString(),
  ]);
}

export function recordHash(prevHash: string, content: RecordContent): string {
  return sha256(`${prevHash}\n${canonical(content)}`);
}

export type StoredRecord = RecordContent & { seq: string | number; prev_hash: string; hash: string };

export type ChainCheck = { ok: true; checked: number } | { ok: false; checked: number; broken_at: string; reason: string };

/** Walks an audience's records in `seq` order and reports the first one that does not chain. */
export function verifyChain(records: Iterable<StoredRecord>, startHash = GENESIS_HASH, alreadyChecked = 0): ChainCheck & { lastHash: string } {
  let prev = startHash;
  let checked = alreadyChecked;
  for (const r of records) {
    if (r.prev_hash !== prev) return { ok: false, checked, broken_at: String(r.seq), reason: 'does not follow the previous record (a record was removed, inserted or reordered)', lastHash: prev };
    if (recordHash(prev, r) !== r.hash) return { ok: false, checked, broken_at: String(r.seq), reason: 'its content does not match its hash (the record was altered)', lastHash: prev };
    prev = r.hash;
    checked++;
  }
  return { ok: true, checked, lastHash: prev };
}

/**
 * A contact's marketing columns after a record: consent given (or confirmed, or a YES to a
 * re-permission) dates the authorisation; a withdrawal in any form ends it. `requested` (a double
 * opt-in not yet confirmed), `excluded` and `restored` (organisation-wide, see exclusions) change
 * nothing here.
 */
export function stateAfter(action: ConsentAction, at: Date): { marketing_authorized_at: Date | null; marketing_withdrawn_at: Date | null } | null {
  switch (action) {
    case 'given':
    case 'confirmed':
    case 'repermission_yes':
      return { marketing_authorized_at: at, marketing_withdrawn_at: null };
    case 'withdrawn':
    case 'unsubscribed':
    case 'repermission_no':
      return { marketing_authorized_at: null, marketing_withdrawn_at: at };
    default:
      return null;
  }
}

/** The policy's view of the derived columns. */
export function marketingConsent(c: { marketing_authorized_at: Date | null; marketing_withdrawn_at: Date | null }): MarketingConsent {
  if (c.marketing_authorized_at) return { status: 'opted_in', since: c.marketing_authorized_at };
  if (c.marketing_withdrawn_at) return { status: 'withdrawn', at: c.marketing_withdrawn_at };
  return { status: 'none' };
}

export interface AnswerRecord {
  /** groups the records of one person (the ledger's address digest) */
  email_hash: string;
  contact_id: string | null;
  email: string | null;
  action: 'repermission_yes' | 'repermission_no';
  at: Date;
}

/**
 * Each person's answer to a re-permission campaign from its records in ledger order: the latest
 * answer, dated when they first gave it. Clicking YES again after the deadline does not turn an
 * on-time YES into a late one; changing one's mind dates the new answer.
 */
export function currentAnswers(records: Iterable<AnswerRecord>): { contact_id: string | null; email: string | null; answer: 'yes' | 'no'; at: Date }[] {
  const latest = new Map<string, { contact_id: string | null; email: string | null; answer: 'yes' | 'no'; at: Date }>();
  for (const r of records) {
    const answer = r.action === 'repermission_yes' ? 'yes' : 'no';
    const before = latest.get(r.email_hash);
    latest.set(r.email_hash, { contact_id: r.contact_id, email: r.email, answer, at: before && before.answer === answer ? before.at : r.at });
  }
  return [...latest.values()];
}
