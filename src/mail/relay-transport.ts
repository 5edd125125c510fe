/**
 * The worker's SMTP transport: composed messages (bytes) over pooled, pipelined sessions
 * (src/mail/smtp-pool.ts), DKIM-signed by nodemailer's signer when a key is configured. Failures are
 * not retried here, as with src/mail/transport.ts: every failure reaches the delivery row, whose
 * retries follow one schedule (src/sending/rules.ts) and leave a trace.
 */
import DKIM from 'nodemailer/lib/dkim';
import type { Config } from '../platform/config.ts';
import { parseSmtpUrl } from './smtp-client.ts';
import { SmtpPool } from './smtp-pool.ts';
import type { MailTransport } from './transport.ts';

export interface RelayOptions {
  url: string;
  maxConnections: number;
  /** Messages in flight per connection (src/mail/smtp-pool.ts); default 2. */
  perSession?: 1 | 2;
  dkim?: Config['dkim'];
  /** Longest wait for one reply; keeps a stuck relay from holding a delivery past its lease. */
  socketTimeoutMs?: number;
}

async function signed(dkim: DKIM, raw: Buffer): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of dkim.sign(raw)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export function relayTransport(opts: RelayOptions): MailTransport {
  const relay = parseSmtpUrl(opts.url);
  const timeouts = { ...(opts.socketTimeoutMs ? { socketMs: opts.socketTimeoutMs } : {}), ...relay.timeouts };
  const pool = new SmtpPool(relay, { maxConnections: opts.maxConnections, perSession: opts.perSession, timeouts });
  const dkim = opts.dkim ? new DKIM({ domainName: opts.dkim.domainName, keySelector: opts.dkim.keySelector, privateKey: opts.dkim.privateKey }) : null;
  return {
    kind: 'smtp',
    // A send resolves on the server's reply to the end of the data: every byte was written by then.
    releasesMessage: true,
    async send(mail) {
      const { envelope, raw, dataSafe } = mail.composed;
      // The signer only adds a header; its output is checked all the same.
      const response = dkim ? await pool.send(envelope.from, envelope.to, await signed(dkim, raw)) : await pool.send(envelope.from, envelope.to, raw, { dataSafe });
      return { response };
    },
    close: () => pool.close(),
  };
}
