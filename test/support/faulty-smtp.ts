import net from 'node:net';
import { SMTPServer, type SMTPServerSession } from 'smtp-server';

/*
 * A receiving SMTP server that misbehaves on cue, for the SMTP-fault suite. The SMTP dialogue is
 * smtp-server's; a raw `net` listener in front of it numbers the connections, owns their sockets
 * (to drop one mid-DATA or destroy a stalled one on close) and, for broken TLS, speaks the few
 * lines before STARTTLS itself and then sends what no TLS client can accept, which smtp-server
 * cannot be made to do.
 *
 * Every decision is a function of the script, asked at each step with the connection it is on, so
 * a test scripts faults per recipient ("450 for b@ the first time") or per connection ("421 at
 * the greeting of the first two connections") and changes the script while the worker runs.
 * The server records every answer it gave (`log`) and exactly the messages it accepted with a 250
 * (`accepted`), which is what the delivery records are checked against.
 */

/** An SMTP reply (421 also closes the connection, as RFC 5321 says), a connection closed without a word, or no answer ever. */
export type Fault = { code: number; text: string } | 'drop' | 'stall';
/** STARTTLS offered, then: bytes that are not TLS, a TLS handshake_failure alert, or a certificate the client cannot trust. */
export type TlsFault = 'garbage' | 'alert' | 'untrusted';

export interface ConnectionInfo {
  /** 1 for the first connection the server accepted */
  n: number;
  /** messages accepted on this connection so far */
  accepted: number;
}

export interface FaultScript {
  greeting?(c: ConnectionInfo): Fault | null;
  tls?(c: ConnectionInfo): TlsFault | null;
  mailFrom?(from: string, c: ConnectionInfo): Fault | null;
  rcpt?(to: string, c: ConnectionInfo): Fault | null;
  /** At the first chunk of the message: 'drop' closes the connection in the middle of DATA. */
  dataStart?(rcptTo: string[], c: ConnectionInfo): 'drop' | null;
  /** At the end of DATA, instead of the 250. */
  data?(rcptTo: string[], raw: Buffer, c: ConnectionInfo): Fault | null;
}

export interface AcceptedMessage {
  connection: number;
  envelopeFrom: string;
  rcptTo: string[];
  raw: Buffer;
  /** the exact reply line the server gave */
  response: string;
  /** from the VERP return path `bounce+<delivery id>.<mark>@...`, null for other senders */
  deliveryId: string | null;
}

export type Step = 'greeting' | 'tls' | 'mail' | 'rcpt' | 'data-start' | 'data';
export interface LogEntry {
  connection: number;
  step: Step;
  /** RCPT TO address, or MAIL FROM */
  address?: string;
  /** reply code given, or what was done instead */
  outcome: number | 'drop' | 'stall' | TlsFault;
}

export interface FaultySmtp {
  port: number;
  url: string;
  script: FaultScript;
  accepted: AcceptedMessage[];
  log: LogEntry[];
  connections: number;
  acceptedFor(deliveryId: string): AcceptedMessage[];
  /** Faults of `step` for `address` (RCPT TO / MAIL FROM), in order. */
  outcomes(step: Step, address?: string): LogEntry['outcome'][];
  close(): Promise<void>;
}

/** A fault for the first `n` times it is asked, then none. */
export function firstTimes<A extends unknown[]>(n: number, fault: Fault | ((...args: A) => Fault | null)): (...args: A) => Fault | null {
  let used = 0;
  return (...args: A) => {
    const f = typeof fault === 'function' ? fault(...args) : fault;
    if (f === null || used >= n) return null;
    used++;
    return f;
  };
}

export const reply = (code: number, text: string): Fault => ({ code, text });

const VERP = /^bounce\+([0-9a-f-]{36})\.[0-9a-f]+@/i;
// A TLS record of type alert (21), TLS 1.2, length 2: fatal (2), handshake_failure (40).
const HANDSHAKE_FAILURE_ALERT = Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]);

export async function startFaultySmtp(script: FaultScript = {}): Promise<FaultySmtp> {
  const accepted: AcceptedMessage[] = [];
  const log: LogEntry[] = [];
  const sockets = new Map<string, net.Socket>();
  const infos = new Map<string, ConnectionInfo>();
  const untrusted = new Set<string>();
  const allSockets = new Set<net.Socket>();
  let count = 0;
  const self = { script } as FaultySmtp;

  const infoOf = (session: SMTPServerSession) => infos.get(session.id)!;
  const record = (c: ConnectionInfo, step: Step, outcome: LogEntry['outcome'], address?: string) => log.push({ connection: c.n, step, outcome, ...(address !== undefined ? { address } : {}) });
  /** Carries out a fault through an smtp-server callback; returns false when there is none. */
  const apply = (session: SMTPServerSession, step: Step, fault: Fault | null, cb: (err?: Error | null) => void, address?: string): boolean => {
    if (fault === null) return false;
    const c = infoOf(session);
    if (fault === 'stall') {
      record(c, step, 'stall', address);
      return true; // the callback is never called
    }
    if (fault === 'drop') {
      record(c, step, 'drop', address);
      sockets.get(session.id)?.destroy();
      return true;
    }
    record(c, step, fault.code, address);
    cb(Object.assign(new Error(fault.text), { responseCode: fault.code }));
    return true;
  };

  const smtp = new SMTPServer({
    authOptional: true,
    // STARTTLS only on connections the script breaks it on (enabled per session in onConnect).
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    size: 10 * 1024 * 1024,
    onConnect(session, cb) {
      const c = infoOf(session);
      if (untrusted.has(session.id)) {
        record(c, 'tls', 'untrusted');
        session.disabledCommands = ['AUTH'];
      }
      if (!apply(session, 'greeting', self.script.greeting?.(c) ?? null, cb)) cb();
    },
    onMailFrom(address, session, cb) {
      const c = infoOf(session);
      if (!apply(session, 'mail', self.script.mailFrom?.(address.address, c) ?? null, cb, address.address)) {
        record(c, 'mail', 250, address.address);
        cb();
      }
    },
    onRcptTo(address, session, cb) {
      const c = infoOf(session);
      const fault = self.script.rcpt?.(address.address, c) ?? null;
      if (!apply(session, 'rcpt', fault, cb, address.address)) {
        record(c, 'rcpt', 250, address.address);
        cb();
      }
    },
    onData(stream, session, cb) {
      const c = infoOf(session);
      const rcptTo = session.envelope.rcptTo.map((r) => r.address);
      const chunks: Buffer[] = [];
      let first = true;
      let dropped = false;
      stream.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        if (!first) return;
        first = false;
        if (self.script.dataStart?.(rcptTo, c) === 'drop') {
          dropped = true;
          record(c, 'data-start', 'drop');
          sockets.get(session.id)?.destroy();
        }
      });
      stream.on('end', () => {
        if (dropped) return;
        const raw = Buffer.concat(chunks);
        if (apply(session, 'data', self.script.data?.(rcptTo, raw, c) ?? null, cb)) return;
        const mailFrom = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
        const text = `Ok: queued as faulty-${accepted.length + 1}`;
        accepted.push({ connection: c.n, envelopeFrom: mailFrom, rcptTo, raw, response: `250 ${text}`, deliveryId: VERP.exec(mailFrom)?.[1]?.toLowerCase() ?? null });
        c.accepted++;
        record(c, 'data', 250);
        cb(null, text);
      });
    },
  });
  smtp.on('error', () => {});

  const front = net.createServer((socket) => {
    allSockets.add(socket);
    socket.on('close', () => allSockets.delete(socket));
    socket.on('error', () => {});
    const c: ConnectionInfo = { n: ++count, accepted: 0 };
    const id = `faulty${c.n}`;
    const tlsFault = self.script.tls?.(c) ?? null;
    if (tlsFault === 'garbage' || tlsFault === 'alert') return brokenTls(socket, c, tlsFault);
    sockets.set(id, socket);
    infos.set(id, c);
    if (tlsFault === 'untrusted') untrusted.add(id);
    socket.on('close', () => {
      sockets.delete(id);
      untrusted.delete(id);
    });
    smtp.connect(socket, { id });
  });

  /** Greets, offers STARTTLS, agrees to it, and then breaks the handshake. */
  function brokenTls(socket: net.Socket, c: ConnectionInfo, fault: 'garbage' | 'alert') {
    let buffered = '';
    socket.write('220 faulty.test ESMTP\r\n');
    socket.on('data', (chunk) => {
      buffered += chunk.toString('latin1');
      let end: number;
      while ((end = buffered.indexOf('\r\n')) >= 0) {
        const line = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        const verb = line.split(' ')[0]!.toUpperCase();
        if (verb === 'EHLO') socket.write('250-faulty.test\r\n250-8BITMIME\r\n250 STARTTLS\r\n');
        else if (verb === 'HELO') socket.write('250 faulty.test\r\n');
        else if (verb === 'QUIT') socket.end('221 Bye\r\n');
        else if (verb === 'STARTTLS') {
          record(c, 'tls', fault);
          socket.write('220 Ready to start TLS\r\n');
          socket.write(fault === 'alert' ? HANDSHAKE_FAILURE_ALERT : 'this is no TLS record, only plain text\r\n'.repeat(4));
          socket.end();
          return;
        } else socket.write('503 Error: STARTTLS first\r\n');
      }
    });
  }

  await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
  const port = (front.address() as net.AddressInfo).port;
  Object.assign(self, {
    port,
    url: `smtp://127.0.0.1:${port}`,
    accepted,
    log,
    acceptedFor: (deliveryId: string) => accepted.filter((m) => m.deliveryId === deliveryId),
    outcomes: (step: Step, address?: string) => log.filter((e) => e.step === step && (address === undefined || e.address === address)).map((e) => e.outcome),
    async close() {
      // Stalled sessions would keep the server open for ever.
      for (const s of allSockets) s.destroy();
      await new Promise<void>((resolve) => front.close(() => resolve()));
      await new Promise<void>((resolve) => smtp.close(() => resolve()));
    },
  });
  Object.defineProperty(self, 'connections', { get: () => count });
  return self;
}
