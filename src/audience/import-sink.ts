import type { AppContext } from '../platform/context.ts';
import type { ValidatedValues } from './rules.ts';
import { laneOf, mergeLater, type ColumnPlan } from './import-rules.ts';
import { ImportWriter, type WriteTarget } from './import-writer.ts';

export interface SinkCounts {
  created: number;
  updated: number;
  duplicates: number;
  recordsCreated: number;
  recordsUpdated: number;
}

interface Lane {
  writer: ImportWriter;
  batch: Map<string, ValidatedValues>;
  inFlight: Promise<void> | null;
}

/**
 * Takes the validated rows of an import and writes them in chunks, each lane on a connection of its
 * own. Rows are given to a lane by their email, so every row of one address goes through the same
 * lane in file order and the later row still wins; lanes write different contacts and never wait
 * for each other. On PostgreSQL two lanes keep both cores busy (the database's index and
 * foreign-key work is most of an import's cost); PGlite is one session, so one lane.
 *
 * Memory stays flat whatever the file size: each lane holds the chunk it is filling and the one
 * being written.
 */
export class ImportSink {
  readonly counts: SinkCounts = { created: 0, updated: 0, duplicates: 0, recordsCreated: 0, recordsUpdated: 0 };
  #failure: unknown = null;

  private constructor(
    private readonly lanes: Lane[],
    private readonly batchSize: number,
    private readonly onChunk: () => void,
  ) {}

  static async open(
    ctx: AppContext,
    target: WriteTarget,
    columns: ColumnPlan[],
    opts: { emptyClears: boolean; batchSize: number; lanes: number; onChunk: () => void },
  ): Promise<ImportSink> {
    const n = ctx.database.kind === 'postgres' ? Math.max(1, opts.lanes) : 1;
    const writers: ImportWriter[] = [];
    try {
      for (let i = 0; i < n; i++) writers.push(await ImportWriter.open(ctx, target, columns, opts.emptyClears));
    } catch (e) {
      await Promise.all(writers.map((w) => w.close()));
      throw e;
    }
    return new ImportSink(
      writers.map((writer) => ({ writer, batch: new Map(), inFlight: null })),
      Math.max(1, opts.batchSize),
      opts.onChunk,
    );
  }

  /** Takes one row; returns a promise (to await) only when its lane's chunk is full and goes out. */
  add(v: ValidatedValues): Promise<void> | undefined {
    if (this.#failure) throw this.#failure;
    const key = v.emailLower!;
    const lane = this.lanes.length === 1 ? this.lanes[0]! : this.lanes[laneOf(key, this.lanes.length)]!;
    const prior = lane.batch.get(key);
    if (prior) {
      // Same email earlier in this chunk: one upsert of the merged values, as two in a row would leave it.
      lane.batch.set(key, mergeLater(prior, v));
      this.counts.duplicates++;
      this.counts.updated++;
      return undefined;
    }
    lane.batch.set(key, v);
    return lane.batch.size >= this.batchSize ? this.#flush(lane) : undefined;
  }

  /** Writes what is left and waits for every lane. */
  async finish() {
    await Promise.all(this.lanes.map((l) => this.#flush(l)));
    await Promise.all(this.lanes.map((l) => l.inFlight));
    if (this.#failure) throw this.#failure;
  }

  /** Waits for the writes in flight (their chunks are committed or not, as they end) and closes the connections. */
  async close() {
    await Promise.all(this.lanes.map((l) => l.inFlight?.catch(() => {})));
    await Promise.all(this.lanes.map((l) => l.writer.close()));
  }

  async #flush(lane: Lane) {
    if (lane.inFlight) await lane.inFlight;
    lane.inFlight = null;
    if (lane.batch.size === 0) return;
    // In email order: consecutive inserts then land on neighbouring pages of the email indexes.
    const rows = [...lane.batch.values()].sort((a, b) => (a.emailLower! < b.emailLower! ? -1 : 1));
    lane.batch = new Map();
    // Written while the next chunk is read: the database and this process work in parallel.
    const write = lane.writer.write(rows).then(
      (r) => {
        this.counts.created += r.created;
        this.counts.updated += r.updated;
        this.counts.duplicates += r.repeats;
        this.counts.recordsCreated += r.recordsCreated;
        this.counts.recordsUpdated += r.recordsUpdated;
        this.onChunk();
      },
      (e) => {
        this.#failure ??= e;
        throw e;
      },
    );
    write.catch(() => {}); // awaited by the next flush, finish or close; this only keeps it from being "unhandled"
    lane.inFlight = write;
  }
}
