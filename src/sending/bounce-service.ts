/**
 * Applying bounces and complaints to deliveries, whether they came back as mail to the VERP return
 * path (the bounce listener) or from a relay's webhook. One path for both, so a DSN and a webhook
 * about the same refusal are one event, and either suppresses the address the same way.
 *
 * A hard bounce marks the delivery 'bounced' even after it was 'sent': 'sent' only ever meant that
 * the next hop accepted it. A soft bounce (a delay warning) is recorded and changes nothing else; the
 * sending MTA is still trying. A complaint suppresses marketing to the address (the policy's
 * `complained` rule); the delivery keeps its status, since it was delivered.
 */
import type { Transaction } from 'kysely';
import type { AppContext } from '../platform/context.ts';
import type { DB } from '../platform/schema.ts';
import { badRequest } from '../platform/errors.ts';
import type { Principal } from '../organisations/service.ts';
import { emailKey } from './service.ts';
import { bounceFromReport, isDuplicate, type Bounce } from './bounce-rules.ts';
import * as store from './bounce-store.ts';

export type BounceSource = 'dsn' | 'webhook';

export type ApplyOutcome =
  | 'applied'
  | 'duplicate'
  /** no such delivery, or one the caller may not see (another organisation, an audience outside the key) */
  | 'unknown_delivery'
  /** the delivery was never handed to SMTP (blocked, or still waiting for its first attempt): a report about it is not genuine */
  | 'not_sent';

export interface ApplyResult {
  outcome: ApplyOutcome;
  deliveryId: string | null;
  /** the address is now suppressed (or already was) because of this report */
  suppressed: boolean;
}

export interface ApplyOptions {
  source: BounceSource;
  /** the caller reporting it (a webhook); absent for the listener, which trusts the VERP address */
  principal?: Principal;
}

export interface BounceItem {
  deliveryId: string;
  bounce: Bounce;
  /** when it happened; defaults to now, and is never later than now */
  at?: Date;
}

const RETRYABLE = new Set(['40001', '40P01']); // serialization failure, deadlock

/** Applies one bounce or complaint to a delivery, once; scoped to the delivery's organisation. */
export async function applyBounce(ctx: AppContext, deliveryId: string, bounce: Bounce, opts: ApplyOptions & { at?: Date }): Promise<ApplyResult> {
  return (await applyBounces(ctx, [{ deliveryId, bounce, at: opts.at }], opts))[0]!;
}

/**
 * Applies reports in order, in one transaction of a few statements whatever their number (a relay
 * batch is up to a thousand). Each is checked against what is already recorded and against the
 * reports before it in the batch, so a repeat anywhere is a duplicate.
 */
export async function applyBounces(ctx: AppContext, items: readonly BounceItem[], opts: ApplyOptions): Promise<ApplyResult[]> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await ctx.db.transaction().execute((trx) => applyIn(ctx, trx, items, opts));
    } catch (e) {
      // Another transaction locked the same rows in another order (a worker recording outcomes).
      if (attempt < 3 && RETRYABLE.has(String((e as { code?: unknown })?.code))) continue;
      throw e;
    }
  }
}

async function applyIn(ctx: AppContext, trx: Transaction<DB>, items: readonly BounceItem[], opts: ApplyOptions): Promise<ApplyResult[]> {
  const now = ctx.now();
  const p = opts.principal;
  const ids = [...new Set(items.map((i) => i.deliveryId.toLowerCase()))];
  const deliveries = await store.lockDeliveries(trx, ids, p?.orgId ?? null);
  const prior = await store.bounceEvents(trx, [...deliveries.keys()]);
  const w: store.Write = { events: [], bounced: [], scrub: [], suppressions: [] };
  const results: ApplyResult[] = [];
  for (const item of items) {
    const d = deliveries.get(item.deliveryId.toLowerCase());
    const bounce = item.bounce;
    if (!d || (p && p.audienceIds !== null && !p.audienceIds.includes(d.audience_id))) {
      results.push({ outcome: 'unknown_delivery', deliveryId: null, suppressed: false });
      continue;
    }
    if (d.status === 'blocked' || d.attempts === 0) {
      results.push({ outcome: 'not_sent', deliveryId: d.id, suppressed: false });
      continue;
    }
    const seen = prior.get(d.id) ?? [];
    if (isDuplicate(seen, bounce)) {
      results.push({ outcome: 'duplicate', deliveryId: d.id, suppressed: false });
      continue;
    }
    const at = item.at && item.at.getTime() < now.getTime() ? item.at : now;
    const base = { org_id: d.org_id, message_id: d.message_id, delivery_id: d.id, at };
    const recipient = bounce.recipient ? { recipient: bounce.recipient } : {};
    let suppressed: boolean;
    let event: { type: string; detail: Record<string, unknown> };
    if (bounce.type === 'complaint') {
      event = { type: 'complained', detail: { source: opts.source, feedback_type: bounce.feedbackType, ...recipient } };
      w.suppressions.push({ org_id: d.org_id, email_lower: emailKey(d.email), reason: 'complaint', created_at: at, delivery_id: d.id, detail: `feedback report: ${bounce.feedbackType}` });
      suppressed = true;
    } else {
      const hard = bounce.type === 'hard_bounce';
      suppressed = hard && bounce.suppress;
      // A delay warning is not a bounce: reports count it apart, and the delivery stays delivered.
      event = { type: hard ? 'bounced' : 'delayed', detail: { kind: hard ? 'hard' : 'soft', status: bounce.status, diagnostic: bounce.diagnostic, source: opts.source, suppressed, ...recipient } };
      if (hard) {
        const said = [bounce.status, bounce.diagnostic].filter(Boolean).join(' ') || 'no diagnostic given';
        const via = opts.source === 'dsn' ? 'delivery status notification' : 'relay webhook';
        w.bounced.push({ id: d.id, smtp_response: bounce.diagnostic ?? bounce.status ?? 'bounced', last_error: `bounced after sending (${via}): ${said}`.slice(0, 1000) });
        if (d.sensitive) w.scrub.push(d.message_id);
      }
      if (suppressed) w.suppressions.push({ org_id: d.org_id, email_lower: emailKey(d.email), reason: 'hard_bounce', created_at: at, delivery_id: d.id, detail: bounce.diagnostic ?? bounce.status });
    }
    w.events.push({ ...base, ...event });
    prior.set(d.id, [...seen, event]);
    results.push({ outcome: 'applied', deliveryId: d.id, suppressed });
  }
  await store.write(trx, now, w);
  return results;
}

// ---- relay webhooks ----

export interface ReportedEventInput {
  delivery_id?: string;
  message_id?: string;
  email?: string;
  type: Bounce['type'];
  status?: string;
  diagnostic?: string;
  feedback_type?: string;
  at?: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** The Message-ID header envoi gives a delivery: `<delivery id@bounce domain>`, brackets optional. */
const HEADER_MESSAGE_ID = /^<?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})@[^<>@\s]+>?$/i;

type Target = { deliveryId: string } | { messageId: string; email: string };

/**
 * Where an event points: `delivery_id`; or `message_id` as envoi's Message-ID header (which names
 * the delivery); or `message_id` as the id the messages API returned, with `email` to pick the
 * recipient. Checked for every event before any is applied, so a bad batch changes nothing.
 */
function targetOf(e: ReportedEventInput, index: number): Target {
  if (e.delivery_id) return { deliveryId: e.delivery_id.toLowerCase() };
  const mid = e.message_id?.trim();
  if (mid) {
    const header = HEADER_MESSAGE_ID.exec(mid);
    if (header) return { deliveryId: header[1]!.toLowerCase() };
    if (!UUID.test(mid)) throw badRequest('invalid_event', `events/${index}/message_id: give the message id returned by POST /v1/messages, or the Message-ID header envoi set (<delivery id@domain>)`);
    if (!e.email?.trim()) throw badRequest('invalid_event', `events/${index}: a message_id that is a message's id needs email to find the recipient's delivery`);
    return { messageId: mid.toLowerCase(), email: e.email };
  }
  throw badRequest('invalid_event', `events/${index}: give delivery_id, or message_id (with email)`);
}

export interface ReportedEventResult {
  index: number;
  result: ApplyOutcome;
  delivery_id: string | null;
  suppressed: boolean;
}

/** Applies a relay's batch of events in order, each once, within the caller's organisation. */
export async function applyReportedEvents(ctx: AppContext, p: Principal, events: readonly ReportedEventInput[]) {
  const prepared = events.map((e, index) => {
    const at = e.at === undefined ? undefined : new Date(e.at);
    if (at && Number.isNaN(at.getTime())) throw badRequest('invalid_event', `events/${index}/at: not a date-time`);
    const target = targetOf(e, index);
    return { target, forms: 'email' in target ? store.addressForms(target.email) : [], at, bounce: bounceFromReport({ type: e.type, status: e.status, diagnostic: e.diagnostic, feedbackType: e.feedback_type }) };
  });
  const byMessage = await store.deliveriesByMessageAndEmail(
    ctx.db,
    p.orgId,
    prepared.flatMap((e) => ('messageId' in e.target ? [{ messageId: e.target.messageId, forms: e.forms }] : [])),
  );
  const found = prepared.map((e) => {
    if ('deliveryId' in e.target) return e.target.deliveryId;
    const { messageId } = e.target;
    return e.forms.map((f) => byMessage.get(`${messageId}|${f}`)).find(Boolean) ?? null;
  });
  const items: BounceItem[] = [];
  for (const [i, e] of prepared.entries()) if (found[i]) items.push({ deliveryId: found[i]!, bounce: e.bounce, at: e.at });
  const applied = await applyBounces(ctx, items, { source: 'webhook', principal: p });
  let next = 0;
  const results: ReportedEventResult[] = prepared.map((_, index) => {
    const r = found[index] ? applied[next++]! : { outcome: 'unknown_delivery' as const, deliveryId: null, suppressed: false };
    return { index, result: r.outcome, delivery_id: r.deliveryId, suppressed: r.suppressed };
  });
  const counts: Record<ApplyOutcome, number> = { applied: 0, duplicate: 0, unknown_delivery: 0, not_sent: 0 };
  for (const r of results) counts[r.result]++;
  return { results, counts };
}
