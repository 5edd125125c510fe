import { StringDecoder } from 'node:string_decoder';
import { Readable, pipeline } from 'node:stream';
import { parse, type CsvError } from 'csv-parse';
import { sql, type Kysely, type Selectable } from 'kysely';
import type { AppContext } from '../platform/context.ts';
import type { DB, ImportsTable } from '../platform/schema.ts';
import { AppError, badRequest, notFound } from '../platform/errors.ts';
import type { Principal } from '../organisations/service.ts';
import { BUILTIN_FIELDS, contactPatchFromRecordEdit, type FieldDef, type ValidatedValues } from './rules.ts';
import {
  MAX_REPORTED_ERRORS,
  detectDelimiter,
  isBlankRecord,
  lineBreaks,
  mappingProblems,
  mergeLater,
  resolveColumns,
  rowValues,
  type ColumnPlan,
  type Delimiter,
  type ImportCounts,
  type ImportError,
  type Mapping,
  type MappableField,
} from './import-rules.ts';
import { audienceFor, communityFor, eventFor, type RecordKind } from './service.ts';
import * as store from './store.ts';

/** Above this an upload is refused (413): a contact file this large is a mistake, not a list. */
export const MAX_IMPORT_BYTES = 500 * 1024 * 1024;
/**
 * Rows per INSERT ... ON CONFLICT statement and per transaction. Measured on PostgreSQL on the 2-core
 * machine: 1,000 -> 2,000 gained about a third, 5,000 hardly more while holding each lock longer.
 */
export const DEFAULT_BATCH_SIZE = 2000;
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
  batchSize?: number;
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
 * Streams a CSV file into an audience: rows are validated one by one, bad rows are reported with their
 * line and left out, good rows are upserted by email in batches (one statement and one transaction
 * per batch). Memory stays flat whatever the file size: at most two batches are held, one being
 * written while the next is read.
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
    throw badRequest('not_utf8', 'the file is not UTF-8: save it as "CSV UTF-8" and try again');
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

  const writer = new BatchWriter(ctx, p, target, columns, opts.emptyClears ?? false, counts, recordCounts);
  const batchSize = Math.max(1, opts.batchSize ?? DEFAULT_BATCH_SIZE);
  let batch = new Map<string, ValidatedValues>();
  let inFlight: Promise<void> | null = null;
  const flush = async () => {
    if (inFlight) await inFlight;
    inFlight = null;
    if (batch.size === 0) return;
    const rows = batch;
    batch = new Map();
    // Written while the next batch is parsed: on PostgreSQL the database and this process work in parallel.
    const write = writer.write(rows).then(() => opts.onProgress?.({ ...counts }));
    write.catch(() => {}); // awaited below; this only keeps an early failure from being "unhandled"
    inFlight = write;
  };

  let failure: string | null = null;
  try {
    for (;;) {
      const next = await records.next();
      if (next.done) break;
      const start = line + 1;
      line += lineBreaks(next.value.raw);
      const record = next.value.record;
      if (isBlankRecord(record)) continue;
      counts.rows++;
      const r = rowValues(record, headers.length, columns, target.custom, { emptyClears: opts.emptyClears ?? false });
      if (!r.ok) {
        fail(start, r.reason);
        continue;
      }
      const key = r.value.emailLower!;
      const prior = batch.get(key);
      if (prior) {
        // Same email earlier in this batch: one upsert of the merged values, as two in a row would leave it.
        batch.set(key, mergeLater(prior, r.value));
        counts.duplicates++;
        counts.updated++;
      } else batch.set(key, r.value);
      if (batch.size >= batchSize) await flush();
    }
    const broken = parseFailure as CsvError | null;
    if (broken) {
      // csv-parse cannot resume after these: the rest of the file was one unreadable record.
      counts.rows++;
      fail(line + 1, `${csvProblem(broken)}; the file could not be read from this line to its end`);
    }
    await flush();
    if (inFlight) await inFlight;
  } catch (e) {
    if (inFlight) await (inFlight as Promise<void>).catch(() => {});
    failure = e instanceof AppError ? e.message : (e as Error)?.message ?? String(e);
    await finish('failed');
    throw e instanceof AppError ? new AppError(e.status, e.code, e.message, { report: await load() }) : e;
  }
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
 * unchanged for the parser; counts bytes against the size limit on the way.
 */
function sniffHeader(input: AsyncIterable<Buffer | string>, maxBytes: number) {
  const it = input[Symbol.asyncIterator]();
  const held: (Buffer | string)[] = [];
  let bytes = 0;
  const count = (chunk: Buffer | string) => {
    bytes += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
    if (bytes > maxBytes) throw new AppError(413, 'file_too_large', `the file is larger than the ${sizeText(maxBytes)} an import accepts`);
  };
  return {
    async head(): Promise<string> {
      const decoder = new StringDecoder('utf8');
      let text = '';
      for (;;) {
        const n = await it.next();
        if (n.done) break;
        count(n.value);
        held.push(n.value);
        text += typeof n.value === 'string' ? n.value : decoder.write(n.value);
        if (/[\r\n]/.test(text) || text.length > HEADER_SNIFF_BYTES) break;
      }
      return text.replace(/^\uFEFF/, '');
    },
    async *all(): AsyncGenerator<Buffer | string> {
      try {
        yield* held.splice(0);
        for (;;) {
          const n = await it.next();
          if (n.done) return;
          count(n.value);
          yield n.value;
        }
      } finally {
        // Stopped early (bad header, failure): release the upload or file rather than leave it paused.
        await it.return?.();
      }
    },
  };
}

const KIND = {
  participant: { table: 'participants', scope: 'event_id' },
  member: { table: 'members', scope: 'community_id' },
} as const;

/** Writes batches of validated rows: contacts upserted by email, then their participant / member records. */
class BatchWriter {
  /** this import's transaction ids (low 32 bits, as xmin holds them), to recognise rows it wrote itself */
  readonly #ours: number[] = [];
  readonly #builtinsSet: string[];
  readonly #centralKeys: Set<string>;
  readonly #writesCustom: boolean;
  readonly #defs: FieldDef[];

  constructor(
    private readonly ctx: AppContext,
    private readonly p: Principal,
    private readonly target: Target,
    columns: ColumnPlan[],
    private readonly emptyClears: boolean,
    private readonly counts: ImportCounts,
    private readonly recordCounts: { created: number; updated: number },
  ) {
    this.#builtinsSet = columns.filter((c) => c.builtin && c.key !== 'email').map((c) => c.key);
    this.#defs = target.custom;
    this.#centralKeys = new Set(target.custom.filter((f) => f.central).map((f) => f.key));
    this.#writesCustom = columns.some((c) => !c.builtin && this.#centralKeys.has(c.key));
  }

  async write(rows: Map<string, ValidatedValues>) {
    const values = [...rows.values()];
    const patches = this.target.kind ? values.map((v) => contactPatchFromRecordEdit(v, this.#defs)) : values;
    const col = (k: string) => patches.map((v) => (v.builtins as Record<string, string | null | undefined>)[k] ?? null);
    const lowers = [...rows.keys()];
    const now = this.ctx.now();

    await this.ctx.db.transaction().execute(async (trx) => {
      const set = [
        sql`email = excluded.email`,
        ...this.#builtinsSet.map((k) =>
          this.emptyClears ? sql`${sql.ref(k)} = excluded.${sql.ref(k)}` : sql`${sql.ref(k)} = coalesce(excluded.${sql.ref(k)}, contacts.${sql.ref(k)})`,
        ),
        ...(this.#writesCustom ? [sql`fields = contacts.fields || excluded.fields`] : []),
        sql`updated_at = ${now}`,
      ];
      // A subquery in RETURNING reads the snapshot taken before this statement, so it sees the version
      // of an updated row as it was: when that version's xmin is one of this import's earlier batches,
      // the row repeats an email from earlier in the file rather than updating an existing contact.
      const repeat = this.#ours.length
        ? sql`(case when xmax = 0 then false else (select c.xmin::text::bigint from contacts c where c.id = contacts.id) = any(${this.#ours}::bigint[]) end)`
        : sql`false`;
      const contacts = await sql<{ id: string; email_lower: string; inserted: boolean; repeat: boolean; xid: number }>`
        insert into contacts (org_id, audience_id, email, email_lower, first_name, last_name, company, job_title, fields)
        select ${this.p.orgId}, ${this.target.audienceId}, t.email, t.email_lower, t.first_name, t.last_name, t.company, t.job_title, t.fields
        from unnest(${col('email')}::text[], ${lowers}::text[], ${col('first_name')}::text[], ${col('last_name')}::text[],
          ${col('company')}::text[], ${col('job_title')}::text[], ${patches.map((v) => JSON.stringify(v.custom))}::jsonb[])
          as t(email, email_lower, first_name, last_name, company, job_title, fields)
        on conflict (audience_id, email_lower) do update set ${sql.join(set)}
        returning id, email_lower, (xmax = 0) as inserted, ${repeat} as repeat, (txid_current() % 4294967296)::bigint as xid`.execute(trx);
      this.#ours.push(Number(contacts.rows[0]!.xid));
      for (const r of contacts.rows) {
        if (r.inserted) this.counts.created++;
        else this.counts.updated++;
        if (r.repeat) this.counts.duplicates++;
      }

      if (this.target.kind) await this.#writeRecords(trx, rows, contacts.rows, now);
    });
  }

  async #writeRecords(trx: Kysely<DB>, rows: Map<string, ValidatedValues>, contacts: { id: string; email_lower: string }[], now: Date) {
    const k = KIND[this.target.kind!];
    const ids: string[] = [];
    const data: string[] = [];
    for (const c of contacts) {
      ids.push(c.id);
      data.push(JSON.stringify(store.recordData(rows.get(c.email_lower)!)));
    }
    const res = await sql<{ inserted: boolean }>`
      insert into ${sql.table(k.table)} (org_id, audience_id, ${sql.ref(k.scope)}, contact_id, data)
      select ${this.p.orgId}, ${this.target.audienceId}, ${this.target.scopeId}, t.contact_id, t.data
      from unnest(${ids}::uuid[], ${data}::jsonb[]) as t(contact_id, data)
      on conflict (${sql.ref(k.scope)}, contact_id) do update set data = ${sql.table(k.table)}.data || excluded.data, updated_at = ${now}
      returning (xmax = 0) as inserted`.execute(trx);
    const created = res.rows.filter((r) => r.inserted).length;
    this.recordCounts.created += created;
    this.recordCounts.updated += res.rows.length - created;
  }
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
