import type { FieldType } from '../platform/schema.ts';
import { checkEmail } from '../platform/email-address.ts';

/** The fields every contact, participant and member has, stored as columns on the contact. */
export const BUILTIN_FIELDS = ['email', 'first_name', 'last_name', 'company', 'job_title'] as const;
export type BuiltinKey = (typeof BUILTIN_FIELDS)[number];
export const isBuiltin = (key: string): key is BuiltinKey => (BUILTIN_FIELDS as readonly string[]).includes(key);

/** Names the grid and filters use for other contact properties; a custom field may not take them. */
export const RESERVED_KEYS = new Set<string>([
  ...BUILTIN_FIELDS,
  'id', 'created_at', 'updated_at', 'marketing_authorized_at', 'company_id', 'company_name',
  'events', 'events_count', 'communities', 'communities_count', 'event', 'community',
  'account_confirmed', 'account_locked', 'failed_attempts', 'lock_end', 'has_account', 'fields', 'data',
]);

export const FIELD_TYPES: readonly FieldType[] = ['text', 'number', 'date', 'boolean', 'choice', 'multi_choice'];

export interface FieldDef {
  key: string;
  type: FieldType;
  options: string[] | null;
  /** true for a central (audience) field, which propagates from participants and members to the contact */
  central: boolean;
}

export type Result<T> = { ok: true; value: T } | { ok: false; reason: string };

const MAX_TEXT = 10_000;

export function fieldKeyProblem(key: string): string | null {
  if (!/^[a-z][a-z0-9_]{0,62}$/.test(key)) return 'a field key is 1-63 characters: lower-case letters, digits and _, starting with a letter';
  if (RESERVED_KEYS.has(key)) return `"${key}" is a built-in name; choose another key`;
  return null;
}

export function fieldOptionsProblem(type: FieldType, options: unknown): string | null {
  const needs = type === 'choice' || type === 'multi_choice';
  if (!needs) return options == null ? null : `a ${type} field takes no options`;
  if (!Array.isArray(options) || options.length === 0) return `a ${type} field needs a non-empty list of options`;
  if (!options.every((o) => typeof o === 'string' && o.trim() !== '' && o.length <= 200)) return 'options are non-empty strings of at most 200 characters';
  if (new Set(options).size !== options.length) return 'options must be distinct';
  return null;
}

const ISO_DAY = /^(\d{4})-(\d{2})-(\d{2})$/;

/** A real calendar day as YYYY-MM-DD, from YYYY-MM-DD, an ISO date-time, or DD/MM/YYYY (CSV from Europe). */
export function parseDay(input: string): string | null {
  const s = input.trim();
  let y: number, m: number, d: number;
  const iso = ISO_DAY.exec(s.slice(0, 10));
  const eu = /^(\d{1,2})\/(\d{1,2})\/(\d{4})$/.exec(s);
  if (iso && (s.length === 10 || /^T\d{2}:\d{2}/.test(s.slice(10)))) [y, m, d] = [Number(iso[1]), Number(iso[2]), Number(iso[3])];
  else if (eu) [d, m, y] = [Number(eu[1]), Number(eu[2]), Number(eu[3])];
  else return null;
  const dt = new Date(Date.UTC(y, m - 1, d));
  if (dt.getUTCFullYear() !== y || dt.getUTCMonth() !== m - 1 || dt.getUTCDate() !== d) return null;
  return `${String(y).padStart(4, '0')}-${String(m).padStart(2, '0')}-${String(d).padStart(2, '0')}`;
}

/**
 * Turns an incoming value (JSON or a CSV cell) into the stored form of the field's type. `null`, and
 * an empty string for non-text fields, clear the value.
 */
export function coerceValue(field: Pick<FieldDef, 'key' | 'type' | 'options'>, raw: unknown): Result<unknown> {
  const bad = (what: string): Result<unknown> => ({ ok: false, reason: `${field.key}: ${what}` });
  if (raw === null || raw === undefined) return { ok: true, value: null };
  if (typeof raw === 'string' && raw.trim() === '' && field.type !== 'text') return { ok: true, value: null };
  switch (field.type) {
    case 'text': {
      if (typeof raw !== 'string' && typeof raw !== 'number' && typeof raw !== 'boolean') return bad('expected text');
      const s = String(raw);
      if (s.length > MAX_TEXT) return bad(`text longer than ${MAX_TEXT} characters`);
      if (/\0/.test(s)) return bad('text contains a NUL character');
      return { ok: true, value: s === '' ? null : s };
    }
    case 'number': {
      const n = typeof raw === 'number' ? raw : typeof raw === 'string' ? Number(raw.trim().replace(',', '.')) : NaN;
      if (!Number.isFinite(n)) return bad(`expected a number, got ${JSON.stringify(raw)}`);
      return { ok: true, value: n };
    }
    case 'date': {
      if (typeof raw !== 'string') return bad('expected a date as YYYY-MM-DD');
      const day = parseDay(raw);
      return day ? { ok: true, value: day } : bad(`expected a date as YYYY-MM-DD, got ${JSON.stringify(raw)}`);
    }
    case 'boolean': {
      if (typeof raw === 'boolean') return { ok: true, value: raw };
      if (typeof raw === 'string') {
        if (/^(true|yes|oui|1|y|x)$/i.test(raw.trim())) return { ok: true, value: true };
        if (/^(false|no|non|0|n)$/i.test(raw.trim())) return { ok: true, value: false };
      }
      if (raw === 1 || raw === 0) return { ok: true, value: raw === 1 };
      return bad(`expected true or false, got ${JSON.stringify(raw)}`);
    }
    case 'choice': {
      const s = typeof raw === 'string' ? raw.trim() : null;
      if (s === null || !field.options?.includes(s)) return bad(`expected one of ${(field.options ?? []).map((o) => JSON.stringify(o)).join(', ')}`);
      return { ok: true, value: s };
    }
    case 'multi_choice': {
      // A CSV cell holds the choices separated by ; or |.
      const list = Array.isArray(raw) ? raw : typeof raw === 'string' ? raw.split(/[;|]/).map((x) => x.trim()).filter(Boolean) : null;
      if (!list || !list.every((x) => typeof x === 'string')) return bad('expected a list of choices');
      const unknown = list.filter((x) => !field.options?.includes(x as string));
      if (unknown.length) return bad(`unknown choice ${JSON.stringify(unknown[0])}; expected among ${(field.options ?? []).join(', ')}`);
      return { ok: true, value: [...new Set(list as string[])] };
    }
  }
}

export interface ValidatedValues {
  /** email, first_name, ...: only the keys that were given */
  builtins: Partial<Record<BuiltinKey, string | null>>;
  /** email comparison key when an email was given */
  emailLower?: string;
  custom: Record<string, unknown>;
}

/**
 * Checks a set of values against the fields available where they are written (the audience's central
 * fields for a contact; central plus local fields for a participant or member). Every problem is
 * reported, not just the first.
 */
export function validateValues(
  input: { builtins?: Record<string, unknown>; custom?: Record<string, unknown> },
  available: FieldDef[],
): Result<ValidatedValues> & { problems?: string[] } {
  const problems: string[] = [];
  const out: ValidatedValues = { builtins: {}, custom: {} };
  for (const [key, raw] of Object.entries(input.builtins ?? {})) {
    if (raw === undefined) continue;
    if (!isBuiltin(key)) {
      problems.push(`${key}: unknown built-in field`);
      continue;
    }
    if (key === 'email') {
      const r = checkEmail(raw);
      if (!r.ok) problems.push(`email: ${r.reason}`);
      else {
        out.builtins.email = r.email;
        out.emailLower = r.lower;
      }
      continue;
    }
    const r = coerceValue({ key, type: 'text', options: null }, raw);
    if (!r.ok) problems.push(r.reason);
    else if (typeof r.value === 'string' && r.value.length > 500) problems.push(`${key}: longer than 500 characters`);
    else out.builtins[key] = (r.value as string | null) ?? null;
  }
  const byKey = new Map(available.map((f) => [f.key, f]));
  for (const [key, raw] of Object.entries(input.custom ?? {})) {
    if (raw === undefined) continue;
    const field = byKey.get(key);
    if (!field) {
      problems.push(`${key}: no such field here (create it first, on the audience for a central field)`);
      continue;
    }
    const r = coerceValue(field, raw);
    if (!r.ok) problems.push(r.reason);
    else out.custom[key] = r.value;
  }
  if (problems.length) return { ok: false, reason: problems.join('; '), problems };
  return { ok: true, value: out };
}

/**
 * What editing a participant or member changes on the audience contact: the built-in fields and the
 * central fields that were written; local (event / community) fields stay where they were written.
 * Editing the contact never flows the other way.
 */
export function contactPatchFromRecordEdit(values: ValidatedValues, fields: FieldDef[]): ValidatedValues {
  const central = new Set(fields.filter((f) => f.central).map((f) => f.key));
  const custom: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(values.custom)) if (central.has(k)) custom[k] = v;
  return { builtins: { ...values.builtins }, emailLower: values.emailLower, custom };
}

export function timeZoneProblem(tz: string): string | null {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return null;
  } catch {
    return `"${tz}" is not an IANA time zone (like Europe/Paris)`;
  }
}
