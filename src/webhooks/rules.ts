/**
 * Outgoing webhooks, the pure part: which event types exist, which endpoint URLs are acceptable,
 * how a request is signed and checked, when a failed delivery is tried again, and what counts as
 * delivered. No I/O here.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { ipLiteralOf, isPublicAddress, PRIVATE_NETWORKS_HINT } from './address-policy.ts';

/**
 * What an endpoint may subscribe to. The database triggers of 0011_webhooks.sql write exactly these
 * types into the outbox: a type added here needs its trigger there.
 */
export const EVENT_TYPES = [
  'contact.created',
  'contact.updated',
  'contact.deleted',
  'consent.changed',
  'message.sent',
  'message.delayed',
  'message.bounced',
  'message.complained',
  'message.blocked',
  'message.opened',
  'message.clicked',
  'message.unsubscribed',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];
/** Subscribes to every type, including those added in later versions. */
export const ALL_EVENTS = '*';
/** Sent only by POST /v1/webhooks/{id}/test, to that endpoint, whatever it subscribes to. */
export const PING = 'ping';

export function isEventType(t: string): t is EventType {
  return (EVENT_TYPES as readonly string[]).includes(t);
}

/** A subscription list as stored: known types only, no duplicates, '*' alone when it is there. */
export function normaliseSubscription(types: readonly string[]): { ok: true; types: string[] } | { ok: false; reason: string } {
  if (types.length === 0) return { ok: false, reason: 'subscribe to at least one event type (or "*" for all)' };
  const unknown = types.filter((t) => t !== ALL_EVENTS && !isEventType(t));
  if (unknown.length) return { ok: false, reason: `unknown event type ${unknown.map((t) => JSON.stringify(t)).join(', ')}; known: ${EVENT_TYPES.join(', ')} or "*"` };
  if (types.includes(ALL_EVENTS)) return { ok: true, types: [ALL_EVENTS] };
  return { ok: true, types: EVENT_TYPES.filter((t) => types.includes(t)) };
}

// Plain http only to this machine: a receiver in a test or beside envoi. Anything that leaves the
// machine carries contact data and must be encrypted.
const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);
export const MAX_URL_LENGTH = 2048;

export type UrlCheck = { ok: true; url: string } | { ok: false; reason: string };

/**
 * Checks an endpoint URL as it is saved. `privateNetworks`: the instance's ENVOI_WEBHOOK_PRIVATE_NETWORKS;
 * when denied, a host that is plainly not public (an IP literal, localhost) is refused now, and a name is
 * checked again on every connection, against what it resolves to (address-policy.ts).
 */
export function checkEndpointUrl(raw: string, privateNetworks = false): UrlCheck {
  const s = raw.trim();
  if (s.length === 0) return { ok: false, reason: 'url is empty' };
  if (s.length > MAX_URL_LENGTH) return { ok: false, reason: `url is longer than ${MAX_URL_LENGTH} characters` };
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    return { ok: false, reason: 'url is not an absolute URL (https://...)' };
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return { ok: false, reason: `url must use https, not ${u.protocol.replace(/:$/, '')}` };
  if (!u.hostname) return { ok: false, reason: 'url has no host' };
  // Credentials in the URL end up in logs and in the delivery log; receivers check the signature instead.
  if (u.username || u.password) return { ok: false, reason: 'url must not contain a user name or password: check the X-Envoi-Signature header instead' };
  if (u.hash) return { ok: false, reason: 'url must not contain a #fragment (it is never sent to the server)' };
  // A fully qualified name's trailing dot ("localhost.") names the same host: judged without it.
  const host = u.hostname.toLowerCase().replace(/\.+$/, '');
  if (!privateNetworks) {
    const ip = ipLiteralOf(host);
    if ((ip !== null && !isPublicAddress(ip)) || host === 'localhost' || host.endsWith('.localhost')) {
      return { ok: false, reason: `url points to ${ip ?? host}, a private, loopback or reserved address: ${PRIVATE_NETWORKS_HINT}` };
    }
  }
  if (u.protocol === 'http:' && !LOOPBACK.has(host)) return { ok: false, reason: 'url must use https (plain http is accepted only for localhost and 127.0.0.1)' };
  return { ok: true, url: u.href };
}

// ---- signatures ----

/** The signed string: the timestamp header, a dot, and the exact bytes of the body. */
export function signedPayload(timestamp: number, body: string): string {
  return `${timestamp}.${body}`;
}

/** `X-Envoi-Signature`: `v1=` and the hex HMAC-SHA256 of `<timestamp>.<body>`, keyed by the endpoint secret. */
export function signatureHeader(secret: string, timestamp: number, body: string): string {
  return `v1=${createHmac('sha256', secret).update(signedPayload(timestamp, body)).digest('hex')}`;
}

/** Five minutes: how old a timestamp a receiver should accept, against replays of a captured request. */
export const SIGNATURE_TOLERANCE_SECONDS = 300;

/**
 * What a receiver does (see the OpenAPI description of POST /v1/webhooks): recompute the signature
 * from the raw body, compare in constant time, refuse stale timestamps. Several `v1=` values
 * (comma-separated) are accepted, so that a secret can one day be rotated without a gap.
 */
export function verifySignature(
  secret: string,
  headers: { signature: string | undefined; timestamp: string | undefined },
  body: string,
  nowSeconds: number,
  toleranceSeconds = SIGNATURE_TOLERANCE_SECONDS,
): { ok: true } | { ok: false; reason: string } {
  if (!headers.signature || !headers.timestamp) return { ok: false, reason: 'missing signature or timestamp header' };
  if (!/^\d{1,12}$/.test(headers.timestamp)) return { ok: false, reason: 'timestamp is not a number of seconds' };
  const ts = Number(headers.timestamp);
  if (Math.abs(nowSeconds - ts) > toleranceSeconds) return { ok: false, reason: 'timestamp outside the tolerance' };
  const expected = Buffer.from(signatureHeader(secret, ts, body).slice(3), 'hex');
  const given = headers.signature
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p.startsWith('v1=') && /^[0-9a-f]{64}$/i.test(p.slice(3)))
    .map((p) => Buffer.from(p.slice(3), 'hex'));
  return given.some((g) => g.length === expected.length && timingSafeEqual(g, expected)) ? { ok: true } : { ok: false, reason: 'signature does not match' };
}

// ---- retries ----

export const RETRY_WINDOW_MS = 24 * 3_600_000;
const FIRST_RETRY_MS = 30_000;
const MAX_RETRY_MS = 2 * 3_600_000;
const JITTER = 0.2;

/**
 * Delay before the attempt after the `attempt`-th failure of a series (1 = the first failure):
 * 30 s doubling to a 2 h ceiling, each spread by ±20% so that the deliveries of a receiver that was
 * down for a while do not all come back at the same second. `random` is in [0, 1).
 */
export function retryDelayMs(attempt: number, random: number): number {
  const n = Math.max(1, Math.floor(attempt));
  const base = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** Math.min(n - 1, 30));
  return Math.round(base * (1 - JITTER + 2 * JITTER * Math.min(Math.max(random, 0), 1)));
}

/**
 * After a failed attempt: the next one, or give up. The last retry is made at the end of the
 * window rather than skipped, so "retried for 24 hours" holds for the whole 24 hours.
 */
export function afterFailure(o: { attempt: number; now: Date; retryUntil: Date; random: number }): { retry: true; at: Date } | { retry: false; why: string } {
  if (o.now.getTime() >= o.retryUntil.getTime()) return { retry: false, why: `still failing after ${o.attempt} attempt${o.attempt === 1 ? '' : 's'} over 24 hours` };
  const at = Math.min(o.now.getTime() + retryDelayMs(o.attempt, o.random), o.retryUntil.getTime());
  return { retry: true, at: new Date(at) };
}

// ---- outcomes ----

export type AttemptResult = { kind: 'response'; status: number; location?: string | null } | { kind: 'error'; error: string };

/** 2xx is delivered; any other answer (redirects included: they are never followed) or no answer is a failure to retry. */
export function classify(r: AttemptResult): { delivered: true } | { delivered: false; error: string } {
  if (r.kind === 'error') return { delivered: false, error: r.error };
  if (r.status >= 200 && r.status < 300) return { delivered: true };
  if (r.status >= 300 && r.status < 400) return { delivered: false, error: `HTTP ${r.status}: redirect${r.location ? ` to ${truncate(r.location, 300)}` : ''} not followed (give the final URL)` };
  return { delivered: false, error: `HTTP ${r.status}` };
}

export const SNIPPET_LENGTH = 1000;

export function truncate(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

// ---- the request ----

export interface OutgoingEvent {
  id: string;
  type: string;
  occurred_at: Date;
  org_id: string;
  payload: unknown;
}

/** The JSON body: the same bytes on every attempt of one delivery, so a signature can be recomputed from it. */
export function requestBody(e: OutgoingEvent): string {
  return JSON.stringify({ id: e.id, type: e.type, occurred_at: e.occurred_at.toISOString(), organisation_id: e.org_id, data: e.payload });
}

export function requestHeaders(o: { secret: string; type: string; deliveryId: string; body: string; now: Date }): Record<string, string> {
  const timestamp = Math.floor(o.now.getTime() / 1000);
  return {
    'content-type': 'application/json',
    'user-agent': 'envoi-webhooks/1',
    'x-envoi-event': o.type,
    'x-envoi-delivery': o.deliveryId,
    'x-envoi-timestamp': String(timestamp),
    'x-envoi-signature': signatureHeader(o.secret, timestamp, o.body),
  };
}
