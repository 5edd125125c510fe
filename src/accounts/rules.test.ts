import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { CONFIRM_TOKEN_MINUTES, accountStatus, countingFailures, lockEnd, loginStep, tokenExpiry, tokenProblem, type LockState, type LoginOutcome } from './rules.ts';

const config = { maxFailedAttempts: 5, lockMinutes: 15 };
const T0 = new Date('2026-03-01T10:00:00.000Z');
const at = (ms: number) => new Date(T0.getTime() + ms);
const MIN = 60_000;
const open = (failedAttempts = 0): LockState => ({ failedAttempts, lockedUntil: null });
const lockedAt = (end: Date, failedAttempts = 5): LockState => ({ failedAttempts, lockedUntil: end });

describe('lockEnd: the lock covers [start, lockedUntil)', () => {
  const end = at(15 * MIN);
  it('is open without a lock date', () => expect(lockEnd(open(4), T0)).toBeNull());
  it('is locked one ms before the end', () => expect(lockEnd(lockedAt(end), at(15 * MIN - 1))).toEqual(end));
  it('is open exactly at the end', () => expect(lockEnd(lockedAt(end), end)).toBeNull());
  it('is open after the end', () => expect(lockEnd(lockedAt(end), at(16 * MIN))).toBeNull());
});

describe('loginStep: counting wrong passwords', () => {
  it('counts a first wrong password without locking', () => {
    expect(loginStep(open(), T0, 'wrong', config)).toEqual({ answer: { kind: 'wrong_password' }, next: open(1), changed: true });
  });

  it('does not lock on the 4th consecutive wrong password', () => {
    expect(loginStep(open(3), T0, 'wrong', config)).toEqual({ answer: { kind: 'wrong_password' }, next: open(4), changed: true });
  });

  it('locks on the 5th, for exactly lockMinutes from that attempt', () => {
    const now = at(123_456);
    const end = new Date(now.getTime() + 15 * MIN);
    expect(loginStep(open(4), now, 'wrong', config)).toEqual({ answer: { kind: 'locked', lockEnd: end, justLocked: true }, next: lockedAt(end, 5), changed: true });
  });

  it('locks on the first wrong password when one attempt is allowed', () => {
    const r = loginStep(open(), T0, 'wrong', { maxFailedAttempts: 1, lockMinutes: 1 });
    expect(r.answer).toEqual({ kind: 'locked', lockEnd: at(MIN), justLocked: true });
    expect(r.next).toEqual(lockedAt(at(MIN), 1));
  });

  it('locks at once when the limit was lowered below the stored count', () => {
    const r = loginStep(open(7), T0, 'wrong', config);
    expect(r.answer.kind).toBe('locked');
    expect(r.next.failedAttempts).toBe(8);
  });

  it('five wrong passwords in a row: 401, 401, 401, 401, then locked', () => {
    let s = open();
    const kinds: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = loginStep(s, at(i * 1000), 'wrong', config);
      kinds.push(r.answer.kind);
      s = r.next;
    }
    expect(kinds).toEqual(['wrong_password', 'wrong_password', 'wrong_password', 'wrong_password', 'locked']);
    expect(s).toEqual(lockedAt(at(4000 + 15 * MIN), 5));
  });
});

describe('loginStep: the right password', () => {
  it('succeeds and clears the counter', () => {
    expect(loginStep(open(4), T0, 'correct', config)).toEqual({ answer: { kind: 'ok' }, next: open(0), changed: true });
  });

  it('has nothing to write for a clean account', () => {
    expect(loginStep(open(0), T0, 'correct', config)).toEqual({ answer: { kind: 'ok' }, next: open(0), changed: false });
  });

  it('succeeds even when the stored count is at the limit but no lock is set', () => {
    expect(loginStep(open(9), T0, 'correct', config).answer).toEqual({ kind: 'ok' });
  });
});

describe('loginStep: during and after a lock', () => {
  const end = at(15 * MIN);
  const locked = lockedAt(end);

  for (const outcome of ['correct', 'wrong'] as const) {
    it(`refuses a ${outcome} password one ms before the end, without extending the lock or counting`, () => {
      expect(loginStep(locked, at(15 * MIN - 1), outcome, config)).toEqual({ answer: { kind: 'locked', lockEnd: end, justLocked: false }, next: locked, changed: false });
    });
    it(`refuses a ${outcome} password right after the lock started`, () => {
      expect(loginStep(locked, T0, outcome, config).answer).toEqual({ kind: 'locked', lockEnd: end, justLocked: false });
    });
  }

  it('accepts the right password exactly at the lock end, and clears the counter', () => {
    expect(loginStep(locked, end, 'correct', config)).toEqual({ answer: { kind: 'ok' }, next: open(0), changed: true });
  });

  it('accepts the right password long after the lock end', () => {
    expect(loginStep(locked, at(48 * 60 * MIN), 'correct', config).answer).toEqual({ kind: 'ok' });
  });

  it('starts a fresh count for a wrong password exactly at the lock end', () => {
    expect(loginStep(locked, end, 'wrong', config)).toEqual({ answer: { kind: 'wrong_password' }, next: open(1), changed: true });
  });

  it('after a lock, allows four more wrong passwords and locks again on the fifth', () => {
    let s = locked;
    const kinds: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = loginStep(s, at(15 * MIN + i), 'wrong', config);
      kinds.push(r.answer.kind);
      s = r.next;
    }
    expect(kinds).toEqual(['wrong_password', 'wrong_password', 'wrong_password', 'wrong_password', 'locked']);
    expect(s.lockedUntil).toEqual(at(15 * MIN + 4 + 15 * MIN));
  });

  it('an organiser-cleared or expired lock date with a low count behaves as open', () => {
    expect(countingFailures({ failedAttempts: 2, lockedUntil: at(-1) }, T0)).toBe(0);
    expect(countingFailures({ failedAttempts: 2, lockedUntil: null }, T0)).toBe(2);
    expect(countingFailures(locked, at(15 * MIN - 1))).toBe(5);
  });
});

describe('loginStep: properties', () => {
  const configs = fc.record({ maxFailedAttempts: fc.integer({ min: 1, max: 10 }), lockMinutes: fc.integer({ min: 1, max: 120 }) });
  const steps = fc.array(fc.record({ dt: fc.integer({ min: 0, max: 40 * MIN }), outcome: fc.constantFrom<LoginOutcome>('correct', 'wrong') }), { maxLength: 60 });

  it('from a fresh account: the answer and stored state always follow the model', () => {
    fc.assert(
      fc.property(configs, steps, (cfg, seq) => {
        let s = open();
        let now = T0.getTime();
        for (const { dt, outcome } of seq) {
          now += dt;
          const wasLocked = s.lockedUntil !== null && now < s.lockedUntil.getTime();
          const r = loginStep(s, new Date(now), outcome, cfg);
          if (wasLocked) {
            expect(r.answer.kind).toBe('locked');
            expect(r.next).toEqual(s);
            expect(r.changed).toBe(false);
          } else if (outcome === 'correct') {
            expect(r.answer.kind).toBe('ok');
            expect(r.next).toEqual(open(0));
          } else {
            // a wrong password outside a lock either counts or locks for lockMinutes from now
            expect(r.next.failedAttempts).toBeLessThanOrEqual(cfg.maxFailedAttempts);
            if (r.answer.kind === 'locked') {
              expect(r.next.failedAttempts).toBe(cfg.maxFailedAttempts);
              expect(r.next.lockedUntil!.getTime()).toBe(now + cfg.lockMinutes * MIN);
              expect(r.answer.justLocked).toBe(true);
            } else {
              expect(r.answer.kind).toBe('wrong_password');
              expect(r.next.lockedUntil).toBeNull();
              expect(r.next.failedAttempts).toBeLessThan(cfg.maxFailedAttempts);
            }
          }
          // a lock date is stored only together with a full count
          if (r.next.lockedUntil !== null) expect(r.next.failedAttempts).toBe(cfg.maxFailedAttempts);
          s = r.next;
        }
      }),
    );
  });

  it('no more than maxFailedAttempts wrong passwords are ever checked within one lock period', () => {
    fc.assert(
      fc.property(configs, steps, (cfg, seq) => {
        let s = open();
        let now = T0.getTime();
        const checked: number[] = []; // times at which a wrong password was evaluated (not refused by a lock)
        for (const { dt, outcome } of seq) {
          now += dt;
          const r = loginStep(s, new Date(now), outcome, cfg);
          if (outcome === 'wrong' && !(r.answer.kind === 'locked' && !r.answer.justLocked)) checked.push(now);
          if (r.answer.kind === 'ok') checked.length = 0;
          s = r.next;
        }
        for (let i = cfg.maxFailedAttempts; i < checked.length; i++) {
          expect(checked[i]! - checked[i - cfg.maxFailedAttempts]!).toBeGreaterThanOrEqual(cfg.lockMinutes * MIN);
        }
      }),
    );
  });
});

describe('accountStatus: what the organiser sees', () => {
  const row = { confirmed_at: null, failed_attempts: 5, locked_until: at(15 * MIN), created_at: T0 };
  it('shows the lock and its end one ms before it', () => {
    expect(accountStatus(row, at(15 * MIN - 1))).toMatchObject({ confirmed: false, locked: true, failed_attempts: 5, lock_end: at(15 * MIN) });
  });
  it('shows an open account with a fresh count exactly at the end', () => {
    expect(accountStatus(row, at(15 * MIN))).toMatchObject({ locked: false, failed_attempts: 0, lock_end: null });
  });
  it('shows the count of an open account and its confirmation', () => {
    expect(accountStatus({ ...row, locked_until: null, failed_attempts: 2, confirmed_at: T0 }, T0)).toMatchObject({ confirmed: true, locked: false, failed_attempts: 2, lock_end: null });
  });
  it('never carries a password hash', () => {
    expect(Object.keys(accountStatus({ ...row, password_hash: '$argon2id$x' } as typeof row, T0))).not.toContain('password_hash');
  });
});

describe('tokens', () => {
  const expiresAt = at(60 * MIN);
  it('expire after the configured minutes (reset) or three days (confirm)', () => {
    expect(tokenExpiry('reset', T0, { resetTokenMinutes: 60 })).toEqual(expiresAt);
    expect(tokenExpiry('confirm', T0, { resetTokenMinutes: 60 })).toEqual(at(CONFIRM_TOKEN_MINUTES * MIN));
    expect(CONFIRM_TOKEN_MINUTES).toBe(3 * 24 * 60);
  });
  it('are usable until one ms before expiry', () => {
    expect(tokenProblem({ usedAt: null, expiresAt }, at(60 * MIN - 1))).toBeNull();
    expect(tokenProblem({ usedAt: null, expiresAt }, T0)).toBeNull();
  });
  it('are expired exactly at expiry and after', () => {
    expect(tokenProblem({ usedAt: null, expiresAt }, expiresAt)).toBe('token_expired');
    expect(tokenProblem({ usedAt: null, expiresAt }, at(61 * MIN))).toBe('token_expired');
  });
  it('are refused once used, expired or not', () => {
    expect(tokenProblem({ usedAt: T0, expiresAt }, at(1))).toBe('token_used');
    expect(tokenProblem({ usedAt: T0, expiresAt }, at(61 * MIN))).toBe('token_used');
  });
  it('are refused when unknown', () => {
    expect(tokenProblem(undefined, T0)).toBe('invalid_token');
  });
});
