/**
 * Reused SMTP sessions to one relay: up to `maxConnections` at once, kept open between messages (a
 * new session costs a TCP, maybe a TLS, handshake and four round trips), closed after `maxMessages`
 * or when idle. A session takes a second message while it sends one (`perSession`, default 2): the
 * second's envelope then rides in the write of the first's data (src/mail/smtp-client.ts).
 *
 * A session the server closed while it sat idle is only found out when used: a send that fails
 * before the server's 354 (nothing of the message can have been accepted) is tried once more on a
 * fresh session, instead of deferring the delivery for a reason that is not the recipient's.
 */
import { DEFAULT_TIMEOUTS, SmtpError, SmtpSession, type SmtpRelay, type SmtpTimeouts } from './smtp-client.ts';

export interface SmtpPoolOptions {
  maxConnections: number;
  /** Messages per session before it is replaced (relays limit them); default 500. */
  maxMessages?: number;
  /** Idle sessions are closed after this; default 30 s (servers drop idle clients after 60 s or more). */
  idleMs?: number;
  timeouts?: Partial<SmtpTimeouts>;
  /** Messages in flight on one session: 1, or 2 to pipeline one message's envelope behind another's data. */
  perSession?: 1 | 2;
}

export class SmtpPool {
  readonly #relay: SmtpRelay;
  readonly #max: number;
  readonly #maxMessages: number;
  readonly #idleMs: number;
  readonly #timeouts: SmtpTimeouts;
  readonly #perSession: number;
  /** Sessions with nothing in flight. */
  readonly #idle: SmtpSession[] = [];
  /** Sessions sending one message that can take another. */
  readonly #sharing = new Set<SmtpSession>();
  readonly #inFlight = new Map<SmtpSession, number>();
  readonly #queue: { resolve: (s: SmtpSession | null) => void }[] = [];
  #open = 0; // sessions open or opening
  #closed = false;
  #reaper: NodeJS.Timeout;

  constructor(relay: SmtpRelay, opts: SmtpPoolOptions) {
    this.#relay = relay;
    this.#max = Math.max(1, opts.maxConnections);
    this.#maxMessages = opts.maxMessages ?? 500;
    this.#idleMs = opts.idleMs ?? 30_000;
    this.#timeouts = { ...DEFAULT_TIMEOUTS, ...opts.timeouts };
    this.#perSession = opts.perSession ?? 2;
    this.#reaper = setInterval(() => this.#reap(), Math.max(1000, this.#idleMs / 2));
    this.#reaper.unref();
  }

  /** Sends `message` from `from` to `to`; resolves with the relay's final reply. `dataSafe`: see SmtpSession.send. */
  async send(from: string, to: string, message: Buffer, opts: { dataSafe?: boolean } = {}): Promise<string> {
    for (let attempt = 0; ; attempt++) {
      const { session, reused } = await this.#acquire();
      try {
        const reply = await session.send(from, to, message, opts);
        this.#release(session);
        return reply;
      } catch (e) {
        this.#release(session);
        if (attempt === 0 && reused && e instanceof SmtpError && e.unsent && e.responseCode === undefined && !session.alive) continue;
        throw e;
      }
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#reaper);
    for (const w of this.#queue.splice(0)) w.resolve(null);
    await Promise.all(this.#idle.splice(0).map((s) => this.#retire(s)));
  }

  /** An idle session first, then a new one, then a second message on a busy one, else wait. */
  async #acquire(): Promise<{ session: SmtpSession; reused: boolean }> {
    for (;;) {
      if (this.#closed) throw new SmtpError('The SMTP pool is closed', 'ECONNECTION', 'CONN', undefined, undefined, true);
      const idle = this.#idle.pop();
      if (idle) {
        if (idle.alive) return { session: this.#take(idle), reused: true };
        this.#open--;
        continue;
      }
      if (this.#open < this.#max) {
        this.#open++;
        try {
          return { session: this.#take(await SmtpSession.open(this.#relay, this.#timeouts)), reused: false };
        } catch (e) {
          this.#open--;
          this.#wakeOne();
          throw e;
        }
      }
      const busy = this.#sharing.values().next();
      if (!busy.done) return { session: this.#take(busy.value), reused: true };
      const session = await new Promise<SmtpSession | null>((resolve) => this.#queue.push({ resolve }));
      if (session) return { session: this.#take(session), reused: true };
    }
  }

  /** Counts a message in flight on `session`; it can be shared while below perSession and maxMessages. */
  #take(session: SmtpSession): SmtpSession {
    const n = (this.#inFlight.get(session) ?? 0) + 1;
    this.#inFlight.set(session, n);
    this.#sharing.delete(session);
    if (n < this.#perSession && session.messages + n < this.#maxMessages) {
      // A sender that queued while this session was opening takes the second place at once.
      const waiter = this.#queue.shift();
      if (waiter) waiter.resolve(session);
      else this.#sharing.add(session);
    }
    return session;
  }

  #release(session: SmtpSession) {
    const n = (this.#inFlight.get(session) ?? 1) - 1;
    if (n === 0) this.#inFlight.delete(session);
    else this.#inFlight.set(session, n);
    this.#sharing.delete(session);
    if (!session.alive || session.messages + n >= this.#maxMessages || this.#closed) {
      // Retired once its last message is done; a freed slot lets a waiter open a session.
      if (n === 0) void this.#retire(session);
      this.#wakeOne();
      return;
    }
    session.idleSince = Date.now();
    const waiter = this.#queue.shift();
    if (waiter) waiter.resolve(session); // its #take counts it in again
    else if (n === 0) this.#idle.push(session);
    else this.#sharing.add(session);
  }

  /** A slot freed without a session to hand over: the first waiter opens one of its own. */
  #wakeOne() {
    this.#queue.shift()?.resolve(null);
  }

  async #retire(session: SmtpSession) {
    this.#open--;
    await session.quit().catch(() => {});
  }

  #reap() {
    const now = Date.now();
    for (let i = this.#idle.length - 1; i >= 0; i--) {
      const s = this.#idle[i]!;
      if (!s.alive || now - s.idleSince > this.#idleMs) {
        this.#idle.splice(i, 1);
        void this.#retire(s);
      }
    }
  }
}
