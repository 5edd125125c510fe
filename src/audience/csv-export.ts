import { Readable, pipeline } from 'node:stream';
import { stringify } from 'csv-stringify';
import { sql } from 'kysely';
import type { AppContext } from '../platform/context.ts';
import type { Principal } from '../organisations/service.ts';
import { BUILTIN_FIELDS } from './rules.ts';
import { audienceFor } from './service.ts';
import { gridQueryColumns, streamGridRows, type GridQuery } from './grid-service.ts';
import * as store from './store.ts';

/**
 * CSV export of contacts. The writer takes its rows from any async iterable together with the column
 * list, so the same code serves the plain "all contacts" export (keyset walk below) and the grid's
 * view-filtered rows.
 */

export interface ExportColumn {
  key: string;
  label: string;
}

export type ExportRow = Record<string, unknown>;

/**
 * Spreadsheets run a cell that starts with = + - @ as a formula (and tab / carriage return can hide
 * such a start), so a contact who typed "=HYPERLINK(...)" as a name would run it on the organiser's
 * machine. A leading single quote makes the spreadsheet show the text as text. Applied to every cell,
 * headers included (labels are user-written too); numbers lose nothing since the importer strips the
 * quote again.
 */
export function neutraliseFormula(cell: string): string {
  return /^[=+\-@\t\r]/.test(cell) ? `'${cell}` : cell;
}

/** One value as CSV text: dates as ISO 8601, lists joined with "; " (what the importer splits on). */
export function formatCell(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (value instanceof Date) return value.toISOString();
  // Grid list columns (events, communities) hold {id, name}: the names are what a reader wants.
  if (Array.isArray(value)) return value.map((v) => (v && typeof v === 'object' && 'name' in v ? String(v.name) : formatCell(v))).join('; ');
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/** A grid row may carry custom values flat or under `fields`; a plain contact carries them under `fields`. */
export function cellOf(row: ExportRow, key: string): unknown {
  if (key in row) return row[key];
  const fields = row.fields;
  return fields && typeof fields === 'object' ? (fields as Record<string, unknown>)[key] : undefined;
}

export interface CsvOptions {
  delimiter?: ',' | ';';
  /** a UTF-8 byte order mark, which Excel needs to read accents right */
  bom?: boolean;
}

/** Header row then one line per row, streamed with back-pressure: rows are fetched as the client reads. */
export function csvStream(columns: ExportColumn[], rows: AsyncIterable<ExportRow>, opts: CsvOptions = {}): Readable {
  async function* records() {
    yield columns.map((c) => neutraliseFormula(c.label));
    for await (const row of rows) yield columns.map((c) => neutraliseFormula(formatCell(cellOf(row, c.key))));
  }
  // csv-stringify quotes a cell holding the record delimiter (\r\n) but not a lone \n or \r, which
  // Excel, LibreOffice and most CSV readers take as the end of the row: quote any line break.
  const out = stringify({ delimiter: opts.delimiter ?? ',', bom: opts.bom ?? false, record_delimiter: 'windows', quoted_match: /[\r\n]/ });
  // A failure half-way (database gone) destroys the output: the client sees a cut transfer, never a
  // silently short file that looks complete.
  return pipeline(Readable.from(records()), out, () => {});
}

const BUILTIN_LABELS: Record<string, string> = { email: 'Email', first_name: 'First name', last_name: 'Last name', company: 'Company', job_title: 'Job title' };

/** Built-ins, the central fields by label, then the bookkeeping columns (which an import ignores). */
export async function contactColumns(ctx: AppContext, audienceId: string): Promise<ExportColumn[]> {
  const central = await store.fieldsAvailable(ctx.db, audienceId);
  return [
    ...BUILTIN_FIELDS.map((key) => ({ key, label: BUILTIN_LABELS[key]! })),
    ...central.map((f) => ({ key: f.key, label: f.label })),
    { key: 'created_at', label: 'Created' },
    { key: 'updated_at', label: 'Updated' },
    { key: 'id', label: 'Contact id' },
  ];
}

/**
 * Every contact of the audience in creation order, `batchSize` at a time. The cursor is the
 * (created_at, id) of the last row with created_at kept as PostgreSQL text: a JS Date would drop the
 * microseconds and skip or repeat rows created in the same millisecond.
 */
export async function* allContacts(ctx: AppContext, audienceId: string, batchSize = 1000): AsyncGenerator<ExportRow> {
  type Cursor = { at: string; id: string };
  let after: Cursor | null = null;
  for (;;) {
    const cursor: Cursor | null = after;
    const page: (ExportRow & { id: string; cursor_at: string })[] = await ctx.db
      .selectFrom('contacts')
      .selectAll()
      .select(sql<string>`created_at::text`.as('cursor_at'))
      .where('audience_id', '=', audienceId)
      .$if(cursor !== null, (q) => q.where(sql<boolean>`(created_at, id) > (${cursor!.at}::timestamptz, ${cursor!.id}::uuid)`))
      .orderBy('created_at')
      .orderBy('id')
      .limit(batchSize)
      .execute();
    for (const row of page) {
      const { cursor_at: _c, ...contact } = row;
      yield contact;
    }
    if (page.length < batchSize) return;
    const last: { id: string; cursor_at: string } = page[page.length - 1]!;
    after = { at: last.cursor_at, id: last.id };
  }
}

export interface ExportRequest extends CsvOptions {
  audienceId: string;
  viewId?: string | null;
  /** the grid on screen (a filter, a sort, columns), when it is not a saved view */
  grid?: GridQuery;
  batchSize?: number;
}

/**
 * The CSV of an audience's contacts, or of a saved view's rows and columns (the grid's), after the
 * access checks: a 404 must be an error response, not a cut stream.
 */
export async function exportContacts(ctx: AppContext, p: Principal, req: ExportRequest): Promise<{ stream: Readable; filename: string }> {
  const audience = await audienceFor(ctx, p, req.audienceId);
  const filename = `${slug(audience.name)}-contacts.csv`;
  if (req.viewId || req.grid) {
    // The view or the grid decides the rows (filter and sort) and the columns; a missing view is a 404
    // and a bad filter a 400 here, before the first byte.
    const view = req.viewId ? { view_id: req.viewId } : req.grid!;
    const columns = await gridQueryColumns(ctx, p, req.audienceId, view);
    return { stream: csvStream(columns, streamGridRows(ctx, p, req.audienceId, view, req.batchSize), req), filename };
  }
  const columns = await contactColumns(ctx, req.audienceId);
  return { stream: csvStream(columns, allContacts(ctx, req.audienceId, req.batchSize), req), filename };
}

function slug(name: string): string {
  return name.normalize('NFD').replace(/[\u0300-\u036f]/g, '').replace(/[^A-Za-z0-9]+/g, '-').replace(/^-|-$/g, '').toLowerCase() || 'audience';
}
