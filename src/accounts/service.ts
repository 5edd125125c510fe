/**
 * Contact accounts: a person's own password for the organiser's sites, which call these functions
 * through the API with their key, acting for the person.
 *
 * Secrets. The password is hashed with argon2id before it touches the database and the hash never
 * leaves this capability (no function here returns it, nothing logs it). Confirmation and reset
 * tokens are random; only their SHA-256 is stored. A raw token exists only in the `IssuedToken` a
 * function returns to its caller: today the routes hand it back in the HTTP answer only when
 * `ctx.exposeTokensForTests` is set (the test harness); the mail capability is meant to take the same
 * `IssuedToken` (contact id, kind, token, expiry) from these functions and email the link to the
 * person, which is the only way the token should ever reach them.
 */
import type { Kysely } from 'kysely';
import type { AppContext } from '../platform/context.ts';
import type { DB } from '../platform/schema.ts';
import { AppError, badRequest, conflict, notFound } from '../platform/errors.ts';
import { checkEmail } from '../platform/email-address.ts';
import { burnPasswordCheck, hashPassword, hashToken, randomToken, verifyPassword } from '../platform/secrets.ts';
import type { Principal } from '../organisations/service.ts';
import { passwordProblem } from '../organisations/rules.ts';
import { audienceFor, contactFor, ensureContactByEmail } from '../audience/service.ts';
import { TOKEN_PREFIX, TOKEN_PROBLEM_MESSAGE, accountStatus, lockEnd, loginStep, tokenExpiry, tokenProblem, type TokenKind } from './rules.ts';
import * as store from './store.ts';

export interface IssuedToken {
  kind: TokenKind;
  contactId: string;
  /** the raw token: to be emailed to the person, never stored, never logged */
  token: string;
  expiresAt: Date;
}

function emailKey(input: string): string {
  const r = checkEmail(input);
  if (!r.ok) throw badRequest('invalid_email', `email: ${r.reason}`);
  return r.lower;
}

function checkPassword(password: string) {
  const problem = passwordProblem(password);
  if (problem) throw badRequest('weak_password', problem);
}

/** Replaces the contact's token of this kind (an earlier unused one stops working). Run inside the caller's transaction. */
async function issueToken(db: Kysely<DB>, ctx: AppContext, contactId: string, kind: TokenKind, now: Date): Promise<IssuedToken> {
  const token = randomToken(TOKEN_PREFIX[kind]);
  const expiresAt = tokenExpiry(kind, now, ctx.config);
  await store.replaceToken(db, { contactId, kind, tokenHash: hashToken(token), now, expiresAt });
  return { kind, contactId, token, expiresAt };
}

const invalidCredentials = () => new AppError(401, 'invalid_credentials', 'wrong email or password');

function lockedError(lockEnd: Date, justLocked: boolean) {
  const why = justLocked ? 'wrong password; that was the last attempt allowed, so' : 'too many wrong passwords:';
  return new AppError(423, 'account_locked', `${why} this account is locked until ${lockEnd.toISOString()}`, { lock_end: lockEnd.toISOString() });
}

// ---- the person's own actions (through the organiser's site) ----

/**
 * Creates an account for the contact with this email (creating the contact when the email is new).
 * Returns the confirmation token to send.
 */
export async function signUp(ctx: AppContext, p: Principal, audienceId: string, input: { email: string; password: string; first_name?: string | null; last_name?: string | null }) {
  await audienceFor(ctx, p, audienceId);
  const key = emailKey(input.email);
  checkPassword(input.password);
  const exists = () => conflict('account_exists', 'this contact already has an account; log in or reset the password');
  if (await store.accountExistsForEmail(ctx.db, audienceId, key)) throw exists();
  const passwordHash = await hashPassword(input.password);
  const contact = await ensureContactByEmail(ctx, p, audienceId, { builtins: { email: input.email, first_name: input.first_name, last_name: input.last_name } });
  const now = ctx.now();
  const confirmToken = await ctx.db.transaction().execute(async (trx) => {
    if (!(await store.insertAccount(trx, { contactId: contact.id, orgId: p.orgId, audienceId, passwordHash, now }))) throw exists();
    return issueToken(trx, ctx, contact.id, 'confirm', now);
  });
  return { contactId: contact.id, contactCreated: contact.created, confirmToken };
}

/**
 * Checks a password. Unknown emails cost the same time as known ones. The lockout state changes under
 * a row lock, so parallel wrong passwords each count; the slow hash check runs before taking it.
 */
export async function logIn(ctx: AppContext, p: Principal, audienceId: string, email: string, password: string): Promise<{ contactId: string; confirmed: boolean }> {
  await audienceFor(ctx, p, audienceId);
  const key = emailKey(email);
  const now = ctx.now();
  const account = await store.accountByEmail(ctx.db, audienceId, key);
  if (!account) {
    await burnPasswordCheck(password);
    throw invalidCredentials();
  }
  // Refused whatever the password: no need to spend a hash on it.
  const end = lockEnd({ failedAttempts: account.failed_attempts, lockedUntil: account.locked_until }, now);
  if (end) throw lockedError(end, false);

  let checkedHash = account.password_hash;
  let correct = await verifyPassword(checkedHash, password);
  for (;;) {
    const r = await ctx.db.transaction().execute(async (trx) => {
      const row = await store.lockForLogin(trx, account.contact_id);
      if (!row) return { kind: 'gone' as const };
      // The password changed (a reset) between the check and the lock: check again against the new one.
      if (row.password_hash !== checkedHash) return { kind: 'rehash' as const, hash: row.password_hash };
      const step = loginStep({ failedAttempts: row.failed_attempts, lockedUntil: row.locked_until }, now, correct ? 'correct' : 'wrong', ctx.config.lockout);
      if (step.changed) await store.saveLockState(trx, account.contact_id, step.next, now);
      return { kind: 'done' as const, answer: step.answer, confirmed: row.confirmed_at !== null };
    });
    if (r.kind === 'gone') throw invalidCredentials();
    if (r.kind === 'rehash') {
      checkedHash = r.hash;
      correct = await verifyPassword(checkedHash, password);
      continue;
    }
    if (r.answer.kind === 'locked') throw lockedError(r.answer.lockEnd, r.answer.justLocked);
    if (r.answer.kind === 'wrong_password') throw invalidCredentials();
    return { contactId: account.contact_id, confirmed: r.confirmed };
  }
}

/** Why the stored token (or its absence) cannot be used at `now`, or null. */
const unusable = (found: Awaited<ReturnType<typeof store.findToken>>, now: Date) => tokenProblem(found && { usedAt: found.used_at, expiresAt: found.expires_at }, now);

async function useToken(db: Kysely<DB>, audienceId: string, kind: TokenKind, token: string, now: Date): Promise<string> {
  const tokenHash = hashToken(token);
  const contactId = await store.consumeToken(db, audienceId, kind, tokenHash, now);
  if (contactId) return contactId;
  const problem = unusable(await store.findToken(db, audienceId, kind, tokenHash), now) ?? 'token_used';
  throw badRequest(problem, TOKEN_PROBLEM_MESSAGE[problem]);
}

/** Confirms the account's email with the token sent at sign-up (single use). */
export async function confirm(ctx: AppContext, p: Principal, audienceId: string, token: string) {
  await audienceFor(ctx, p, audienceId);
  const now = ctx.now();
  return ctx.db.transaction().execute(async (trx) => {
    const contactId = await useToken(trx, audienceId, 'confirm', token, now);
    await store.markConfirmed(trx, contactId, now);
    return { contactId };
  });
}

/** Sets a new password with a reset token (single use); ends any lock and confirms the email. */
export async function resetPassword(ctx: AppContext, p: Principal, audienceId: string, token: string, password: string) {
  await audienceFor(ctx, p, audienceId);
  checkPassword(password);
  const now = ctx.now();
  // A token that cannot be used is refused before the hash: envoi's reset page is public, and argon2
  // for every made-up token would be CPU for anyone to burn. The transaction below checks it again.
  const problem = unusable(await store.findToken(ctx.db, audienceId, 'reset', hashToken(token)), now);
  if (problem) throw badRequest(problem, TOKEN_PROBLEM_MESSAGE[problem]);
  const passwordHash = await hashPassword(password);
  return ctx.db.transaction().execute(async (trx) => {
    const contactId = await useToken(trx, audienceId, 'reset', token, now);
    await store.setPassword(trx, contactId, passwordHash, now);
    return { contactId };
  });
}

/**
 * A person asks for a reset link. The caller's answer does not depend on whether the email has an
 * account (no enumeration); the returned token is null when it has none.
 */
export async function requestPasswordReset(ctx: AppContext, p: Principal, audienceId: string, email: string): Promise<IssuedToken | null> {
  await audienceFor(ctx, p, audienceId);
  const key = emailKey(email);
  const account = await store.accountByEmail(ctx.db, audienceId, key);
  if (!account) return null;
  const now = ctx.now();
  return ctx.db.transaction().execute((trx) => issueToken(trx, ctx, account.contact_id, 'reset', now));
}

// ---- the organiser's actions on one contact's account ----

async function accountOf(ctx: AppContext, p: Principal, audienceId: string, contactId: string) {
  await contactFor(ctx, p, audienceId, contactId);
  const row = await store.accountStatusRow(ctx.db, audienceId, contactId);
  if (!row) throw notFound('account');
  return row;
}

/** Ends a lock and clears the wrong-password counter. */
export async function unlock(ctx: AppContext, p: Principal, audienceId: string, contactId: string) {
  await accountOf(ctx, p, audienceId, contactId);
  const now = ctx.now();
  const row = await store.unlock(ctx.db, audienceId, contactId, now);
  if (!row) throw notFound('account');
  return accountStatus(row, now);
}

/** Issues a reset token for the contact (the earlier unused one stops working); the password is unchanged until it is used. */
export async function organiserPasswordReset(ctx: AppContext, p: Principal, audienceId: string, contactId: string): Promise<IssuedToken> {
  await accountOf(ctx, p, audienceId, contactId);
  const now = ctx.now();
  return ctx.db.transaction().execute((trx) => issueToken(trx, ctx, contactId, 'reset', now));
}
