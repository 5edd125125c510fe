import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { hash as argonHash, verify as argonVerify } from '@node-rs/argon2';

/** A random, URL-safe secret with a readable prefix (`ek_` API key, `es_` session, ...). */
export function randomToken(prefix: string, bytes = 32): string {
  return `${prefix}${randomBytes(bytes).toString('base64url')}`;
}

/**
 * Tokens are 256-bit random values, so a fast hash is enough to store them: there is nothing to
 * brute-force. Passwords are chosen by people and get argon2id.
 */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

// argon2id, OWASP's second recommended profile (19 MiB, 2 passes): ~20 ms here.
const ARGON = { memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

export function hashPassword(password: string): Promise<string> {
  return argonHash(password, ARGON);
}

export async function verifyPassword(hash: string, password: string): Promise<boolean> {
  try {
    return await argonVerify(hash, password);
  } catch {
    return false;
  }
}

/** A hash computed on a throwaway password, verified against when a login names no account, so
 *  that response time does not reveal which emails have accounts. */
let dummyHash: Promise<string> | null = null;
export async function burnPasswordCheck(password: string): Promise<void> {
  dummyHash ??= hashPassword('envoi-timing-equaliser');
  await verifyPassword(await dummyHash, password);
}

export function sign(secret: string, payload: string): string {
  return createHmac('sha256', secret).update(payload).digest('base64url');
}

export function safeEqual(a: string, b: string): boolean {
  const ba = Buffer.from(a);
  const bb = Buffer.from(b);
  return ba.length === bb.length && timingSafeEqual(ba, bb);
}
