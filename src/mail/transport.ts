/**
 * Where composed messages leave: a pooled SMTP relay (nodemailer), or, when no relay is configured,
 * the development outbox, a table the API lists, so that the whole path runs on a fresh machine.
 *
 * SMTP: STARTTLS is used whenever the relay offers it (nodemailer's default; certificates are
 * verified, add `?tls.rejectUnauthorized=false` to SMTP_URL for a relay with a self-signed one), and
 * messages are DKIM-signed when a key is configured. Timeouts and other nodemailer options can be
 * given in SMTP_URL's query (`?socketTimeout=10000`), which take precedence over the defaults here.
 *
 * Failures are not retried here but on the delivery row, whose retries follow one schedule
 * (src/sending/rules.ts) and leave a trace; the pool's own requeue is off. One exception: when a
 * connection closed before a byte of the message went out (a pooled connection the relay had
 * closed or answered 421, a connection dropped before its greeting), nodemailer fails the message
 * with "Reached maximum number of retries" and nothing else; it is sent once more, over another
 * connection, within the same attempt. Nothing can go out twice because of it: nodemailer gives
 * that error only for a message it had not started to send. (Its own requeue would do the same,
 * but it resends the message's envelope object, which still carries the first connection's MAIL
 * FROM error, and fails again with that stale error.)
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
      // A fresh options object each time: nodemailer builds a new message (and envelope) from it.
      const sendOnce = async () => {
        const info = await transporter.sendMail({ ...message, envelope: { from: envelope.from, to: [envelope.to] } });
        return { response: String(info.response ?? '250 OK') };
      };
      try {
        return await sendOnce();
      } catch (e) {
        if (!closedBeforeSending(e)) throw e;
      }
      try {
        return await sendOnce();
      } catch (e) {
        if (!closedBeforeSending(e)) throw e;
        throw Object.assign(new Error('the relay closed the connection before the message could be sent, twice in a row'), { code: 'ECONNECTION' });
      }
    },
    async close() {
      transporter.close();
    },
  };
}

/** The pool's failure for a message whose connection closed before any of it was sent. */
function closedBeforeSending(e: unknown): boolean {
  const err = e as { code?: string; message?: string } | null;
  return err?.code === 'ECONNECTION' && /^Reached maximum number of retries after connection was closed/.test(err.message ?? '');
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
