import { performance } from 'node:perf_hooks';
import { SMTPServer, type SMTPServerSession } from 'smtp-server';
import { simpleParser, type ParsedMail } from 'mailparser';

export interface ReceivedMail {
  envelopeFrom: string;
  rcptTo: string[];
  raw: Buffer;
  /** performance.now() when the DATA was accepted */
  at: number;
  /** whether the session was upgraded with STARTTLS */
  secure: boolean;
  parse(): Promise<ParsedMail>;
}

export type Reply = { code: number; message: string };

/**
 * What the sink answers; tests change it while running. `rcpt` answers RCPT TO, `data` the end of
 * DATA; `drop` (asked once per message, at its first DATA chunk) closes the connection mid-DATA.
 */
export interface SinkBehaviour {
  rcpt?: (address: string) => Reply | null;
  data?: (rcptTo: string[], raw: Buffer) => Reply | null;
  drop?: (rcptTo: string[]) => boolean;
  /** Delay before answering DATA, to keep messages in flight. */
  delayMs?: number;
}

export interface SmtpSink {
  port: number;
  url: string;
  received: ReceivedMail[];
  /** Every RCPT TO attempt, accepted or not, in order. */
  attempts: { rcpt: string; reply: number }[];
  behaviour: SinkBehaviour;
  waitFor(predicate: (received: ReceivedMail[]) => boolean, timeoutMs?: number): Promise<void>;
  byRecipient(address: string): ReceivedMail[];
  close(): Promise<void>;
}

/** A real SMTP server on a free loopback port, no authentication; STARTTLS (smtp-server's self-signed certificate) only when asked. */
export async function startSmtpSink(behaviour: SinkBehaviour = {}, opts: { starttls?: boolean } = {}): Promise<SmtpSink> {
  const received: ReceivedMail[] = [];
  const attempts: SmtpSink['attempts'] = [];
  const sink = { behaviour } as SmtpSink;
  const server: SMTPServer = new SMTPServer({
    authOptional: true,
    disabledCommands: opts.starttls ? ['AUTH'] : ['STARTTLS', 'AUTH'],
    logger: false,
    size: 10 * 1024 * 1024,
    onRcptTo(address, _session, cb) {
      const reply = sink.behaviour.rcpt?.(address.address) ?? null;
      attempts.push({ rcpt: address.address, reply: reply?.code ?? 250 });
      if (reply) return cb(Object.assign(new Error(reply.message), { responseCode: reply.code }));
      cb();
    },
    onData(stream, session: SMTPServerSession, cb) {
      const chunks: Buffer[] = [];
      const rcptTo = session.envelope.rcptTo.map((r) => r.address);
      let dropped = false;
      let asked = false;
      stream.on('data', (c: Buffer) => {
        chunks.push(c);
        if (asked) return;
        asked = true;
        if (sink.behaviour.drop?.(rcptTo)) {
          dropped = true;
          const conn = [...server.connections].find((c) => (c as unknown as { session: SMTPServerSession }).session === session);
          (conn as unknown as { _socket: { destroy(): void } } | undefined)?._socket.destroy();
        }
      });
      stream.on('end', () => {
        if (dropped) return;
        const raw = Buffer.concat(chunks);
        const answer = () => {
          const reply = sink.behaviour.data?.(rcptTo, raw) ?? null;
          if (reply) return cb(Object.assign(new Error(reply.message), { responseCode: reply.code }));
          const mailFrom = session.envelope.mailFrom;
          received.push({ envelopeFrom: mailFrom ? mailFrom.address : '', rcptTo, raw, at: performance.now(), secure: Boolean(session.secure), parse: () => simpleParser(raw) });
          cb(null, `Ok: queued as ${received.length}`);
        };
        if (sink.behaviour.delayMs) setTimeout(answer, sink.behaviour.delayMs);
        else answer();
      });
    },
  });
  server.on('error', () => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as { port: number }).port;
  Object.assign(sink, {
    port,
    url: `smtp://127.0.0.1:${port}`,
    received,
    attempts,
    byRecipient: (address: string) => received.filter((m) => m.rcptTo.includes(address)),
    async waitFor(predicate: (r: ReceivedMail[]) => boolean, timeoutMs = 10_000) {
      const end = Date.now() + timeoutMs;
      while (!predicate(received)) {
        if (Date.now() > end) throw new Error(`SMTP sink: condition not met within ${timeoutMs} ms (${received.length} messages received)`);
        await new Promise((r) => setTimeout(r, 5));
      }
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  });
  return sink;
}
