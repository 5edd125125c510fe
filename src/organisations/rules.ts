import type { Role } from '../platform/schema.ts';

const RANK: Record<Role, number> = { viewer: 0, editor: 1, owner: 2 };

/** viewer reads; editor also writes audience data; owner also manages users, keys and settings. */
export function roleAllows(role: Role, needed: Role): boolean {
  return RANK[role] >= RANK[needed];
}

export const MIN_PASSWORD_LENGTH = 10;

export function passwordProblem(password: string): string | null {
  if (password.length < MIN_PASSWORD_LENGTH) return `password must be at least ${MIN_PASSWORD_LENGTH} characters`;
  if (password.length > 256) return 'password must be at most 256 characters';
  return null;
}

/** API keys look like `ek_<43 chars>`; the first 11 characters are kept in clear to recognise a key in lists. */
export const API_KEY_PREFIX = 'ek_';
export const SESSION_PREFIX = 'es_';
export const keyDisplayPrefix = (key: string) => key.slice(0, 11);
