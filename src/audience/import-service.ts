import { StringDecoder } from 'node:string_decoder';
import { Readable, pipeline } from 'node:stream';
import { parse, type CsvError } from 'csv-parse';
import type { Selectable } from 'kysely';
import type { AppContext } from '../platform/context.ts';
import type { ImportsTable } from '../platform/schema.ts';
import { AppError, badRequest, notFound } from '../platform/errors.ts';
import type { Principal } from '../organisations/service.ts';
import { BUILTIN_FIELDS, type FieldDef } from './rules.ts';
import {
  MAX_REPORTED_ERRORS,
  detectDelimiter,
  isBlankRecord,
  lineBreaks,
  mappingProblems,
  resolveColumns,
  rowReader,
  type Delimiter,
  type ImportCounts,
  type ImportError,
  type Mapping,
  type MappableField,
} from './import-rules.ts';
import { audienceFor, communityFor, eventFor, type RecordKind } from './service.ts';
import * as store from './store.ts';
import { ImportSink } from './import-sink.ts';
import { NOT_UTF8_MESSAGE, utf16Decoder, utf16Of } from './csv-encoding.ts';

/** Above this an upload is refused (413): a contact file this large is a mistake, not a list. */
export const MAX_IMPORT_BYTES = 500 * 1024 * 1024;
/**
 * Rows per chunk: one staging COPY, one set-based upsert and one transaction each (see import-writer.ts).
 * Measured at 1,000,000 rows: 5,000 to 20,000 cost the same CPU per row; the process's peak heap grows
 * with the chunk (two lanes hold two chunks each: about 120 MB at 5,000, 170 MB at 10,000, 270 MB at 20,000).
 */
export const DEFAULT_BATCH_SIZE = 10_000;
/** Connections writing chunks in parallel on PostgreSQL (see import-sink.ts). */
export const DEFAULT_LANES = 2;
// A field longer than this is a broken quote swallowing the file, not a value (text fields hold 10,000).
const MAX_RECORD_CHARS = 1_000_000;
const HEADER_SNIFF_BYTES = 64 * 1024;

export interface ImportOptions {
  audienceId: string;
  /** register every row as a participant of this event (or member of this community) too */
  eventId?: string | null;
  communityId?: string | null;
  /** `{ "CSV header": "field key" | null }`; absent: headers matched to fields by key, label or usual alias */
  mapping?: Mapping | null;
  /** an empty cell clears the stored value (default: it leaves it) */
  emptyClears?: boolean;
  /** overrides the detection from the header line */
  delimiter?: Delimiter;
  /** rows per chunk (one transaction each) */
  batchSize?: number;
  /** connections writing chunks in parallel (PostgreSQL; PGlite has one) */
  lanes?: number;
  maxBytes?: number;
  source: 'http' | 'cli';
  onProgress?: (counts: ImportCounts) => void;
}

export interface ImportReport extends ImportCounts {
  id: string;
  /** running while rows are read; an import whose process died stays running */
  status: 'running' | 'completed' | 'failed';
  audience_id: string;
  event_id: string | null;
  community_id: string | null;
  delimiter: Delimiter;
  columns: { header: string; field: string }[];
  ignored_columns: string[];
  /** participant or member records written, for an import into an event or community */
  records: { kind: RecordKind; created: number; updated: number } | null;
  errors: ImportError[];
  error_count: number;
  failure: string | null;
  started_at: Date;
  finished_at: Date | null;
}

interface Target {
  audienceId: string;
  kind: RecordKind | null;
  scopeId: string | null;
  /** built-ins and custom fields visible where the rows are written */
  mappable: MappableField[];
  /** custom fields only, for validateValues */
  custom: FieldDef[];
}

const BUILTIN_LABELS: Record<string, string> = { email: 'Email', first_name: 'First name', last_name: 'Last name', company: 'Company', job_title: 'Job title' };

/** Access and mapping checks: everything that can be refused before a byte of the file is read. */
export async function prepareImport(ctx: AppContext, p: Principal, opts: Pick<ImportOptions, 'audienceId' | 'eventId' | 'communityId' | 'mapping'>): Promise<Target> {
  await audienceFor(ctx, p, opts.audienceId);
  if (opts.eventId && opts.communityId) throw badRequest('invalid_target', 'import into an event or a community, not both');
  let kind: RecordKind | null = null;
  let scopeId: string | null = null;
  let scope: { eventId?: string; communityId?: string } | undefined;
  if (opts.eventId) {
    const e = await eventFor(ctx, p, opts.eventId);
    if (e.audience_id !== opts.audienceId) throw notFound('event');
    [kind, scopeId, scope] = ['participant', e.id, { eventId: e.id }];
  } else if (opts.communityId) {
    const c = await communityFor(ctx, p, opts.communityId);
    if (c.audience_id !== opts.audienceId) throw notFound('community');
    [kind, scopeId, scope] = ['member', c.id, { communityId: c.id }];
  }
  const rows = await store.fieldsAvailable(ctx.db, opts.audienceId, scope);
  const custom = rows.map(store.toFieldDef);
  const mappable: MappableField[] = [
    ...BUILTIN_FIELDS.map((key) => ({ key, label: BUILTIN_LABELS[key], type: 'text' as const, options: null, central: true })),
    ...rows.map((f) => ({ ...store.toFieldDef(f), label: f.label })),
  ];
  if (opts.mapping) {
    const problems = mappingProblems(opts.mapping, mappable);
    if (problems.length) throw badRequest('invalid_mapping', problems.join('; '), problems);
  }
  return { audienceId: opts.audienceId, kind, scopeId, mappable, custom };
}

/**
 * Streams a CSV file into an audience: rows are validated one by one as they are parsed, bad rows are
 * reported with their line and left out, good rows are upserted by email in chunks (import-sink.ts:
 * one staging COPY, one set-based statement and one transaction per chunk, two connections at once on
 * PostgreSQL). Memory stays flat whatever the file size: each connection holds the chunk being
 * filled and the one being written.
 */
export async function importContacts(ctx: AppContext, p: Principal, opts: ImportOptions, input: AsyncIterable<Buffer | string>): Promise<ImportReport> {
  const target = await prepareImport(ctx, p, opts);
  const maxBytes = opts.maxBytes ?? MAX_IMPORT_BYTES;
  const source = sniffHeader(input, maxBytes);
  const head = await source.head();
  if (head.trim() === '') throw badRequest('empty_file', 'the file is empty: the first line must name the columns');
  const delimiter = opts.delimiter ?? detectDelimiter(head);

  const parser = parse({
    bom: true,
    delimiter,
    raw: true,
    relax_column_count: true,
    // A stray quote inside a value is kept as written rather than taking the rest of the file with it.
    relax_quotes: true,
    max_record_size: MAX_RECORD_CHARS,
    skip_records_with_error: true,
    on_skip: (err: CsvError | undefined) => {
      parseFailure = err ?? parseFailure;
      return undefined;
    },
  });
  let parseFailure: CsvError | null = null;
  pipeline(Readable.from(source.all()), parser, () => {});
  const records = parser[Symbol.asyncIterator]() as AsyncIterator<{ record: string[]; raw: string }>;

  let line = 0;
  const first = await records.next();
  if (first.done) throw badRequest('empty_file', 'the file is empty: the first line must name the columns');
  line += lineBreaks(first.value.raw);
  const headers = first.value.record.map((h) => h.trim());
  if (headers.some((h) => h.includes('\uFFFD'))) {
    await records.return?.();
    throw badRequest('not_utf8', NOT_UTF8_MESSAGE);
  }
  const resolved = resolveColumns(headers, target.mappable, opts.mapping ?? null);
  if (!resolved.ok) {
    await records.return?.();
    throw badRequest('invalid_mapping', resolved.reason, resolved.problems);
  }
  const { columns, ignored } = resolved.value;

  const run = await ctx.db
    .insertInto('imports')
    .values({
      org_id: p.orgId,
      audience_id: target.audienceId,
      event_id: target.kind === 'participant' ? target.scopeId : null,
      community_id: target.kind === 'member' ? target.scopeId : null,
      created_by: opts.source === 'cli' ? 'cli' : `${p.kind}:${p.id}`,
      source: opts.source,
      status: 'running',
      started_at: ctx.now(),
      delimiter,
      columns: JSON.stringify(columns.map((c) => ({ header: c.header, field: c.key }))),
      ignored_columns: JSON.stringify(ignored),
      errors: '[]',
    })
    .returning('id')
    .executeTakeFirstOrThrow();

  const counts: ImportCounts = { rows: 0, created: 0, updated: 0, skipped: 0, duplicates: 0 };
  const recordCounts = { created: 0, updated: 0 };
  const errors: ImportError[] = [];
  let errorCount = 0;
  const fail = (at: number, reason: string) => {
    errorCount++;
    counts.skipped++;
    if (errors.length < MAX_REPORTED_ERRORS) errors.push({ line: at, reason });
  };

  let sink: ImportSink | null = null;
  const report = () => {
    if (!sink) return;
    counts.created = sink.counts.created;
    counts.updated = sink.counts.updated;
    counts.duplicates = sink.counts.duplicates;
    recordCounts.created = sink.counts.recordsCreated;
    recordCounts.updated = sink.counts.recordsUpdated;
  };

  let failure: string | null = null;
  try {
    sink = await ImportSink.open(ctx, { orgId: p.orgId, ...target }, columns, {
      emptyClears: opts.emptyClears ?? false,
      batchSize: opts.batchSize ?? DEFAULT_BATCH_SIZE,
      lanes: opts.lanes ?? DEFAULT_LANES,
      onChunk: () => {
        report();
        opts.onProgress?.({ ...counts });
      },
    });
    const readRow = rowReader(headers.length, columns, target.custom, { emptyClears: opts.emptyClears ?? false });
    for (;;) {
      const next = await records.next();
      if (next.done) break;
      const start = line + 1;
      line += lineBreaks(next.value.raw);
      const record = next.value.record;
      if (isBlankRecord(record)) continue;
      counts.rows++;
      const r = readRow(record);
      if (!r.ok) {
        fail(start, r.reason);
        continue;
      }
      const full = sink.add(r.value);
      if (full) await full;
    }
    const broken = parseFailure as CsvError | null;
    if (broken) {
      // csv-parse cannot resume after these: the rest of the file was one unreadable record.
      counts.rows++;
      fail(line + 1, `${csvProblem(broken)}; the file could not be read from this line to its end`);
    }
    await sink.finish();
  } catch (e) {
    await sink?.close();
    report();
    failure = e instanceof AppError ? e.message : (e as Error)?.message ?? String(e);
    await finish('failed');
    throw e instanceof AppError ? new AppError(e.status, e.code, e.message, { report: await load() }) : e;
  }
  await sink.close();
  report();
  await finish('completed');
  return load();

  async function finish(status: 'completed' | 'failed') {
    await ctx.db
      .updateTable('imports')
      .set({
        status,
        rows: counts.rows,
        created: counts.created,
        updated: counts.updated,
        skipped: counts.skipped,
        duplicates: counts.duplicates,
        records_created: recordCounts.created,
        records_updated: recordCounts.updated,
        error_count: errorCount,
        errors: JSON.stringify(errors),
        failure,
        finished_at: ctx.now(),
      })
      .where('id', '=', run.id)
      .execute();
  }

  async function load(): Promise<ImportReport> {
    return getImport(ctx, p, target.audienceId, run.id);
  }
}

const sizeText = (bytes: number) => (bytes >= 1024 * 1024 ? `${Math.floor(bytes / 1024 / 1024)} MB` : `${bytes.toLocaleString('en-US')} bytes`);

function csvProblem(err: CsvError): string {
  if (err.code === 'CSV_QUOTE_NOT_CLOSED') return 'a quote opened on this line is never closed';
  if (err.code === 'CSV_MAX_RECORD_SIZE') return `a quote opened on this line is never closed (or the line is longer than ${MAX_RECORD_CHARS.toLocaleString('en-US')} characters)`;
  return err.message.replace(/ at line \d+.*$/, '');
}

/**
 * The first line of the upload, decoded, for the delimiter and encoding checks, then every byte
 * unchanged for the parser; counts bytes against the size limit on the way. A UTF-16 upload (its byte
 * order mark says so: Excel's "Unicode text") is decoded to text for the parser instead, the limit
 * still counted in the bytes received.
 */
function sniffHeader(input: AsyncIterable<Buffer | string>, maxBytes: number) {
  const it = input[Symbol.asyncIterator]();
  const held: (Buffer | string)[] = [];
  let bytes = 0;
  let utf16: ReturnType<typeof utf16Decoder> | null = null;
  let ended = false;
  const count = (chunk: Buffer | string) => {
    bytes += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
    if (bytes > maxBytes) throw new AppError(413, 'file_too_large', `the file is larger than the ${sizeText(maxBytes)} an import accepts`);
  };
  const decode = (chunk: Buffer | string) => (utf16 && typeof chunk !== 'string' ? utf16.write(chunk) : chunk);
  /** The next chunk as received, counted; null at the end. */
  const read = async (): Promise<Buffer | string | null> => {
    if (ended) return null;
    const n = await it.next();
    if (n.done) {
      ended = true;
      return null;
    }
    count(n.value);
    return n.value;
  };
  return {
    async head(): Promise<string> {
      let first = await read();
      // The byte order mark decides the encoding: two bytes, whatever the chunks.
      while (first !== null && typeof first !== 'string' && first.length < 2) {
        const more = await read();
        if (more === null) break;
        first = typeof more === 'string' ? first.toString('utf8') + more : Buffer.concat([first, more]);
      }
      if (first !== null && typeof first !== 'string') {
        const encoding = utf16Of(first);
        if (encoding) utf16 = utf16Decoder(encoding);
      }
      const decoder = new StringDecoder('utf8');
      let text = '';
      for (let chunk = first; chunk !== null; chunk = await read()) {
        const decoded = decode(chunk);
        held.push(decoded);
        text += typeof decoded === 'string' ? decoded : decoder.write(decoded);
        if (/[\r\n]/.test(text) || text.length > HEADER_SNIFF_BYTES) break;
      }
      return text.replace(/^\uFEFF/, '');
    },
    async *all(): AsyncGenerator<Buffer | string> {
      try {
        yield* held.splice(0);
        for (;;) {
          const chunk = await read();
          if (chunk === null) break;
          yield decode(chunk);
        }
        const rest = utf16?.end();
        if (rest) yield rest;
      } finally {
        // Stopped early (bad header, failure): release the upload or file rather than leave it paused.
        await it.return?.();
      }
    },
  };
}

// ---- reports ----

function toReport(row: Selectable<ImportsTable>): ImportReport {
  const kind: RecordKind | null = row.event_id ? 'participant' : row.community_id ? 'member' : null;
  return {
    id: row.id,
    status: row.status,
    audience_id: row.audience_id,
    event_id: row.event_id,
    community_id: row.community_id,
    rows: row.rows,
    created: row.created,
    updated: row.updated,
    skipped: row.skipped,
    duplicates: row.duplicates,
    records: kind ? { kind, created: row.records_created, updated: row.records_updated } : null,
    delimiter: row.delimiter as Delimiter,
    columns: row.columns,
    ignored_columns: row.ignored_columns,
    error_count: row.error_count,
    errors: row.errors,
    failure: row.failure,
    started_at: row.started_at,
    finished_at: row.finished_at,
  };
}

export async function getImport(ctx: AppContext, p: Principal, audienceId: string, importId: string) {
  await audienceFor(ctx, p, audienceId);
  const row = await ctx.db.selectFrom('imports').selectAll().where('audience_id', '=', audienceId).where('id', '=', importId).executeTakeFirst();
  if (!row) throw notFound('import');
  return toReport(row);
}

/** The audience's imports, newest first, without their error lists. */
export async function listImports(ctx: AppContext, p: Principal, audienceId: string, limit = 50) {
  await audienceFor(ctx, p, audienceId);
  const rows = await ctx.db.selectFrom('imports').selectAll().where('audience_id', '=', audienceId).orderBy('started_at', 'desc').orderBy('id').limit(limit).execute();
  return rows.map((r) => {
    const { errors: _errors, ...rest } = toReport(r);
    return rest;
  });
}
