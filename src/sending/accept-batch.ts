/**
 * Coalescing of concurrent work into batches, for the accept path of the triggered API: requests that
 * arrive together (the same turn of the event loop) share one query per lookup and one commit, instead
 * of paying a database round trip each. Both helpers keep results per item: one item's failure is
 * that item's alone.
 */

/**
 * Runs `run` over the items submitted since the last run, at most `maxItems` at a time and at most
 * `maxInFlight` runs at once. A run starts at the end of the current event-loop turn, so everything
 * submitted in the same turn goes together; while `maxInFlight` runs are busy, items wait and the next
 * run takes all of them (up to `maxItems`): under load the batches grow by themselves, and an idle
 * server adds no waiting to a lone request.
 *
 * `run` answers each item by index: a value, or an Error for that item only. A rejected run (the
 * database is gone) fails every item of that run.
 */
export class Batcher<I, O> {
  readonly #run: (items: I[]) => Promise<(O | Error)[]>;
  readonly #maxItems: number;
  readonly #maxInFlight: number;
  #queue: { item: I; resolve: (o: O) => void; reject: (e: unknown) => void }[] = [];
  #inFlight = 0;
  #scheduled = false;
  /** runs made and items they carried, for the benchmark's report */
  readonly stats = { runs: 0, items: 0, largest: 0 };

  constructor(run: (items: I[]) => Promise<(O | Error)[]>, opts: { maxItems?: number; maxInFlight?: number } = {}) {
    this.#run = run;
    this.#maxItems = Math.max(1, opts.maxItems ?? 500);
    this.#maxInFlight = Math.max(1, opts.maxInFlight ?? 2);
  }

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.#queue.push({ item, resolve, reject });
      this.#schedule();
    });
  }

  #schedule() {
    if (this.#scheduled || this.#queue.length === 0 || this.#inFlight >= this.#maxInFlight) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#dispatch();
    });
  }

  #dispatch() {
    while (this.#queue.length > 0 && this.#inFlight < this.#maxInFlight) {
      const batch = this.#queue.splice(0, this.#maxItems);
      this.#inFlight++;
      this.stats.runs++;
      this.stats.items += batch.length;
      this.stats.largest = Math.max(this.stats.largest, batch.length);
      void this.#execute(batch);
    }
  }

  async #execute(batch: { item: I; resolve: (o: O) => void; reject: (e: unknown) => void }[]) {
    try {
      const results = await this.#run(batch.map((b) => b.item));
      batch.forEach((b, i) => {
        const r = results[i];
        if (i >= results.length) b.reject(new Error('the batch run gave no answer for this item'));
        else if (r instanceof Error) b.reject(r);
        else b.resolve(r as O);
      });
    } catch (e) {
      for (const b of batch) b.reject(e);
    } finally {
      this.#inFlight--;
      // What queued while this run was busy goes now, as one batch.
      if (this.#queue.length > 0) this.#dispatch();
    }
  }
}

/**
 * Looks up keys in batches: every `load` of the same event-loop turn is answered by one `fetch` of the
 * distinct keys. A key `fetch` does not return loads as undefined. Nothing is kept between batches:
 * each answer is as fresh as a query of its own would have been. By default one fetch runs at a time:
 * the keys that come while it runs wait for it and go together, which is what makes the batches grow
 * with the load.
 */
export class Loader<K, V> {
  readonly #batcher: Batcher<K, V | undefined>;

  constructor(fetch: (keys: K[]) => Promise<Map<string, V>>, keyOf: (k: K) => string, opts: { maxItems?: number; maxInFlight?: number } = {}) {
    this.#batcher = new Batcher<K, V | undefined>(
      async (keys) => {
        const distinct = new Map<string, K>();
        for (const k of keys) distinct.set(keyOf(k), k);
        const found = await fetch([...distinct.values()]);
        return keys.map((k) => found.get(keyOf(k)));
      },
      { maxItems: opts.maxItems ?? 1000, maxInFlight: opts.maxInFlight ?? 1 },
    );
  }

  load(key: K): Promise<V | undefined> {
    return this.#batcher.submit(key);
  }

  get stats() {
    return this.#batcher.stats;
  }
}
