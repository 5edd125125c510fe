/**
 * The per-API-key request counter, counted in memory and written to `rate_counters` in batches.
 *
 * One upsert per request made the key's counter row the hottest row of the database (every request of
 * a key serialised on its row lock, about a third of the rate of distinct inserts). Here each process
 * counts its own requests and adds them to the shared row at most every `flushMs`, all keys in one
 * statement; what the row returns is what the other processes have counted. A request is decided on
 * its position = (other processes' count, as last read) + (this process's count, including it), so:
 *  - with one API process the limit is exact;
 *  - with several, each sees the others' requests at most `staleMs` late (half a second), so together
 *    they may accept up to that much more than the limit in a window: the price of not sharing one
 *    hot row;
 *  - a window whose count this process has not read for `staleMs` (its first request, or a key idle
 *    for a while) is read from the row before deciding, so an idle process never decides on an old
 *    count. A busy one rereads it with every write, every `flushMs`, and does not wait.
 * Counts not yet written when a process dies are lost: at most `flushMs` of that process's requests.
 */
import type { Kysely } from 'kysely';
import type { DB } from '../platform/schema.ts';
import * as store from './store.ts';

interface WindowCount {
  key: string;
  windowStart: Date;
  /** requests this process counted in this window */
  local: number;
  /** of `local`, how many are in the row */
  written: number;
  /** the other processes' requests in this window, as the row last said */
  others: number;
  /** performance.now() of the last read of the row; -Infinity before the first */
  readAt: number;
  /** the read in progress, which requests of a stale window wait for rather than each starting one */
  reading: Promise<void> | null;
}

export class RateCounter {
  readonly #db: Kysely<DB>;
  readonly #flushMs: number;
  readonly #staleMs: number;
  readonly #windows = new Map<string, WindowCount>();
  #timer: NodeJS.Timeout | null = null;
  /** writes run one after the other, so that no count is added twice */
  #chain: Promise<void> = Promise.resolve();

  constructor(db: Kysely<DB>, opts: { flushMs?: number; staleMs?: number } = {}) {
    this.#db = db;
    this.#flushMs = opts.flushMs ?? 200;
    this.#staleMs = opts.staleMs ?? 500;
  }

  /** Counts one request of `key` in the window starting at `windowStart`; returns its position in the window (1 = first). */
  async count(key: string, windowStart: Date): Promise<number> {
    const id = `${key}|${windowStart.getTime()}`;
    let w = this.#windows.get(id);
    if (!w) {
      this.#forgetBefore(windowStart.getTime());
      w = { key, windowStart, local: 0, written: 0, others: 0, readAt: -Infinity, reading: null };
      this.#windows.set(id, w);
    }
    const mine = ++w.local;
    if (w.reading) await w.reading;
    else if (performance.now() - w.readAt > this.#staleMs) {
      const reading = this.#sync([w]).finally(() => {
        if (w.reading === reading) w.reading = null;
      });
      w.reading = reading;
      await reading;
    }
    this.#arm();
    return w.others + mine;
  }

  /** Writes every count not yet in the database (tests and shutdown; otherwise it runs by itself). */
  flush(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    const dirty = [...this.#windows.values()].filter((w) => w.local > w.written);
    return dirty.length ? this.#sync(dirty) : this.#chain;
  }

  #arm() {
    if (this.#timer || ![...this.#windows.values()].some((w) => w.local > w.written)) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.flush().then(
        () => this.#arm(),
        // The database is away (or closed): the counts stay in memory; the next request tries again.
        () => {},
      );
    }, this.#flushMs);
    this.#timer.unref();
  }

  /** One statement for all of `windows`: adds what each has not written yet, and reads back each total. */
  #sync(windows: WindowCount[]): Promise<void> {
    const run = async () => {
      const deltas = windows.map((w) => ({ w, upTo: w.local }));
      const rows = await store.addToRateCounters(
        this.#db,
        deltas.map((d) => ({ key: d.w.key, windowStart: d.w.windowStart, delta: d.upTo - d.w.written })),
      );
      const totals = new Map(rows.map((r) => [`${r.key}|${r.windowStart.getTime()}`, r.count]));
      const at = performance.now();
      for (const d of deltas) {
        const total = totals.get(`${d.w.key}|${d.w.windowStart.getTime()}`);
        d.w.written = d.upTo;
        if (total !== undefined) d.w.others = Math.max(0, total - d.upTo);
        d.w.readAt = at;
      }
    };
    const done = this.#chain.then(run);
    this.#chain = done.catch(() => {});
    return done;
  }

  /** Windows before the current one are no longer decided on; they go once written. */
  #forgetBefore(windowStartMs: number) {
    for (const [id, w] of this.#windows) if (w.windowStart.getTime() < windowStartMs && w.local === w.written) this.#windows.delete(id);
  }
}

const counters = new WeakMap<Kysely<DB>, RateCounter>();

/** The counter of one database handle (one per process in production; one per test app in tests). */
export function rateCounterFor(db: Kysely<DB>): RateCounter {
  let c = counters.get(db);
  if (!c) counters.set(db, (c = new RateCounter(db)));
  return c;
}
