/*
 * Pure rules of follow-up programs: what a trigger, a wait and a condition may be, when an entry is
 * due, whether a condition holds for a contact, which mail a trigger may cause, and the calendar of
 * date-field triggers (birthdays).
 */
import type { FieldType, MessageCategory } from '../platform/schema.ts';
import { localTimeAfter } from '../consent/rules.ts';
import { parseDay, timeZoneProblem } from '../audience/rules.ts';

type R<T> = { ok: true; value: T } | { ok: false; problems: string[] };

// ---- triggers ----

export const MESSAGE_TRIGGERS = ['message_sent', 'message_opened', 'message_clicked'] as const;
export type MessageTriggerType = (typeof MESSAGE_TRIGGERS)[number];
export type TriggerType = MessageTriggerType | 'external_event' | 'date_field';

export type Trigger =
  | { type: MessageTriggerType; template_id: string }
  | { type: 'external_event'; name: string }
  | { type: 'date_field'; field: string; offset_days: number; hour: number; time_zone: string };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const EVENT_NAME = /^[a-z0-9][a-z0-9_.:-]{0,63}$/;

/** External event names compare without case: a CRM's "Purchase" is the program's "purchase". */
export function eventName(raw: unknown): { ok: true; value: string } | { ok: false; problem: string } {
  if (typeof raw !== 'string') return { ok: false, problem: 'an external event name is a string' };
  const name = raw.trim().toLowerCase();
  if (!EVENT_NAME.test(name)) return { ok: false, problem: `"${raw}" is not an event name: 1 to 64 letters, digits, _ . : or -, starting with a letter or digit` };
  return { ok: true, value: name };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const show = (v: unknown) => JSON.stringify(v) ?? String(v);

function unknownKeys(o: Record<string, unknown>, allowed: readonly string[], path: string): string[] {
  return Object.keys(o)
    .filter((k) => !allowed.includes(k))
    .map((k) => `${path}.${k}: unknown property (allowed: ${allowed.join(', ')})`);
}

/** The shape of a trigger; whether its template or field exists in the audience is the service's question. */
export function checkTrigger(raw: unknown): R<Trigger> {
  if (!isObject(raw)) return { ok: false, problems: ['trigger: expected an object with a type'] };
  const type = raw.type;
  if ((MESSAGE_TRIGGERS as readonly unknown[]).includes(type)) {
    const problems = unknownKeys(raw, ['type', 'template_id'], 'trigger');
    if (typeof raw.template_id !== 'string' || !UUID.test(raw.template_id)) problems.push(`trigger.template_id: a ${String(type)} trigger names the template (a uuid) whose messages start the program`);
    return problems.length ? { ok: false, problems } : { ok: true, value: { type: type as MessageTriggerType, template_id: (raw.template_id as string).toLowerCase() } };
  }
  if (type === 'external_event') {
    const problems = unknownKeys(raw, ['type', 'name'], 'trigger');
    const n = eventName(raw.name);
    if (!n.ok) problems.push(`trigger.name: ${n.problem}`);
    return problems.length || !n.ok ? { ok: false, problems } : { ok: true, value: { type, name: n.value } };
  }
  if (type === 'date_field') {
    const problems = unknownKeys(raw, ['type', 'field', 'offset_days', 'hour', 'time_zone'], 'trigger');
    if (typeof raw.field !== 'string' || raw.field === '') problems.push('trigger.field: the key of a central date field of the audience (like "birthday")');
    const offset = raw.offset_days ?? 0;
    if (typeof offset !== 'number' || !Number.isInteger(offset) || Math.abs(offset) > 365) problems.push('trigger.offset_days: a whole number of days between -365 and 365 (negative: before the date)');
    const hour = raw.hour ?? 9;
    if (typeof hour !== 'number' || !Number.isInteger(hour) || hour < 0 || hour > 23) problems.push('trigger.hour: the hour of the day the mail is due, 0 to 23 (default 9)');
    const zone = raw.time_zone ?? 'UTC';
    const tz = typeof zone === 'string' ? timeZoneProblem(zone) : 'a time zone name';
    if (tz) problems.push(`trigger.time_zone: ${tz}`);
    if (problems.length) return { ok: false, problems };
    return { ok: true, value: { type, field: raw.field as string, offset_days: offset as number, hour: hour as number, time_zone: zone as string } };
  }
  return { ok: false, problems: [`trigger.type: ${show(type)} is not a trigger; use one of ${[...MESSAGE_TRIGGERS, 'external_event', 'date_field'].join(', ')}`] };
}

/** The message event type (message_events.type) a message trigger reacts to. */
export const messageEventOf = (t: MessageTriggerType) => t.slice('message_'.length) as 'sent' | 'opened' | 'clicked';

// ---- wait ----

export const MAX_WAIT_SECONDS = 366 * 86_400;
const WAIT_UNITS = { seconds: 1, minutes: 60, hours: 3600, days: 86_400 } as const;
type WaitUnit = keyof typeof WAIT_UNITS;

/** `{days: 3}`, `{hours: 2}`, `{minutes: 30}` or `{seconds: 0}`: exactly one unit, a whole number, at most a year. */
export function checkWait(raw: unknown): { ok: true; seconds: number } | { ok: false; problem: string } {
  if (!isObject(raw)) return { ok: false, problem: 'wait: expected an object like {"days": 3} (or hours, minutes, seconds)' };
  const keys = Object.keys(raw);
  if (keys.length !== 1 || !(keys[0]! in WAIT_UNITS)) return { ok: false, problem: `wait: give exactly one of ${Object.keys(WAIT_UNITS).join(', ')}` };
  const unit = keys[0] as WaitUnit;
  const n = raw[unit];
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) return { ok: false, problem: `wait.${unit}: a whole number, 0 or more` };
  const seconds = n * WAIT_UNITS[unit];
  if (seconds > MAX_WAIT_SECONDS) return { ok: false, problem: 'wait: at most 366 days' };
  return { ok: true, seconds };
}

/** The wait as given back: the largest unit that divides it. */
export function presentWait(seconds: number): Partial<Record<WaitUnit, number>> {
  for (const unit of ['days', 'hours', 'minutes'] as const) if (seconds > 0 && seconds % WAIT_UNITS[unit] === 0) return { [unit]: seconds / WAIT_UNITS[unit] };
  return { seconds };
}

export const dueAfter = (at: Date, waitSeconds: number) => new Date(at.getTime() + waitSeconds * 1000);

/**
 * An entry sent this long after it was due is skipped instead: a survey about a purchase of last
 * month (an old event posted by a CRM catching up, a worker stopped for a week) would surprise more
 * than help. A restart or an outage of a day still sends everything.
 */
export const LATE_LIMIT_MS = 72 * 3_600_000;

export function lateProblem(dueAt: Date, now: Date): string | null {
  const late = now.getTime() - dueAt.getTime();
  if (late <= LATE_LIMIT_MS) return null;
  return `too late: due at ${dueAt.toISOString()}, ${Math.floor(late / 3_600_000)} h ago (more than ${LATE_LIMIT_MS / 3_600_000} h late is not sent)`;
}

// ---- conditions ----

export type FieldOp = 'gte' | 'lte' | 'eq' | 'ne' | 'exists';
export type Scalar = string | number | boolean;
export type Condition =
  | { field: string; op: FieldOp; value?: Scalar }
  | { external_event: string; count_gte: number; within_days?: number }
  | { all: Condition[] }
  | { any: Condition[] }
  | { not: Condition };

/** A field a condition may name: the contact's built-in fields (text) and the audience's central fields. */
export interface FieldInfo {
  key: string;
  type: FieldType;
  options?: string[] | null;
}

const OPS: readonly FieldOp[] = ['gte', 'lte', 'eq', 'ne', 'exists'];
const MAX_NODES = 30;
const MAX_DEPTH = 5;

/** Checks a condition against the audience's fields: a bad one is refused when the program is saved, not at send time. */
export function checkCondition(raw: unknown, fields: readonly FieldInfo[]): R<Condition> {
  const problems: string[] = [];
  const byKey = new Map(fields.map((f) => [f.key, f]));
  let nodes = 0;
  function walk(node: unknown, path: string, depth: number): Condition | null {
    if (++nodes > MAX_NODES) {
      if (nodes === MAX_NODES + 1) problems.push(`condition: at most ${MAX_NODES} clauses`);
      return null;
    }
    if (depth > MAX_DEPTH) {
      problems.push(`${path}: nested more than ${MAX_DEPTH} levels deep`);
      return null;
    }
    if (!isObject(node)) {
      problems.push(`${path}: expected {"field", "op", "value"}, {"external_event", "count_gte"}, {"all": [...]}, {"any": [...]} or {"not": ...}`);
      return null;
    }
    for (const group of ['all', 'any'] as const) {
      if (group in node) {
        problems.push(...unknownKeys(node, [group], path));
        const list = node[group];
        if (!Array.isArray(list) || list.length === 0) {
          problems.push(`${path}.${group}: a non-empty list of conditions`);
          return null;
        }
        const items = list.map((c, i) => walk(c, `${path}.${group}[${i}]`, depth + 1));
        return items.every(Boolean) ? ({ [group]: items } as Condition) : null;
      }
    }
    if ('not' in node) {
      problems.push(...unknownKeys(node, ['not'], path));
      const inner = walk(node.not, `${path}.not`, depth + 1);
      return inner ? { not: inner } : null;
    }
    if ('external_event' in node) {
      const before = problems.length;
      problems.push(...unknownKeys(node, ['external_event', 'count_gte', 'within_days'], path));
      const n = eventName(node.external_event);
      if (!n.ok) problems.push(`${path}.external_event: ${n.problem}`);
      const count = node.count_gte;
      if (typeof count !== 'number' || !Number.isInteger(count) || count < 0 || count > 1_000_000) problems.push(`${path}.count_gte: a whole number of events, 0 or more`);
      const within = node.within_days;
      if (within !== undefined && (typeof within !== 'number' || !Number.isInteger(within) || within < 1 || within > 3660)) problems.push(`${path}.within_days: a whole number of days, 1 to 3660`);
      if (problems.length > before || !n.ok) return null;
      return { external_event: n.value, count_gte: count as number, ...(within !== undefined ? { within_days: within as number } : {}) };
    }
    if ('field' in node) {
      const before = problems.length;
      problems.push(...unknownKeys(node, ['field', 'op', 'value'], path));
      const f = typeof node.field === 'string' ? byKey.get(node.field) : undefined;
      if (!f) {
        problems.push(`${path}.field: ${show(node.field)} is not a field of the audience's contacts (built-in or central)`);
        return null;
      }
      const op = node.op;
      if (!OPS.includes(op as FieldOp)) {
        problems.push(`${path}.op: ${show(op)} is not an operator; use one of ${OPS.join(', ')}`);
        return null;
      }
      const problem = valueProblem(f, op as FieldOp, node.value);
      if (problem) problems.push(`${path}: ${f.key} ${String(op)}: ${problem}`);
      if (problems.length > before) return null;
      const value = f.type === 'date' && typeof node.value === 'string' ? parseDay(node.value)! : (node.value as Scalar);
      return op === 'exists' ? { field: f.key, op: 'exists' } : { field: f.key, op: op as FieldOp, value };
    }
    problems.push(`${path}: expected one of field, external_event, all, any, not (got ${Object.keys(node).join(', ') || 'an empty object'})`);
    return null;
  }
  const value = walk(raw, 'condition', 0);
  return problems.length || !value ? { ok: false, problems } : { ok: true, value };
}

function valueProblem(f: FieldInfo, op: FieldOp, value: unknown): string | null {
  if (op === 'exists') return value === undefined ? null : '"exists" takes no value';
  if (value === undefined) return `needs a value`;
  if ((op === 'gte' || op === 'lte') && f.type !== 'number' && f.type !== 'date') return `${op} compares numbers and dates; "${f.key}" is a ${f.type} field (use eq, ne or exists)`;
  switch (f.type) {
    case 'number':
      return typeof value === 'number' && Number.isFinite(value) ? null : `expected a number, got ${show(value)}`;
    case 'date':
      return typeof value === 'string' && parseDay(value) ? null : `expected a date as YYYY-MM-DD, got ${show(value)}`;
    case 'boolean':
      return typeof value === 'boolean' ? null : `expected true or false, got ${show(value)}`;
    case 'choice':
    case 'multi_choice':
      if (typeof value !== 'string') return `expected one of the options, got ${show(value)}`;
      return f.options && !f.options.includes(value) ? `${show(value)} is not an option (${f.options.join(', ')})` : null;
    case 'text':
      return typeof value === 'string' ? null : `expected text, got ${show(value)}`;
  }
}

/** The external-event counts a condition needs, each once. */
export function countsNeeded(c: Condition): { name: string; withinDays: number | null }[] {
  const out = new Map<string, { name: string; withinDays: number | null }>();
  (function walk(n: Condition) {
    if ('all' in n) n.all.forEach(walk);
    else if ('any' in n) n.any.forEach(walk);
    else if ('not' in n) walk(n.not);
    else if ('external_event' in n) out.set(countKey(n.external_event, n.within_days ?? null), { name: n.external_event, withinDays: n.within_days ?? null });
  })(c);
  return [...out.values()];
}

export const countKey = (name: string, withinDays: number | null) => `${name}\u0000${withinDays ?? ''}`;

export interface Facts {
  /** built-in and central field values of the contact */
  values: Record<string, unknown>;
  /** counts by countKey */
  counts: Map<string, number>;
}

const isEmpty = (v: unknown) => v === null || v === undefined || v === '' || (Array.isArray(v) && v.length === 0);
const SYMBOL: Record<FieldOp, string> = { gte: '>=', lte: '<=', eq: '=', ne: '!=', exists: 'exists' };

/** Whether the condition holds, and in words what was found: the reason a skipped entry shows. */
export function evaluate(c: Condition, facts: Facts): { pass: boolean; reason: string } {
  if ('all' in c) {
    const results = c.all.map((x) => evaluate(x, facts));
    const failed = results.find((r) => !r.pass);
    return failed ? failed : { pass: true, reason: results.map((r) => r.reason).join('; ') };
  }
  if ('any' in c) {
    const results = c.any.map((x) => evaluate(x, facts));
    const passed = results.find((r) => r.pass);
    return passed ? passed : { pass: false, reason: `none holds: ${results.map((r) => r.reason).join('; ')}` };
  }
  if ('not' in c) {
    const r = evaluate(c.not, facts);
    return { pass: !r.pass, reason: `not (${r.reason})` };
  }
  if ('external_event' in c) {
    const n = facts.counts.get(countKey(c.external_event, c.within_days ?? null)) ?? 0;
    const span = c.within_days ? ` in the last ${c.within_days} days` : '';
    return { pass: n >= c.count_gte, reason: `${c.external_event} count${span} is ${n} (needs >= ${c.count_gte})` };
  }
  const actual = facts.values[c.field];
  if (c.op === 'exists') return { pass: !isEmpty(actual), reason: `${c.field} is ${isEmpty(actual) ? 'empty' : show(actual)} (needs a value)` };
  const needs = `(needs ${SYMBOL[c.op]} ${show(c.value)})`;
  if (isEmpty(actual)) return { pass: c.op === 'ne', reason: `${c.field} is empty ${needs}` };
  const said = `${c.field} is ${show(actual)} ${needs}`;
  const v = c.value!;
  if (Array.isArray(actual)) {
    const has = actual.includes(v);
    return { pass: c.op === 'eq' ? has : c.op === 'ne' ? !has : false, reason: said };
  }
  switch (c.op) {
    case 'eq':
      return { pass: same(actual, v), reason: said };
    case 'ne':
      return { pass: !same(actual, v), reason: said };
    case 'gte':
    case 'lte': {
      const cmp = compare(actual, v);
      return { pass: cmp !== null && (c.op === 'gte' ? cmp >= 0 : cmp <= 0), reason: said };
    }
  }
}

function same(a: unknown, b: Scalar): boolean {
  if (typeof a === 'string' && typeof b === 'string') return a.toLowerCase() === b.toLowerCase();
  return a === b;
}

/** Numbers as numbers, days (YYYY-MM-DD) in calendar order; anything else does not compare. */
function compare(a: unknown, b: Scalar): number | null {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'string' && typeof b === 'string') {
    const x = parseDay(a);
    const y = parseDay(b);
    return x && y ? (x < y ? -1 : x > y ? 1 : 0) : null;
  }
  return null;
}

// ---- what a trigger may cause ----

/**
 * Transactional mail goes to the person whose own action caused it, whatever their consent. An
 * external event is such an action (their purchase, the session they attended), and so is the
 * transactional mail they caused; a birthday is not an action, and a follow-up to a marketing
 * message is marketing: those send marketing (with consent) or participation mail.
 */
export function categoryProblem(trigger: Trigger, triggerTemplateCategory: MessageCategory | null, category: MessageCategory): string | null {
  if (category !== 'transactional') return null;
  if (trigger.type === 'date_field') return 'a date field is not an action of the person: the mail it causes needs their consent; use a marketing (or participation) template';
  if (trigger.type !== 'external_event' && triggerTemplateCategory !== 'transactional') {
    return `a follow-up to ${triggerTemplateCategory ?? 'this'} mail is not caused by the person's own action: use a marketing template (sent with consent only) or a participation template`;
  }
  return null;
}

/**
 * A program on messages of template A that sends template B, with another on B sending A, would
 * mail people for ever. `edges` are the other enabled message-triggered programs of the
 * organisation: trigger template -> sent template.
 */
export function cycleProblem(candidate: { triggerTemplateId: string | null; templateId: string }, edges: readonly { name: string; triggerTemplateId: string; templateId: string }[]): string | null {
  if (!candidate.triggerTemplateId) return null;
  if (candidate.triggerTemplateId === candidate.templateId) return 'the program would be triggered by its own mail, again and again: send another template than the one that triggers it';
  const seen = new Set<string>();
  const path: string[] = [];
  const walk = (template: string): boolean => {
    if (template === candidate.triggerTemplateId) return true;
    if (seen.has(template)) return false;
    seen.add(template);
    for (const e of edges) {
      if (e.triggerTemplateId !== template) continue;
      path.push(e.name);
      if (walk(e.templateId)) return true;
      path.pop();
    }
    return false;
  };
  return walk(candidate.templateId) ? `the program would trigger itself again through ${path.map((n) => `"${n}"`).join(' -> ')}: mail would never stop` : null;
}

// ---- date fields ----

const DAY_MS = 86_400_000;
const dayFormatters = new Map<string, Intl.DateTimeFormat>();

/** The calendar day (YYYY-MM-DD) of an instant in `timeZone`. */
export function localDay(at: Date, timeZone: string): string {
  let f = dayFormatters.get(timeZone);
  if (!f) dayFormatters.set(timeZone, (f = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' })));
  const parts = Object.fromEntries(f.formatToParts(at).map((p) => [p.type, p.value]));
  return `${parts.year}-${parts.month}-${parts.day}`;
}

const dayMs = (day: string) => Date.UTC(Number(day.slice(0, 4)), Number(day.slice(5, 7)) - 1, Number(day.slice(8, 10)));
const dayOf = (ms: number) => new Date(ms).toISOString().slice(0, 10);
export const addDays = (day: string, n: number) => dayOf(dayMs(day) + n * DAY_MS);
const daysBetween = (from: string, to: string) => Math.round((dayMs(to) - dayMs(from)) / DAY_MS);
const isLeap = (y: number) => (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;

/**
 * Mail due on local day `sendDay` is about the date `offsetDays` earlier (a reminder 7 days before a
 * birthday has offset -7). Contacts whose date has that month-day are entered, keyed by that
 * year's occurrence; someone born on 29 February is celebrated on the 28th in other years.
 */
export function occurrenceOn(sendDay: string, offsetDays: number): { key: string; monthDays: string[] } {
  const key = addDays(sendDay, -offsetDays);
  const md = key.slice(5);
  return { key, monthDays: md === '02-28' && !isLeap(Number(key.slice(0, 4))) ? ['02-28', '02-29'] : [md] };
}

/** This year's occurrence key of a contact's date, to check at send time that it still matches its entry. */
export function occurrenceKey(value: unknown, year: number): string | null {
  if (typeof value !== 'string') return null;
  const day = parseDay(value);
  if (!day) return null;
  const md = day.slice(5) === '02-29' && !isLeap(year) ? '02-28' : day.slice(5);
  return `${String(year).padStart(4, '0')}-${md}`;
}

/** When the mail of a date-field trigger for `sendDay` is due: at `hour` there, plus the wait. */
export function dateDueAt(sendDay: string, trigger: { hour: number; time_zone: string }, waitSeconds: number): Date {
  const noon = new Date(dayMs(sendDay) + 12 * 3_600_000);
  const at = localTimeAfter(noon, daysBetween(localDay(noon, trigger.time_zone), sendDay), trigger.hour, 0, trigger.time_zone);
  return dueAfter(at, waitSeconds);
}

/** Catching up after the runner was stopped goes back no further than the late limit would send. */
export const CATCH_UP_DAYS = Math.ceil(LATE_LIMIT_MS / DAY_MS);

/** The local days a date-field program still has to scan, oldest first. */
export function daysToScan(scannedThrough: string | null, today: string): string[] {
  const first = scannedThrough ? addDays(scannedThrough, 1) : today;
  const start = daysBetween(first, today) > CATCH_UP_DAYS ? addDays(today, -CATCH_UP_DAYS) : first;
  const out: string[] = [];
  for (let d = start; d <= today; d = addDays(d, 1)) out.push(d);
  return out;
}

/** A date-field program is looked at again at the next local midnight of its zone. */
export const nextScanAt = (now: Date, timeZone: string) => localTimeAfter(now, 1, 0, 0, timeZone);
