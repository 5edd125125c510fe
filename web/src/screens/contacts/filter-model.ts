import type { GridColumn } from './data.ts';

/**
 * The filter panel's state and its translation to the API's filter tree: event and community
 * conditions, then field conditions, all joined by "and". A saved view whose filter was written
 * some other way (through the API) is kept as it is, in `raw`, and joined with the panel's conditions.
 */
export type MembershipMode = 'in' | 'all' | 'not_in';
export interface Membership {
  mode: MembershipMode;
  ids: string[];
}
/** A field condition as the form holds it: values as typed (strings), converted when sent. */
export interface FieldCondition {
  field: string;
  op: string;
  value: string;
  /** second bound of "between" */
  value2: string;
  /** chosen options of "in" on a choice column */
  values: string[];
}
export interface FilterModel {
  events: Membership;
  communities: Membership;
  conditions: FieldCondition[];
  raw: unknown | null;
}

export const emptyFilter = (): FilterModel => ({ events: { mode: 'in', ids: [] }, communities: { mode: 'in', ids: [] }, conditions: [], raw: null });
export const NO_VALUE_OPS = new Set(['empty', 'not_empty', 'is_true', 'is_false']);

export function newCondition(col: GridColumn): FieldCondition {
  return { field: col.key, op: col.operators[0] ?? 'equals', value: '', value2: '', values: [] };
}

/** How many conditions the panel holds (for the "Filters (3)" button). */
export function filterCount(m: FilterModel): number {
  return (m.events.ids.length ? 1 : 0) + (m.communities.ids.length ? 1 : 0) + m.conditions.length + (m.raw ? 1 : 0);
}

function pad(n: number) {
  return String(n).padStart(2, '0');
}
/** An instant as the value of a datetime-local input, in the browser's time zone. */
export function toLocalInput(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function convert(col: GridColumn, v: string): unknown {
  if (col.type === 'number') return v.trim() === '' ? v : Number(v);
  if (col.type === 'datetime') {
    const d = new Date(v);
    return Number.isNaN(d.getTime()) ? v : d.toISOString();
  }
  return v;
}

function conditionToApi(c: FieldCondition, col: GridColumn | undefined): unknown {
  const node: Record<string, unknown> = { field: c.field, op: c.op };
  if (NO_VALUE_OPS.has(c.op) || !col) return node;
  if (c.op === 'in') {
    node.value = col.type === 'choice' || col.type === 'multi_choice' ? c.values : c.value.split(/[,;\n]/).map((s) => s.trim()).filter(Boolean);
  } else if (c.op === 'between') {
    node.value = [convert(col, c.value), convert(col, c.value2)];
  } else node.value = convert(col, c.value);
  return node;
}

/** The API filter for the model, or null for "every contact". */
export function toApiFilter(m: FilterModel, columns: GridColumn[]): unknown | null {
  const byKey = new Map(columns.map((c) => [c.key, c]));
  const items: unknown[] = [];
  if (m.raw) items.push(m.raw);
  if (m.events.ids.length) items.push({ event: { [m.events.mode]: m.events.ids } });
  if (m.communities.ids.length) items.push({ community: { [m.communities.mode]: m.communities.ids } });
  for (const c of m.conditions) items.push(conditionToApi(c, byKey.get(c.field)));
  if (items.length === 0) return null;
  return items.length === 1 && m.raw ? m.raw : { and: items };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function membershipOf(node: Record<string, unknown>): Membership | null {
  const spec = node.event ?? node.community;
  if (!isObject(spec)) return null;
  const [mode] = Object.keys(spec);
  const ids = mode ? spec[mode] : null;
  if ((mode === 'in' || mode === 'all' || mode === 'not_in') && Array.isArray(ids) && ids.every((x) => typeof x === 'string')) return { mode, ids: ids as string[] };
  return null;
}

function conditionFromApi(node: Record<string, unknown>, col: GridColumn | undefined): FieldCondition | null {
  if (typeof node.field !== 'string' || typeof node.op !== 'string' || !col) return null;
  const c: FieldCondition = { field: node.field, op: node.op, value: '', value2: '', values: [] };
  const show = (v: unknown) => (col.type === 'datetime' && typeof v === 'string' ? toLocalInput(v) : v === undefined || v === null ? '' : String(v));
  if (NO_VALUE_OPS.has(c.op)) return c;
  if (c.op === 'in') {
    if (!Array.isArray(node.value)) return null;
    if (col.type === 'choice' || col.type === 'multi_choice') c.values = node.value.map(String);
    else c.value = node.value.map(String).join(', ');
  } else if (c.op === 'between') {
    if (!Array.isArray(node.value) || node.value.length !== 2) return null;
    c.value = show(node.value[0]);
    c.value2 = show(node.value[1]);
  } else c.value = show(node.value);
  return c;
}

/** The panel state of a saved filter: what the panel can show goes in the panel, the rest stays raw. */
export function fromApiFilter(filter: unknown, columns: GridColumn[]): FilterModel {
  const m = emptyFilter();
  if (filter === null || filter === undefined) return m;
  const byKey = new Map(columns.map((c) => [c.key, c]));
  const items = isObject(filter) && Array.isArray(filter.and) ? filter.and : [filter];
  const rest: unknown[] = [];
  for (const item of items) {
    if (isObject(item) && 'event' in item && Object.keys(item).length === 1 && !m.events.ids.length) {
      const ms = membershipOf(item);
      if (ms) {
        m.events = ms;
        continue;
      }
    }
    if (isObject(item) && 'community' in item && Object.keys(item).length === 1 && !m.communities.ids.length) {
      const ms = membershipOf(item);
      if (ms) {
        m.communities = ms;
        continue;
      }
    }
    if (isObject(item) && 'field' in item) {
      const c = conditionFromApi(item, byKey.get(String(item.field)));
      if (c) {
        m.conditions.push(c);
        continue;
      }
    }
    rest.push(item);
  }
  if (rest.length) m.raw = rest.length === 1 ? rest[0] : { and: rest };
  return m;
}

export function sameFilter(a: unknown, b: unknown): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}
