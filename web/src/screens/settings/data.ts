import { ApiError, errorMessage } from '../../api.ts';
import type { Role } from '../../auth.tsx';
import type { Translate } from '../../i18n/index.tsx';
import type { messages } from './messages.ts';

export const ROLES: Role[] = ['owner', 'editor', 'viewer'];
/** The API's own rule (src/organisations/rules.ts): at least 10 characters, at most 256. */
export const MIN_PASSWORD = 10;
export const MAX_PASSWORD = 256;
export const DEFAULT_RATE_LIMIT = 300;

export interface User {
  id: string;
  email: string;
  name: string;
  role: Role;
  created_at: string;
}
export interface ApiKey {
  id: string;
  name: string;
  prefix: string;
  role: Role;
  audience_ids: string[] | null;
  rate_limit_per_minute: number;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

export const keys = {
  users: ['settings', 'users'] as const,
  apiKeys: ['settings', 'api-keys'] as const,
};

type T = Translate<Extract<keyof typeof messages.en, string> | Parameters<Translate>[0]>;

/** The API's refusals these screens expect, in the interface language; any other keeps the API's message. */
export function explain(t: T, e: unknown, who?: string): Error {
  if (e instanceof ApiError) {
    if (e.code === 'last_owner') return new Error(t('set.err.lastOwner', { who: who ?? '' }));
    if (e.code === 'email_taken') return new Error(t('set.err.emailTaken'));
    if (e.code === 'invalid_email') return new Error(t('set.err.invalidEmail', { message: e.message }));
    if (e.code === 'weak_password') return new Error(t('set.err.password', { min: MIN_PASSWORD }));
  }
  return e instanceof Error ? e : new Error(errorMessage(e));
}
