import type { AppContext } from '../platform/context.ts';
import { AppError, badRequest, conflict, notFound } from '../platform/errors.ts';
import type { Principal } from '../organisations/service.ts';
import type { FieldType } from '../platform/schema.ts';
import {
  bulkSetProblem,
  checkFilter,
  checkView,
  decodeCursor,
  encodeCursor,
  gridColumns,
  isUuid,
  operatorsFor,
  scopeIdCandidates,
  type CheckedFilter,
  type Column,
  type CursorPosition,
  type Sort,
  type ViewDefinition,
} from './grid-rules.ts';
import * as grid from './grid-store.ts';
import { validateValues } from './rules.ts';
import { audienceFor, canSeeAudience, SENDING_COLUMNS, type SendingContactRow } from './service.ts';
import * as store from './store.ts';

export interface GridQuery {
  filter?: unknown;
  sort?: unknown;
  columns?: unknown;
  /** quick search over first name, last name and email */
  q?: string | null;
}

export interface Paging {
  limit?: number;
  cursor?: string | null;
  offset?: number;
  /** false skips the total (one less pass over the matching contacts) */
  count?: boolean;
}

export type GridRow = { id: string } & Record<string, unknown>;

export interface GridPage {
  items: GridRow[];
  total: number | null;
  next_cursor: string | null;
}

export const MAX_PAGE = 1000;

interface Prepared {
  audienceId: string;
  /** the JSON text of the fields the columns come from */
  fieldsText: string;
  columns: Column[];
  filter: CheckedFilter;
  sort: Sort;
  q: string | null;
}

const toColumns = (fields: Array<{ key: string; type: FieldType; options: unknown; label: string }>): Column[] =>
  gridColumns(fields.map((f) => ({ key: f.key, type: f.type, options: (f.options as string[] | null) ?? null, label: f.label })));

async function columnsOf(ctx: AppContext, audienceId: string): Promise<Column[]> {
  return toColumns(await store.fieldsAvailable(ctx.db, audienceId));
}

/** Scope ids already looked up (with the audience): those of them that are the audience's own. */
interface KnownScope {
  looked: { events: Set<string>; communities: Set<string> };
  events: Set<string>;
  communities: Set<string>;
}

/** Events and communities named in a filter must be the audience's own. */
async function scopeProblems(ctx: AppContext, audienceId: string, f: CheckedFilter, known?: KnownScope): Promise<string[]> {
  const unknown = (ids: string[], looked?: Set<string>) => (looked ? ids.filter((id) => !looked.has(id)) : ids);
  const [events, communities] = await Promise.all([
    grid.existingScopeIds(ctx.db, 'events', audienceId, unknown(f.eventIds, known?.looked.events)),
    grid.existingScopeIds(ctx.db, 'communities', audienceId, unknown(f.communityIds, known?.looked.communities)),
  ]);
  const isEvent = (id: string) => events.has(id) || known?.events.has(id) === true;
  const isCommunity = (id: string) => communities.has(id) || known?.communities.has(id) === true;
  return [
    ...f.eventIds.filter((id) => !isEvent(id)).map((id) => `filter: ${id} is not an event of this audience`),
    ...f.communityIds.filter((id) => !isCommunity(id)).map((id) => `filter: ${id} is not a community of this audience`),
  ];
}

function invalid(problems: string[], view?: { name: string }): AppError {
  const more = problems.length > 1 ? ` (and ${problems.length - 1} more problem${problems.length > 2 ? 's' : ''})` : '';
  if (view) {
    return badRequest('view_invalid', `the saved view "${view.name}" no longer fits this audience: ${problems[0]}${more}; edit the view`, problems);
  }
  const area = /^(filter|sort|columns)/.exec(problems[0] ?? '')?.[1] ?? 'query';
  return badRequest(`invalid_${area}`, `${problems[0]}${more}`, problems);
}

async function checkedDefinition(ctx: AppContext, audienceId: string, input: GridQuery, view?: { name: string }, known?: { columns: Column[]; scope: KnownScope }) {
  const columns = known?.columns ?? (await columnsOf(ctx, audienceId));
  const v = checkView(input, columns);
  if (!v.ok) throw invalid(v.problems, view);
  const scope = await scopeProblems(ctx, audienceId, v.value.filter, known?.scope);
  if (scope.length) throw invalid(scope, view);
  return v.value;
}


/** `gridSetup` for an audience of the principal's: 404 when it is not one. */
async function setupFor(ctx: AppContext, p: Principal, audienceId: string, lookups: Parameters<typeof grid.gridSetup>[3]) {
  if (!canSeeAudience(p, audienceId)) throw notFound('audience');
  const setup = await grid.gridSetup(ctx.db, p.orgId, audienceId, lookups);
  if (!setup.found) throw notFound('audience');
  return setup;
}

/**
 * The checked query (or saved view) of a page. The audience, its fields, the view and the events
 * and communities the filter names come back from one statement (`gridSetup`); the errors are those
 * of the lookups one after another: audience, then view, then the definition.
 */
async function prepare(ctx: AppContext, p: Principal, audienceId: string, query: GridQuery | { view_id: string }): Promise<Prepared> {
  const viewId = 'view_id' in query ? query.view_id : null;
  // A saved view's filter is known only once it is read: its ids are checked afterwards.
  const candidates = viewId === null ? scopeIdCandidates((query as GridQuery).filter) : null;
  const setup = await setupFor(ctx, p, audienceId, {
    eventIds: candidates?.events ?? [],
    communityIds: candidates?.communities ?? [],
    viewId: viewId !== null && isUuid(viewId) ? viewId : null,
  });
  remember(p, audienceId, setup.fieldsText);
  let def: GridQuery = query as GridQuery;
  let view: { name: string } | undefined;
  if (viewId !== null) {
    if (!setup.view) throw notFound('view');
    def = setup.view.definition as ViewDefinition;
    view = setup.view;
  }
  const looked = { events: new Set(candidates?.events), communities: new Set(candidates?.communities) };
  const v = await checkedDefinition(ctx, audienceId, def, view, {
    columns: toColumns(setup.fields),
    scope: { looked, events: setup.events, communities: setup.communities },
  });
  return { audienceId, fieldsText: setup.fieldsText, columns: v.columns, filter: v.filter, sort: v.sort, q: quickSearch(def) };
}

const quickSearch = (def: GridQuery) => (typeof def.q === 'string' && def.q.trim() ? def.q.trim().slice(0, 200) : null);

// The fields last read for an audience, per organisation, in this process: a guess that lets a page
// start at the same time as the lookups it depends on. Never trusted: every request reads the fields
// again, and a page built on other fields than those is thrown away and run again, so a field changed
// by any process counts at once and nothing needs invalidating.
const lastFields = new Map<string, { fieldsText: string; columns: Column[] }>();
const LAST_FIELDS_MAX = 1000;
const audienceKey = (p: Principal, audienceId: string) => `${p.orgId}/${audienceId.toLowerCase()}`;

function remember(p: Principal, audienceId: string, fieldsText: string) {
  const key = audienceKey(p, audienceId);
  if (lastFields.get(key)?.fieldsText === fieldsText) return;
  lastFields.delete(key);
  lastFields.set(key, { fieldsText, columns: toColumns(JSON.parse(fieldsText)) });
  if (lastFields.size > LAST_FIELDS_MAX) lastFields.delete(lastFields.keys().next().value!);
}

/**
 * The page of a query on the fields last seen, run alongside `prepare` (one round trip for both
 * instead of one after the other); null when there is no guess to go on. Only for an audience this
 * organisation was found to have, so nothing runs for an audience the caller might not see.
 */
function guessedPrepared(p: Principal, audienceId: string, query: GridQuery): Prepared | null {
  if (!canSeeAudience(p, audienceId)) return null;
  const last = lastFields.get(audienceKey(p, audienceId));
  if (!last) return null;
  const v = checkView(query, last.columns);
  // The errors are those of the fields read now, which the plain path gives.
  if (!v.ok) return null;
  return { audienceId, fieldsText: last.fieldsText, columns: v.value.columns, filter: v.value.filter, sort: v.value.sort, q: quickSearch(query) };
}

function toItem(row: grid.RawGridRow, columns: Column[]): GridRow {
  const item: GridRow = { id: row.id };
  const fields = (row.fields ?? {}) as Record<string, unknown>;
  for (const col of columns) item[col.key] = (col.source === 'field' ? fields[col.key] : row[col.key]) ?? null;
  return item;
}

async function runPage(ctx: AppContext, prep: Prepared, paging: Paging): Promise<GridPage> {
  const limit = Math.min(Math.max(Math.trunc(paging.limit ?? 50), 1), MAX_PAGE);
  const offset = Math.max(Math.trunc(paging.offset ?? 0), 0);
  let cursor: CursorPosition | null = null;
  if (paging.cursor) {
    if (offset > 0) throw badRequest('invalid_paging', 'give either a cursor or an offset, not both');
    const c = decodeCursor(paging.cursor, prep.sort);
    if (!c.ok) throw badRequest('invalid_cursor', c.problems[0]!);
    cursor = c.value;
  }
  const scope: grid.Scope = { audienceId: prep.audienceId, condition: prep.filter.condition, q: prep.q, now: ctx.now() };
  const [rows, total] = await Promise.all([
    grid.fetchPage(ctx.db, scope, { sort: prep.sort, columns: prep.columns, cursor, limit: limit + 1, offset }),
    paging.count === false ? Promise.resolve(null) : grid.countContacts(ctx.db, scope),
  ]);
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return {
    items: page.map((r) => toItem(r, prep.columns)),
    total,
    next_cursor: rows.length > limit && last ? encodeCursor(prep.sort, { value: last.sort_key, id: last.id }) : null,
  };
}

/** One page of the grid: filter, sort, keyset (`cursor`) or `offset` paging, and the total unless `count: false`. */
export async function queryGrid(ctx: AppContext, p: Principal, audienceId: string, query: GridQuery & Paging): Promise<GridPage> {
  const guess = guessedPrepared(p, audienceId, query);
  if (!guess) return runPage(ctx, await prepare(ctx, p, audienceId, query), query);
  const [prep, page] = await Promise.allSettled([prepare(ctx, p, audienceId, query), runPage(ctx, guess, query)]);
  // The checks come first, as when they run before the page: an unknown audience is a 404 whatever the page did.
  if (prep.status === 'rejected') throw prep.reason;
  if (prep.value.fieldsText !== guess.fieldsText) return runPage(ctx, prep.value, query);
  if (page.status === 'rejected') throw page.reason;
  return page.value;
}

/**
 * Every row of a query or a saved view (`{ view_id }`), read in keyset batches (for exports). No
 * transaction is held between batches, so other work goes on meanwhile (PGlite is one session);
 * rows are those of `GridPage.items`, with the columns `gridQueryColumns` lists.
 */
export async function* streamGridRows(
  ctx: AppContext,
  p: Principal,
  audienceId: string,
  query: GridQuery | { view_id: string },
  batchSize = 1000,
): AsyncGenerator<GridRow, void, undefined> {
  const prep = await prepare(ctx, p, audienceId, query);
  const size = Math.min(Math.max(Math.trunc(batchSize), 1), 10_000);
  // One clock for the whole export: "locked" means the same thing in its first and last rows.
  const scope: grid.Scope = { audienceId, condition: prep.filter.condition, q: prep.q, now: ctx.now() };
  let cursor: CursorPosition | null = null;
  for (;;) {
    const rows = await grid.fetchPage(ctx.db, scope, { sort: prep.sort, columns: prep.columns, cursor, limit: size, offset: 0 });
    for (const r of rows) yield toItem(r, prep.columns);
    const last = rows[rows.length - 1];
    if (rows.length < size || !last) return;
    cursor = { value: last.sort_key, id: last.id };
  }
}

/** The columns (key, label, type) a query or saved view returns, in order: the header of an export. */
export async function gridQueryColumns(ctx: AppContext, p: Principal, audienceId: string, query: GridQuery | { view_id: string }) {
  const prep = await prepare(ctx, p, audienceId, query);
  return prep.columns.map(describeColumn);
}

const describeColumn = (col: Column) => ({
  key: col.key,
  label: col.label,
  type: col.type,
  options: col.options,
  source: col.source,
  operators: operatorsFor(col),
  sortable: col.type !== 'list',
  default: col.default,
});

/** Every column of the audience's grid with its operators: what a client needs to build filters. */
export async function listGridColumns(ctx: AppContext, p: Principal, audienceId: string) {
  const setup = await setupFor(ctx, p, audienceId, { eventIds: [], communityIds: [], viewId: null });
  return toColumns(setup.fields).map(describeColumn);
}

// ---- saved views ----

export interface ViewInput {
  name?: string;
  filter?: unknown;
  columns?: unknown;
  sort?: unknown;
}

type ViewRow = NonNullable<Awaited<ReturnType<typeof grid.findView>>>;

function viewOut(v: ViewRow) {
  const d = v.definition as unknown as ViewDefinition;
  return { id: v.id, name: v.name, filter: d.filter ?? null, columns: d.columns ?? null, sort: d.sort ?? null, created_at: v.created_at, updated_at: v.updated_at };
}

async function viewRow(ctx: AppContext, audienceId: string, viewId: string): Promise<ViewRow> {
  const v = isUuid(viewId) ? await grid.findView(ctx.db, audienceId, viewId) : undefined;
  if (!v) throw notFound('view');
  return v;
}

const nameTaken = (e: unknown) => (e as { code?: string })?.code === '23505';
const taken = (name: string) => conflict('view_exists', `a view named "${name}" already exists in this audience`);

function cleanName(name: string | undefined): string {
  const n = (name ?? '').trim();
  if (!n) throw badRequest('invalid_name', 'a view needs a name');
  return n;
}

export async function listViews(ctx: AppContext, p: Principal, audienceId: string) {
  await audienceFor(ctx, p, audienceId);
  return (await grid.listViews(ctx.db, audienceId)).map(viewOut);
}

export async function getView(ctx: AppContext, p: Principal, audienceId: string, viewId: string) {
  await audienceFor(ctx, p, audienceId);
  return viewOut(await viewRow(ctx, audienceId, viewId));
}

export async function createView(ctx: AppContext, p: Principal, audienceId: string, input: ViewInput) {
  await audienceFor(ctx, p, audienceId);
  const name = cleanName(input.name);
  const v = await checkedDefinition(ctx, audienceId, input);
  try {
    const row = await ctx.db
      .insertInto('saved_views')
      .values({ org_id: p.orgId, audience_id: audienceId, name, definition: JSON.stringify(v.definition) })
      .returningAll()
      .executeTakeFirstOrThrow();
    return viewOut(row);
  } catch (e) {
    if (nameTaken(e)) throw taken(name);
    throw e;
  }
}

/** Renames a view and/or replaces its filter, columns or sort (null resets one to the default). */
export async function updateView(ctx: AppContext, p: Principal, audienceId: string, viewId: string, input: ViewInput) {
  await audienceFor(ctx, p, audienceId);
  const row = await viewRow(ctx, audienceId, viewId);
  const before = row.definition as unknown as ViewDefinition;
  const name = input.name === undefined ? row.name : cleanName(input.name);
  const merged = {
    filter: 'filter' in input ? input.filter : before.filter,
    columns: 'columns' in input ? input.columns : before.columns,
    sort: 'sort' in input ? input.sort : before.sort,
  };
  const v = await checkedDefinition(ctx, audienceId, merged);
  try {
    const updated = await ctx.db
      .updateTable('saved_views')
      .set({ name, definition: JSON.stringify(v.definition), updated_at: ctx.now() })
      .where('id', '=', row.id)
      .returningAll()
      .executeTakeFirstOrThrow();
    return viewOut(updated);
  } catch (e) {
    if (nameTaken(e)) throw taken(name);
    throw e;
  }
}

export async function deleteView(ctx: AppContext, p: Principal, audienceId: string, viewId: string) {
  await audienceFor(ctx, p, audienceId);
  const row = await viewRow(ctx, audienceId, viewId);
  await ctx.db.deleteFrom('saved_views').where('id', '=', row.id).execute();
}

/** Runs a saved view: its filter, columns and sort, with the caller's paging. */
export async function queryView(ctx: AppContext, p: Principal, audienceId: string, viewId: string, paging: Paging): Promise<GridPage> {
  return runPage(ctx, await prepare(ctx, p, audienceId, { view_id: viewId }), paging);
}

// ---- bulk edit ----

export type BulkTargetInput = { view_id?: string; filter?: unknown; contact_ids?: string[] };

export interface BulkInput {
  target: BulkTargetInput;
  set: Record<string, unknown>;
}

export const MAX_BULK_IDS = 50_000;

/**
 * Sets the same values on every contact of a saved view, a filter or a list of ids: one transaction,
 * one UPDATE over the whole selection (no row-by-row work, whatever its size). Ids that are not
 * contacts of this audience are left alone.
 */
/**
 * The contacts a bulk action or a campaign is about: a saved view, a filter, or chosen ids, checked
 * against the audience. The caller has checked the audience is the principal's.
 */
export async function resolveTarget(ctx: AppContext, audienceId: string, target: BulkTargetInput, now: Date): Promise<grid.BulkTarget> {
  const given = (['view_id', 'filter', 'contact_ids'] as const).filter((k) => target[k] !== undefined);
  if (given.length !== 1) throw badRequest('invalid_target', 'target takes exactly one of view_id, filter or contact_ids');
  if (target.contact_ids !== undefined) {
    const ids = target.contact_ids;
    const bad = ids.find((id) => !isUuid(id));
    if (bad !== undefined) throw badRequest('invalid_target', `target.contact_ids: ${JSON.stringify(bad)} is not a contact id`);
    if (ids.length > MAX_BULK_IDS) throw badRequest('invalid_target', `target.contact_ids: at most ${MAX_BULK_IDS} ids; use a filter or a view for more`);
    return { kind: 'ids', audienceId, ids: [...new Set(ids.map((id) => id.toLowerCase()))] };
  }
  let filter: CheckedFilter;
  if (target.view_id !== undefined) {
    const view = await viewRow(ctx, audienceId, target.view_id);
    filter = (await checkedDefinition(ctx, audienceId, view.definition as unknown as ViewDefinition, view)).filter;
  } else {
    if (target.filter === null) throw badRequest('invalid_target', 'target.filter: give a filter; {"and": []} selects every contact');
    const f = checkFilter(target.filter, await columnsOf(ctx, audienceId));
    if (!f.ok) throw invalid(f.problems);
    const scope = await scopeProblems(ctx, audienceId, f.value);
    if (scope.length) throw invalid(scope);
    filter = f.value;
  }
  return { kind: 'scope', scope: { audienceId, condition: filter.condition, now } };
}

/** One page of the ids of a target, in id order after `after`: how campaigns walk their recipients. */
export function targetIdsPage(ctx: AppContext, target: grid.BulkTarget, after: string | null, limit: number): Promise<string[]> {
  return grid.matchingIds(ctx.db, target, after, limit);
}

/**
 * The same page with each contact as sending reads it: one range read of the target instead of ids
 * and then a lookup per id (which cost a campaign's resolution more than the page itself).
 */
export function targetContactsPage(ctx: AppContext, target: grid.BulkTarget, after: string | null, limit: number): Promise<SendingContactRow[]> {
  return grid.matchingRows<SendingContactRow>(ctx.db, target, after, limit, SENDING_COLUMNS);
}

export async function bulkUpdateContacts(ctx: AppContext, p: Principal, audienceId: string, input: BulkInput): Promise<{ updated: number }> {
  await audienceFor(ctx, p, audienceId);
  const problem = bulkSetProblem(input.set);
  if (problem) throw badRequest(/^email/.test(problem) ? 'email_not_bulk' : 'invalid_set', problem);

  const { fields, company_id, ...builtins } = input.set as { fields?: Record<string, unknown>; company_id?: unknown } & Record<string, unknown>;
  const central = await store.fieldsAvailable(ctx.db, audienceId);
  const checked = validateValues({ builtins, custom: fields ?? {} }, central.map(store.toFieldDef));
  if (!checked.ok) throw badRequest('invalid_values', checked.reason, checked.problems);
  if (company_id !== undefined && company_id !== null) {
    const company = isUuid(company_id)
      ? await ctx.db.selectFrom('companies').select('id').where('audience_id', '=', audienceId).where('id', '=', company_id).executeTakeFirst()
      : undefined;
    if (!company) throw badRequest('unknown_company', 'set.company_id names no company of this audience');
  }

  const now = ctx.now();
  const target = await resolveTarget(ctx, audienceId, input.target, now);

  const set: grid.BulkSet = {
    builtins: checked.value.builtins as Record<string, string | null>,
    companyId: company_id === undefined ? undefined : ((company_id as string | null) ?? null),
    fields: checked.value.custom,
  };
  const updated = await ctx.db.transaction().execute((trx) => grid.bulkUpdate(trx, target, set, now));
  return { updated };
}
