/**
 * Where composed messages leave: the SMTP relay (`relay-transport.ts`, over the pipelined session pool
 * of `smtp-pool.ts`), or, when no relay is configured, the development outbox, a table the API lists,
 * so that the whole path runs on a fresh machine. Failures are not retried by a transport but on the
 * delivery row, whose retries follow one schedule (src/sending/rules.ts) and leave a trace.
 */
import type { Kysely } from 'kysely';
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
  /** Whether nothing reads `mail.composed.raw` once `send` has resolved, so that its bytes can be reused. */
  readonly releasesMessage?: boolean;
  send(mail: OutgoingMail): Promise<SendResult>;
  close(): Promise<void>;
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
