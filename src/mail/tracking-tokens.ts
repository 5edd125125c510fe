/**
 * Signed tokens of the tracking links. A click token carries the destination itself, signed with the
 * delivery id and the link's position: the redirect endpoint goes only where a message of ours
 * pointed (no open redirect) without a lookup table of every link of every recipient.
 */
import { createHmac, createSecretKey, type KeyObject } from 'node:crypto';
import { safeEqual } from '../platform/secrets.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// 22 base64url characters: 132 bits of the HMAC, far beyond guessing, and short links.
const MAC_CHARS = 22;
/** Longer destinations are not tracked (some clients cut URLs near 2,000 characters anyway). */
export const MAX_TRACKED_URL = 4000;

// A worker signs seven tokens per message with one secret: a key object made once saves the
// key's conversion on every HMAC (a quarter of its cost).
let lastSecret: string | null = null;
let lastKey: KeyObject | null = null;

function keyOf(secret: string): KeyObject {
  if (secret !== lastSecret || !lastKey) {
    lastKey = createSecretKey(Buffer.from(secret, 'utf8'));
    lastSecret = secret;
  }
  return lastKey;
}

/** HMAC-SHA256 of `payload`, base64url: the same as src/platform/secrets.ts `sign`. */
export function signPayload(secret: string, payload: string): string {
  return createHmac('sha256', keyOf(secret)).update(payload).digest('base64url');
}

/** The same HMAC as bytes, for a caller that writes it in more than one form. */
export function signPayloadBytes(secret: string, payload: string): Buffer {
  return createHmac('sha256', keyOf(secret)).update(payload).digest();
}

const mac = (secret: string, payload: string) => signPayload(secret, payload).slice(0, MAC_CHARS);

// A campaign's links are the same for every recipient: their base64url is kept, not redone per message.
const encodedUrls = new Map<string, string>();
const encodedUrl = (url: string) => {
  let e = encodedUrls.get(url);
  if (e === undefined) {
    e = Buffer.from(url, 'utf8').toString('base64url');
    if (url.length > 512) return e; // kept small: a thousand short URLs at most
    if (encodedUrls.size >= 1000) encodedUrls.clear();
    encodedUrls.set(url, e);
  }
  return e;
};

export function clickToken(secret: string, deliveryId: string, index: number, url: string): string {
  return `${deliveryId}.${index}.${encodedUrl(url)}.${mac(secret, `click:${deliveryId}:${index}:${url}`)}`;
}

export function verifyClickToken(secret: string, token: string): { deliveryId: string; index: number; url: string } | null {
  const parts = token.split('.');
  if (parts.length !== 4) return null;
  const [id, idx, encoded, m] = parts as [string, string, string, string];
  if (!UUID.test(id) || !/^\d{1,4}$/.test(idx) || !/^[A-Za-z0-9_-]*$/.test(encoded)) return null;
  const url = Buffer.from(encoded, 'base64url').toString('utf8');
  const index = Number(idx);
  // Only the one spelling we wrote: "02" for 2, or base64url whose unused low bits differ, would
  // otherwise decode to a signed link and let a forged token count a click.
  if (String(index) !== idx || encodedUrl(url) !== encoded) return null;
  if (!safeEqual(m, mac(secret, `click:${id}:${index}:${url}`))) return null;
  // Signed by us, but only http(s) is ever wrapped: anything else would be a bug, not a redirect.
  if (!/^https?:\/\//i.test(url)) return null;
  return { deliveryId: id.toLowerCase(), index, url };
}

export function openToken(secret: string, deliveryId: string): string {
  return `${deliveryId}.${mac(secret, `open:${deliveryId}`)}`;
}

export function verifyOpenToken(secret: string, token: string): string | null {
  const [id, m, ...rest] = token.replace(/\.gif$/i, '').split('.');
  if (rest.length || !id || !m || !UUID.test(id)) return null;
  return safeEqual(m, mac(secret, `open:${id}`)) ? id.toLowerCase() : null;
}

/** The tracking options the renderer takes for one delivery. */
export function trackingFor(publicUrl: string, secret: string, deliveryId: string) {
  const base = publicUrl.replace(/\/+$/, '');
  return {
    wrap: (url: string, index: number) => `${base}/c/${clickToken(secret, deliveryId, index, url)}`,
    openPixelUrl: `${base}/o/${openToken(secret, deliveryId)}.gif`,
    skip: (url: string) => url.length > MAX_TRACKED_URL || url.startsWith(`${base}/`),
  };
}

export type Answer = 'yes' | 'no';

/** The YES / NO answer link of a re-permission request: signed, one per delivery and answer. */
export function answerToken(secret: string, deliveryId: string, answer: Answer): string {
  return `${deliveryId}.${answer}.${mac(secret, `answer:${deliveryId}:${answer}`)}`;
}

export function verifyAnswerToken(secret: string, token: string): { deliveryId: string; answer: Answer } | null {
  const [id, answer, m, ...rest] = token.split('.');
  if (rest.length || !id || !m || !UUID.test(id) || (answer !== 'yes' && answer !== 'no')) return null;
  return safeEqual(m, mac(secret, `answer:${id}:${answer}`)) ? { deliveryId: id.toLowerCase(), answer } : null;
}

/** The variables of the built-in re-permission template for one delivery. */
export function repermissionLinks(publicUrl: string, secret: string, deliveryId: string, deadline: Date) {
  const base = publicUrl.replace(/\/+$/, '');
  return {
    yes_url: `${base}/r/${answerToken(secret, deliveryId, 'yes')}`,
    no_url: `${base}/r/${answerToken(secret, deliveryId, 'no')}`,
    deadline: deadline.toISOString(),
  };
}
