/**
 * Outgoing webhooks: an organisation's endpoints, their delivery log, replays and test pings. The
 * events themselves are written by database triggers (0011_webhooks.sql) and sent by the
 * dispatcher (dispatcher.ts); nothing here is on the path of a contact, consent or mail change.
 */
import type { Kysely } from 'kysely';
import type { AppContext } from '../platform/context.ts';
import type { DB, WebhookDeliveryStatus } from '../platform/schema.ts';
import { AppError, badRequest, conflict, notFound } from '../platform/errors.ts';
import { randomToken } from '../platform/secrets.ts';
import type { Principal } from '../organisations/service.ts';
import { ALL_EVENTS, checkEndpointUrl, normaliseSubscription, PING } from './rules.ts';
import * as store from './store.ts';

export interface EndpointInput {
  url: string;
  events?: string[];
  description?: string;
  enabled?: boolean;
}

// Dispatchers in this process, woken when a replay or a ping is queued; others find it at their next poll.
type Waker = () => void;
const wakers = new WeakMap<Kysely<DB>, Set<Waker>>();

export function onWebhookQueued(db: Kysely<DB>, waker: Waker): () => void {
  let set = wakers.get(db);
  if (!set) wakers.set(db, (set = new Set()));
  set.add(waker);
  return () => set!.delete(waker);
}

function notifyQueued(db: Kysely<DB>) {
  for (const w of wakers.get(db) ?? []) w();
}

/** An endpoint receives the events of every audience: a key limited to some audiences may not see or set one. */
function organisationWide(p: Principal): Principal {
  if (p.audienceIds !== null) throw new AppError(403, 'forbidden', 'webhooks carry the events of every audience of the organisation: an API key limited to some audiences cannot manage them');
  return p;
}

function validUrl(ctx: AppContext, raw: string): string {
  const r = checkEndpointUrl(raw, ctx.config.webhookPrivateNetworks);
  if (!r.ok) throw badRequest('invalid_url', r.reason);
  return r.url;
}

function validEvents(types: readonly string[]): string[] {
  const r = normaliseSubscription(types);
  if (!r.ok) throw badRequest('invalid_events', r.reason);
  return r.types;
}

function present(e: store.EndpointRow) {
  return { id: e.id, url: e.url, description: e.description, events: e.event_types, enabled: e.enabled, created_at: e.created_at, updated_at: e.updated_at };
}

async function endpointFor(ctx: AppContext, p: Principal, id: string) {
  const e = await store.findEndpoint(ctx.db, organisationWide(p).orgId, id);
  if (!e) throw notFound('webhook');
  return e;
}

/** Creates an endpoint; the answer is the only one that ever shows its signing secret. */
export async function createEndpoint(ctx: AppContext, p: Principal, input: EndpointInput) {
  organisationWide(p);
  const now = ctx.now();
  const row = await store.insertEndpoint(ctx.db, {
    org_id: p.orgId,
    url: validUrl(ctx, input.url),
    description: input.description ?? '',
    event_types: validEvents(input.events ?? [ALL_EVENTS]),
    secret: randomToken('whsec_', 32),
    enabled: input.enabled ?? true,
    created_by: `${p.kind}:${p.id}`,
    created_at: now,
    updated_at: now,
  });
  return { ...present(row), secret: row.secret };
}

export async function listEndpoints(ctx: AppContext, p: Principal) {
  return (await store.listEndpoints(ctx.db, organisationWide(p).orgId)).map(present);
}

export async function getEndpoint(ctx: AppContext, p: Principal, id: string) {
  return present(await endpointFor(ctx, p, id));
}

export async function updateEndpoint(ctx: AppContext, p: Principal, id: string, input: Partial<EndpointInput>) {
  await endpointFor(ctx, p, id);
  const row = await store.updateEndpoint(ctx.db, p.orgId, id, {
    ...(input.url !== undefined ? { url: validUrl(ctx, input.url) } : {}),
    ...(input.events !== undefined ? { event_types: validEvents(input.events) } : {}),
    ...(input.description !== undefined ? { description: input.description } : {}),
    ...(input.enabled !== undefined ? { enabled: input.enabled } : {}),
    updated_at: ctx.now(),
  });
  if (!row) throw notFound('webhook');
  return present(row);
}

/** Deletes the endpoint and its delivery log; deliveries not yet made are dropped with it. */
export async function deleteEndpoint(ctx: AppContext, p: Principal, id: string) {
  if (!(await store.deleteEndpoint(ctx.db, organisationWide(p).orgId, id))) throw notFound('webhook');
}

function presentDelivery(d: store.DeliveryView) {
  return {
    id: d.id,
    webhook_id: d.endpoint_id,
    status: d.status,
    attempts: d.attempts,
    next_attempt_at: d.next_attempt_at,
    in_flight: d.in_flight,
    last_attempt_at: d.last_attempt_at,
    last_status_code: d.last_status_code,
    last_error: d.last_error,
    response_snippet: d.response_snippet,
    attempt_log: d.attempt_log,
    created_at: d.created_at,
    delivered_at: d.delivered_at,
    failed_at: d.failed_at,
    event: { id: d.event_id, type: d.event_type, occurred_at: d.occurred_at, data: d.payload },
  };
}

export async function listDeliveries(ctx: AppContext, p: Principal, id: string, q: { status?: WebhookDeliveryStatus; limit: number; offset: number }) {
  const e = await endpointFor(ctx, p, id);
  // One more than asked tells whether there is a next page without counting a log of millions.
  const rows = await store.listDeliveries(ctx.db, { endpointId: e.id, status: q.status, limit: q.limit + 1, offset: q.offset, now: ctx.now() });
  return { deliveries: rows.slice(0, q.limit).map(presentDelivery), has_more: rows.length > q.limit, limit: q.limit, offset: q.offset };
}

export async function getDelivery(ctx: AppContext, p: Principal, id: string, deliveryId: string) {
  const e = await endpointFor(ctx, p, id);
  const d = await store.findDelivery(ctx.db, e.id, deliveryId, ctx.now());
  if (!d) throw notFound('delivery');
  return presentDelivery(d);
}

/** Sends a delivery again: due now, with a fresh 24 hours of retries if that attempt fails. */
export async function replayDelivery(ctx: AppContext, p: Principal, id: string, deliveryId: string) {
  const e = await endpointFor(ctx, p, id);
  if (!e.enabled) throw conflict('webhook_disabled', 'the webhook is disabled: enable it (PATCH enabled: true) to send to it');
  const now = ctx.now();
  if (!(await store.findDelivery(ctx.db, e.id, deliveryId, now))) throw notFound('delivery');
  if (!(await store.replay(ctx.db, e.id, deliveryId, now))) throw conflict('delivery_in_flight', 'this delivery is being sent right now; replay it once the attempt is recorded');
  notifyQueued(ctx.db);
  return presentDelivery((await store.findDelivery(ctx.db, e.id, deliveryId, now))!);
}

/**
 * For the erasure of a data subject (src/consent/subject-service.ts eraseSubject, after the contacts
 * are deleted): clears their address from the outbox's past events. Takes the caller's transaction.
 */
export function eraseSubjectEvents(db: Kysely<DB>, orgId: string, emailLower: string, contactIds: readonly string[]): Promise<number> {
  return store.eraseSubject(db, orgId, emailLower, contactIds);
}

/** Queues a `ping` event to this endpoint only, whatever it subscribes to. */
export async function sendTest(ctx: AppContext, p: Principal, id: string) {
  const e = await endpointFor(ctx, p, id);
  if (!e.enabled) throw conflict('webhook_disabled', 'the webhook is disabled: enable it (PATCH enabled: true) to send to it');
  const r = await store.insertPing(ctx.db, p.orgId, e.id, { webhook_id: e.id, message: 'A test event from envoi: your endpoint is reachable if this delivery is marked delivered.' }, ctx.now());
  notifyQueued(ctx.db);
  return { event_id: r.event_id, delivery_id: r.delivery_id, type: PING };
}
