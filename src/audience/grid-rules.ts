import { checkEmail } from '../platform/email-address.ts';
import { parseDay, type FieldDef } from './rules.ts';

// The contacts grid: which columns exist, what a filter, a sort and a cursor may say. Pure: the
// store turns the checked forms into parameterised SQL, the service looks up what needs the database
// (central fields, whether events and communities belong to the audience).

export type ColumnType = 'text' | 'number' | 'day' | 'datetime' | 'boolean' | 'choice' | 'multi_choice' | 'list' | 'id';

export interface Column {
  key: string;
  label: string;
  type: ColumnType;
  options: string[] | null;
  /** where the value lives: a column of the contact, its `fields` jsonb, or a related table */
  source: 'contact' | 'field' | 'related';
  /** false when every contact has a value: paging then walks one index range, with no null section */
  nullable: boolean;
  /** shown when a query names no columns */
  default: boolean;
}

export type Op =
  | 'equals' | 'not_equals' | 'contains' | 'starts_with' | 'in'
  | 'empty' | 'not_empty' | 'before' | 'after' | 'between'
  | 'lt' | 'gt' | 'lte' | 'gte' | 'is_true' | 'is_false';

const OPS_BY_TYPE: Record<ColumnType, readonly Op[]> = {
  text: ['equals', 'not_equals', 'contains', 'starts_with', 'in', 'empty', 'not_empty'],
  number: ['equals', 'not_equals', 'lt', 'gt', 'lte', 'gte', 'between', 'empty', 'not_empty'],
  day: ['equals', 'not_equals', 'before', 'after', 'between', 'empty', 'not_empty'],
  datetime: ['before', 'after', 'between', 'empty', 'not_empty'],
  boolean: ['is_true', 'is_false', 'empty', 'not_empty'],
  choice: ['equals', 'not_equals', 'in', 'empty', 'not_empty'],
  multi_choice: ['in', 'empty', 'not_empty'],
  list: [],
  id: ['equals', 'not_equals', 'in', 'empty', 'not_empty'],
};

/** The operators a column accepts; emptiness tests only where a value can be missing. */
export function operatorsFor(col: Column): Op[] {
  return OPS_BY_TYPE[col.type].filter((op) => col.nullable || (op !== 'empty' && op !== 'not_empty'));
}

const c = (key: string, label: string, type: ColumnType, source: Column['source'], nullable: boolean, dflt = true): Column => ({
  key, label, type, options: null, source, nullable, default: dflt,
});

const HEAD: Column[] = [
  c('last_name', 'Last name', 'text', 'contact', true),
  c('first_name', 'First name', 'text', 'contact', true),
  c('email', 'Email', 'text', 'contact', false),
  c('company', 'Company', 'text', 'contact', true),
  c('job_title', 'Job title', 'text', 'contact', true),
];
const TAIL: Column[] = [
  c('company_name', 'Company (entity)', 'text', 'related', true),
  c('events_count', 'Events', 'number', 'related', false),
  c('events', 'Event list', 'list', 'related', false),
  c('communities_count', 'Communities', 'number', 'related', false),
  c('communities', 'Community list', 'list', 'related', false),
  c('account_confirmed', 'Account confirmed', 'boolean', 'related', false),
  c('account_locked', 'Account locked', 'boolean', 'related', false),
  c('failed_attempts', 'Failed logins', 'number', 'related', true),
  c('lock_end', 'Locked until', 'datetime', 'related', true),
  c('created_at', 'Created', 'datetime', 'contact', false),
  c('marketing_authorized_at', 'Marketing authorised', 'datetime', 'contact', true),
  // Available on request only.
  c('company_id', 'Company id', 'id', 'contact', true, false),
  c('has_account', 'Has an account', 'boolean', 'related', false, false),
  c('updated_at', 'Updated', 'datetime', 'contact', false, false),
];

const FIELD_COLUMN_TYPE: Record<FieldDef['type'], ColumnType> = {
  text: 'text', number: 'number', date: 'day', boolean: 'boolean', choice: 'choice', multi_choice: 'multi_choice',
};

/** Every grid column of an audience: built-ins, its central fields (in the order given), computed columns. */
export function gridColumns(central: Array<Pick<FieldDef, 'key' | 'type' | 'options'> & { label?: string }>): Column[] {
  const fields = central.map<Column>((f) => ({
    key: f.key,
    label: f.label || f.key,
    type: FIELD_COLUMN_TYPE[f.type],
    options: f.options ?? null,
    source: 'field',
    nullable: true,
    default: true,
  }));
  return [...HEAD, ...fields, ...TAIL];
}

export type Problems = { ok: false; problems: string[] };
export type Checked<T> = { ok: true; value: T } | Problems;

// ---- filters ----

export interface Bound {
  value: string | number;
  inclusive: boolean;
}

/** What a leaf asks of a value, after checking and normalising it (days, instants, lower-cased emails). */
export type Predicate =
  | { kind: 'eq' | 'ne'; value: string | number }
  | { kind: 'range'; lower: Bound | null; upper: Bound | null }
  | { kind: 'contains' | 'starts_with'; text: string }
  | { kind: 'in'; values: string[] }
  | { kind: 'empty' | 'not_empty' | 'is_true' | 'is_false' };

export type Condition =
  | { kind: 'and' | 'or'; items: Condition[] }
  | { kind: 'not'; item: Condition }
  | { kind: 'leaf'; column: Column; op: Op; pred: Predicate }
  /** participant of (member of) any / all / none of the ids */
  | { kind: 'membership'; of: 'event' | 'community'; mode: 'any' | 'all' | 'none'; ids: string[] }
  /** whose last answer to a re-permission campaign is `answer`: the new consenting list as a view */
  | { kind: 'repermission'; campaignId: string; answer: 'yes' | 'no' };

export interface CheckedFilter {
  condition: Condition | null;
  /** every event / community named, for the service to check they belong to the audience */
  eventIds: string[];
  communityIds: string[];
}

export const FILTER_LIMITS = { depth: 12, nodes: 300, listItems: 1000, text: 1000 } as const;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const isUuid = (s: unknown): s is string => typeof s === 'string' && UUID.test(s);

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const show = (v: unknown) => {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
};
const NODE_KEYS = ['and', 'or', 'not', 'event', 'community', 'field', 'repermission'] as const;

/** More candidate ids than this and the service checks the filter's ids after parsing it instead. */
export const MAX_SCOPE_CANDIDATES = 2000;

/**
 * The event and community ids a filter names, read before it is checked so that the audience, its
 * fields and these ids are looked up in one round trip. Generous: a superset of the `eventIds` and
 * `communityIds` of `checkFilter` (wherever that walk reaches, this one does), both lower-cased;
 * null when there are too many to send along, and the caller then checks them afterwards.
 */
export function scopeIdCandidates(input: unknown): { events: string[]; communities: string[] } | null {
  const events = new Set<string>();
  const communities = new Set<string>();
  let nodes = 0;
  const visit = (node: unknown, depth: number): boolean => {
    if (++nodes > FILTER_LIMITS.nodes + 1 || depth > FILTER_LIMITS.depth + 1 || !isObject(node)) return true;
    for (const [key, value] of Object.entries(node)) {
      if (key === 'and' || key === 'or') {
        if (Array.isArray(value) && !value.every((child) => visit(child, depth + 1))) return false;
      } else if (key === 'not') {
        if (!visit(value, depth + 1)) return false;
      } else if ((key === 'event' || key === 'community') && isObject(value)) {
        const into = key === 'event' ? events : communities;
        for (const list of Object.values(value)) {
          if (!Array.isArray(list)) continue;
          for (const id of list) if (isUuid(id)) into.add(id.toLowerCase());
          if (events.size + communities.size > MAX_SCOPE_CANDIDATES) return false;
        }
      }
    }
    return true;
  };
  return visit(input, 0) ? { events: [...events], communities: [...communities] } : null;
}

/**
 * Checks a filter tree against the audience's columns. Every problem is reported with its path
 * (`filter.and[1].not`), so a client fixes them all in one go. `null` / absent means every contact.
 */
export function checkFilter(input: unknown, columns: readonly Column[]): Checked<CheckedFilter> {
  if (input === undefined || input === null) return { ok: true, value: { condition: null, eventIds: [], communityIds: [] } };
  const byKey = new Map(columns.map((col) => [col.key, col]));
  const problems: string[] = [];
  const eventIds = new Set<string>();
  const communityIds = new Set<string>();
  let nodes = 0;

  const walk = (node: unknown, path: string, depth: number): Condition | null => {
    if (++nodes > FILTER_LIMITS.nodes) {
      if (nodes === FILTER_LIMITS.nodes + 1) problems.push(`filter: more than ${FILTER_LIMITS.nodes} conditions`);
      return null;
    }
    if (depth > FILTER_LIMITS.depth) {
      problems.push(`${path}: nested deeper than ${FILTER_LIMITS.depth} levels`);
      return null;
    }
    if (!isObject(node)) {
      problems.push(`${path}: expected an object like {"and": [...]}, {"or": [...]}, {"not": ...}, {"event": {"in": [...]}}, {"community": {"in": [...]}} or {"field": ..., "op": ..., "value": ...}`);
      return null;
    }
    const kinds = NODE_KEYS.filter((k) => k in node);
    if (kinds.length !== 1) {
      problems.push(kinds.length === 0
        ? `${path}: expected one of the keys and, or, not, event, community, field; got ${show(Object.keys(node))}`
        : `${path}: combines ${kinds.join(' and ')}; use one per condition (wrap them in {"and": [...]})`);
      return null;
    }
    const kind = kinds[0]!;
    const allowed = kind === 'field' ? ['field', 'op', 'value'] : [kind];
    const extra = Object.keys(node).filter((k) => !allowed.includes(k));
    if (extra.length) {
      problems.push(`${path}: unexpected key ${show(extra[0])}`);
      return null;
    }
    switch (kind) {
      case 'and':
      case 'or': {
        const list = node[kind];
        if (!Array.isArray(list)) {
          problems.push(`${path}.${kind}: expected a list of conditions`);
          return null;
        }
        if (kind === 'or' && list.length === 0) {
          problems.push(`${path}.or: an empty "or" matches nothing; give at least one condition`);
          return null;
        }
        const items = list.map((child, i) => walk(child, `${path}.${kind}[${i}]`, depth + 1));
        return items.every((x): x is Condition => x !== null) ? { kind, items } : null;
      }
      case 'not': {
        const item = walk(node.not, `${path}.not`, depth + 1);
        return item ? { kind: 'not', item } : null;
      }
      case 'event':
      case 'community':
        return membership(kind, node[kind], `${path}.${kind}`);
      case 'repermission': {
        const spec = node.repermission;
        if (!isObject(spec) || !isUuid(spec.campaign_id) || (spec.answer !== 'yes' && spec.answer !== 'no') || Object.keys(spec).length !== 2) {
          problems.push(`${path}.repermission: expected {"campaign_id": <re-permission campaign id>, "answer": "yes" | "no"}`);
          return null;
        }
        return { kind: 'repermission', campaignId: (spec.campaign_id as string).toLowerCase(), answer: spec.answer };
      }
      case 'field':
        return leaf(node, path);
    }
  };

  const membership = (of: 'event' | 'community', spec: unknown, path: string): Condition | null => {
    const what = of === 'event' ? 'event' : 'community';
    const modes = { in: 'any', not_in: 'none', all: 'all' } as const;
    if (!isObject(spec) || Object.keys(spec).length !== 1 || !(Object.keys(spec)[0]! in modes)) {
      problems.push(`${path}: expected {"in": [${what} ids]} (${of === 'event' ? 'participant' : 'member'} of any), {"all": [...]} or {"not_in": [...]}`);
      return null;
    }
    const modeKey = Object.keys(spec)[0] as keyof typeof modes;
    const ids = spec[modeKey];
    if (!Array.isArray(ids) || ids.length === 0 || ids.length > FILTER_LIMITS.listItems) {
      problems.push(`${path}.${modeKey}: expected a list of 1 to ${FILTER_LIMITS.listItems} ${what} ids`);
      return null;
    }
    const bad = ids.find((id) => !isUuid(id));
    if (bad !== undefined) {
      problems.push(`${path}.${modeKey}: ${show(bad)} is not ${of === 'event' ? 'an event' : 'a community'} id`);
      return null;
    }
    const uniq = [...new Set((ids as string[]).map((id) => id.toLowerCase()))];
    for (const id of uniq) (of === 'event' ? eventIds : communityIds).add(id);
    return { kind: 'membership', of, mode: modes[modeKey], ids: uniq };
  };

  const leaf = (node: Record<string, unknown>, path: string): Condition | null => {
    const { field, op, value } = node;
    if (typeof field !== 'string' || field === '') {
      problems.push(`${path}.field: expected a column name`);
      return null;
    }
    const col = byKey.get(field);
    if (!col) {
      problems.push(`${path}: unknown column ${show(field)} (not a built-in, computed or central field of this audience)`);
      return null;
    }
    if (col.type === 'list') {
      const of = col.key === 'events' ? 'event' : 'community';
      problems.push(`${path}: "${col.key}" is a list; filter with {"${of}": {"in": [${of} ids]}} or on "${col.key}_count"`);
      return null;
    }
    const ops = operatorsFor(col);
    if (typeof op !== 'string') {
      problems.push(`${path}.op: expected an operator for "${col.key}": ${ops.join(', ')}`);
      return null;
    }
    if (!ops.includes(op as Op)) {
      const known = Object.values(OPS_BY_TYPE).some((list) => list.includes(op as Op));
      problems.push(known
        ? `${path}: "${col.key}" is a ${describeType(col)} column; "${op}" is not one of its operators (${ops.join(', ')})`
        : `${path}: unknown operator ${show(op)}; "${col.key}" accepts ${ops.join(', ')}`);
      return null;
    }
    const r = predicate(col, op as Op, value);
    if (!r.ok) {
      problems.push(`${path}: ${col.key} ${op}: ${r.reason}`);
      return null;
    }
    return { kind: 'leaf', column: col, op: op as Op, pred: r.value };
  };

  const condition = walk(input, 'filter', 0);
  if (problems.length || !condition) return { ok: false, problems: problems.length ? problems : ['filter: invalid'] };
  return { ok: true, value: { condition, eventIds: [...eventIds], communityIds: [...communityIds] } };
}

const describeType = (col: Column) => (col.type === 'day' ? 'date' : col.type === 'datetime' ? 'date-time' : col.type.replace('_', '-'));

type R<T> = { ok: true; value: T } | { ok: false; reason: string };
const fail = (reason: string): R<never> => ({ ok: false, reason });

function predicate(col: Column, op: Op, value: unknown): R<Predicate> {
  if (op === 'empty' || op === 'not_empty' || op === 'is_true' || op === 'is_false') {
    if (value !== undefined && value !== null) return fail('takes no value');
    return { ok: true, value: { kind: op } };
  }
  if (value === undefined) return fail('needs a value');
  if (op === 'in') return inList(col, value);
  switch (col.type) {
    case 'text':
      return textPredicate(col, op, value);
    case 'choice': {
      const v = choice(col, value);
      return v.ok ? { ok: true, value: { kind: op === 'equals' ? 'eq' : 'ne', value: v.value } } : v;
    }
    case 'id': {
      if (!isUuid(value)) return fail(`expected an id, got ${show(value)}`);
      return { ok: true, value: { kind: op === 'equals' ? 'eq' : 'ne', value: value.toLowerCase() } };
    }
    case 'number':
      return ordered(op, value, number, 'a number');
    case 'day':
      return ordered(op, value, day, 'a date as YYYY-MM-DD');
    case 'datetime':
      return instantPredicate(op, value);
    default:
      return fail('not supported');
  }
}

function textPredicate(col: Column, op: Op, value: unknown): R<Predicate> {
  if (typeof value !== 'string') return fail(`expected text, got ${show(value)}`);
  if (value === '') return fail('expected non-empty text (use "empty" to find contacts without a value)');
  if (value.length > FILTER_LIMITS.text) return fail(`text longer than ${FILTER_LIMITS.text} characters`);
  if (/\0/.test(value)) return fail('text contains a NUL character');
  // Emails are compared on their lower-case key (the unique index), whatever the caller typed.
  const v = col.key === 'email' ? emailKey(value, op) : value;
  if (op === 'equals') return { ok: true, value: { kind: 'eq', value: v } };
  if (op === 'not_equals') return { ok: true, value: { kind: 'ne', value: v } };
  return { ok: true, value: { kind: op === 'contains' ? 'contains' : 'starts_with', text: v } };
}

function emailKey(value: string, op: Op): string {
  if (op === 'equals' || op === 'not_equals' || op === 'in') {
    const r = checkEmail(value);
    if (r.ok) return r.lower;
  }
  return value.trim().toLowerCase();
}

function choice(col: Column, value: unknown): R<string> {
  if (typeof value !== 'string' || !col.options?.includes(value)) {
    return fail(`${show(value)} is not an option of ${col.key} (options: ${(col.options ?? []).map((o) => JSON.stringify(o)).join(', ')})`);
  }
  return { ok: true, value };
}

function inList(col: Column, value: unknown): R<Predicate> {
  if (!Array.isArray(value) || value.length === 0 || value.length > FILTER_LIMITS.listItems) {
    return fail(`expected a list of 1 to ${FILTER_LIMITS.listItems} values`);
  }
  const out: string[] = [];
  for (const v of value) {
    if (col.type === 'choice' || col.type === 'multi_choice') {
      const r = choice(col, v);
      if (!r.ok) return r;
      out.push(r.value);
    } else if (col.type === 'id') {
      if (!isUuid(v)) return fail(`expected ids, got ${show(v)}`);
      out.push(v.toLowerCase());
    } else {
      if (typeof v !== 'string' || v === '' || v.length > FILTER_LIMITS.text || /\0/.test(v)) return fail(`expected a list of non-empty texts, got ${show(v)}`);
      out.push(col.key === 'email' ? emailKey(v, 'in') : v);
    }
  }
  return { ok: true, value: { kind: 'in', values: [...new Set(out)] } };
}

function number(v: unknown): number | null {
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v.trim()) : NaN;
  return Number.isFinite(n) ? n : null;
}

function day(v: unknown): string | null {
  return typeof v === 'string' ? parseDay(v) : null;
}

/** Numbers and calendar days (central date fields): compared as values, `between` inclusive. */
function ordered<T extends string | number>(op: Op, value: unknown, parse: (v: unknown) => T | null, what: string): R<Predicate> {
  if (op === 'between') {
    if (!Array.isArray(value) || value.length !== 2) return fail(`expected [from, to], two of ${what}`);
    const [a, b] = [parse(value[0]), parse(value[1])];
    if (a === null || b === null) return fail(`expected [from, to], two of ${what}; got ${show(value)}`);
    if (a > b) return fail(`the first bound ${show(a)} is after the second ${show(b)}`);
    return { ok: true, value: { kind: 'range', lower: { value: a, inclusive: true }, upper: { value: b, inclusive: true } } };
  }
  const v = parse(value);
  if (v === null) return fail(`expected ${what}, got ${show(value)}`);
  switch (op) {
    case 'equals': return { ok: true, value: { kind: 'eq', value: v } };
    case 'not_equals': return { ok: true, value: { kind: 'ne', value: v } };
    case 'lt': case 'before': return { ok: true, value: { kind: 'range', lower: null, upper: { value: v, inclusive: false } } };
    case 'lte': return { ok: true, value: { kind: 'range', lower: null, upper: { value: v, inclusive: true } } };
    case 'gt': case 'after': return { ok: true, value: { kind: 'range', lower: { value: v, inclusive: false }, upper: null } };
    case 'gte': return { ok: true, value: { kind: 'range', lower: { value: v, inclusive: true }, upper: null } };
    default: return fail('not supported');
  }
}

type Instant = { kind: 'day'; start: string; next: string } | { kind: 'instant'; at: string };
const DATE_TIME = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?$/i;

/** A calendar day (the whole UTC day) or a date-time (UTC when it has no offset). */
export function parseInstant(v: unknown): Instant | null {
  if (typeof v !== 'string') return null;
  const s = v.trim();
  if (/^\d{4}-\d{2}-\d{2}$/.test(s)) {
    const d = parseDay(s);
    if (!d) return null;
    const next = new Date(`${d}T00:00:00Z`);
    next.setUTCDate(next.getUTCDate() + 1);
    return { kind: 'day', start: `${d}T00:00:00.000Z`, next: next.toISOString() };
  }
  if (!DATE_TIME.test(s) || !parseDay(s.slice(0, 10))) return null;
  const withZone = /(Z|[+-]\d{2}:?\d{2})$/i.test(s) ? s : `${s}Z`;
  const t = new Date(withZone.replace(' ', 'T'));
  return Number.isNaN(t.getTime()) ? null : { kind: 'instant', at: t.toISOString() };
}

/**
 * Date-times (created_at, marketing_authorized_at, lock_end). A bare day means that whole UTC day:
 * before it = earlier than its start, after it = from the next day, between two days includes both.
 */
function instantPredicate(op: Op, value: unknown): R<Predicate> {
  const what = 'a date (YYYY-MM-DD) or a date-time (ISO 8601)';
  const lowerOf = (i: Instant, strictInstant: boolean): Bound =>
    i.kind === 'day' ? { value: strictInstant ? i.next : i.start, inclusive: true } : { value: i.at, inclusive: !strictInstant };
  const upperOf = (i: Instant, inclusive: boolean): Bound =>
    i.kind === 'day' ? { value: inclusive ? i.next : i.start, inclusive: false } : { value: i.at, inclusive };
  if (op === 'between') {
    if (!Array.isArray(value) || value.length !== 2) return fail(`expected [from, to], two of ${what}`);
    const [a, b] = [parseInstant(value[0]), parseInstant(value[1])];
    if (!a || !b) return fail(`expected [from, to], two of ${what}; got ${show(value)}`);
    const lower = lowerOf(a, false);
    const upper = upperOf(b, true);
    if (String(lower.value) > String(upper.value) || (lower.value === upper.value && !upper.inclusive)) {
      return fail(`the first bound ${show(value[0])} is after the second ${show(value[1])}`);
    }
    return { ok: true, value: { kind: 'range', lower, upper } };
  }
  const i = parseInstant(value);
  if (!i) return fail(`expected ${what}, got ${show(value)}`);
  if (op === 'before') return { ok: true, value: { kind: 'range', lower: null, upper: upperOf(i, false) } };
  return { ok: true, value: { kind: 'range', lower: lowerOf(i, true), upper: null } };
}

/** Whether a number predicate holds for `n` (a count, which is never missing). */
export function numberMatches(pred: Predicate, n: number): boolean {
  switch (pred.kind) {
    case 'eq':
      return n === pred.value;
    case 'ne':
      return n !== pred.value;
    case 'range': {
      const { lower, upper } = pred;
      if (lower && !(lower.inclusive ? n >= Number(lower.value) : n > Number(lower.value))) return false;
      if (upper && !(upper.inclusive ? n <= Number(upper.value) : n < Number(upper.value))) return false;
      return true;
    }
    default:
      return false;
  }
}

const NEEDS_VALUE = new Set<Predicate['kind']>(['eq', 'range', 'contains', 'starts_with', 'in', 'not_empty', 'is_true', 'is_false']);

/**
 * True when every contact the condition lets through has a value in `key` (a top-level, or and-ed,
 * condition on it that only a present value satisfies): paging then skips the missing-values part.
 */
export function excludesMissing(cond: Condition | null, key: string): boolean {
  if (!cond) return false;
  if (cond.kind === 'leaf') return cond.column.key === key && NEEDS_VALUE.has(cond.pred.kind);
  if (cond.kind === 'and') return cond.items.some((x) => excludesMissing(x, key));
  if (cond.kind === 'or') return cond.items.length > 0 && cond.items.every((x) => excludesMissing(x, key));
  return false;
}

// ---- sort, columns, cursor ----

export type Dir = 'asc' | 'desc';
export interface Sort {
  column: Column;
  dir: Dir;
}
export const DEFAULT_SORT = { field: 'last_name', dir: 'asc' } as const;

/**
 * One column, ascending or descending, nulls last; the contact id breaks ties (in the same direction,
 * so that an index on (audience_id, column, id) serves both). Accepts {field, dir}, "field" or "-field".
 */
export function checkSort(input: unknown, columns: readonly Column[]): Checked<Sort> {
  let field: unknown;
  let dir: unknown = 'asc';
  if (input === undefined || input === null) ({ field, dir } = DEFAULT_SORT);
  else if (typeof input === 'string') {
    field = input.startsWith('-') ? input.slice(1) : input;
    dir = input.startsWith('-') ? 'desc' : 'asc';
  } else if (isObject(input)) {
    const extra = Object.keys(input).filter((k) => k !== 'field' && k !== 'dir');
    if (extra.length) return { ok: false, problems: [`sort: unexpected key ${show(extra[0])}; expected {"field": ..., "dir": "asc" | "desc"}`] };
    field = input.field;
    dir = input.dir ?? 'asc';
  } else return { ok: false, problems: ['sort: expected {"field": ..., "dir": "asc" | "desc"} or "field" / "-field"'] };
  const problems: string[] = [];
  if (dir !== 'asc' && dir !== 'desc') problems.push(`sort.dir: expected "asc" or "desc", got ${show(dir)}`);
  const col = typeof field === 'string' ? columns.find((x) => x.key === field) : undefined;
  if (!col) problems.push(`sort.field: unknown column ${show(field)}`);
  else if (col.type === 'list') problems.push(`sort.field: "${col.key}" is a list; sort by "${col.key}_count"`);
  if (problems.length) return { ok: false, problems };
  return { ok: true, value: { column: col!, dir: dir as Dir } };
}

export const MAX_COLUMNS = 200;

/** The columns to return, in the order asked; absent = the default set. The id always comes along. */
export function checkColumns(input: unknown, columns: readonly Column[]): Checked<Column[]> {
  if (input === undefined || input === null) return { ok: true, value: columns.filter((x) => x.default) };
  if (!Array.isArray(input) || input.length > MAX_COLUMNS) return { ok: false, problems: [`columns: expected a list of at most ${MAX_COLUMNS} column names`] };
  const byKey = new Map(columns.map((x) => [x.key, x]));
  const problems: string[] = [];
  const out: Column[] = [];
  for (const [i, key] of input.entries()) {
    if (key === 'id') continue;
    const col = typeof key === 'string' ? byKey.get(key) : undefined;
    if (!col) problems.push(`columns[${i}]: unknown column ${show(key)}`);
    else if (!out.includes(col)) out.push(col);
  }
  return problems.length ? { ok: false, problems } : { ok: true, value: out };
}

export interface CursorPosition {
  /** the sort value of the last row, in PostgreSQL's text form; null when it had none */
  value: string | null;
  id: string;
}

const sortSignature = (s: Sort) => `${s.column.key}:${s.dir}`;

/** Opaque to clients; holds the last row's sort value and id, and the sort it belongs to. */
export function encodeCursor(sort: Sort, pos: CursorPosition): string {
  return Buffer.from(JSON.stringify({ s: sortSignature(sort), v: pos.value, i: pos.id })).toString('base64url');
}

export function decodeCursor(raw: string, sort: Sort): Checked<CursorPosition> {
  const bad: Problems = { ok: false, problems: ['cursor: not a cursor returned by this API'] };
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
  } catch {
    return bad;
  }
  if (!isObject(parsed) || typeof parsed.s !== 'string' || !isUuid(parsed.i) || !(parsed.v === null || typeof parsed.v === 'string')) return bad;
  if (parsed.s !== sortSignature(sort)) {
    return { ok: false, problems: [`cursor: it was made for the sort ${show(parsed.s)}, not ${show(sortSignature(sort))}; start again without a cursor`] };
  }
  if (parsed.v === null && !sort.column.nullable) return bad;
  return { ok: true, value: { value: parsed.v, id: parsed.i } };
}

/**
 * Keyset paging with nulls last is two index ranges read one after the other: the rows with a value
 * (after the cursor's value and id when the cursor is among them), then the rows without one, by id.
 * Splitting the query this way (rather than one OR'ed condition) lets each part start right at the
 * cursor in an index on (audience_id, column, id) instead of scanning from the first row.
 */
export type KeysetBranch = { nulls: false; after: { value: string; id: string } | null } | { nulls: true; afterId: string | null };

export function keysetBranches(nullable: boolean, cursor: CursorPosition | null): KeysetBranch[] {
  if (!nullable) return [{ nulls: false, after: cursor ? { value: cursor.value!, id: cursor.id } : null }];
  if (cursor && cursor.value === null) return [{ nulls: true, afterId: cursor.id }];
  return [
    { nulls: false, after: cursor ? { value: cursor.value!, id: cursor.id } : null },
    { nulls: true, afterId: null },
  ];
}

// ---- saved views ----

export interface ViewDefinition {
  filter: unknown;
  columns: string[] | null;
  sort: { field: string; dir: Dir } | null;
}

export interface CheckedView {
  definition: ViewDefinition;
  filter: CheckedFilter;
  columns: Column[];
  sort: Sort;
}

/** A view is checked as a whole: filter, columns and sort problems come back together. */
export function checkView(input: { filter?: unknown; columns?: unknown; sort?: unknown }, columns: readonly Column[]): Checked<CheckedView> {
  const f = checkFilter(input.filter, columns);
  const cols = checkColumns(input.columns, columns);
  const sort = checkSort(input.sort, columns);
  const problems = [...(f.ok ? [] : f.problems), ...(cols.ok ? [] : cols.problems), ...(sort.ok ? [] : sort.problems)];
  if (!f.ok || !cols.ok || !sort.ok) return { ok: false, problems };
  const definition: ViewDefinition = {
    filter: input.filter ?? null,
    columns: input.columns == null ? null : cols.value.map((x) => x.key),
    sort: input.sort == null ? null : { field: sort.value.column.key, dir: sort.value.dir },
  };
  return { ok: true, value: { definition, filter: f.value, columns: cols.value, sort: sort.value } };
}

// ---- bulk edit ----

export const BULK_SETTABLE = ['first_name', 'last_name', 'company', 'job_title', 'company_id', 'fields'] as const;

/** What a bulk edit may not do, before any value is looked at. */
export function bulkSetProblem(set: Record<string, unknown>): string | null {
  if ('email' in set) return 'email cannot be bulk-set: every contact keeps its own address';
  const unknown = Object.keys(set).filter((k) => !(BULK_SETTABLE as readonly string[]).includes(k));
  if (unknown.length) return `set.${unknown[0]}: cannot be bulk-set (settable: ${BULK_SETTABLE.join(', ')})`;
  const fields = set.fields;
  if (fields !== undefined && !isObject(fields)) return 'set.fields: expected an object of central field values';
  const n = Object.keys(set).filter((k) => k !== 'fields' && set[k] !== undefined).length + (isObject(fields) ? Object.keys(fields).length : 0);
  if (n === 0) return 'set: nothing to change';
  return null;
}
