/**
 * The program runner: enters the contacts of date-field programs once per local day, and takes due
 * entries to their end (condition, then mail). It runs beside every worker; several runners on one
 * PostgreSQL share the work through leases, and the entries of one that dies come back to the others
 * when its lease ends. Waiting steps are rows: stopping a runner loses none of them.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { AppContext } from '../platform/context.ts';
import { onEntered, runDueEntries, scanDateFields, type RunLog } from './service.ts';

export class ProgramRunner {
  readonly id = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  readonly #ctx: AppContext;
  readonly #pollMs: number;
  readonly #leaseMs: number;
  readonly #batch: number;
  readonly #log: RunLog;
  #stopping = false;
  #loop: Promise<void> | null = null;
  #wake: (() => void) | null = null;
  #woken = false;
  #unsubscribe: (() => void) | null = null;

  constructor(ctx: AppContext, opts: { pollMs?: number; leaseMs?: number; batch?: number; log?: RunLog } = {}) {
    this.#ctx = ctx;
    this.#pollMs = opts.pollMs ?? 1000;
    this.#leaseMs = opts.leaseMs ?? 60_000;
    this.#batch = opts.batch ?? 20;
    this.#log = opts.log ?? ((level, msg, f) => level !== 'info' && process.stderr.write(`${JSON.stringify({ level, msg, ...f })}\n`));
  }

  start(): this {
    this.#unsubscribe = onEntered(this.#ctx.db, () => this.wake());
    this.#loop = this.#run();
    return this;
  }

  /** Looks for due work now rather than at the next poll. */
  wake() {
    this.#woken = true;
    this.#wake?.();
  }

  async stop() {
    this.#stopping = true;
    this.#unsubscribe?.();
    this.wake();
    await this.#loop;
  }

  /** One pass: every date-field program due for a look, then every due entry. */
  async tick(): Promise<void> {
    while (!this.#stopping && (await scanDateFields(this.#ctx, this.id, this.#leaseMs))) {}
    while (!this.#stopping && (await runDueEntries(this.#ctx, this.id, { leaseMs: this.#leaseMs, batch: this.#batch, log: this.#log })) > 0) {}
  }

  async #run() {
    while (!this.#stopping) {
      this.#woken = false;
      try {
        await this.tick();
      } catch (e) {
        this.#log('error', 'program runner pass failed', { runner: this.id, error: String((e as Error)?.stack ?? e) });
      }
      if (this.#stopping) break;
      // A wake during the pass (an entry written meanwhile) starts the next one at once.
      if (this.#woken) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, this.#pollMs);
        function done() {
          clearTimeout(timer);
          resolve();
        }
        this.#wake = done;
      });
      this.#wake = null;
    }
  }
}
