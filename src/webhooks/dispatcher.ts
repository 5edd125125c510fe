/**
 * The webhook dispatcher: claims due deliveries, POSTs each event to its endpoint, signed, and
 * records the attempt: delivered on a 2xx, retried with backoff otherwise, failed after 24 hours.
 * It runs beside every worker; dispatchers on one PostgreSQL share the rows through leases, and the
 * rows of one that dies come back when its lease runs out (a receiver may then get a request twice:
 * X-Envoi-Delivery is there to de-duplicate).
 *
 * Sends run in parallel up to `concurrency`, and a claim is made whenever a slot frees, so a slow
 * receiver holds its own slots only, never a whole batch.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Agent, fetch as undiciFetch } from 'undici';
import type { AppContext } from '../platform/context.ts';
import { ipLiteralOf, isPublicAddress, PRIVATE_NETWORKS_HINT, publicOnlyLookup } from './address-policy.ts';
import { afterFailure, classify, requestBody, requestHeaders, RETRY_WINDOW_MS, SNIPPET_LENGTH, truncate, type AttemptResult } from './rules.ts';
import { onWebhookQueued } from './service.ts';
import * as store from './store.ts';

export type DispatcherLog = (level: 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>) => void;

export interface DispatcherOptions {
  id?: string;
  /** requests in flight */
  concurrency?: number;
  /** requests in flight to one endpoint, from this dispatcher */
  perEndpoint?: number;
  /** idle poll, for events written by other processes (and by the triggers) */
  pollMs?: number;
  leaseMs?: number;
  /** per request */
  timeoutMs?: number;
  /** events are kept this long, then deleted with their delivery log */
  retentionMs?: number;
  /** jitter source, [0, 1) */
  random?: () => number;
  /** the HTTP client (tests may wrap it); undici's fetch through an agent that keeps to the address policy by default */
  fetch?: WebhookFetch;
  log?: DispatcherLog;
}

export type WebhookFetch = (
  url: string,
  init: { method: 'POST'; headers: Record<string, string>; body: string; redirect: 'manual'; signal: AbortSignal },
) => Promise<{ status: number; headers: { get(name: string): string | null }; body: ReadableStream<Uint8Array> | null }>;

export interface DispatcherStats {
  attempts: number;
  delivered: number;
  retried: number;
  failed: number;
}

const PRUNE_EVERY_MS = 3_600_000;

const defaultLog: DispatcherLog = (level, message, fields) => {
  if (level === 'info') return;
  process.stderr.write(`${JSON.stringify({ level, time: new Date().toISOString(), msg: message, ...fields })}\n`);
};

export class WebhookDispatcher {
  readonly id: string;
  readonly stats: DispatcherStats = { attempts: 0, delivered: 0, retried: 0, failed: 0 };
  readonly #ctx: AppContext;
  readonly #concurrency: number;
  readonly #perEndpoint: number;
  readonly #pollMs: number;
  readonly #leaseMs: number;
  readonly #timeoutMs: number;
  readonly #retentionMs: number;
  readonly #random: () => number;
  readonly #fetch: WebhookFetch;
  readonly #agent: Agent | null = null;
  readonly #privateNetworks: boolean;
  readonly #log: DispatcherLog;
  /** endpoint id -> requests in flight */
  readonly #perEndpointInFlight = new Map<string, number>();
  readonly #inFlight = new Set<Promise<void>>();
  #stopping = false;
  #loop: Promise<void> | null = null;
  #wake: (() => void) | null = null;
  #dirty = false;
  #unsubscribe: (() => void) | null = null;
  #lastPrune = 0;

  constructor(ctx: AppContext, opts: DispatcherOptions = {}) {
    this.#ctx = ctx;
    this.id = opts.id ?? `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
    this.#concurrency = opts.concurrency ?? 16;
    this.#perEndpoint = opts.perEndpoint ?? 4;
    this.#pollMs = opts.pollMs ?? 1000;
    // Well above the request timeout: a lease never runs out under a request still waiting for its answer.
    this.#leaseMs = opts.leaseMs ?? 60_000;
    this.#timeoutMs = opts.timeoutMs ?? 10_000;
    this.#retentionMs = opts.retentionMs ?? 30 * 86_400_000;
    this.#random = opts.random ?? Math.random;
    this.#privateNetworks = ctx.config.webhookPrivateNetworks;
    if (opts.fetch) this.#fetch = opts.fetch;
    else {
      // The address is checked where the socket connects, so what a name resolves to later counts too.
      const agent = new Agent(this.#privateNetworks ? {} : { connect: { lookup: publicOnlyLookup() } });
      this.#agent = agent;
      this.#fetch = (url, init) => undiciFetch(url, { ...init, dispatcher: agent }) as ReturnType<WebhookFetch>;
    }
    this.#log = opts.log ?? defaultLog;
  }

  start(): this {
    this.#unsubscribe = onWebhookQueued(this.#ctx.db, () => this.wake());
    this.#loop = this.#run();
    this.#log('info', 'webhook dispatcher started', { dispatcher: this.id });
    return this;
  }

  /** Looks for due deliveries now rather than at the next poll. */
  wake() {
    this.#dirty = true;
    const w = this.#wake;
    this.#wake = null;
    w?.();
  }

  /** Stops claiming and waits for the requests in flight to be recorded. */
  async stop() {
    this.#stopping = true;
    this.wake();
    await this.#loop;
    this.#unsubscribe?.();
    await this.#agent?.close().catch(() => {});
    this.#log('info', 'webhook dispatcher stopped', { dispatcher: this.id, ...this.stats });
  }

  /**
   * One claim for the free slots; resolves once the requests it started are recorded. Returns how
   * many it claimed. What tests call when they drive the dispatcher by hand.
   */
  async runOnce(): Promise<number> {
    const started = await this.#claimAndStart();
    await Promise.all(started);
    return started.length;
  }

  async #claimAndStart(): Promise<Promise<void>[]> {
    const free = this.#concurrency - this.#inFlight.size;
    if (free <= 0) return [];
    const now = this.#ctx.now();
    const rows = await store.claim(this.#ctx.db, {
      holder: this.id,
      now,
      leaseUntil: new Date(now.getTime() + this.#leaseMs),
      retryUntil: new Date(now.getTime() + RETRY_WINDOW_MS),
      limit: free,
      perEndpoint: this.#perEndpoint,
      inFlight: this.#perEndpointInFlight,
    });
    return rows.map((row) => {
      this.#perEndpointInFlight.set(row.endpoint_id, (this.#perEndpointInFlight.get(row.endpoint_id) ?? 0) + 1);
      const task = this.#attempt(row)
        .catch((e) => this.#log('error', 'webhook attempt could not be recorded', { dispatcher: this.id, delivery: row.id, error: String((e as Error)?.stack ?? e) }))
        .finally(() => {
          this.#inFlight.delete(task);
          const n = (this.#perEndpointInFlight.get(row.endpoint_id) ?? 1) - 1;
          if (n > 0) this.#perEndpointInFlight.set(row.endpoint_id, n);
          else this.#perEndpointInFlight.delete(row.endpoint_id);
          this.wake();
        });
      this.#inFlight.add(task);
      return task;
    });
  }

  async #run() {
    while (!this.#stopping) {
      let claimed = 0;
      try {
        this.#dirty = false;
        claimed = (await this.#claimAndStart()).length;
        await this.#maybePrune();
      } catch (e) {
        this.#log('error', 'webhook claim failed', { dispatcher: this.id, error: String((e as Error)?.stack ?? e) });
        await this.#idle(1000);
        continue;
      }
      // A full claim may have left more due rows behind; otherwise wait for a slot, a wake or the poll.
      if (claimed > 0 && this.#inFlight.size < this.#concurrency) continue;
      await this.#idle(this.#pollMs);
    }
    await Promise.all(this.#inFlight);
  }

  #idle(ms: number): Promise<void> {
    if (this.#dirty || this.#stopping) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wake = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#wake = done;
    });
  }

  async #maybePrune() {
    const now = this.#ctx.now().getTime();
    if (now - this.#lastPrune < PRUNE_EVERY_MS) return;
    this.#lastPrune = now;
    let removed = 0;
    for (let n = 1; n > 0 && !this.#stopping; removed += n) n = await store.pruneEvents(this.#ctx.db, new Date(now - this.#retentionMs), 5000);
    if (removed) this.#log('info', 'old webhook events removed', { dispatcher: this.id, removed });
  }

  async #attempt(row: store.ClaimedDelivery): Promise<void> {
    const body = requestBody({ id: row.event_id, type: row.type, occurred_at: new Date(row.occurred_at), org_id: row.org_id, payload: row.payload });
    const started = this.#ctx.now();
    const t0 = performance.now();
    const { result, snippet } = await this.#post(row.url, { secret: row.secret, type: row.type, deliveryId: row.id, body, now: started });
    const duration = Math.round(performance.now() - t0);
    const verdict = classify(result);
    const statusCode = result.kind === 'response' ? result.status : null;
    const now = this.#ctx.now();
    this.stats.attempts++;
    let outcome: store.AttemptOutcome;
    if (verdict.delivered) {
      this.stats.delivered++;
      outcome = { id: row.id, status: 'delivered', next_attempt_at: null, at: started, status_code: statusCode, error: null, response_snippet: snippet, duration_ms: duration };
    } else {
      const next = afterFailure({ attempt: row.attempts - row.series_base, now, retryUntil: new Date(row.retry_until), random: this.#random() });
      if (next.retry) this.stats.retried++;
      else this.stats.failed++;
      outcome = {
        id: row.id,
        status: next.retry ? 'pending' : 'failed',
        next_attempt_at: next.retry ? next.at : null,
        at: started,
        status_code: statusCode,
        error: next.retry ? verdict.error : `${verdict.error}; ${next.why}`,
        response_snippet: snippet,
        duration_ms: duration,
      };
    }
    if (!(await store.recordAttempt(this.#ctx.db, this.id, outcome))) {
      this.#log('warn', 'webhook attempt not recorded: the delivery was replayed or taken over meanwhile', { dispatcher: this.id, delivery: row.id });
    }
  }

  async #post(url: string, o: Parameters<typeof requestHeaders>[0]): Promise<{ result: AttemptResult; snippet: string | null }> {
    // An IP literal is connected to without a lookup: the policy is applied to it here. (An endpoint saved
    // while the instance allowed private networks is refused once it no longer does.)
    const literal = this.#privateNetworks ? null : ipLiteralOf(new URL(url).hostname);
    if (literal !== null && !isPublicAddress(literal)) {
      return { result: { kind: 'error', error: `refused: ${literal} is a private, loopback or reserved address (${PRIVATE_NETWORKS_HINT})` }, snippet: null };
    }
    try {
      const res = await this.#fetch(url, {
        method: 'POST',
        headers: requestHeaders(o),
        body: o.body,
        // A redirect could lead a signed request with contact data anywhere: the receiver gives its final URL.
        redirect: 'manual',
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
      const snippet = await readSnippet(res);
      return { result: { kind: 'response', status: res.status, location: res.headers.get('location') }, snippet };
    } catch (e) {
      return { result: { kind: 'error', error: describeError(e, this.#timeoutMs) }, snippet: null };
    }
  }
}

/** The start of the answer, for the log; the rest is not read (a receiver may answer with megabytes). */
async function readSnippet(res: Awaited<ReturnType<WebhookFetch>>): Promise<string | null> {
  if (!res.body) return null;
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < SNIPPET_LENGTH * 4) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
  } catch {
    // a body cut short still tells what it began with
  } finally {
    reader.cancel().catch(() => {});
  }
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? truncate(text, SNIPPET_LENGTH) : null;
}

function describeError(e: unknown, timeoutMs: number): string {
  const err = e as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (err?.name === 'TimeoutError' || err?.name === 'AbortError') return `no answer within ${timeoutMs / 1000} s`;
  const cause = err?.cause;
  if (cause?.code) return truncate(`${cause.code}${cause.message ? `: ${cause.message}` : ''}`, 500);
  return truncate(String(err?.message ?? e), 500);
}
