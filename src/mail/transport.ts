/**
 * Where composed messages leave: a pooled SMTP relay (nodemailer), or, when no relay is configured,
 * the development outbox, a table the API lists, so that the whole path runs on a fresh machine.
 *
 * SMTP: STARTTLS is used whenever the relay offers it (nodemailer's default; certificates are
 * verified, add `?tls.rejectUnauthorized=false` to SMTP_URL for a relay with a self-signed one), and
 * messages are DKIM-signed when a key is configured. Failures are not retried here: the pool's own
 * requeue is off so that every failure reaches the delivery row, whose retries follow one schedule
 * (src/sending/rules.ts) and leave a trace.
 */
import nodemailer from 'nodemailer';
import type { Kysely } from 'kysely';
import type { Config } from '../platform/config.ts';
import type { DB } from '../platform/schema.ts';
import { buildRaw, type ComposedMessage } from './compose.ts';

export interface OutgoingMail {
  orgId: string;
  messageId: string;
  deliveryId: string;
  subject: string;
  composed: ComposedMessage;
}

export interface SendResult {
  /** The relay's final reply (e.g. `250 2.0.0 Ok: queued as 4XyZ`). */
  response: string;
}

export interface MailTransport {
  readonly kind: 'smtp' | 'outbox';
  send(mail: OutgoingMail): Promise<SendResult>;
  close(): Promise<void>;
}

export interface SmtpOptions {
  url: string;
  maxConnections: number;
  dkim?: Config['dkim'];
  /** Socket inactivity limit; keeps a stuck relay from holding a delivery past its lease. */
  socketTimeoutMs?: number;
}

export function smtpTransport(opts: SmtpOptions): MailTransport {
  const transporter = nodemailer.createTransport({
    url: opts.url,
    pool: true,
    maxConnections: opts.maxConnections,
    maxMessages: 500,
    maxRequeues: 0,
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: opts.socketTimeoutMs ?? 30_000,
    ...(opts.dkim ? { dkim: { domainName: opts.dkim.domainName, keySelector: opts.dkim.keySelector, privateKey: opts.dkim.privateKey } } : {}),
  });
  return {
    kind: 'smtp',
    async send(mail) {
      const { envelope, mail: message } = mail.composed;
      const info = await transporter.sendMail({ ...message, envelope: { from: envelope.from, to: [envelope.to] } });
      return { response: String(info.response ?? '250 OK') };
    },
    async close() {
      transporter.close();
    },
  };
}

/** Keeps each message in the `outbox` table instead of sending it. */
export function outboxTransport(db: Kysely<DB>): MailTransport {
  return {
    kind: 'outbox',
    async send(mail) {
      const row = await db
        .insertInto('outbox')
        .values({
          org_id: mail.orgId,
          message_id: mail.messageId,
          delivery_id: mail.deliveryId,
          envelope_from: mail.composed.envelope.from,
          envelope_to: mail.composed.envelope.to,
          subject: mail.subject,
          raw: (await buildRaw(mail.composed)).toString('utf8'),
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      return { response: `250 kept in the development outbox as ${row.id} (no SMTP_URL configured)` };
    },
    async close() {},
  };
}

/** The transport a worker lane uses: SMTP when `smtpUrl` is set, the outbox otherwise. */
export function createMailTransport(db: Kysely<DB>, opts: { smtpUrl: string | null; maxConnections: number; dkim?: Config['dkim'] }): MailTransport {
  return opts.smtpUrl ? smtpTransport({ url: opts.smtpUrl, maxConnections: opts.maxConnections, dkim: opts.dkim }) : outboxTransport(db);
}
