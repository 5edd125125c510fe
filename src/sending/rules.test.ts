import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  BACKOFF,
  afterTemporaryFailure,
  classifyFailure,
  deliveryDeadline,
  laneFor,
  messageStatus,
  priorityFor,
  rateDecision,
  rateWindowStart,
  retryDelayMs,
} from './rules.ts';

describe('lanes', () => {
  it('puts transactional mail in its own lane, first', () => {
    expect(laneFor('transactional')).toBe('transactional');
    expect(laneFor('participation')).toBe('bulk');
    expect(laneFor('marketing')).toBe('bulk');
    expect(priorityFor('transactional')).toBeLessThan(priorityFor('participation'));
    expect(priorityFor('participation')).toBeLessThan(priorityFor('marketing'));
  });

  it('gives transactional mail a shorter retry deadline than bulk mail', () => {
    const t = new Date('2026-12-01T10:00:00Z');
    expect(deliveryDeadline('transactional', t).toISOString()).toBe('2026-12-02T10:00:00.000Z');
    expect(deliveryDeadline('marketing', t).toISOString()).toBe('2026-12-04T10:00:00.000Z');
  });
});

describe('classifyFailure', () => {
  it('retries 4xx replies', () => {
    const o = classifyFailure({ responseCode: 450, response: '450 4.2.1 Mailbox busy, try later', command: 'RCPT TO', code: 'EENVELOPE', message: 'Recipient command failed' });
    expect(o).toMatchObject({ kind: 'retry', reason: 'temporary', smtpResponse: '450 4.2.1 Mailbox busy, try later' });
  });

  it('bounces and suppresses on an address-level 5xx', () => {
    expect(classifyFailure({ responseCode: 550, response: '550 5.1.1 No such user', command: 'RCPT TO' })).toMatchObject({ kind: 'bounce', suppress: true });
    expect(classifyFailure({ responseCode: 550, response: '550 5.2.1 Mailbox disabled', command: 'DATA' })).toMatchObject({ kind: 'bounce', suppress: true });
    // A bare 550 to RCPT TO is about the address...
    expect(classifyFailure({ responseCode: 550, response: '550 unknown user', command: 'RCPT TO' })).toMatchObject({ kind: 'bounce', suppress: true });
    // ...but after DATA, without an enhanced code, it may be about this message only.
    expect(classifyFailure({ responseCode: 550, response: '550 rejected', command: 'DATA' })).toMatchObject({ kind: 'bounce', suppress: false });
  });

  it('bounces without suppressing when the receiver refused this message, not the address', () => {
    expect(classifyFailure({ responseCode: 554, response: '554 5.7.1 Message refused as spam', command: 'DATA' })).toMatchObject({ kind: 'bounce', suppress: false });
    expect(classifyFailure({ responseCode: 552, response: '552 5.3.4 Message too big', command: 'DATA' })).toMatchObject({ kind: 'bounce', suppress: false });
  });

  it('retries when our relay refuses our credentials: the address is not at fault', () => {
    expect(classifyFailure({ responseCode: 535, response: '535 5.7.8 Authentication failed', command: 'AUTH PLAIN', code: 'EAUTH' })).toMatchObject({ kind: 'retry', reason: 'relay' });
    expect(classifyFailure({ code: 'EAUTH', message: 'Missing credentials' })).toMatchObject({ kind: 'retry', reason: 'relay' });
  });

  it('retries network failures, including unknown ones', () => {
    for (const code of ['ECONNECTION', 'ETIMEDOUT', 'ESOCKET', 'ETLS', undefined, 'ESOMETHINGNEW']) {
      expect(classifyFailure({ code, message: 'Connection closed unexpectedly' })).toMatchObject({ kind: 'retry', reason: 'connection' });
    }
  });

  it('fails for good what no retry can fix', () => {
    expect(classifyFailure({ code: 'EENVELOPE', message: 'No recipients defined' })).toMatchObject({ kind: 'fail' });
    expect(classifyFailure({ code: 'EMESSAGE', message: 'bad message' })).toMatchObject({ kind: 'fail' });
  });

  it('keeps replies on one line', () => {
    const o = classifyFailure({ responseCode: 451, response: '451-4.3.0 first\r\n451 4.3.0 second', message: 'x' });
    expect(o.kind === 'retry' && o.smtpResponse).toBe('451-4.3.0 first 451 4.3.0 second');
  });

  it('classifies every SMTP reply code into exactly one outcome', () => {
    fc.assert(
      fc.property(fc.integer({ min: 400, max: 599 }), fc.constantFrom('RCPT TO', 'DATA', 'MAIL FROM'), (code, command) => {
        const o = classifyFailure({ responseCode: code, response: `${code} something`, command });
        if (code < 500) expect(o).toMatchObject({ kind: 'retry', reason: 'temporary' });
        else expect(['bounce', 'retry']).toContain(o.kind);
      }),
    );
  });
});

describe('retries', () => {
  it('doubles the delay per attempt, up to the cap, and jitters down by at most half', () => {
    expect(retryDelayMs(1, 'temporary', 0)).toBe(60_000);
    expect(retryDelayMs(2, 'temporary', 0)).toBe(120_000);
    expect(retryDelayMs(3, 'temporary', 0)).toBe(240_000);
    expect(retryDelayMs(1, 'temporary', 0.999999)).toBe(30_000);
    expect(retryDelayMs(40, 'temporary', 0)).toBe(BACKOFF.capMs);
    expect(retryDelayMs(1, 'connection', 0)).toBeLessThan(retryDelayMs(1, 'temporary', 0));
  });

  it('always waits between half the backoff and the backoff itself', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 60 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), fc.constantFrom('temporary', 'connection', 'relay' as const), (attempt, random, reason) => {
        const full = Math.min(BACKOFF.capMs, BACKOFF.baseMs[reason] * 2 ** (attempt - 1));
        const d = retryDelayMs(attempt, reason, random);
        expect(d).toBeGreaterThanOrEqual(Math.floor(full / 2));
        expect(d).toBeLessThanOrEqual(full);
      }),
    );
  });

  it('defers until the deadline, with a last try at the deadline, then fails', () => {
    const now = new Date('2026-12-01T10:00:00Z');
    const deadline = new Date('2026-12-01T10:00:40Z');
    const d = afterTemporaryFailure(3, 'temporary', now, deadline, 0);
    expect(d).toEqual({ status: 'deferred', dueAt: deadline });
    const early = afterTemporaryFailure(1, 'connection', now, new Date('2026-12-02T10:00:00Z'), 0);
    expect(early).toEqual({ status: 'deferred', dueAt: new Date('2026-12-01T10:00:15Z') });
    const late = afterTemporaryFailure(4, 'temporary', deadline, deadline, 0.5);
    expect(late.status).toBe('failed');
    expect(late.status === 'failed' && late.why).toMatch(/4 attempts/);
  });
});

describe('rate windows', () => {
  it('counts in fixed minute windows and says when the next one opens', () => {
    const now = new Date('2026-12-01T10:00:42.300Z');
    expect(rateWindowStart(now).toISOString()).toBe('2026-12-01T10:00:00.000Z');
    expect(rateDecision(3, 3, now)).toEqual({ allowed: true, remaining: 0 });
    expect(rateDecision(4, 3, now)).toEqual({ allowed: false, retryAfterSeconds: 18 });
    expect(rateDecision(4, 3, new Date('2026-12-01T10:00:59.999Z'))).toEqual({ allowed: false, retryAfterSeconds: 1 });
  });
});

describe('message status', () => {
  it('is the delivery status for one recipient, an aggregate for many', () => {
    expect(messageStatus({ blocked: 1 })).toBe('blocked');
    expect(messageStatus({ sent: 1, deferred: 1 })).toBe('processing');
    expect(messageStatus({ sent: 1, bounced: 1, blocked: 1 })).toBe('completed');
    expect(messageStatus({ sent: 3 })).toBe('completed');
    expect(messageStatus({ queued: 0 })).toBe('empty');
  });
});
