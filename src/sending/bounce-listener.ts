/**
 * The inbound SMTP listener of the return path. It takes mail only for envoi's own addresses on the
 * bounce domain (`bounce+<delivery>.<mark>@domain`, the VERP envelope sender of every message sent) and
 * refuses every other recipient with 550 at RCPT TO, so it can never be used as a relay.
 *
 * A message to an address it knows is always answered 250 once it is stored or found meaningless:
 * DSN senders retry anything else for days. Only a failure of ours (the database is down) answers
 * 451, so the report comes again later instead of being lost.
 */
import { domainToASCII } from 'node:url';
import { SMTPServer, type SMTPServerAddress, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import type { ParsedMail } from 'mailparser';
import type { AppContext } from '../platform/context.ts';
import { parseUnsubscribeLocalPart, parseVerpLocalPart } from '../mail/compose.ts';
import { classifyInbound, parseInbound } from './bounce-rules.ts';
import { applyBounce } from './bounce-service.ts';
import { unsubscribeDelivery } from './tracking-service.ts';

export type ListenerLog = (level: 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>) => void;

/**
 * A kind of address the listener receives mail for, on the bounce domain: the VERP return path of
 * bounces, and the List-Unsubscribe mailto.
 */
export interface InboundAddressKind {
  name: string;
  /** the id the local part names, or null when the local part is not a genuine one of this kind (its mark is checked with `secret`) */
  match(localPart: string, secret: string | null): string | null;
  /** Handles one message for one address; throws only for a failure of ours. Resolves with what to log. */
  handle(ctx: AppContext, mail: ParsedMail, id: string): Promise<Record<string, unknown>>;
}

export const bounceAddress: InboundAddressKind = {
  name: 'bounce',
  match: parseVerpLocalPart,
  async handle(ctx, mail, deliveryId) {
    const c = classifyInbound(mail);
    if (c.type === 'ignore') return { outcome: 'ignored', reason: c.reason };
    const r = await applyBounce(ctx, deliveryId, c, { source: 'dsn' });
    return { outcome: r.outcome, type: c.type, suppressed: r.suppressed };
  },
};

/** The List-Unsubscribe mailto of a delivery (see deliveryTargets in src/mail/compose.ts). */
export const unsubscribeAddress: InboundAddressKind = {
  name: 'unsubscribe',
  match: parseUnsubscribeLocalPart,
  async handle(ctx, _mail, deliveryId) {
    const r = await unsubscribeDelivery(ctx, deliveryId, { method: 'mailto', everything: false, ip: null, userAgent: null });
    return r ? { outcome: r.withdrew ? 'unsubscribed' : 'already_unsubscribed' } : { outcome: 'unknown_delivery' };
  },
};

export const INBOUND_KINDS: readonly InboundAddressKind[] = [bounceAddress, unsubscribeAddress];

/** The kind and id an envelope recipient stands for, or null when it is not one of ours. */
export function resolveRecipient(address: string, bounceDomain: string, secret: string | null, kinds: readonly InboundAddressKind[] = INBOUND_KINDS): { kind: InboundAddressKind; id: string } | null {
  const at = address.lastIndexOf('@');
  if (at <= 0) return null;
  const domain = domainToASCII(address.slice(at + 1).toLowerCase());
  if (!domain || domain !== bounceDomain.toLowerCase()) return null;
  const local = address.slice(0, at);
  for (const kind of kinds) {
    const id = kind.match(local, secret);
    if (id !== null) return { kind, id };
  }
  return null;
}

export interface BounceListenerOptions {
  port: number;
  host: string;
  /** largest message taken (552 beyond); reports are small, their attached originals less so */
  maxBytes?: number;
  /** envelope recipients of one message; a report goes to one */
  maxRecipients?: number;
  maxClients?: number;
  kinds?: readonly InboundAddressKind[];
  log?: ListenerLog;
}

export interface BounceListener {
  port: number;
  host: string;
  close(): Promise<void>;
}

const smtpError = (code: number, message: string) => Object.assign(new Error(message), { responseCode: code });

const defaultLog: ListenerLog = (level, message, fields) => {
  if (level === 'info') return;
  process.stderr.write(`${JSON.stringify({ level, time: new Date().toISOString(), msg: message, ...fields })}\n`);
};

export async function startBounceListener(ctx: AppContext, opts: BounceListenerOptions): Promise<BounceListener> {
  const maxBytes = opts.maxBytes ?? 10 * 1024 * 1024;
  const maxRecipients = opts.maxRecipients ?? 20;
  const kinds = opts.kinds ?? INBOUND_KINDS;
  const log = opts.log ?? defaultLog;
  const domain = ctx.config.bounceDomain;

  const server = new SMTPServer({
    name: domain,
    banner: 'envoi return path',
    // Report senders never authenticate, and the only addresses taken are envoi's own.
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    // RFC 3463 codes on every reply: a refused report says why in a form MTAs log and act on.
    hideENHANCEDSTATUSCODES: false,
    size: maxBytes,
    maxClients: opts.maxClients ?? 100,
    socketTimeout: 60_000,
    closeTimeout: 10_000,
    logger: false,

    onRcptTo(address: SMTPServerAddress, session: SMTPServerSession, cb: (err?: Error | null) => void) {
      if (!resolveRecipient(address.address, domain, ctx.config.secret, kinds)) return cb(smtpError(550, `<${address.address}>: no such mailbox here (this server only takes reports about mail it sent)`));
      if (session.envelope.rcptTo.length >= maxRecipients) return cb(smtpError(452, 'too many recipients'));
      cb();
    },

    onData(stream: SMTPServerDataStream, session: SMTPServerSession, cb: (err?: Error | null, message?: string) => void) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => {
        // Past the limit the rest is read and dropped: the session must reach the end of DATA to answer.
        if (!stream.sizeExceeded) chunks.push(c);
      });
      stream.on('end', () => {
        if (stream.sizeExceeded) return cb(smtpError(552, `message larger than ${maxBytes} bytes`));
        const targets = session.envelope.rcptTo.map((r) => resolveRecipient(r.address, domain, ctx.config.secret, kinds)).filter((t): t is NonNullable<typeof t> => t !== null);
        receive(Buffer.concat(chunks), targets).then(
          () => cb(null, 'report received'),
          (e: unknown) => {
            log('error', 'could not record an inbound report; the sender will retry', { error: String((e as Error)?.stack ?? e) });
            cb(smtpError(451, 'could not record the report now, try again later'));
          },
        );
      });
    },
  });

  async function receive(raw: Buffer, targets: { kind: InboundAddressKind; id: string }[]) {
    let mail: ParsedMail;
    try {
      mail = await parseInbound(raw);
    } catch (e) {
      log('info', 'inbound message could not be parsed; ignored', { bytes: raw.length, error: String(e) });
      return;
    }
    for (const t of targets) {
      const result = await t.kind.handle(ctx, mail, t.id);
      log('info', 'inbound report', { kind: t.kind.name, id: t.id, ...result });
    }
  }

  server.on('error', (e: Error) => log('warn', 'bounce listener error', { error: e.message }));
  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.server.off('error', reject);
      resolve();
    });
  });
  const addr = server.server.address();
  return {
    port: typeof addr === 'object' && addr ? addr.port : opts.port,
    host: opts.host,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
