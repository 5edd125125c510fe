import { domainToUnicode } from 'node:url';
import { sql, type Kysely, type Transaction } from 'kysely';
import type { DB, SuppressionsTable } from '../platform/schema.ts';
import { checkEmail } from '../platform/email-address.ts';
import { insertEvents } from './store.ts';

type Q = Kysely<DB> | Transaction<DB>;

export interface LockedDelivery {
  id: string;
  org_id: string;
  message_id: string;
  email: string;
  status: string;
  attempts: number;
  audience_id: string;
  sensitive: boolean;
}

/**
 * The deliveries reports are about, locked until the transaction ends: two copies of one DSN
 * arriving together (two MX hosts, a webhook retry) are applied one after the other, so the second
 * sees the first and is recognised as a duplicate. Locked in id order, so two batches naming the
 * same deliveries wait for each other instead of deadlocking. `orgId` confines the lookup.
 */
export async function lockDeliveries(db: Q, ids: readonly string[], orgId: string | null): Promise<Map<string, LockedDelivery>> {
  if (ids.length === 0) return new Map();
  let q = db
    .selectFrom('deliveries as d')
    .innerJoin('messages as m', 'm.id', 'd.message_id')
    .select(['d.id', 'd.org_id', 'd.message_id', 'd.email', 'd.status', 'd.attempts', 'm.audience_id', 'm.sensitive'])
    .where('d.id', 'in', [...ids]);
  if (orgId !== null) q = q.where('d.org_id', '=', orgId);
  const rows = await q.orderBy('d.id').forUpdate('d').execute();
  return new Map(rows.map((r) => [r.id, r]));
}

/** The bounce and complaint events already recorded for these deliveries. */
export async function bounceEvents(db: Q, deliveryIds: readonly string[]): Promise<Map<string, { type: string; detail: unknown }[]>> {
  const map = new Map<string, { type: string; detail: unknown }[]>();
  if (deliveryIds.length === 0) return map;
  const rows = await db
    .selectFrom('message_events')
    .select(['delivery_id', 'type', 'detail'])
    .where('delivery_id', 'in', [...deliveryIds])
    .where('type', 'in', ['bounced', 'delayed', 'complained'])
    .orderBy('id')
    .execute();
  for (const r of rows) map.set(r.delivery_id!, [...(map.get(r.delivery_id!) ?? []), { type: r.type, detail: r.detail }]);
  return map;
}

export interface Write {
  events: { org_id: string; message_id: string; delivery_id: string; type: string; at: Date; detail: Record<string, unknown> }[];
  bounced: { id: string; smtp_response: string; last_error: string }[];
  /** messages whose secrets go now that their delivery is given up */
  scrub: string[];
  suppressions: { org_id: string; email_lower: string; reason: SuppressionsTable['reason']; created_at: Date; delivery_id: string; detail: string | null }[];
}

/** Writes what a batch of reports decided, a few statements whatever its size. */
export async function write(db: Q, now: Date, w: Write) {
  await insertEvents(db, w.events.map((e) => ({ ...e, detail: JSON.stringify(e.detail) })));
  if (w.bounced.length) {
    // The lease goes with the status: a worker still holding the row finds it no longer 'sending'
    // and leaves it as the receiver's final word has it.
    await sql`
      UPDATE deliveries d
      SET status = 'bounced', smtp_response = v.smtp_response, last_error = v.last_error, lease_until = NULL, leased_by = NULL, updated_at = ${now}::timestamptz
      FROM jsonb_to_recordset(${JSON.stringify(w.bounced)}::jsonb) AS v(id uuid, smtp_response text, last_error text)
      WHERE d.id = v.id`.execute(db);
  }
  if (w.scrub.length) await db.updateTable('messages').set({ variables: '{}' }).where('id', 'in', w.scrub).where('sensitive', '=', true).execute();
  if (w.suppressions.length) {
    await db.insertInto('suppressions').values(w.suppressions).onConflict((oc) => oc.columns(['org_id', 'email_lower', 'reason']).doNothing()).execute();
  }
}

/**
 * The lower-cased forms a stored delivery address may have for `email`: deliveries keep the
 * address as the contact has it (local part as typed, domain lower-cased, an IDN in Unicode), so a
 * relay reporting the punycode form still finds it.
 */
export function addressForms(email: string): string[] {
  const forms = new Set<string>([email.trim().toLowerCase()]);
  const r = checkEmail(email);
  if (r.ok) {
    forms.add(r.lower);
    forms.add(r.email.toLowerCase());
    const at = r.lower.lastIndexOf('@');
    forms.add(`${r.lower.slice(0, at)}@${domainToUnicode(r.lower.slice(at + 1))}`);
  }
  return [...forms];
}

/** The deliveries of organisation `orgId` to each (message id, address form) asked, as `message id|form` -> delivery id. */
export async function deliveriesByMessageAndEmail(db: Q, orgId: string, asked: readonly { messageId: string; forms: readonly string[] }[]): Promise<Map<string, string>> {
  const map = new Map<string, string>();
  if (asked.length === 0) return map;
  const rows = await db
    .selectFrom('deliveries')
    .select(['id', 'message_id', (eb) => eb.fn<string>('lower', ['email']).as('email_lower')])
    .where('org_id', '=', orgId)
    .where('message_id', 'in', [...new Set(asked.map((a) => a.messageId))])
    .where((eb) => eb(eb.fn('lower', ['email']), 'in', [...new Set(asked.flatMap((a) => a.forms))]))
    .orderBy('created_at', 'desc')
    .execute();
  // Oldest last, so it is the one kept: one person's delivery of one message is its first.
  for (const r of rows) map.set(`${r.message_id}|${r.email_lower}`, r.id);
  return map;
}
