import { sql, type ExpressionBuilder, type Kysely } from 'kysely';
import type { DB } from '../platform/schema.ts';
import type { LockState, TokenKind } from './rules.ts';

type Q = Kysely<DB>;

/** The columns an account may show; the password hash is read only where a password is checked. */
const STATUS = ['contact_accounts.contact_id', 'contact_accounts.confirmed_at', 'contact_accounts.failed_attempts', 'contact_accounts.locked_until', 'contact_accounts.created_at'] as const;

export function accountStatusRow(db: Q, audienceId: string, contactId: string) {
  return db.selectFrom('contact_accounts').select(STATUS).where('audience_id', '=', audienceId).where('contact_id', '=', contactId).executeTakeFirst();
}

export function accountByEmail(db: Q, audienceId: string, emailLower: string) {
  return db
    .selectFrom('contact_accounts')
    .innerJoin('contacts', 'contacts.id', 'contact_accounts.contact_id')
    .select([...STATUS, 'contact_accounts.password_hash'])
    .where('contacts.audience_id', '=', audienceId)
    .where('contacts.email_lower', '=', emailLower)
    .executeTakeFirst();
}

export async function accountExistsForEmail(db: Q, audienceId: string, emailLower: string): Promise<boolean> {
  const r = await db
    .selectFrom('contact_accounts')
    .innerJoin('contacts', 'contacts.id', 'contact_accounts.contact_id')
    .select('contact_accounts.contact_id')
    .where('contacts.audience_id', '=', audienceId)
    .where('contacts.email_lower', '=', emailLower)
    .executeTakeFirst();
  return r !== undefined;
}

/** Inserts the account unless the contact already has one; true when inserted. */
export async function insertAccount(db: Q, row: { contactId: string; orgId: string; audienceId: string; passwordHash: string; now: Date }): Promise<boolean> {
  const r = await db
    .insertInto('contact_accounts')
    .values({ contact_id: row.contactId, org_id: row.orgId, audience_id: row.audienceId, password_hash: row.passwordHash, created_at: row.now, updated_at: row.now })
    .onConflict((oc) => oc.column('contact_id').doNothing())
    .returning('contact_id')
    .executeTakeFirst();
  return r !== undefined;
}

/** Locks the account row until the transaction ends, so concurrent logins count one after the other. */
export function lockForLogin(trx: Q, contactId: string) {
  return trx
    .selectFrom('contact_accounts')
    .select(['password_hash', 'failed_attempts', 'locked_until', 'confirmed_at'])
    .where('contact_id', '=', contactId)
    .forUpdate()
    .executeTakeFirst();
}

export async function saveLockState(trx: Q, contactId: string, s: LockState, now: Date) {
  await trx.updateTable('contact_accounts').set({ failed_attempts: s.failedAttempts, locked_until: s.lockedUntil, updated_at: now }).where('contact_id', '=', contactId).execute();
}

export function unlock(db: Q, audienceId: string, contactId: string, now: Date) {
  return db
    .updateTable('contact_accounts')
    .set({ failed_attempts: 0, locked_until: null, updated_at: now })
    .where('audience_id', '=', audienceId)
    .where('contact_id', '=', contactId)
    .returning(['contact_id', 'confirmed_at', 'failed_attempts', 'locked_until', 'created_at'])
    .executeTakeFirst();
}

export async function markConfirmed(db: Q, contactId: string, now: Date) {
  await db
    .updateTable('contact_accounts')
    .set({ confirmed_at: sql<Date>`coalesce(confirmed_at, ${now})`, updated_at: now })
    .where('contact_id', '=', contactId)
    .execute();
}

/**
 * A new password through a reset token: the token came by email, so it also proves the address
 * (confirms the account), and it ends any lock.
 */
export async function setPassword(db: Q, contactId: string, passwordHash: string, now: Date) {
  await db
    .updateTable('contact_accounts')
    .set({ password_hash: passwordHash, failed_attempts: 0, locked_until: null, confirmed_at: sql<Date>`coalesce(confirmed_at, ${now})`, updated_at: now })
    .where('contact_id', '=', contactId)
    .execute();
}

/** Stores a new token of `kind` for the contact, after deleting the earlier ones of that kind. */
export async function replaceToken(db: Q, row: { contactId: string; kind: TokenKind; tokenHash: string; now: Date; expiresAt: Date }) {
  await db.deleteFrom('account_tokens').where('contact_id', '=', row.contactId).where('kind', '=', row.kind).execute();
  await db.insertInto('account_tokens').values({ contact_id: row.contactId, kind: row.kind, token_hash: row.tokenHash, created_at: row.now, expires_at: row.expiresAt }).execute();
}

const ofAudience = (audienceId: string) => (eb: ExpressionBuilder<DB, 'account_tokens'>) =>
  eb('account_tokens.contact_id', 'in', eb.selectFrom('contact_accounts').select('contact_accounts.contact_id').where('contact_accounts.audience_id', '=', audienceId));

/**
 * Marks the token used if it is usable now, in one statement: of two concurrent uses only one gets
 * the contact id back. Tokens of other audiences are invisible.
 */
export async function consumeToken(db: Q, audienceId: string, kind: TokenKind, tokenHash: string, now: Date): Promise<string | null> {
  const r = await db
    .updateTable('account_tokens')
    .set({ used_at: now })
    .where('token_hash', '=', tokenHash)
    .where('kind', '=', kind)
    .where('used_at', 'is', null)
    .where('expires_at', '>', now)
    .where(ofAudience(audienceId))
    .returning('contact_id')
    .executeTakeFirst();
  return r?.contact_id ?? null;
}

export function findToken(db: Q, audienceId: string, kind: TokenKind, tokenHash: string) {
  return db
    .selectFrom('account_tokens')
    .select(['used_at', 'expires_at'])
    .where('token_hash', '=', tokenHash)
    .where('kind', '=', kind)
    .where(ofAudience(audienceId))
    .executeTakeFirst();
}
