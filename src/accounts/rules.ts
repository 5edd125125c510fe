import type { Config } from '../platform/config.ts';

export type LockoutConfig = Config['lockout'];

/** What the database holds about an account's wrong passwords. */
export interface LockState {
  failedAttempts: number;
  lockedUntil: Date | null;
}

export type LoginOutcome = 'correct' | 'wrong';

export type LoginAnswer =
  | { kind: 'ok' }
  | { kind: 'wrong_password' }
  /** `justLocked`: this very attempt was the last allowed wrong password. */
  | { kind: 'locked'; lockEnd: Date; justLocked: boolean };

export interface LoginStep {
  answer: LoginAnswer;
  next: LockState;
  /** false when `next` equals the current state: nothing to write. */
  changed: boolean;
}

const MINUTE = 60_000;

/**
 * The end of the lock when the account is locked at `now`, else null. The lock covers
 * [lock start, lockedUntil): at `lockedUntil` exactly the account is open again.
 */
export function lockEnd(state: LockState, now: Date): Date | null {
  return state.lockedUntil !== null && now.getTime() < state.lockedUntil.getTime() ? state.lockedUntil : null;
}

/**
 * Wrong passwords that still count at `now`. A lock that has ended gives a fresh set of attempts:
 * otherwise one typo right after the lock would lock the person out again, while an attacker is held
 * to the same `maxFailedAttempts` per `lockMinutes` either way.
 */
export function countingFailures(state: LockState, now: Date): number {
  if (state.lockedUntil !== null && now.getTime() >= state.lockedUntil.getTime()) return 0;
  return state.failedAttempts;
}

/**
 * One login attempt: given the stored state, the time, and whether the password was right, the answer
 * to give and the state to store.
 * - during a lock every attempt is refused, even with the right password, and the lock is not
 *   extended (an attacker could otherwise keep a person out for ever);
 * - a right password outside a lock succeeds and clears the counter;
 * - the `maxFailedAttempts`-th consecutive wrong password locks the account for `lockMinutes` from now.
 */
export function loginStep(state: LockState, now: Date, outcome: LoginOutcome, config: LockoutConfig): LoginStep {
  const end = lockEnd(state, now);
  if (end) return { answer: { kind: 'locked', lockEnd: end, justLocked: false }, next: state, changed: false };
  if (outcome === 'correct') {
    const next: LockState = { failedAttempts: 0, lockedUntil: null };
    return { answer: { kind: 'ok' }, next, changed: !sameState(state, next) };
  }
  const failures = countingFailures(state, now) + 1;
  if (failures >= config.maxFailedAttempts) {
    const lockedUntil = new Date(now.getTime() + config.lockMinutes * MINUTE);
    return { answer: { kind: 'locked', lockEnd: lockedUntil, justLocked: true }, next: { failedAttempts: failures, lockedUntil }, changed: true };
  }
  return { answer: { kind: 'wrong_password' }, next: { failedAttempts: failures, lockedUntil: null }, changed: true };
}

function sameState(a: LockState, b: LockState): boolean {
  return a.failedAttempts === b.failedAttempts && (a.lockedUntil?.getTime() ?? null) === (b.lockedUntil?.getTime() ?? null);
}

/** How an account looks to the organiser (the contact detail, the unlock answer); never the hash. */
export function accountStatus(row: { confirmed_at: Date | null; failed_attempts: number; locked_until: Date | null; created_at: Date }, now: Date) {
  const state = { failedAttempts: row.failed_attempts, lockedUntil: row.locked_until };
  const end = lockEnd(state, now);
  return {
    confirmed: row.confirmed_at !== null,
    confirmed_at: row.confirmed_at,
    locked: end !== null,
    failed_attempts: countingFailures(state, now),
    lock_end: end,
    created_at: row.created_at,
  };
}

// ---- tokens (confirmation and password reset) ----

export type TokenKind = 'confirm' | 'reset';

/** Readable prefixes, so a token pasted in the wrong place is recognised. */
export const TOKEN_PREFIX: Record<TokenKind, string> = { confirm: 'ec_', reset: 'er_' };

/** A confirmation link may sit in an inbox over a weekend; a reset link is short-lived (configured). */
export const CONFIRM_TOKEN_MINUTES = 3 * 24 * 60;

export function tokenExpiry(kind: TokenKind, now: Date, config: Pick<Config, 'resetTokenMinutes'>): Date {
  const minutes = kind === 'confirm' ? CONFIRM_TOKEN_MINUTES : config.resetTokenMinutes;
  return new Date(now.getTime() + minutes * MINUTE);
}

export type TokenProblem = 'invalid_token' | 'token_used' | 'token_expired';

/** Why a token cannot be used at `now`, or null. Valid on [creation, expiresAt): expired at `expiresAt` exactly. */
export function tokenProblem(token: { usedAt: Date | null; expiresAt: Date } | undefined, now: Date): TokenProblem | null {
  if (!token) return 'invalid_token';
  if (token.usedAt !== null) return 'token_used';
  if (now.getTime() >= token.expiresAt.getTime()) return 'token_expired';
  return null;
}

export const TOKEN_PROBLEM_MESSAGE: Record<TokenProblem, string> = {
  invalid_token: 'this token is unknown here, or was replaced by a newer one',
  token_used: 'this token has already been used',
  token_expired: 'this token has expired; ask for a new one',
};
