import { once } from 'node:events';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { sql, type RawBuilder } from 'kysely';
import type { AppContext } from '../platform/context.ts';
import type { FieldDef, ValidatedValues } from './rules.ts';
import { copyText, type ColumnPlan } from './import-rules.ts';
import type { RecordKind } from './service.ts';
import * as store from './store.ts';
import { monotonicUuidV7 } from '../platform/uuid-v7.ts';

// One for the process: ids keep rising across chunks, lanes and imports running at the same time.
const nextId = monotonicUuidV7();

/**
 * Writes the validated rows of an import, one chunk per transaction: the chunk goes into a temporary
 * staging table (COPY on PostgreSQL, one JSON parameter on PGlite), then one set-based statement
 * upserts the contacts by email and, for an import into an event or community, their participant /
 * member records. Measured on the 2-core machine, PostgreSQL's cost is the index and foreign-key
 * maintenance of `contacts`, not the transfer: the per-batch INSERT ... unnest statements it replaces
 * spent as much again on array parameters and on rows returned to this process.
 */

export interface WriteTarget {
  orgId: string;
  audienceId: string;
  kind: RecordKind | null;
  scopeId: string | null;
  /** custom fields visible where the rows are written */
  custom: FieldDef[];
}

export interface ChunkCounts {
  created: number;
  updated: number;
  /** rows that updated a contact an earlier chunk of this import wrote */
  repeats: number;
  recordsCreated: number;
  recordsUpdated: number;
}

const KIND = {
  participant: { table: 'participants', scope: 'event_id' },
  member: { table: 'members', scope: 'community_id' },
} as const;

const STAGE = 'envoi_import_stage';
const STAGE_COLUMNS = ['id', 'record_id', 'email', 'email_lower', 'first_name', 'last_name', 'company', 'job_title', 'fields', 'data'] as const;
// ON COMMIT DROP: the table lives for one chunk's transaction, so a pooled connection (or PGlite's
// single session, shared by every import) never sees another import's rows.
const CREATE_STAGE = `CREATE TEMP TABLE ${STAGE} (id uuid NOT NULL, record_id uuid, email text NOT NULL, email_lower text NOT NULL, first_name text, last_name text, company text, job_title text, fields jsonb NOT NULL, data jsonb) ON COMMIT DROP`;

type Builtin = 'first_name' | 'last_name' | 'company' | 'job_title';
const BUILTIN_COLUMNS: Builtin[] = ['first_name', 'last_name', 'company', 'job_title'];

export class ImportWriter {
  /** this import's transaction ids (low 32 bits, as xmin holds them), to recognise rows it wrote itself */
  readonly #ours: number[] = [];
  readonly #builtinsSet: Builtin[];
  readonly #writesCustom: boolean;
  readonly #central: Set<string> | null;

  private constructor(
    private readonly ctx: AppContext,
    private readonly target: WriteTarget,
    columns: ColumnPlan[],
    private readonly emptyClears: boolean,
    /** a session of its own for COPY (PostgreSQL), or null to go through Kysely */
    private readonly client: pg.Client | null,
  ) {
    this.#builtinsSet = BUILTIN_COLUMNS.filter((k) => columns.some((c) => c.key === k));
    const central = new Set(target.custom.filter((f) => f.central).map((f) => f.key));
    this.#writesCustom = columns.some((c) => !c.builtin && central.has(c.key));
    // Into an event or community, local fields stay on the record; only central ones reach the contact.
    this.#central = target.kind ? central : null;
  }

  /**
   * On PostgreSQL the writer opens a connection of its own (the pool's clients are Kysely's and do not
   * expose COPY); the import holds it until `close`.
   */
  static async open(ctx: AppContext, target: WriteTarget, columns: ColumnPlan[], emptyClears: boolean): Promise<ImportWriter> {
    let client: pg.Client | null = null;
    if (ctx.database.kind === 'postgres' && ctx.config.databaseUrl) {
      client = new pg.Client({ connectionString: ctx.config.databaseUrl, application_name: 'envoi import' });
      // A connection lost mid-import fails the statement in flight; this only keeps it from crashing the process.
      client.on('error', () => {});
      await client.connect();
    }
    return new ImportWriter(ctx, target, columns, emptyClears, client);
  }

  async close() {
    await this.client?.end().catch(() => {});
  }

  /** Writes one chunk (distinct emails) in one transaction; returns what it did. */
  async write(rows: ValidatedValues[]): Promise<ChunkCounts> {
    const now = this.ctx.now();
    const merge = this.#merge(now);
    const res = this.client ? await this.#writeByCopy(rows, merge) : await this.#writeByJson(rows, merge);
    this.#ours.push(Number(res.xid));
    return {
      created: res.created,
      updated: res.written - res.created,
      repeats: res.repeats,
      recordsCreated: res.records_created,
      recordsUpdated: res.records_written - res.records_created,
    };
  }

  async #writeByCopy(rows: ValidatedValues[], merge: RawBuilder<MergeResult>): Promise<MergeResult> {
    const c = this.client!;
    const compiled = merge.compile(this.ctx.db);
    await c.query('BEGIN');
    try {
      await c.query(CREATE_STAGE);
      const copy = c.query(copyFrom(`COPY ${STAGE} (${STAGE_COLUMNS.join(', ')}) FROM STDIN`));
      const done = once(copy, 'finish');
      // Rows are sent in pieces of about 64 KB: one socket write per piece, not per row.
      let piece = '';
      for (const v of rows) {
        piece += this.#stageLine(v);
        if (piece.length >= 65_536) {
          if (!copy.write(piece)) await Promise.race([once(copy, 'drain'), done]);
          piece = '';
        }
      }
      copy.end(piece);
      await done;
      const r = await c.query<MergeResult>(compiled.sql, compiled.parameters as unknown[]);
      await c.query('COMMIT');
      return r.rows[0]!;
    } catch (e) {
      await c.query('ROLLBACK').catch(() => {});
      throw e;
    }
  }

  async #writeByJson(rows: ValidatedValues[], merge: RawBuilder<MergeResult>): Promise<MergeResult> {
    const staged = JSON.stringify(rows.map((v) => this.#stageObject(v)));
    return this.ctx.db.transaction().execute(async (trx) => {
      await sql.raw(CREATE_STAGE).execute(trx);
      await sql`insert into ${sql.raw(STAGE)} select * from json_to_recordset(${staged}::json)
        as t(id uuid, record_id uuid, email text, email_lower text, first_name text, last_name text, company text, job_title text, fields jsonb, data jsonb)`.execute(trx);
      return (await merge.execute(trx)).rows[0]!;
    });
  }

  /** The values of one contact on the staging row (PGlite: rows sent as one JSON parameter). */
  #stageObject(v: ValidatedValues) {
    const b = v.builtins;
    return {
      // Taken in the chunk's email order, so the new rows' ids rise with their emails (see platform/uuid-v7.ts).
      id: nextId(),
      record_id: this.target.kind ? nextId() : null,
      email: b.email!,
      email_lower: v.emailLower!,
      first_name: b.first_name ?? null,
      last_name: b.last_name ?? null,
      company: b.company ?? null,
      job_title: b.job_title ?? null,
      fields: this.#contactCustom(v),
      data: this.target.kind ? store.recordData(v) : null,
    };
  }

  /** The same as one line of COPY text, written out directly: this runs once per imported row. */
  #stageLine(v: ValidatedValues): string {
    const b = v.builtins;
    const kind = this.target.kind;
    const id = nextId();
    const recordId = kind ? nextId() : '\\N';
    const data = kind ? copyText(JSON.stringify(store.recordData(v))) : '\\N';
    return `${id}\t${recordId}\t${copyText(b.email!)}\t${copyText(v.emailLower!)}\t${copyText(b.first_name)}\t${copyText(b.last_name)}\t${copyText(b.company)}\t${copyText(b.job_title)}\t${copyText(JSON.stringify(this.#contactCustom(v)))}\t${data}\n`;
  }

  /** The custom values that go on the contact: all of them, or the central ones for an event or community. */
  #contactCustom(v: ValidatedValues): Record<string, unknown> {
    if (!this.#central) return v.custom;
    const custom: Record<string, unknown> = {};
    for (const k in v.custom) if (this.#central.has(k)) custom[k] = v.custom[k];
    return custom;
  }

  #merge(now: Date): RawBuilder<MergeResult> {
    const t = this.target;
    const set = [
      sql`email = excluded.email`,
      ...this.#builtinsSet.map((k) =>
        this.emptyClears ? sql`${sql.ref(k)} = excluded.${sql.ref(k)}` : sql`${sql.ref(k)} = coalesce(excluded.${sql.ref(k)}, contacts.${sql.ref(k)})`,
      ),
      ...(this.#writesCustom ? [sql`fields = contacts.fields || excluded.fields`] : []),
      sql`updated_at = ${now}`,
    ];
    // A subquery in RETURNING reads the snapshot taken before this statement, so it sees the version
    // of an updated row as it was: when that version's xmin is one of this import's earlier chunks,
    // the row repeats an email from earlier in the file rather than updating an existing contact.
    const repeat = this.#ours.length
      ? sql`(case when xmax = 0 then false else (select c.xmin::text::bigint from contacts c where c.id = contacts.id) = any(${this.#ours}::bigint[]) end)`
      : sql`false`;
    const stage = sql.raw(STAGE);
    const contacts = sql`
      insert into contacts (id, org_id, audience_id, email, email_lower, first_name, last_name, company, job_title, fields)
      select s.id, ${t.orgId}, ${t.audienceId}, s.email, s.email_lower, s.first_name, s.last_name, s.company, s.job_title, s.fields from ${stage} s
      on conflict (audience_id, email_lower) do update set ${sql.join(set)}
      returning id, email_lower, (xmax = 0) as inserted, ${repeat} as repeat`;
    if (!t.kind) {
      return sql<MergeResult>`with up as (${contacts})
        select count(*) filter (where inserted)::int as created, count(*)::int as written, count(*) filter (where repeat)::int as repeats,
          0 as records_created, 0 as records_written, (txid_current() % 4294967296)::bigint as xid
        from up`;
    }
    const k = KIND[t.kind];
    return sql<MergeResult>`with up as (${contacts}),
      rec as (
        insert into ${sql.table(k.table)} (id, org_id, audience_id, ${sql.ref(k.scope)}, contact_id, data)
        select s.record_id, ${t.orgId}, ${t.audienceId}, ${t.scopeId}, up.id, s.data from up join ${stage} s on s.email_lower = up.email_lower
        on conflict (${sql.ref(k.scope)}, contact_id) do update set data = ${sql.table(k.table)}.data || excluded.data, updated_at = ${now}
        returning (xmax = 0) as inserted)
      select count(*) filter (where inserted)::int as created, count(*)::int as written, count(*) filter (where repeat)::int as repeats,
        (select count(*) filter (where inserted) from rec)::int as records_created, (select count(*) from rec)::int as records_written,
        (txid_current() % 4294967296)::bigint as xid
      from up`;
  }
}

interface MergeResult {
  created: number;
  written: number;
  repeats: number;
  records_created: number;
  records_written: number;
  xid: number;
}
