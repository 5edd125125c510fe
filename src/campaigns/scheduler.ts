/**
 * The campaign scheduler: resolves due campaign runs into deliveries and marks finished ones
 * completed. It runs beside every worker; several schedulers on one PostgreSQL share the work
 * through leases, and one that dies leaves its campaign to the next after the lease.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { AppContext } from '../platform/context.ts';
import { completeFinished, runDue } from './service.ts';

export type SchedulerLog = (level: 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>) => void;

export class CampaignScheduler {
  readonly id = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  readonly #ctx: AppContext;
  readonly #pollMs: number;
  readonly #leaseMs: number;
  readonly #log: SchedulerLog;
  #stopping = false;
  #loop: Promise<void> | null = null;
  #wake: (() => void) | null = null;

  constructor(ctx: AppContext, opts: { pollMs?: number; leaseMs?: number; log?: SchedulerLog } = {}) {
    this.#ctx = ctx;
    this.#pollMs = opts.pollMs ?? 1000;
    this.#leaseMs = opts.leaseMs ?? 60_000;
    this.#log = opts.log ?? ((level, msg, f) => level !== 'info' && process.stderr.write(`${JSON.stringify({ level, msg, ...f })}\n`));
  }

  start(): this {
    this.#loop = this.#run();
    return this;
  }

  /** Looks for due campaigns now rather than at the next poll. */
  wake() {
    this.#wake?.();
  }

  async stop() {
    this.#stopping = true;
    this.wake();
    await this.#loop;
  }

  /** One pass: every due run, then the completion check. */
  async tick(): Promise<void> {
    while (!this.#stopping && (await runDue(this.#ctx, this.id, this.#leaseMs))) {}
    await completeFinished(this.#ctx);
  }

  async #run() {
    while (!this.#stopping) {
      try {
        await this.tick();
      } catch (e) {
        this.#log('error', 'campaign scheduler pass failed', { scheduler: this.id, error: String((e as Error)?.stack ?? e) });
      }
      if (this.#stopping) break;
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
