/**
 * The worker: claims due deliveries from the database, decides each recipient again (a hard bounce
 * or a closed event window since the message was accepted still stops it), renders from the compiled
 * template version, composes, sends, and records the outcome.
 *
 * Two claim loops, one per lane, each with its own pool of SMTP sessions: a transactional message is
 * claimed and sent while a bulk backlog drains, never behind it. A lane keeps up to two batches in
 * hand, so the next batch is claimed and loaded while the current one is being sent.
 *
 * Per message, the CPU is spent where the SMTP limit asks for it (BENCHMARKS.md, Campaign): the HTML
 * part of a versioned template is spliced from a skeleton encoded once per version
 * (src/mail/mime-skeleton.ts), the message is built as bytes (src/mail/compose.ts), and sent over
 * pipelined, reused sessions (src/mail/smtp-pool.ts).
 *
 * Crash safety: a claimed row carries this worker's lease. If the process dies, the row becomes due
 * again when the lease runs out and another worker sends it; only what this worker sent but had not
 * yet recorded can go out twice (at most its in-flight sends). Outcomes are written in groups (what
 * finished while the previous write ran), one statement per group.
 */
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import type { AppContext } from '../platform/context.ts';
import { isConnectionError } from '../platform/database.ts';
import type { Lane } from '../platform/schema.ts';
import { contactsForSending } from '../audience/service.ts';
import { decide, PolicyInputError, type Decision, type PolicyMessage } from '../consent/rules.ts';
import { render, TemplateError, type CompiledTemplate } from '../mail/render.ts';
import { compiledVersion, contactData } from '../mail/template-service.ts';
import type { VersionContent } from '../mail/template-store.ts';
import { composeMessage, ComposeError, deliveryTargets } from '../mail/compose.ts';
import { MessageBuffers } from '../mail/message-buffers.ts';
import { outboxTransport, type MailTransport } from '../mail/transport.ts';
import { relayTransport } from '../mail/relay-transport.ts';
import { encodeHtml, skeletonOf } from '../mail/mime-skeleton.ts';
import type { UnsubscribeLinks } from '../mail/unsubscribe-placeholders.ts';
import { afterTemporaryFailure, classifyFailure, type SmtpFailure } from './rules.ts';
import { repermissionLinks, trackingFor } from '../mail/tracking-tokens.ts';
import { addressFacts, compiledInline, emailKey, onQueued, policyMessage, policyRecipient, type InlineContent, type MessageScope, type SendingContact } from './service.ts';
import * as store from './store.ts';
import { DomainLimiter, domainOf } from './domain-limiter.ts';
import { recordClaim, recordOutcome } from '../platform/metrics.ts';

export type WorkerLog = (level: 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>) => void;

export interface WorkerOptions {
  id?: string;
  /** Defaults to the configuration's SMTP_URL; null sends to the development outbox. */
  smtpUrl?: string | null;
  /** Bulk sends in flight (and SMTP connections of the bulk lane). */
  concurrency?: number;
  /** Transactional sends in flight (and connections of the transactional lane). */
  transactionalConcurrency?: number;
  /** Sends in flight to one recipient domain, both lanes together. */
  domainConcurrency?: number;
  batchSize?: number;
  leaseMs?: number;
  /** Idle poll of each lane, for work queued by other processes. */
  pollMs?: { transactional: number; bulk: number };
  /** Jitter source, [0, 1). */
  random?: () => number;
  log?: WorkerLog;
}

export interface WorkerStats {
  claimed: number;
  recovered: number;
  sent: number;
  deferred: number;
  bounced: number;
  blocked: number;
  failed: number;
  batches: number;
}

const LANES: readonly Lane[] = ['transactional', 'bulk'];
/** Batches a lane has claimed and not finished at once (see #loop). */
const BATCHES_IN_HAND = 2;
const MESSAGE_TTL_MS = 60_000;

/**
 * `policy`: the policy's view of the message, the same for every recipient outside transactional
 * mail (only there does it name the recipient): read once per loaded message, not per recipient
 * (the organisation's settings are parsed for it).
 */
type MessageInfo = store.MessageForSending & { loadedAt: number; policy?: PolicyMessage };

/** What a batch needs about its recipients, loaded once for the batch. */
interface BatchFacts {
  contacts: Map<string, SendingContact>;
  /** per organisation */
  addresses: Map<string, Awaited<ReturnType<typeof addressFacts>>>;
}

const WRITE_AT_MOST = 500;

/**
 * Writes outcomes in groups. Each write has a cost of its own, whatever its size (planning, the
 * statement triggers of message_events, the commit): at the ~25 outcomes that finish during one write,
 * that was most of PostgreSQL's work per message, against a third of it at 250 (BENCHMARKS.md,
 * Campaign). So a group waits up to `groupMs` for more, unless it is full or someone drains (the end
 * of a batch, stop): the rows stay claimed by this worker meanwhile, so a crash resends no more than
 * before (what was claimed and not yet recorded), only an outcome shows up to `groupMs` later.
 * Transactional outcomes are written at once, with whatever is pending: their status is what a caller
 * of the API looks at next.
 */
export class Recorder {
  #pending: store.Outcome[] = [];
  #running: Promise<void> | null = null;
  #timer: NodeJS.Timeout | null = null;
  #draining = 0;
  #urgent = false;
  constructor(
    private readonly write: (batch: store.Outcome[]) => Promise<void>,
    private readonly groupMs = 100,
    private readonly groupSize = 250,
  ) {}

  /** `now`: written without waiting for a group (a transactional message's status is looked at at once). */
  push(o: store.Outcome, now = false) {
    this.#pending.push(o);
    if (now) this.#urgent = true;
    this.#schedule();
  }

  #schedule() {
    if (this.#running || this.#pending.length === 0) return;
    if (this.#pending.length >= this.groupSize || this.#draining > 0 || this.#urgent) this.#start();
    else this.#timer ??= setTimeout(() => this.#start(), this.groupMs);
  }

  #start() {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#running || this.#pending.length === 0) return;
    // What is left beyond this write keeps its urgency.
    if (this.#pending.length <= WRITE_AT_MOST) this.#urgent = false;
    this.#running = this.#run();
  }

  async #run() {
    try {
      await yieldToIo();
      await this.write(this.#pending.splice(0, WRITE_AT_MOST));
    } finally {
      this.#running = null;
      this.#schedule();
    }
  }

  /** Writes everything pushed so far, now; resolves once it is written. */
  async drain() {
    this.#draining++;
    try {
      this.#start();
      while (this.#running) await this.#running;
    } finally {
      this.#draining--;
    }
  }
}

/**
 * Lets pending socket events run. On PGlite the database runs on this thread, and queries chained
 * by `await` alone never give the event loop back: the SMTP replies would wait behind every query
 * of every loop (BENCHMARKS.md, Campaign, PGlite).
 */
const yieldToIo = () => new Promise<void>((resolve) => setImmediate(resolve));

async function mapLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const run = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, run));
}

const defaultLog: WorkerLog = (level, message, fields) => {
  if (level === 'info') return;
  process.stderr.write(`${JSON.stringify({ level, time: new Date().toISOString(), msg: message, ...fields })}\n`);
};

export class Worker {
  readonly id: string;
  readonly stats: WorkerStats = { claimed: 0, recovered: 0, sent: 0, deferred: 0, bounced: 0, blocked: 0, failed: 0, batches: 0 };
  readonly transports: Record<Lane, MailTransport>;
  readonly #ctx: AppContext;
  readonly #secret: string;
  readonly #batchSize: Record<Lane, number>;
  readonly #leaseMs: number;
  readonly #inFlight: Record<Lane, number>;
  readonly #poll: Record<Lane, number>;
  readonly #random: () => number;
  readonly #log: WorkerLog;
  readonly #recorder: Recorder;
  readonly #domains: DomainLimiter;
  readonly #buffers = new MessageBuffers();
  readonly #messages = new Map<string, MessageInfo>();
  #stopping = false;
  #loops: Promise<void>[] = [];
  #timers: NodeJS.Timeout[] = [];
  #waiters: Partial<Record<Lane, () => void>> = {};
  #dirty: Record<Lane, boolean> = { transactional: false, bulk: false };
  #busy = 0;
  #unsubscribe: (() => void) | null = null;
  /** Whether this instance's unsubscribe URLs serialise as themselves (see #unsubscribeLinks). */
  readonly #plainUnsubscribeUrls: boolean;
  #unlisten: Promise<() => Promise<void>> | null = null;

  constructor(ctx: AppContext, opts: WorkerOptions = {}) {
    this.#ctx = ctx;
    if (!ctx.config.secret) throw new Error('the worker signs tracking links: give it a context whose config has a secret (withSigningSecret)');
    this.#secret = ctx.config.secret;
    this.id = opts.id ?? `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
    const concurrency = opts.concurrency ?? ctx.config.workerConcurrency;
    this.#inFlight = { transactional: opts.transactionalConcurrency ?? 4, bulk: concurrency };
    // Bulk batches are larger: fewer claims, recipient loads and outcome writes per message.
    this.#batchSize = { transactional: opts.batchSize ?? 100, bulk: opts.batchSize ?? 250 };
    this.#leaseMs = opts.leaseMs ?? ctx.config.workerLeaseSeconds * 1000;
    this.#poll = opts.pollMs ?? { transactional: 250, bulk: 1000 };
    this.#random = opts.random ?? Math.random;
    this.#log = opts.log ?? defaultLog;
    const smtpUrl = opts.smtpUrl === undefined ? ctx.config.smtpUrl : opts.smtpUrl;
    // Bulk: two sends in flight per connection, the second's envelope pipelined behind the first's data
    // (src/mail/smtp-pool.ts). Transactional: one per connection, so that none waits behind another.
    const transport = (inFlight: number, perSession: 1 | 2) =>
      smtpUrl ? relayTransport({ url: smtpUrl, maxConnections: Math.ceil(inFlight / perSession), perSession, dkim: ctx.config.dkim }) : outboxTransport(ctx.db);
    this.transports = { transactional: transport(this.#inFlight.transactional, 1), bulk: transport(this.#inFlight.bulk, 2) };
    this.#recorder = new Recorder((batch) => this.#write(batch));
    const sample = deliveryTargets(ctx.config.publicUrl, ctx.config.secret, '00000000-0000-4000-8000-000000000000', ctx.config.bounceDomain).url;
    this.#plainUnsubscribeUrls = URL.canParse(sample) && new URL(sample).href === sample && !sample.includes('?') && !sample.includes('#');
    this.#domains = new DomainLimiter(opts.domainConcurrency ?? ctx.config.domainConcurrency);
  }

  /** Starts both claim loops; returns at once. */
  start(): this {
    this.#unsubscribe = onQueued(this.#ctx.db, (lane) => this.wake(lane));
    this.#unlisten = this.#ctx.database
      .listen(store.QUEUED_CHANNEL, (lane) => this.wake(lane === 'transactional' || lane === 'bulk' ? lane : undefined))
      .catch((e) => {
        this.#log('warn', 'cannot listen for new deliveries; polling only', { worker: this.id, error: String(e) });
        return async () => {};
      });
    this.#loops = LANES.map((lane) => this.#loop(lane));
    // A batch slower than expected keeps its rows: the lease is renewed while work is in flight.
    this.#timers.push(
      setInterval(() => {
        if (this.#busy === 0) return;
        const now = this.#ctx.now();
        store.renewLeases(this.#ctx.db, this.id, now, new Date(now.getTime() + this.#leaseMs)).catch((e) => this.#log('warn', 'lease renewal failed', { error: String(e) }));
      }, Math.max(500, Math.floor(this.#leaseMs / 3))),
    );
    this.#timers.push(
      setInterval(() => {
        store.purgeRateCounters(this.#ctx.db, new Date(this.#ctx.now().getTime() - 3_600_000)).catch(() => {});
      }, 300_000),
    );
    for (const t of this.#timers) t.unref();
    this.#log('info', 'worker started', { worker: this.id, transport: this.transports.bulk.kind });
    return this;
  }

  /** Stops claiming, finishes and records what is in flight, closes the SMTP pools. */
  async stop(): Promise<void> {
    this.#stopping = true;
    for (const lane of LANES) this.wake(lane);
    await Promise.all(this.#loops);
    await this.#recorder.drain();
    for (const t of this.#timers) clearInterval(t);
    this.#unsubscribe?.();
    await (await this.#unlisten)?.();
    await Promise.all(LANES.map((lane) => this.transports[lane].close()));
    this.#log('info', 'worker stopped', { worker: this.id, ...this.stats });
  }

  /** Looks for work in `lane` now rather than at the next poll. */
  wake(lane?: Lane) {
    for (const l of lane ? [lane] : LANES) {
      this.#dirty[l] = true;
      const w = this.#waiters[l];
      if (w) {
        this.#waiters[l] = undefined;
        w();
      }
    }
  }

  /**
   * Claims batch after batch. Up to two batches are in hand at once: the next one is claimed and
   * its recipients loaded while the previous one is still being sent, so the SMTP sessions do not
   * sit idle between batches.
   */
  async #loop(lane: Lane) {
    const running = new Set<Promise<void>>();
    while (!this.#stopping) {
      if (running.size >= BATCHES_IN_HAND) {
        await Promise.race(running);
        continue;
      }
      let batch: { claimed: number; done: Promise<void> } | null;
      try {
        batch = await this.#claimBatch(lane);
      } catch (e) {
        this.#log('error', 'worker batch failed', { worker: this.id, lane, error: String((e as Error)?.stack ?? e) });
        await this.#idle(lane, 1000);
        continue;
      }
      if (batch) {
        const done: Promise<void> = batch.done
          .catch((e) => this.#log('error', 'worker batch failed', { worker: this.id, lane, error: String((e as Error)?.stack ?? e) }))
          .finally(() => running.delete(done));
        running.add(done);
      } else if (running.size === 0) await this.#idle(lane, this.#poll[lane]);
      else await Promise.race(running); // nothing due now: look again once a batch in hand is done
    }
    await Promise.all(running);
  }

  #idle(lane: Lane, ms: number): Promise<void> {
    if (this.#dirty[lane] || this.#stopping) {
      this.#dirty[lane] = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        if (this.#waiters[lane] === done) this.#waiters[lane] = undefined;
        this.#dirty[lane] = false;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#waiters[lane] = done;
    });
  }

  /** Claims one batch of `lane` and sends it; resolves with the number of rows claimed once all are recorded. */
  async runOnce(lane: Lane): Promise<number> {
    const batch = await this.#claimBatch(lane);
    if (!batch) return 0;
    await batch.done;
    return batch.claimed;
  }

  /** Claims a batch and loads what its sends need; `done` resolves once every outcome is recorded. Null when nothing is due. */
  async #claimBatch(lane: Lane): Promise<{ claimed: number; done: Promise<void> } | null> {
    this.#dirty[lane] = false;
    await yieldToIo();
    const now = this.#ctx.now();
    const claimStart = performance.now();
    const rows = await store.claim(this.#ctx.db, { lane, workerId: this.id, now, leaseUntil: new Date(now.getTime() + this.#leaseMs), limit: this.#batchSize[lane] });
    recordClaim(lane, performance.now() - claimStart, rows.length);
    if (rows.length === 0) return null;
    this.#busy++;
    let batch: BatchFacts;
    try {
      this.stats.batches++;
      this.stats.claimed += rows.length;
      const recovered = rows.filter((r) => r.previous_status === 'sending');
      if (recovered.length) {
        this.stats.recovered += recovered.length;
        this.#log('warn', 'took over deliveries whose lease ran out', {
          worker: this.id,
          count: recovered.length,
          from: [...new Set(recovered.map((r) => r.previous_worker))],
          messages: [...new Set(recovered.map((r) => r.message_id))],
        });
      }
      await yieldToIo();
      batch = await this.#prepare(rows);
    } catch (e) {
      this.#busy--;
      throw e;
    }
    const done = (async () => {
      try {
        await mapLimit(rows, this.#inFlight[lane] * 2, async (row) => {
          const outcome = await this.#deliver(row, batch, lane).catch((e) => this.#unexpected(row, e));
          this.stats[outcome.status === 'sent' ? 'sent' : outcome.status]++;
          recordOutcome(outcome.status);
          if (outcome.status !== 'sent') {
            this.#log('info', 'delivery not sent', { worker: this.id, lane, message: row.message_id, delivery: row.id, status: outcome.status, error: outcome.last_error ?? null, smtp_response: outcome.smtp_response ?? null });
          }
          this.#recorder.push(outcome, lane === 'transactional');
        });
        await this.#recorder.drain();
      } finally {
        this.#busy--;
      }
    })();
    return { claimed: rows.length, done };
  }

  /**
   * The unsubscribe links of a recipient as render() takes them. Its localised forms (`?lang=fr`)
   * would parse and serialise the URL for every recipient; when this instance's URLs have no query
   * and serialise as themselves (checked once), appending the parameter gives the same strings.
   */
  #unsubscribeLinks(url: string): UnsubscribeLinks {
    if (!this.#plainUnsubscribeUrls) return url;
    return (language) => (language ? `${url}?lang=${language}` : url);
  }

  async #write(batch: store.Outcome[]) {
    // The rows stay this worker's until their lease runs out: through a database restart keep
    // trying until then, since outcomes given up on are of messages that will go out a second time.
    const giveUpAt = Date.now() + this.#leaseMs;
    for (let attempt = 0; ; attempt++) {
      try {
        const written = await store.recordOutcomes(this.#ctx.db, this.id, this.#ctx.now(), batch);
        if (written.length < batch.length) {
          this.#log('warn', 'some deliveries were taken over by another worker before their outcome was recorded', { worker: this.id, lost: batch.length - written.length });
        }
        return;
      } catch (e) {
        // Not recorded: the rows come back when their lease runs out, and may be sent twice.
        const delay = Math.min(200 * 2 ** attempt, 2000);
        if ((attempt >= 4 && !isConnectionError(e)) || Date.now() + delay > giveUpAt) {
          this.#log('error', 'could not record send outcomes', { worker: this.id, count: batch.length, error: String(e) });
          return;
        }
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /** A bug or an outage of ours, not the recipient's: retried on the normal schedule, so the deadline still ends it. */
  #unexpected(row: store.ClaimedDelivery, e: unknown): store.Outcome {
    const error = `internal error: ${(e as Error)?.message ?? String(e)}`.slice(0, 500);
    this.#log('error', 'delivery failed unexpectedly', { worker: this.id, message: row.message_id, delivery: row.id, error: String((e as Error)?.stack ?? e) });
    const next = afterTemporaryFailure(row.attempts, 'temporary', this.#ctx.now(), row.expires_at, this.#random());
    if (next.status === 'failed') return { id: row.id, status: 'failed', last_error: `${error}; ${next.why}`, event: 'failed', detail: { error, attempt: row.attempts } };
    return { id: row.id, status: 'deferred', due_at: next.dueAt, last_error: error, event: 'deferred', detail: { reason: 'internal', error, attempt: row.attempts, retry_at: next.dueAt.toISOString() } };
  }

  async #prepare(rows: store.ClaimedDelivery[]): Promise<BatchFacts> {
    const nowMs = Date.now();
    const missing = [...new Set(rows.map((r) => r.message_id))].filter((id) => {
      const m = this.#messages.get(id);
      return !m || nowMs - m.loadedAt > MESSAGE_TTL_MS;
    });
    for (const m of await store.messagesForSending(this.#ctx.db, missing)) this.#messages.set(m.id, { ...m, loadedAt: nowMs });
    if (this.#messages.size > 2000) {
      for (const [id, m] of this.#messages) if (nowMs - m.loadedAt > MESSAGE_TTL_MS) this.#messages.delete(id);
    }
    const contacts = new Map<string, SendingContact>();
    const addresses: BatchFacts['addresses'] = new Map();
    const byOrg = new Map<string, store.ClaimedDelivery[]>();
    for (const r of rows) {
      const list = byOrg.get(r.org_id);
      if (list) list.push(r);
      else byOrg.set(r.org_id, [r]);
    }
    for (const [orgId, list] of byOrg) {
      const ids = [...new Set(list.map((r) => r.contact_id).filter((x): x is string => x !== null))];
      for (const c of await contactsForSending(this.#ctx.db, orgId, ids)) contacts.set(c.id, c);
      addresses.set(orgId, await addressFacts(this.#ctx.db, orgId, list.map((r) => r.email)));
    }
    return { contacts, addresses };
  }

  async #deliver(row: store.ClaimedDelivery, batch: BatchFacts, lane: Lane): Promise<store.Outcome> {
    const ctx = this.#ctx;
    const now = ctx.now();
    const failed = (error: string): store.Outcome => ({ id: row.id, status: 'failed', last_error: error, event: 'failed', detail: { error, attempt: row.attempts } });
    const m = this.#messages.get(row.message_id);
    if (!m) return failed('the message no longer exists');
    const contact = row.contact_id ? batch.contacts.get(row.contact_id) : undefined;
    if (!contact) return failed('the contact was deleted before the message was sent');

    let decision: Decision;
    try {
      const facts = batch.addresses.get(row.org_id);
      const key = emailKey(row.email);
      const policy = m.category === 'transactional' ? policyMessage(scopeOf(m), contact.id) : (m.policy ??= policyMessage(scopeOf(m), contact.id));
      decision = decide(policy, policyRecipient(contact, row.email, facts?.suppressions.get(key), facts?.excluded.has(key) ?? false), now);
    } catch (e) {
      if (e instanceof PolicyInputError) return failed(`cannot apply the sending policy: ${e.message}`);
      throw e;
    }
    if (!decision.allow) {
      return { id: row.id, status: 'blocked', rule: decision.rule, rule_detail: decision.detail, event: 'blocked', detail: { rule: decision.rule, detail: decision.detail, at: 'send' } };
    }

    let compiled: CompiledTemplate;
    let rendered: ReturnType<typeof render>;
    let html: ReturnType<typeof encodeHtml>;
    const targets = deliveryTargets(ctx.config.publicUrl, ctx.config.secret, row.id, ctx.config.bounceDomain);
    try {
      if (m.template_id && m.template_version !== null && m.v_body !== null) compiled = await compiledVersion(m.template_id, m.template_version, versionContent(m));
      else if (m.inline) compiled = await compiledInline(m.inline as InlineContent);
      else return failed('the template of this message was deleted');
      const event = m.e_name ? { name: m.e_name, starts_at: m.e_starts_at, ends_at: m.e_ends_at, time_zone: m.e_time_zone } : null;
      const data = {
        contact: { ...contactData(contact), email: row.email },
        event,
        vars: m.c_kind === 'repermission' ? { ...(m.variables as Record<string, unknown>), ...repermissionLinks(ctx.config.publicUrl, this.#secret, row.id, m.c_deadline!) } : ((m.variables as Record<string, unknown>) ?? {}),
        unsubscribe: this.#unsubscribeLinks(targets.url),
      };
      rendered = render(compiled, data, 'send');
      // A versioned template's HTML part is spliced from its skeleton, built once per version (src/mail/mime-skeleton.ts).
      // A message holding secrets (an account link) is not tracked: its links would be copied into click events.
      const skeleton = m.template_id ? await skeletonOf(compiled) : null;
      html = encodeHtml(compiled, skeleton, data, rendered, m.sensitive ? undefined : trackingFor(ctx.config.publicUrl, this.#secret, row.id));
    } catch (e) {
      if (e instanceof TemplateError) return failed(e.message);
      throw e;
    }

    let composed;
    try {
      composed = composeMessage({
        deliveryId: row.id,
        from: { name: m.v_from_name ?? m.org_name, address: m.v_from_email ?? ctx.config.mailFrom },
        replyTo: m.v_reply_to,
        to: { name: [contact.first_name, contact.last_name].filter(Boolean).join(' ') || null, address: row.email },
        subject: rendered.subject,
        html,
        text: rendered.text,
        date: now,
        bounceDomain: ctx.config.bounceDomain,
        returnPath: targets.returnPath,
        unsubscribe: m.category === 'transactional' ? null : targets,
        alloc: this.transports[lane].releasesMessage ? this.#buffers.take : undefined,
      });
    } catch (e) {
      if (e instanceof ComposeError) return failed(e.message);
      throw e;
    }

    try {
      const mail = { orgId: row.org_id, messageId: row.message_id, deliveryId: row.id, subject: rendered.subject, composed };
      const r = await this.#domains.run(domainOf(row.email), () => this.transports[lane].send(mail));
      // Only after a send that succeeded: a failed one may have left the bytes with a closing socket.
      if (this.transports[lane].releasesMessage) this.#buffers.give(composed.raw);
      return { id: row.id, status: 'sent', smtp_response: r.response, event: 'sent', detail: { smtp_response: r.response, attempt: row.attempts, message_id: composed.messageId } };
    } catch (e) {
      const o = classifyFailure(e as SmtpFailure);
      if (o.kind === 'bounce') {
        return {
          id: row.id,
          status: 'bounced',
          last_error: o.error,
          smtp_response: o.smtpResponse,
          suppress: o.suppress ? emailKey(row.email) : null,
          event: 'bounced',
          detail: { smtp_response: o.smtpResponse, suppressed: o.suppress, attempt: row.attempts },
        };
      }
      if (o.kind === 'fail') return failed(o.error);
      const next = afterTemporaryFailure(row.attempts, o.reason, now, row.expires_at, this.#random());
      if (next.status === 'failed') return { ...failed(`${o.error}; ${next.why}`), smtp_response: o.smtpResponse };
      return {
        id: row.id,
        status: 'deferred',
        due_at: next.dueAt,
        last_error: o.error,
        smtp_response: o.smtpResponse,
        event: 'deferred',
        detail: { reason: o.reason, error: o.error, smtp_response: o.smtpResponse, attempt: row.attempts, retry_at: next.dueAt.toISOString() },
      };
    }
  }
}

function scopeOf(m: store.MessageForSending): MessageScope {
  return {
    orgSettings: m.org_settings,
    audienceId: m.audience_id,
    category: m.category,
    origin: m.origin,
    event: m.event_id && m.e_ends_at ? { id: m.event_id, ends_at: m.e_ends_at, time_zone: m.e_time_zone! } : null,
    communityId: m.community_id,
    repermission: m.c_kind === 'repermission',
  };
}

function versionContent(m: store.MessageForSending): VersionContent {
  return {
    category: m.v_category!,
    language: m.v_language!,
    subject: m.v_subject!,
    preheader: m.v_preheader,
    format: m.v_format!,
    body: m.v_body!,
    text_body: m.v_text_body,
    tracking: m.v_tracking ?? true,
    from_name: m.v_from_name,
    from_email: m.v_from_email,
    reply_to: m.v_reply_to,
  };
}
