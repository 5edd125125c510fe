/*
 * Pure decisions of the sending capability: which lane a message takes, how an SMTP answer or a
 * network failure is read, when a deferred delivery is tried again, and the request windows of the
 * rate limit. No clock and no randomness of their own: `now` and `random` are parameters, so the
 * same inputs always give the same schedule.
 */
import type { Category } from '../consent/rules.ts';

export type Lane = 'transactional' | 'bulk';

/** Transactional mail (a password reset, a registration receipt) must not wait behind a newsletter. */
export function laneFor(category: Category): Lane {
  return category === 'transactional' ? 'transactional' : 'bulk';
}

/** Lower goes first within a lane: event mail before marketing when both are due. */
export function priorityFor(category: Category): number {
  return category === 'transactional' ? 0 : category === 'participation' ? 50 : 100;
}

/**
 * How long after its due time a delivery keeps being retried. A transactional message a day late is
 * mostly useless (links expire, the person has moved on); bulk mail gets the three days receivers
 * commonly expect a sender to keep trying through greylisting and outages.
 */
export const DELIVERY_DEADLINE_MS: Record<Category, number> = {
  transactional: 24 * 3_600_000,
  participation: 72 * 3_600_000,
  marketing: 72 * 3_600_000,
};

export function deliveryDeadline(category: Category, dueAt: Date): Date {
  return new Date(dueAt.getTime() + DELIVERY_DEADLINE_MS[category]);
}

// ---------------------------------------------------------------------------------------------
// Reading a failed send

/** What nodemailer gives on failure (SMTP replies carry `responseCode`, network errors a `code`). */
export interface SmtpFailure {
  message?: string;
  code?: string;
  responseCode?: number;
  response?: string;
  command?: string;
}

export type RetryReason = 'temporary' | 'connection' | 'relay';

export type FailureOutcome =
  /** try again later: a 4xx, a network problem, or our relay refusing us (its configuration, not the address) */
  | { kind: 'retry'; reason: RetryReason; error: string; smtpResponse: string | null }
  /** the receiver refused the message for good; `suppress` when the refusal is about the address itself */
  | { kind: 'bounce'; suppress: boolean; error: string; smtpResponse: string }
  /** nothing any retry could fix (a message that cannot be built or addressed) */
  | { kind: 'fail'; error: string };

/** Replies about our own session with the relay (authentication), not about the recipient. */
const RELAY_REPLY_CODES = new Set([530, 534, 535, 538]);

/**
 * Steps of the session before any message (nodemailer's `command`: CONN for the greeting): a 5xx
 * there ("554 no service for you") refuses every message alike, so it is about us and the server,
 * never about this recipient, and bouncing a whole campaign on it would lose mail nobody refused.
 */
const SESSION_COMMANDS = /^(CONN|EHLO|HELO|LHLO|STARTTLS)$/i;

/** Enhanced status codes (RFC 3463) saying the address does not exist or cannot receive: 5.1.x, 5.2.1. */
const ADDRESS_STATUS = /^5\.(1\.\d{1,3}|2\.1)$/;

/**
 * Whether a permanent failure is about the address itself, which no later message can get past,
 * rather than about this message (5.7.1 policy, 5.3.4 too big, 5.2.2 mailbox full). Shared with the
 * reading of bounce reports, so a refusal suppresses the same way whether it came back at once or later.
 */
export function isAddressStatus(status: string): boolean {
  return ADDRESS_STATUS.test(status);
}

/** The enhanced status code (RFC 3463) that opens an SMTP reply (`550 5.1.1 ...`, `550-5.1.1 ...`), or null. */
export function enhancedStatus(response: string | undefined): string | null {
  const m = /^\d{3}[ -](\d\.\d{1,3}\.\d{1,3})\b/.exec(response ?? '');
  return m ? m[1]! : null;
}

function oneLine(s: string | undefined, max = 500): string {
  return (s ?? '').replace(/\s+/g, ' ').trim().slice(0, max);
}

/**
 * Reads a failed SMTP send. Any 4xx and any failure without an SMTP reply (connection refused,
 * dropped mid-DATA, timeout, TLS) is temporary, and so is a 5xx to the greeting or EHLO (the
 * server refusing us, not the recipient). Any other 5xx is a bounce; it suppresses the address only
 * when it says the address is bad (5.1.x or 5.2.1, or a bare 550/551/553 answer to RCPT TO), not
 * when the receiver disliked this message (5.7.1 policy, 5.3.4 too big): the next message may pass.
 */
export function classifyFailure(err: SmtpFailure): FailureOutcome {
  const code = err.responseCode;
  const response = oneLine(err.response);
  const error = oneLine(err.message) || oneLine(err.code) || 'unknown error';
  if (typeof code === 'number' && code >= 400 && code < 500) return { kind: 'retry', reason: 'temporary', error, smtpResponse: response || null };
  if (typeof code === 'number' && code >= 500 && code < 600) {
    if (RELAY_REPLY_CODES.has(code) || SESSION_COMMANDS.test(err.command ?? '')) return { kind: 'retry', reason: 'relay', error, smtpResponse: response || null };
    const status = enhancedStatus(response);
    const addressLevel = status !== null ? isAddressStatus(status) : /^RCPT/i.test(err.command ?? '') && [550, 551, 553].includes(code);
    return { kind: 'bounce', suppress: addressLevel, error, smtpResponse: response || `${code}` };
  }
  if (err.code === 'EAUTH') return { kind: 'retry', reason: 'relay', error, smtpResponse: response || null };
  if (err.code === 'EENVELOPE' || err.code === 'EMESSAGE' || err.code === 'ECOMPOSE') return { kind: 'fail', error };
  // Network failures (ECONNECTION, ETIMEDOUT, ESOCKET, ETLS, a socket closed mid-DATA...) and errors
  // never seen before are treated as passing: the deadline bounds how long that belief lasts.
  return { kind: 'retry', reason: 'connection', error, smtpResponse: response || null };
}

// ---------------------------------------------------------------------------------------------
// Retries

/**
 * Exponential backoff: the n-th retry waits base x 2^(n-1), capped, minus up to half of it at random
 * ("equal jitter"), so the thousands of deliveries deferred by one outage do not all come back in
 * the same second. A dropped connection is retried sooner than a greylisting 4xx, which asks for
 * minutes; a relay refusing our credentials needs a person, so it is retried slowly.
 */
export const BACKOFF = {
  baseMs: { connection: 15_000, temporary: 60_000, relay: 300_000 } as Record<RetryReason, number>,
  capMs: 3_600_000,
  jitter: 0.5,
} as const;

/** Delay before retry number `attempt` (1 = first retry); `random` in [0, 1). */
export function retryDelayMs(attempt: number, reason: RetryReason, random: number): number {
  const n = Math.max(1, Math.floor(attempt));
  const raw = Math.min(BACKOFF.capMs, BACKOFF.baseMs[reason] * 2 ** Math.min(n - 1, 30));
  const r = Math.min(Math.max(random, 0), 1);
  return Math.round(raw * (1 - BACKOFF.jitter * r));
}

export type RetryDecision = { status: 'deferred'; dueAt: Date } | { status: 'failed'; why: string };

/**
 * After a temporary failure of attempt `attempts` (1-based, counting this one): try again later,
 * or fail once the deadline has passed. The last retry is placed at the deadline itself rather than
 * skipped, so a delivery gets its full retry period.
 */
export function afterTemporaryFailure(attempts: number, reason: RetryReason, now: Date, expiresAt: Date, random: number): RetryDecision {
  if (now.getTime() >= expiresAt.getTime()) {
    return { status: 'failed', why: `still failing at the retry deadline (${expiresAt.toISOString()}) after ${attempts} attempt${attempts === 1 ? '' : 's'}` };
  }
  const due = Math.min(now.getTime() + retryDelayMs(attempts, reason, random), expiresAt.getTime());
  return { status: 'deferred', dueAt: new Date(due) };
}

// ---------------------------------------------------------------------------------------------
// Rate limit windows

export const RATE_WINDOW_MS = 60_000;

/** Start of the fixed window containing `now`. */
export function rateWindowStart(now: Date, windowMs = RATE_WINDOW_MS): Date {
  return new Date(Math.floor(now.getTime() / windowMs) * windowMs);
}

export type RateDecision = { allowed: true; remaining: number } | { allowed: false; retryAfterSeconds: number };

/** `count` includes this request. Retry-After is the whole seconds until the window turns, at least 1. */
export function rateDecision(count: number, limit: number, now: Date, windowMs = RATE_WINDOW_MS): RateDecision {
  if (count <= limit) return { allowed: true, remaining: limit - count };
  const end = rateWindowStart(now, windowMs).getTime() + windowMs;
  return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((end - now.getTime()) / 1000)) };
}

// ---------------------------------------------------------------------------------------------
// Message status

export type DeliveryStatus = 'queued' | 'sending' | 'sent' | 'deferred' | 'bounced' | 'blocked' | 'failed';

export const PENDING: readonly DeliveryStatus[] = ['queued', 'sending', 'deferred'];

/**
 * A triggered message has one delivery, and its status is that delivery's. A message to many says
 * 'processing' while any delivery is pending, then 'completed'.
 */
export function messageStatus(counts: Partial<Record<DeliveryStatus, number>>): DeliveryStatus | 'processing' | 'completed' | 'empty' {
  const present = (Object.entries(counts) as [DeliveryStatus, number][]).filter(([, n]) => n > 0);
  const total = present.reduce((sum, [, n]) => sum + n, 0);
  if (total === 0) return 'empty';
  if (total === 1) return present[0]![0];
  return present.some(([s]) => PENDING.includes(s)) ? 'processing' : 'completed';
}
