/**
 * A lean SMTP client session (RFC 5321) for messages that are already bytes: EHLO, STARTTLS when
 * offered (or implicit TLS), AUTH PLAIN/LOGIN, and with PIPELINING (RFC 2920) the whole envelope
 * and DATA in one write, then the message in one write.
 *
 * Why not nodemailer's SMTPConnection: sending the same 31 KB message through it cost 190-290 us of
 * CPU per message on this machine (its stream plumbing and per-byte dot-stuffing), against 45 us
 * for a pipelined session writing the bytes as they are (BENCHMARKS.md, Campaign); at the SMTP
 * limit that difference is a core. Composed messages need no dot-stuffing (src/mail/qp.ts); any
 * other message is normalised and stuffed here.
 *
 * Errors carry what src/sending/rules.ts reads (`responseCode`, `response`, `code`, `command`), with
 * nodemailer's codes: ECONNECTION, ETIMEDOUT, ETLS, EAUTH, EENVELOPE, EMESSAGE, EPROTOCOL.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { hostname } from 'node:os';

export interface SmtpRelay {
  host: string;
  port: number;
  /** TLS from the first byte (smtps); otherwise STARTTLS when the server offers it. */
  secure: boolean;
  user?: string;
  pass?: string;
  /** Certificate checks (`?tls.rejectUnauthorized=false` in the URL turns them off). */
  rejectUnauthorized: boolean;
  /** Our name in EHLO. */
  name: string;
}

export interface SmtpTimeouts {
  connectMs: number;
  greetingMs: number;
  /** Longest wait for any reply (or for the socket to take our bytes). */
  socketMs: number;
}

export const DEFAULT_TIMEOUTS: SmtpTimeouts = { connectMs: 10_000, greetingMs: 10_000, socketMs: 30_000 };

/**
 * SMTP_URL (`smtp://user:pass@host:port`, `smtps://...`) as a relay and its timeouts; the query takes
 * nodemailer's names: `tls.rejectUnauthorized=false`, `connectionTimeout`, `greetingTimeout`,
 * `socketTimeout` (milliseconds).
 */
export function parseSmtpUrl(url: string): SmtpRelay & { timeouts: Partial<SmtpTimeouts> } {
  const u = new URL(url);
  const secure = u.protocol === 'smtps:';
  if (!secure && u.protocol !== 'smtp:') throw new Error(`not an SMTP URL: ${u.protocol}`);
  const reject = u.searchParams.get('tls.rejectUnauthorized');
  const timeouts: Partial<SmtpTimeouts> = {};
  for (const [param, key] of [['connectionTimeout', 'connectMs'], ['greetingTimeout', 'greetingMs'], ['socketTimeout', 'socketMs']] as const) {
    const v = Number(u.searchParams.get(param));
    if (Number.isFinite(v) && v > 0) timeouts[key] = v;
  }
  return {
    timeouts,
    host: u.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: u.port ? Number(u.port) : secure ? 465 : 587,
    secure,
    user: u.username ? decodeURIComponent(u.username) : undefined,
    pass: u.password ? decodeURIComponent(u.password) : undefined,
    rejectUnauthorized: reject === null ? true : !/^(false|0|no)$/i.test(reject),
    name: hostname() || 'localhost',
  };
}

export type SmtpErrorCode = 'ECONNECTION' | 'ETIMEDOUT' | 'ETLS' | 'EAUTH' | 'EENVELOPE' | 'EMESSAGE' | 'EPROTOCOL';

export class SmtpError extends Error {
  override name = 'SmtpError';
  constructor(
    message: string,
    readonly code: SmtpErrorCode,
    readonly command: string,
    readonly response?: string,
    readonly responseCode?: number,
    /** Nothing of this message can have been accepted: another session may send it. */
    readonly unsent = false,
  ) {
    super(message);
  }
}

interface Reply {
  code: number;
  text: string;
}

interface Waiter {
  command: string;
  resolve: (r: Reply) => void;
  reject: (e: SmtpError) => void;
}

const CR = 13;
const LF = 10;
const DOT = 46;
const SPACE = 32;
const HYPHEN = 45;
const isDigit = (c: number) => c >= 48 && c <= 57;
const END_OF_DATA = Buffer.from('.\r\n');
const CRLF_END_OF_DATA = Buffer.from('\r\n.\r\n');

/** True when `m` can go into DATA as it is: CRLF line ends only, no line starting with a dot. */
export function isDataSafe(m: Buffer): boolean {
  if (m[0] === DOT) return false;
  for (let i = m.indexOf(LF); i !== -1; i = m.indexOf(LF, i + 1)) if (m[i - 1] !== CR || m[i + 1] === DOT) return false;
  for (let i = m.indexOf(CR); i !== -1; i = m.indexOf(CR, i + 1)) if (m[i + 1] !== LF) return false;
  return true;
}

/** Bare CR and LF become CRLF (a lone one could end the data early, "SMTP smuggling"); line-start dots doubled. */
export function toDataBytes(m: Buffer): Buffer {
  if (isDataSafe(m)) return m;
  const out: number[] = [];
  let lineStart = true;
  for (let i = 0; i < m.length; i++) {
    const b = m[i]!;
    if (b === CR || b === LF) {
      if (b === CR && m[i + 1] === LF) i++;
      out.push(CR, LF);
      lineStart = true;
      continue;
    }
    if (lineStart && b === DOT) out.push(DOT);
    out.push(b);
    lineStart = false;
  }
  return Buffer.from(out);
}

const NETWORK_ERRORS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EPIPE']);

const isAscii = (s: string) => !/[^\x00-\x7f]/.test(s);

/** A send waiting for the session: `start` writes its envelope, at once, when its turn comes. */
interface Turn {
  start: () => void;
  reject: (e: SmtpError) => void;
}

/**
 * One SMTP session. Sends may overlap: with PIPELINING the next message's envelope goes in the same
 * write as the end of the current message's data (RFC 2920 allows commands after the data), so a
 * session with a message queued behind the current one costs one write and one read per message
 * instead of two of each. Without PIPELINING a send waits for the previous one to end.
 */
export class SmtpSession {
  readonly features = new Set<string>();
  maxSize = 0;
  messages = 0;
  idleSince = Date.now();
  #socket: Socket | TLSSocket;
  #secure: boolean;
  #buffer = '';
  #lines: string[] = [];
  #waiters: Waiter[] = [];
  #dead: SmtpError | null = null;
  /** A send holds the turn from writing its envelope until it has written its data (or given up). */
  #turnHeld = false;
  #turns: Turn[] = [];
  #onData = (chunk: Buffer) => this.#read(chunk);

  private constructor(
    readonly relay: SmtpRelay,
    readonly timeouts: SmtpTimeouts,
    socket: Socket | TLSSocket,
  ) {
    this.#socket = socket;
    this.#secure = relay.secure;
    this.#watch(socket);
  }

  get alive(): boolean {
    return this.#dead === null;
  }

  /** Connects, reads the greeting, says EHLO, upgrades with STARTTLS when offered, logs in. */
  static async open(relay: SmtpRelay, timeouts: SmtpTimeouts = DEFAULT_TIMEOUTS): Promise<SmtpSession> {
    const socket = await new Promise<Socket | TLSSocket>((resolve, reject) => {
      const s = relay.secure
        ? tlsConnect({ host: relay.host, port: relay.port, servername: relay.host, rejectUnauthorized: relay.rejectUnauthorized })
        : netConnect({ host: relay.host, port: relay.port });
      const timer = setTimeout(() => {
        s.destroy();
        reject(new SmtpError(`Connection to ${relay.host}:${relay.port} timed out`, 'ETIMEDOUT', 'CONN', undefined, undefined, true));
      }, timeouts.connectMs);
      s.once(relay.secure ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        s.removeAllListeners('error');
        resolve(s);
      });
      s.once('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        const code = relay.secure && !NETWORK_ERRORS.has(e.code ?? '') ? 'ETLS' : 'ECONNECTION';
        reject(new SmtpError(`Connection to ${relay.host}:${relay.port} failed: ${e.message}`, code, 'CONN', undefined, undefined, true));
      });
    });
    socket.setNoDelay(true);
    const session = new SmtpSession(relay, timeouts, socket);
    try {
      const greeting = await session.#expect('CONN', timeouts.greetingMs);
      if (greeting.code !== 220) throw session.#replyError('Invalid greeting', 'EPROTOCOL', 'CONN', greeting, true);
      await session.#hello();
      if (!session.#secure && session.features.has('STARTTLS')) {
        const r = await session.#command('STARTTLS');
        if (r.code !== 220) throw session.#replyError('STARTTLS refused', 'ETLS', 'STARTTLS', r, true);
        await session.#upgrade();
        await session.#hello();
      }
      if (relay.user !== undefined) await session.#login();
    } catch (e) {
      session.destroy(e instanceof SmtpError ? e : new SmtpError(String(e), 'ECONNECTION', 'CONN', undefined, undefined, true));
      throw e;
    }
    return session;
  }

  /**
   * Sends one message to one recipient; resolves with the server's final reply. A refusal leaves
   * the session usable (after RSET when a transaction was open); a network failure ends it.
   * `dataSafe`: the message is known to have CRLF line ends only and no line starting with a dot
   * (composeMessage's output), so it is not checked byte by byte.
   */
  async send(from: string, to: string, message: Buffer, opts: { dataSafe?: boolean } = {}): Promise<string> {
    if (this.#dead) throw this.#dead;
    const utf8 = !isAscii(from) || !isAscii(to);
    if (utf8 && !this.features.has('SMTPUTF8')) throw new SmtpError(`The relay does not take internationalised addresses (no SMTPUTF8): ${to}`, 'EENVELOPE', 'MAIL FROM', undefined, undefined, true);
    if (this.maxSize && message.length > this.maxSize) throw new SmtpError(`Message size ${message.length} is larger than the relay allows (${this.maxSize})`, 'EMESSAGE', 'MAIL FROM', undefined, undefined, true);
    const params = (this.features.has('SIZE') ? ` SIZE=${message.length}` : '') + (utf8 ? ' SMTPUTF8' : '');
    const mailCmd = `MAIL FROM:<${from}>${params}`;
    const rcptCmd = `RCPT TO:<${to}>`;
    const bytes = opts.dataSafe ? message : toDataBytes(message);
    const pipelining = this.features.has('PIPELINING');
    let mail: Reply;
    let rcpt: Reply;
    let data: Reply;
    try {
      if (pipelining) {
        // Written when the turn comes: at once, or by the send ahead, right after its data.
        const replies = await this.#turn(() => {
          const r = [this.#expect('MAIL FROM'), this.#expect('RCPT TO'), this.#expect('DATA')];
          this.#write(`${mailCmd}\r\n${rcptCmd}\r\nDATA\r\n`);
          return r;
        });
        [mail, rcpt, data] = (await this.#all(replies)) as [Reply, Reply, Reply];
      } else {
        await this.#turn(() => undefined);
        mail = await this.#command(mailCmd, 'MAIL FROM');
        rcpt = mail.code === 250 ? await this.#command(rcptCmd, 'RCPT TO') : { code: 503, text: '503 not sent' };
        data = mail.code === 250 && (rcpt.code === 250 || rcpt.code === 251) ? await this.#command('DATA') : { code: 503, text: '503 not sent' };
      }
    } catch (e) {
      // Before the server's 354, nothing of this message can have been accepted.
      const err = e as SmtpError;
      this.#passTurn();
      throw new SmtpError(err.message, err.code, err.command, err.response, err.responseCode, true);
    }
    const refused =
      mail.code !== 250
        ? this.#replyError('Sender refused', 'EENVELOPE', 'MAIL FROM', mail)
        : rcpt.code !== 250 && rcpt.code !== 251
          ? this.#replyError(`Recipient refused: ${to}`, 'EENVELOPE', 'RCPT TO', rcpt)
          : data.code !== 354
            ? this.#replyError('DATA refused', 'EPROTOCOL', 'DATA', data)
            : null;
    if (refused) {
      // A server that said 354 anyway gets an empty end of data; an open transaction is reset.
      try {
        if (data.code === 354) await this.#command('.', 'DATA');
        if (mail.code === 250) await this.#command('RSET');
      } finally {
        this.#passTurn();
      }
      throw refused;
    }
    const final = this.#expect('DATA');
    this.#socket.cork();
    this.#socket.write(bytes);
    this.#socket.write(bytes.length >= 2 && bytes[bytes.length - 2] === CR && bytes[bytes.length - 1] === LF ? END_OF_DATA : CRLF_END_OF_DATA);
    // The next envelope joins this write: its replies come after this message's.
    if (pipelining) this.#passTurn();
    this.#socket.uncork();
    let r: Reply;
    try {
      r = await final;
    } finally {
      if (!pipelining) this.#passTurn();
    }
    this.messages++;
    if (r.code !== 250) throw this.#replyError('Message refused', 'EMESSAGE', 'DATA', r);
    return r.text.replace(/\r?\n/g, ' ');
  }

  /** Ends the session politely; resolves when the socket is closed. */
  async quit(): Promise<void> {
    if (this.#dead) return;
    const closed = new Promise<void>((resolve) => this.#socket.once('close', () => resolve()));
    this.#dead = new SmtpError('Session closed', 'ECONNECTION', 'QUIT', undefined, undefined, true);
    try {
      this.#socket.end('QUIT\r\n');
    } catch {}
    const timer = setTimeout(() => this.#socket.destroy(), 2000);
    await closed;
    clearTimeout(timer);
  }

  destroy(error: SmtpError) {
    this.#dead ??= error;
    this.#socket.destroy();
    for (const w of this.#waiters.splice(0)) w.reject(error);
    this.#rejectTurns(error);
  }

  /** Sends still waiting for their turn wrote nothing. */
  #rejectTurns(error: SmtpError) {
    for (const t of this.#turns.splice(0)) t.reject(new SmtpError(error.message, error.code, 'MAIL FROM', error.response, error.responseCode, true));
  }

  /** Runs `start` (which writes) when no other send holds the turn: now, or when the holder passes it. */
  #turn<T>(start: () => T): Promise<T> {
    if (this.#dead) return Promise.reject(this.#dead);
    if (!this.#turnHeld) {
      this.#turnHeld = true;
      return Promise.resolve(start());
    }
    return new Promise<T>((resolve, reject) => {
      this.#turns.push({ start: () => resolve(start()), reject });
    });
  }

  /** The holder is done writing: the next send in line writes now (inside the holder's cork, if any). */
  #passTurn() {
    if (this.#dead) this.#rejectTurns(this.#dead);
    const next = this.#turns.shift();
    if (next) next.start();
    else this.#turnHeld = false;
  }

  // ---- internals ----

  #watch(socket: Socket | TLSSocket) {
    socket.on('data', this.#onData);
    socket.on('timeout', () => {
      const command = this.#waiters[0]?.command;
      this.destroy(new SmtpError(`Timed out waiting for the reply to ${command ?? 'nothing'}`, 'ETIMEDOUT', command ?? 'CONN'));
    });
    socket.on('error', (e: Error) => this.destroy(new SmtpError(`Connection error: ${e.message}`, this.#secure ? 'ETLS' : 'ECONNECTION', this.#waiters[0]?.command ?? 'CONN')));
    socket.on('close', () => this.destroy(new SmtpError('Connection closed unexpectedly', 'ECONNECTION', this.#waiters[0]?.command ?? 'CONN')));
  }

  #read(chunk: Buffer) {
    const buffer = this.#buffer + chunk.toString('latin1');
    // Lines are cut at an index that moves on; the rest is kept once, after the loop.
    let start = 0;
    let nl: number;
    while ((nl = buffer.indexOf('\n', start)) !== -1) {
      const line = buffer.slice(start, nl > start && buffer.charCodeAt(nl - 1) === CR ? nl - 1 : nl);
      start = nl + 1;
      // `ddd`, then a space, a hyphen (more lines follow) or the end of the line
      const sep = line.length === 3 ? SPACE : line.charCodeAt(3);
      if (!isDigit(line.charCodeAt(0)) || !isDigit(line.charCodeAt(1)) || !isDigit(line.charCodeAt(2)) || (sep !== SPACE && sep !== HYPHEN)) {
        this.#buffer = '';
        this.destroy(new SmtpError(`Unexpected reply line: ${line.slice(0, 200)}`, 'EPROTOCOL', this.#waiters[0]?.command ?? 'CONN', line));
        return;
      }
      this.#lines.push(line);
      if (sep === HYPHEN) continue;
      const reply = { code: Number(line.slice(0, 3)), text: this.#lines.length === 1 ? line : this.#lines.join('\n') };
      this.#lines = [];
      const w = this.#waiters.shift();
      if (reply.code === 421) {
        // The server is closing: this reply, and those still awaited, end the session.
        const e = this.#replyError('Server closing the session', 'ECONNECTION', w?.command ?? 'CONN', reply);
        this.#buffer = buffer.slice(start);
        if (w) w.reject(e);
        this.destroy(e);
        return;
      }
      if (w) w.resolve(reply);
      if (this.#waiters.length === 0) this.#socket.setTimeout(0);
    }
    this.#buffer = start === 0 ? buffer : buffer.slice(start);
    if (this.#buffer.length > 64 * 1024) this.destroy(new SmtpError('Reply line too long', 'EPROTOCOL', this.#waiters[0]?.command ?? 'CONN'));
  }

  #expect(command: string, timeoutMs = this.timeouts.socketMs): Promise<Reply> {
    if (this.#dead) return Promise.reject(this.#dead);
    return new Promise<Reply>((resolve, reject) => {
      this.#waiters.push({ command, resolve, reject });
      this.#socket.setTimeout(timeoutMs);
    });
  }

  /** Awaits every reply, so that none is left unhandled when an earlier one fails. */
  async #all(replies: Promise<Reply>[]): Promise<Reply[]> {
    const settled = await Promise.allSettled(replies);
    const failed = settled.find((s) => s.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
    return settled.map((s) => (s as PromiseFulfilledResult<Reply>).value);
  }

  #write(text: string) {
    this.#socket.write(text, 'utf8');
  }

  #command(line: string, name = line.split(' ')[0]!): Promise<Reply> {
    const r = this.#expect(name);
    this.#write(`${line}\r\n`);
    return r;
  }

  #replyError(what: string, code: SmtpErrorCode, command: string, r: Reply, unsent = false): SmtpError {
    const response = r.text.replace(/\r?\n/g, ' ');
    return new SmtpError(`${what}: ${response}`, code, command, response, r.code, unsent);
  }

  async #hello() {
    let r = await this.#command(`EHLO ${this.relay.name}`, 'EHLO');
    this.features.clear();
    if (r.code !== 250) {
      r = await this.#command(`HELO ${this.relay.name}`, 'HELO');
      if (r.code !== 250) throw this.#replyError('EHLO and HELO refused', 'EPROTOCOL', 'HELO', r, true);
      return;
    }
    for (const line of r.text.split('\n').slice(1)) {
      const [keyword, ...args] = line.slice(4).trim().split(/\s+/);
      if (!keyword) continue;
      const k = keyword.toUpperCase();
      this.features.add(k);
      if (k === 'SIZE' && args[0]) this.maxSize = Number(args[0]) || 0;
      if (k === 'AUTH') for (const a of args) this.features.add(`AUTH=${a.toUpperCase()}`);
    }
  }

  async #upgrade() {
    const plain = this.#socket as Socket;
    plain.removeListener('data', this.#onData);
    plain.removeAllListeners('error');
    plain.removeAllListeners('close');
    plain.removeAllListeners('timeout');
    plain.setTimeout(0);
    const secured = await new Promise<TLSSocket>((resolve, reject) => {
      const s = tlsConnect({ socket: plain, servername: this.relay.host, rejectUnauthorized: this.relay.rejectUnauthorized });
      const timer = setTimeout(() => {
        s.destroy();
        reject(new SmtpError('TLS handshake timed out', 'ETIMEDOUT', 'STARTTLS', undefined, undefined, true));
      }, this.timeouts.greetingMs);
      s.once('secureConnect', () => {
        clearTimeout(timer);
        s.removeAllListeners('error');
        resolve(s);
      });
      s.once('error', (e) => {
        clearTimeout(timer);
        plain.destroy();
        reject(new SmtpError(`TLS negotiation failed: ${e.message}`, 'ETLS', 'STARTTLS', undefined, undefined, true));
      });
    });
    this.#socket = secured;
    this.#secure = true;
    this.#buffer = '';
    this.#watch(secured);
  }

  async #login() {
    const user = this.relay.user ?? '';
    const pass = this.relay.pass ?? '';
    const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
    let r: Reply;
    let command: string;
    if (this.features.has('AUTH=PLAIN') || !this.features.has('AUTH=LOGIN')) {
      command = 'AUTH PLAIN';
      r = await this.#command(`AUTH PLAIN ${b64(`\u0000${user}\u0000${pass}`)}`, command);
    } else {
      command = 'AUTH LOGIN';
      r = await this.#command('AUTH LOGIN', command);
      if (r.code === 334) r = await this.#command(b64(user), command);
      if (r.code === 334) r = await this.#command(b64(pass), command);
    }
    if (r.code !== 235) throw this.#replyError('Invalid login', 'EAUTH', command, r, true);
  }
}
