/**
 * Accepting mail: the triggered API (one recipient, now or at `send_at`), the bulk enqueue campaigns
 * will call, and the dry run. Every recipient is decided by the consent policy when the message is
 * accepted and again when the worker sends it; a blocked recipient gets a delivery row with the rule
 * that blocked it, so every "why didn't they get it?" has a stored answer.
 *
 * The 202 of the triggered API is sent only once the message, its delivery row and its first event are
 * committed: from then on the mail survives any process dying.
 */
import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { AppContext } from '../platform/context.ts';
import { nextRowId } from '../platform/uuid-v7.ts';
import type { DB, Lane, MessageCategory } from '../platform/schema.ts';
import { AppError, badRequest, conflict, notFound } from '../platform/errors.ts';
import { checkEmail } from '../platform/email-address.ts';
import type { Principal } from '../organisations/service.ts';
import { audienceFor, canSeeAudience, contactsForSending, ensureContactByEmail, eventFor } from '../audience/service.ts';
import type { IssuedToken } from '../accounts/service.ts';
import {
  decide,
  explain,
  isRuleCode,
  participationWindow,
  PolicyInputError,
  summarise,
  triggeredCategoryAllowed,
  validatePolicySettings,
  type Decision,
  type Origin,
  type PolicyMessage,
  type PolicyRecipient,
  type PolicySettings,
  type RuleCode,
} from '../consent/rules.ts';
import { checkPreview, type CompiledTemplate, type TemplateSource } from '../mail/render.ts';
import { asBadRequest, compiledFor, compiledVersion, contactData, eventData, templateFor } from '../mail/template-service.ts';
import { findBuiltinOverride, type TemplateWithContent } from '../mail/template-store.ts';
import { builtinTemplate, type BuiltinKind } from '../mail/builtin-templates.ts';
import { deliveryDeadline, laneFor, messageStatus, priorityFor, rateDecision, rateWindowStart, type DeliveryStatus } from './rules.ts';
import * as store from './store.ts';
import { rateCounterFor } from './accept-rate.ts';
import { lookupsFor, type AcceptEvent } from './accept-lookups.ts';
import { acceptWriterFor } from './accept-writer.ts';
import { excludedAmong } from '../consent/service.ts';
import { marketingConsent } from '../consent/ledger-rules.ts';

// ---- waking workers of this process ----

type Waker = (lane: Lane) => void;
const wakers = new WeakMap<object, Set<Waker>>();

/** A worker in this process hears about new work at once instead of at its next poll. */
export function onQueued(db: Kysely<DB>, waker: Waker): () => void {
  let set = wakers.get(db);
  if (!set) wakers.set(db, (set = new Set()));
  set.add(waker);
  return () => set!.delete(waker);
}

function notifyQueued(db: Kysely<DB>, lane: Lane) {
  for (const w of wakers.get(db) ?? []) w(lane);
}

/** The same, for the workers of other processes too (PostgreSQL NOTIFY); a lost notice only costs a poll. */
function notifyAll(ctx: AppContext, lane: Lane) {
  notifyQueued(ctx.db, lane);
  if (ctx.database.kind === 'postgres') store.notifyWorkers(ctx.db, lane).catch(() => {});
}

// ---- rate limit ----

export type RateCheck = { limited: false; limit: number | null; remaining: number | null } | { limited: true; limit: number; retryAfterSeconds: number };

/**
 * Counts this request against the caller's API key (its `rate_limit_per_minute`, 300 by default) in
 * a fixed one-minute window. Counted in this process and written to the shared counter in batches
 * (accept-rate.ts): exact with one API process, shared by all of them within a fraction of a second.
 * Back-office sessions are people clicking, not limited here.
 */
export async function checkRateLimit(ctx: AppContext, p: Principal): Promise<RateCheck> {
  if (p.kind !== 'key' || p.rateLimitPerMinute === null) return { limited: false, limit: null, remaining: null };
  const now = ctx.now();
  const count = await rateCounterFor(ctx.db).count(`key:${p.id}`, rateWindowStart(now));
  const d = rateDecision(count, p.rateLimitPerMinute, now);
  return d.allowed ? { limited: false, limit: p.rateLimitPerMinute, remaining: d.remaining } : { limited: true, limit: p.rateLimitPerMinute, retryAfterSeconds: d.retryAfterSeconds };
}

// ---- policy inputs ----

export interface MessageScope {
  orgSettings: unknown;
  audienceId: string;
  category: MessageCategory;
  origin: Origin;
  event: { id: string; ends_at: Date; time_zone: string } | null;
  communityId: string | null;
  /** a re-permission campaign's request for consent (see MarketingMessage) */
  repermission?: boolean;
}

/** The organisation's policy settings; a bad stored value stops sending rather than being guessed. */
export function policySettings(orgSettings: unknown): PolicySettings {
  const s = validatePolicySettings(orgSettings);
  if (!s.ok) throw new PolicyInputError(`organisation settings: ${s.reason}`);
  return s.value;
}

/**
 * The policy's view of a message for one recipient. Mail sent through the triggered API is caused by
 * the recipient's own action (that is what the API is for), so the recipient is the person concerned;
 * a transactional message to a list has no person concerned and is refused for every recipient.
 */
export function policyMessage(scope: MessageScope, recipientContactId: string): PolicyMessage {
  const common = { audienceId: scope.audienceId, origin: scope.origin, invitation: false, settings: policySettings(scope.orgSettings) };
  switch (scope.category) {
    case 'transactional':
      return { ...common, category: 'transactional', personConcernedId: scope.origin === 'triggered' ? recipientContactId : '' };
    case 'participation':
      if (scope.event) return { ...common, category: 'participation', about: { kind: 'event', event: { id: scope.event.id, endsAt: scope.event.ends_at, timeZone: scope.event.time_zone } } };
      if (scope.communityId) return { ...common, category: 'participation', about: { kind: 'community', communityId: scope.communityId } };
      throw new PolicyInputError('a participation message must be about an event or a community');
    case 'marketing':
      return { ...common, category: 'marketing', repermission: scope.repermission === true };
  }
}

export type SendingContact = Awaited<ReturnType<typeof contactsForSending>>[number];

/**
 * The policy's view of a recipient. `email` is the address the delivery goes to (fixed when it was
 * accepted). Marketing consent is the contact's state as the consent ledger last set it.
 */
export function policyRecipient(
  c: SendingContact,
  email: string,
  suppression: { hardBouncedAt: Date | null; complainedAt: Date | null } | undefined,
  excluded: boolean,
): PolicyRecipient {
  return {
    contactId: c.id,
    audienceId: c.audience_id,
    email,
    hardBouncedAt: suppression?.hardBouncedAt ?? null,
    complainedAt: suppression?.complainedAt ?? null,
    eventIds: c.event_ids,
    communityIds: c.community_ids,
    marketing: marketingConsent(c),
    excluded,
  };
}

export const emailKey = (email: string) => {
  const r = checkEmail(email);
  return r.ok ? r.lower : email.trim().toLowerCase();
};

/** What the policy needs about a batch of addresses beyond the contacts: suppressions and exclusions, two queries. */
export async function addressFacts(db: Kysely<DB>, orgId: string, emails: readonly string[]) {
  const keys = emails.map(emailKey);
  const [suppressions, excluded] = await Promise.all([store.suppressionsFor(db, orgId, keys), excludedAmong(db, orgId, keys)]);
  return { suppressions, excluded };
}

async function decideFor(ctx: AppContext, orgId: string, scope: MessageScope, contacts: SendingContact[], now: Date): Promise<Map<string, Decision>> {
  const facts = await addressFacts(ctx.db, orgId, contacts.map((c) => c.email));
  const out = new Map<string, Decision>();
  for (const c of contacts) {
    const key = emailKey(c.email);
    out.set(c.id, decide(policyMessage(scope, c.id), policyRecipient(c, c.email, facts.suppressions.get(key), facts.excluded.has(key)), now));
  }
  return out;
}

async function orgInfo(ctx: AppContext, orgId: string): Promise<{ name: string; settings: unknown }> {
  return ctx.db.selectFrom('organisations').select(['name', 'settings']).where('id', '=', orgId).executeTakeFirstOrThrow();
}

function policyError(e: unknown): unknown {
  return e instanceof PolicyInputError ? new AppError(409, 'invalid_policy_settings', e.message) : e;
}

async function scopeOfTemplate(ctx: AppContext, p: Principal, t: TemplateWithContent, origin: Origin, org?: { settings: unknown }): Promise<MessageScope> {
  const [event, settings] = await Promise.all([
    t.event_id ? ctx.db.selectFrom('events').select(['id', 'ends_at', 'time_zone']).where('id', '=', t.event_id).executeTakeFirst() : undefined,
    org ? org.settings : orgInfo(ctx, p.orgId).then((o) => o.settings),
  ]);
  return { orgSettings: settings, audienceId: t.audience_id, category: t.category, origin, event: event ?? null, communityId: t.community_id };
}

/** When participation mail about `event` stops being accepted (the organisation's D+N rule). */
export async function eventMailClosesAt(ctx: AppContext, p: Principal, event: { id: string; ends_at: Date; time_zone: string }): Promise<Date> {
  try {
    return participationWindow({ id: event.id, endsAt: event.ends_at, timeZone: event.time_zone }, policySettings((await orgInfo(ctx, p.orgId)).settings).participationWindowDays).closesAt;
  } catch (e) {
    throw policyError(e);
  }
}

// ---- the triggered API ----

export interface TriggeredInput {
  template_id?: string;
  /** one of envoi's built-in templates, or the audience's override of it */
  builtin?: BuiltinKind;
  audience_id?: string;
  /** the event a built-in or inline message is about (registration_confirmation) */
  event_id?: string;
  language?: string;
  subject?: string;
  html?: string;
  text?: string | null;
  to: { contact_id?: string; email?: string; first_name?: string | null; last_name?: string | null; company?: string | null; job_title?: string | null; fields?: Record<string, unknown> };
  variables?: Record<string, unknown>;
  idempotency_key?: string;
  custom_id?: string;
  tags?: string[];
  send_at?: string;
  /** the variables hold secrets: kept only until the message is delivered or given up */
  sensitive?: boolean;
}

export interface Accepted {
  id: string;
  status: DeliveryStatus;
  delivery_id: string | null;
  replayed: boolean;
  rule?: RuleCode;
  detail?: string;
}

function requestHash(input: TriggeredInput): string {
  const { idempotency_key: _key, ...rest } = input;
  const canonical = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(canonical) : v && typeof v === 'object' ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])])) : v;
  return createHash('sha256').update(JSON.stringify(canonical(rest))).digest('hex');
}

async function replay(ctx: AppContext, m: { id: string; request_hash: string | null }, hash: string): Promise<Accepted> {
  if (m.request_hash !== hash) {
    throw conflict('idempotency_key_reused', 'this idempotency_key was already used for a different request; use a new key for a new message', { message_id: m.id });
  }
  // The answer the first request got: the status the message was accepted with.
  const first = await store.firstEvent(ctx.db, m.id);
  const delivery = first?.delivery_id ? await ctx.db.selectFrom('deliveries').select(['id', 'rule', 'rule_detail']).where('id', '=', first.delivery_id).executeTakeFirst() : undefined;
  const status = (first?.type === 'blocked' ? 'blocked' : 'queued') as DeliveryStatus;
  return {
    id: m.id,
    status,
    delivery_id: delivery?.id ?? null,
    replayed: true,
    ...(status === 'blocked' && delivery?.rule && isRuleCode(delivery.rule) ? { rule: delivery.rule, detail: delivery.rule_detail ?? '' } : {}),
  };
}

export type InlineContent = { language: string; subject: string; preheader?: string | null; format?: 'html' | 'mjml'; html: string; text: string | null; category?: MessageCategory };

/** A message without a stored template (inline, or a built-in): compiled once per distinct content, like a template version. */
export function compiledInline(inline: InlineContent): Promise<CompiledTemplate> {
  const source: TemplateSource = {
    category: inline.category ?? 'transactional',
    language: inline.language,
    subject: inline.subject,
    preheader: inline.preheader ?? null,
    format: inline.format ?? 'html',
    body: inline.html,
    text: inline.text,
    tracking: false,
  };
  return compiledFor(`inline:${createHash('sha256').update(JSON.stringify(source)).digest('hex')}`, () => source);
}

const UNSUBSCRIBE_PLACEHOLDER = (ctx: AppContext) => `${ctx.config.publicUrl}/u/preview`;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Accepts one triggered message for one recipient. Concurrent calls are batched (accept-lookups.ts,
 * accept-writer.ts): what they read is looked up for all of them at once, and the ones ready together
 * are written in one statement and one commit. This resolves once this message's commit is done.
 */
export async function acceptTriggered(ctx: AppContext, p: Principal, input: TriggeredInput): Promise<Accepted> {
  // Named statements are node-postgres's; PGlite's pool takes SQL text only.
  const prepared = ctx.database?.kind === 'postgres';
  const look = lookupsFor(ctx.db, { prepared });
  const hash = requestHash(input);
  const key = input.idempotency_key;
  const orgId = p.orgId;
  const to = input.to;

  // What is sent, and to which audience.
  const inlineGiven = input.subject !== undefined || input.html !== undefined || input.text !== undefined;
  const sources = [input.template_id !== undefined, input.builtin !== undefined, inlineGiven].filter(Boolean).length;
  // The common request (a stored template to a contact id) reads everything in one query for its cohort;
  // the others read step by step, still batched with their cohort.
  const context =
    sources === 1 && input.template_id && UUID.test(input.template_id) && to.contact_id && UUID.test(to.contact_id) && to.email === undefined
      ? await look.context.load({ orgId, templateId: input.template_id, contactId: to.contact_id, key: key ?? null })
      : undefined;
  const [existing, stored] = context
    ? [context.existing_id ? { id: context.existing_id, request_hash: context.existing_hash } : undefined, context.template ?? undefined]
    : await Promise.all([
        key !== undefined ? look.messageByKey.load({ orgId, id: key }) : undefined,
        sources === 1 && input.template_id && UUID.test(input.template_id) ? look.template.load({ orgId, id: input.template_id }) : undefined,
      ]);
  if (existing) return replay(ctx, existing, hash);
  if (sources !== 1) throw badRequest('template_required', 'give one of template_id, builtin (with audience_id), or audience_id with subject and html (transactional mail only)');
  let template: TemplateWithContent | null = null;
  let inline: InlineContent | null = null;
  let audienceId: string;
  let eventId: string | null = null;
  if (input.template_id) {
    if (!stored || !canSeeAudience(p, stored.audience_id)) throw notFound('template');
    template = stored;
    if (input.audience_id && input.audience_id !== template.audience_id) throw badRequest('audience_mismatch', 'audience_id is not the audience of the template');
    if (input.event_id) throw badRequest('event_with_template', 'a stored template names its own event; event_id is for built-in and inline messages');
    audienceId = template.audience_id;
  } else {
    if (!input.audience_id) throw badRequest('audience_required', 'a message without template_id needs audience_id');
    audienceId = (await audienceFor(ctx, p, input.audience_id)).id;
    if (input.event_id) {
      const e = await eventFor(ctx, p, input.event_id).catch(() => null);
      if (!e || e.audience_id !== audienceId) throw badRequest('unknown_event', 'event_id names no event of this audience');
      eventId = e.id;
    }
    if (input.builtin) {
      // The audience's own version of a built-in template wins over the one envoi ships.
      const language = input.language ?? 'en';
      template = (await findBuiltinOverride(ctx.db, audienceId, input.builtin, language)) ?? null;
      if (!template) {
        const b = builtinTemplate(input.builtin, language);
        inline = { language: b.language, subject: b.subject, preheader: b.preheader, format: 'mjml', html: b.body, text: null, category: b.category };
      }
    } else {
      if (!input.subject || !input.html) throw badRequest('template_required', 'a message without a stored template needs subject and html');
      inline = { language: input.language ?? 'en', subject: input.subject, html: input.html, text: input.text ?? null };
    }
  }
  const category: MessageCategory = template ? template.category : (inline!.category ?? 'transactional');
  if (!triggeredCategoryAllowed(category)) {
    throw new AppError(422, 'triggered_marketing', explain('triggered_marketing').en, { rule: 'triggered_marketing', explanation: explain('triggered_marketing') });
  }
  // A stored template names its event; a built-in (or its override) is about the event of the request.
  const messageEventId = template && !input.builtin ? template.event_id : (eventId ?? template?.event_id ?? null);

  // Who it goes to.
  if ((to.contact_id === undefined) === (to.email === undefined)) throw badRequest('invalid_recipient', 'to needs either contact_id or email');
  let org: { name: string; settings: unknown } | undefined;
  let scopeEvent: AcceptEvent | undefined;
  let messageEvent: AcceptEvent | undefined;
  let contact: SendingContact | undefined;
  let fieldKeys: string[] | undefined;
  if (context) {
    org = context.org_name !== null ? { name: context.org_name, settings: context.org_settings } : undefined;
    // The template's event is the message's: this path has no built-in.
    scopeEvent = messageEvent = context.event ?? undefined;
    contact = (context.contact ?? undefined) as SendingContact | undefined;
    fieldKeys = context.field_keys;
  } else {
    let contactId: string;
    if (to.contact_id) contactId = to.contact_id;
    else {
      const { fields, contact_id: _none, ...builtins } = to;
      contactId = (await ensureContactByEmail(ctx, p, audienceId, { builtins, custom: fields ?? {} })).id;
    }
    [org, scopeEvent, messageEvent, contact, fieldKeys] = await Promise.all([
      look.organisation.load(orgId),
      template?.event_id ? look.event.load({ orgId, id: template.event_id }) : undefined,
      messageEventId ? look.event.load({ orgId, id: messageEventId }) : undefined,
      UUID.test(contactId) ? look.contact.load({ orgId, id: contactId }) : undefined,
      look.fieldKeys.load({ orgId, id: audienceId }),
    ]);
  }
  if (!org) throw notFound('organisation');
  if (!contact || contact.audience_id !== audienceId) throw notFound('contact');

  let scope: MessageScope;
  let compiled: CompiledTemplate;
  if (template) {
    scope = { orgSettings: org.settings, audienceId: template.audience_id, category: template.category, origin: 'triggered', event: scopeEvent ?? null, communityId: template.community_id };
    compiled = await compiledVersion(template.id, template.version, template);
  } else {
    try {
      compiled = await compiledInline(inline!);
    } catch (e) {
      throw asBadRequest(e);
    }
    scope = { orgSettings: org.settings, audienceId, category, origin: 'triggered', event: null, communityId: null };
  }
  // The organisation's name is there for every template (the built-ins sign with it).
  const variables = { organisation_name: org.name, ...input.variables };

  const now = ctx.now();
  const address = emailKey(contact.email);
  const [suppression, excluded] =
    context && context.contact?.email_lower === address
      ? [{ hardBouncedAt: context.hard_bounced_at, complainedAt: context.complained_at }, context.excluded]
      : await Promise.all([look.suppression.load({ orgId, id: address }), look.exclusion.load({ orgId, id: address })]);
  const sendAt = input.send_at ? new Date(input.send_at) : null;
  if (sendAt && Number.isNaN(sendAt.getTime())) throw badRequest('invalid_send_at', 'send_at is not a date-time');
  const dueAt = sendAt && sendAt > now ? sendAt : now;
  let decision: Decision;
  try {
    // Decided for when it is to go: event mail scheduled after the event's window closes is refused now, not dropped then.
    decision = decide(policyMessage(scope, contact.id), policyRecipient(contact, contact.email, suppression, excluded === true), dueAt);
  } catch (e) {
    throw policyError(e);
  }

  // A variable the caller forgot would go out as an empty link: refuse it now, naming it. Only the
  // verdict is wanted (the worker renders for real), which a plain template gives without a render.
  if (decision.allow) {
    try {
      checkPreview(compiled, { contact: contactData(contact, fieldKeys ?? []), event: messageEvent ? eventData(messageEvent) : null, vars: variables, unsubscribe: UNSUBSCRIBE_PLACEHOLDER(ctx) });
    } catch (e) {
      throw asBadRequest(e);
    }
  }

  const lane = laneFor(scope.category);

  const row: store.TriggeredRow = {
    id: nextRowId(),
    org_id: orgId,
    audience_id: audienceId,
    category: scope.category,
    template_id: template?.id ?? null,
    template_version: template?.version ?? null,
    event_id: messageEventId,
    community_id: template?.community_id ?? null,
    inline,
    // A blocked message is never sent: its secrets need not be kept at all.
    variables: input.sensitive && !decision.allow ? {} : variables,
    sensitive: input.sensitive ?? false,
    idempotency_key: key ?? null,
    request_hash: hash,
    custom_id: input.custom_id ?? null,
    tags: input.tags ?? [],
    send_at: sendAt,
    created_by: `${p.kind}:${p.id}`,
    created_at: now,
    delivery: {
      id: nextRowId(),
      contact_id: contact.id,
      email: contact.email,
      lane,
      priority: priorityFor(scope.category),
      status: decision.allow ? 'queued' : 'blocked',
      rule: decision.allow ? null : decision.rule,
      rule_detail: decision.allow ? null : decision.detail,
      due_at: dueAt,
      expires_at: deliveryDeadline(scope.category, dueAt),
    },
    event: { type: decision.allow ? 'queued' : 'blocked', detail: decision.allow ? { due_at: dueAt.toISOString() } : { rule: decision.rule, detail: decision.detail } },
  };
  // Inside a caller's transaction the message belongs to that transaction, not to a shared batch.
  const written = ctx.db.isTransaction ? (await store.insertTriggered(ctx.db, [row])).has(row.id) : await acceptWriterFor(ctx.db, { prepared }).submit(row);

  if (!written) {
    const winner = key !== undefined ? await store.findMessageByKey(ctx.db, orgId, key) : undefined;
    if (!winner) throw new AppError(409, 'idempotency_conflict', 'a concurrent request with this idempotency_key failed; retry');
    return replay(ctx, winner, hash);
  }
  if (decision.allow) notifyQueued(ctx.db, lane);
  return {
    id: row.id,
    status: decision.allow ? 'queued' : 'blocked',
    delivery_id: row.delivery.id,
    replayed: false,
    ...(decision.allow ? {} : { rule: decision.rule, detail: decision.detail }),
  };
}

/** The page that takes an account token (the caller's `page_url`): an absolute http(s) URL, or a 400. */
export function accountPageUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw badRequest('invalid_url', 'page_url (the page that takes the token) is not an absolute URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw badRequest('invalid_url', 'page_url (the page that takes the token) must be http(s)');
  return url;
}

/**
 * Emails a contact-account token (from signUp, requestPasswordReset, organiserPasswordReset) with the
 * built-in confirmation or reset template, or the audience's override of it. `pageUrl` is the page of
 * the organiser's site that takes the token; the token is added to it as `?token=`. The link lives in
 * the message only until it is delivered or given up (`sensitive`).
 */
export async function sendAccountToken(ctx: AppContext, p: Principal, audienceId: string, issued: IssuedToken, pageUrl: string, language?: string): Promise<Accepted> {
  const url = accountPageUrl(pageUrl);
  url.searchParams.set('token', issued.token);
  const [builtin, variable] = issued.kind === 'confirm' ? (['account_confirmation', 'confirm_url'] as const) : (['password_reset', 'reset_url'] as const);
  return acceptTriggered(ctx, p, { builtin, audience_id: audienceId, to: { contact_id: issued.contactId }, variables: { [variable]: url.toString() }, language, sensitive: true });
}

// ---- bulk: one message to many contacts (what campaigns build on) ----

/** A message to many recipients, created once; its recipients are added a batch at a time. */
export interface BulkMessage {
  id: string;
  orgId: string;
  audienceId: string;
  scope: MessageScope;
  lane: Lane;
  priority: number;
  dueAt: Date;
  expiresAt: Date;
}

export type BatchResult = { recipients: number; queued: number; allowed: number; blocked: Partial<Record<RuleCode, number>> };

/** Creates the message of a bulk send (a campaign run). Marketing is allowed: the policy checks consent per recipient. */
export async function createBulkMessage(
  ctx: AppContext,
  p: Principal,
  input: { templateId: string; campaignId?: string | null; variables?: Record<string, unknown>; sendAt?: Date | null; repermission?: boolean },
): Promise<BulkMessage> {
  const t = await templateFor(ctx, p, input.templateId);
  const org = await orgInfo(ctx, p.orgId);
  const scope = { ...(await scopeOfTemplate(ctx, p, t, 'campaign', org)), repermission: input.repermission === true };
  try {
    policySettings(scope.orgSettings);
  } catch (e) {
    throw policyError(e);
  }
  const now = ctx.now();
  const dueAt = input.sendAt && input.sendAt > now ? input.sendAt : now;
  const id = (await store.insertMessage(ctx.db, {
    org_id: p.orgId,
    audience_id: t.audience_id,
    origin: 'campaign',
    category: t.category,
    template_id: t.id,
    template_version: t.version,
    event_id: t.event_id,
    community_id: t.community_id,
    campaign_id: input.campaignId ?? null,
    // The organisation's name is there for every template, as for triggered mail (the built-ins sign with it).
    variables: JSON.stringify({ organisation_name: org.name, ...input.variables }),
    created_by: `${p.kind}:${p.id}`,
    created_at: now,
    send_at: input.sendAt ?? null,
  }))!;
  return { id, orgId: p.orgId, audienceId: t.audience_id, scope, lane: laneFor(t.category), priority: priorityFor(t.category), dueAt, expiresAt: deliveryDeadline(t.category, dueAt) };
}

/** The message of a bulk send, again (a run resumed after a crash, by another process). */
export async function bulkMessage(ctx: AppContext, p: Principal, messageId: string, opts: { repermission?: boolean } = {}): Promise<BulkMessage> {
  const m = await store.findMessage(ctx.db, p.orgId, messageId);
  if (!m || !m.template_id) throw notFound('message');
  const t = await templateFor(ctx, p, m.template_id).catch(() => null);
  if (!t) throw notFound('template');
  const scope = { ...(await scopeOfTemplate(ctx, p, t, 'campaign')), repermission: opts.repermission === true };
  const dueAt = m.send_at && m.send_at > m.created_at ? m.send_at : m.created_at;
  return { id: m.id, orgId: p.orgId, audienceId: m.audience_id, scope, lane: laneFor(m.category), priority: priorityFor(m.category), dueAt, expiresAt: deliveryDeadline(m.category, dueAt) };
}

/**
 * Decides and writes one batch of recipients of a bulk message, in one transaction: a delivery row
 * per contact (queued, or blocked with its rule) and its event. A contact already written to by this
 * message is skipped (the unique index), so a batch retried after a crash sends nobody twice.
 * `status` 'paused' writes the allowed ones held, for a campaign paused while it resolves.
 */
export async function enqueueBatch(ctx: AppContext, msg: BulkMessage, contactIds: readonly string[], opts: { paused?: boolean } = {}): Promise<BatchResult> {
  return enqueueContacts(ctx, msg, await contactsForSending(ctx.db, msg.orgId, [...new Set(contactIds)]), opts);
}

/**
 * enqueueBatch for contacts already read (a campaign's page of its target, targetContactsPage); those
 * of another audience are left out. `onlyIfAllowed`: contacts written only when the policy now allows them (a recurring campaign's
 * contacts that an earlier run blocked: one who has consented since gets this run, the others are
 * not blocked again on every run).
 */
export async function enqueueContacts(
  ctx: AppContext,
  msg: BulkMessage,
  read: readonly SendingContact[],
  opts: { paused?: boolean; onlyIfAllowed?: ReadonlySet<string> } = {},
): Promise<BatchResult> {
  const now = ctx.now();
  let contacts = read.filter((c) => c.audience_id === msg.audienceId);
  let decisions: Map<string, Decision>;
  try {
    decisions = await decideFor(ctx, msg.orgId, msg.scope, contacts, now);
  } catch (e) {
    throw policyError(e);
  }
  const only = opts.onlyIfAllowed;
  if (only?.size) contacts = contacts.filter((c) => !only.has(c.id) || decisions.get(c.id)!.allow);
  if (contacts.length === 0) return { recipients: 0, queued: 0, allowed: 0, blocked: {} };
  const queued = await store.insertRecipients(
    ctx.db,
    { org_id: msg.orgId, message_id: msg.id, lane: msg.lane, priority: msg.priority, due_at: msg.dueAt, expires_at: msg.expiresAt, now, allowedStatus: opts.paused ? 'paused' : 'queued' },
    contacts.map((c) => {
      const d = decisions.get(c.id)!;
      return { contact_id: c.id, email: c.email, rule: d.allow ? null : d.rule, rule_detail: d.allow ? null : d.detail };
    }),
  );
  if (queued) notifyAll(ctx, msg.lane);
  return { recipients: contacts.length, queued, ...summarise(contacts.map((c) => decisions.get(c.id)!)) };
}

/** One template version to given contacts of its audience, now or at `sendAt`. */
export async function enqueueToContacts(ctx: AppContext, p: Principal, input: { templateId: string; contactIds: readonly string[]; variables?: Record<string, unknown>; sendAt?: Date }) {
  const msg = await createBulkMessage(ctx, p, input);
  const total: BatchResult = { recipients: 0, queued: 0, allowed: 0, blocked: {} };
  const ids = [...new Set(input.contactIds)];
  for (let i = 0; i < ids.length; i += 5000) addBatch(total, await enqueueBatch(ctx, msg, ids.slice(i, i + 5000)));
  return { message_id: msg.id, ...total };
}

export function addBatch(total: BatchResult, r: BatchResult) {
  total.recipients += r.recipients;
  total.queued += r.queued;
  total.allowed += r.allowed;
  for (const [rule, n] of Object.entries(r.blocked) as [RuleCode, number][]) total.blocked[rule] = (total.blocked[rule] ?? 0) + n;
}

/** Holds (or releases) the pending deliveries of a message: pausing a campaign. Returns how many moved. */
export async function holdMessage(ctx: AppContext, messageId: string, hold: boolean): Promise<number> {
  const n = await store.setHeld(ctx.db, messageId, hold, ctx.now());
  if (!hold && n) notifyAll(ctx, 'bulk');
  return n;
}

/** Contacts among `ids` that any earlier message of the campaign already had as a recipient. */
export function alreadyRecipients(ctx: AppContext, campaignId: string, contactIds: readonly string[]) {
  return store.campaignRecipientsAmong(ctx.db, campaignId, contactIds);
}

export async function messageCounts(ctx: AppContext, messageId: string) {
  const [counts, rules] = await Promise.all([store.deliveryCounts(ctx.db, messageId), store.blockedByRule(ctx.db, messageId)]);
  return { counts, blocked_by_rule: rules };
}

/** The same, over every message (run) of a campaign. */
export async function campaignCounts(ctx: AppContext, campaignId: string) {
  const [counts, rules] = await Promise.all([store.campaignDeliveryCounts(ctx.db, campaignId), store.campaignBlockedByRule(ctx.db, campaignId)]);
  return { counts, blocked_by_rule: rules };
}

// ---- dry run ----

export async function dryRun(ctx: AppContext, p: Principal, audienceId: string, input: { template_id: string; contact_ids?: string[]; all?: boolean; origin?: 'campaign' | 'triggered' }) {
  if ((input.contact_ids === undefined) === (input.all !== true)) throw badRequest('invalid_selection', 'give contact_ids, or all: true for every contact of the audience');
  async function* pages(): AsyncGenerator<string[]> {
    if (input.contact_ids) {
      const ids = [...new Set(input.contact_ids)];
      for (let i = 0; i < ids.length; i += 5000) yield ids.slice(i, i + 5000);
      return;
    }
    let after = '00000000-0000-0000-0000-000000000000';
    for (;;) {
      const page = await ctx.db.selectFrom('contacts').select('id').where('audience_id', '=', audienceId).where('id', '>', after).orderBy('id').limit(5000).execute();
      if (page.length === 0) return;
      yield page.map((r) => r.id);
      after = page[page.length - 1]!.id;
    }
  }
  return dryRunPages(ctx, p, audienceId, input.template_id, input.origin ?? 'campaign', pages());
}

/** How many skipped recipients a dry run names per rule. */
export const DRY_RUN_SAMPLE = 20;

/** The policy counts of a prospective send to the contacts of `pages`, a page at a time, and the first skipped of each rule; nothing is written. */

export async function dryRunPages(
  ctx: AppContext,
  p: Principal,
  audienceId: string,
  templateId: string,
  origin: 'campaign' | 'triggered',
  pages: AsyncIterable<string[]>,
  opts: { repermission?: boolean } = {},
) {
  await audienceFor(ctx, p, audienceId);
  const t = await templateFor(ctx, p, templateId, audienceId);
  const scope = { ...(await scopeOfTemplate(ctx, p, t, origin)), repermission: opts.repermission === true };
  const now = ctx.now();
  const total: BatchResult = { recipients: 0, queued: 0, allowed: 0, blocked: {} };
  // Who is skipped and why, by name: the first few of each rule (the counts are the whole story).
  const skipped: Partial<Record<RuleCode, Array<{ contact_id: string; email: string; detail: string }>>> = {};
  let unknown = 0;
  for await (const ids of pages) {
    const contacts = (await contactsForSending(ctx.db, p.orgId, ids)).filter((c) => c.audience_id === audienceId);
    unknown += ids.length - contacts.length;
    let decisions: Map<string, Decision>;
    try {
      decisions = await decideFor(ctx, p.orgId, scope, contacts, now);
    } catch (e) {
      throw policyError(e);
    }
    addBatch(total, { recipients: contacts.length, queued: 0, ...summarise(decisions.values()) });
    for (const c of contacts) {
      const d = decisions.get(c.id)!;
      if (d.allow) continue;
      const list = (skipped[d.rule] ??= []);
      if (list.length < DRY_RUN_SAMPLE) list.push({ contact_id: c.id, email: c.email, detail: d.detail });
    }
  }
  return {
    template_id: t.id,
    template_version: t.version,
    category: t.category,
    origin,
    total: total.recipients,
    allowed: total.allowed,
    blocked: total.blocked,
    explanations: Object.fromEntries(Object.keys(total.blocked).map((rule) => [rule, explain(rule as RuleCode)])),
    skipped,
    ...(unknown ? { unknown_contacts: unknown } : {}),
  };
}

// ---- reading ----

export async function getMessage(ctx: AppContext, p: Principal, id: string) {
  const m = await store.findMessage(ctx.db, p.orgId, id);
  if (!m) throw notFound('message');
  await audienceFor(ctx, p, m.audience_id).catch(() => {
    throw notFound('message');
  });
  // One snapshot: read apart, the status could be computed from counts newer than the deliveries shown.
  const [deliveries, counts, events] = await ctx.db
    .transaction()
    .setIsolationLevel('repeatable read')
    .execute(async (trx) => [await store.deliveriesOf(trx, id, 100), await store.deliveryCounts(trx, id), await store.eventsOf(trx, id, 500)] as const);
  return {
    id: m.id,
    status: messageStatus(counts),
    origin: m.origin,
    category: m.category,
    audience_id: m.audience_id,
    template_id: m.template_id,
    template_version: m.template_version,
    event_id: m.event_id,
    community_id: m.community_id,
    custom_id: m.custom_id,
    tags: m.tags,
    idempotency_key: m.idempotency_key,
    send_at: m.send_at,
    created_at: m.created_at,
    counts,
    deliveries: deliveries.map((d) => ({
      id: d.id,
      contact_id: d.contact_id,
      email: d.email,
      lane: d.lane,
      status: d.status,
      rule: d.rule,
      rule_detail: d.rule_detail,
      ...(d.rule && isRuleCode(d.rule) ? { explanation: explain(d.rule) } : {}),
      attempts: d.attempts,
      due_at: ['queued', 'deferred'].includes(d.status) ? d.due_at : null,
      sent_at: d.sent_at,
      last_error: d.last_error,
      smtp_response: d.smtp_response,
    })),
    events: events.map((e) => ({ type: e.type, at: e.at, delivery_id: e.delivery_id, detail: e.detail })),
  };
}

export async function listSuppressions(ctx: AppContext, p: Principal, page: { limit: number; offset: number }) {
  return { items: await store.listSuppressions(ctx.db, p.orgId, page.limit, page.offset) };
}

export async function listOutbox(ctx: AppContext, p: Principal, page: { limit: number; offset: number }) {
  return { items: await store.listOutbox(ctx.db, p.orgId, page.limit, page.offset), smtp_configured: ctx.config.smtpUrl !== null };
}

export async function getOutboxMessage(ctx: AppContext, p: Principal, id: string) {
  const m = await store.findOutbox(ctx.db, p.orgId, id);
  if (!m) throw notFound('outbox message');
  return m;
}

// ---- data subjects ----

/** Every message a person was a recipient of, with its events: for a data-subject export. */
export async function subjectMessages(ctx: AppContext, orgId: string, contactIds: readonly string[], emailLower: string) {
  const deliveries = await store.deliveriesOfContacts(ctx.db, orgId, contactIds, emailLower);
  const events = await store.eventsOfDeliveries(ctx.db, deliveries.map((d) => d.id));
  return deliveries.map((d) => ({ ...d, events: events.filter((e) => e.delivery_id === d.id).map(({ delivery_id: _d, ...e }) => e) }));
}

/** Anonymises the message log of an erased person, in the caller's transaction. */
export async function anonymiseSubject(db: Kysely<DB>, orgId: string, contactIds: readonly string[], emailLower: string) {
  const deliveries = await store.deliveriesOfContacts(db, orgId, contactIds, emailLower);
  await store.anonymiseDeliveries(db, orgId, deliveries.map((d) => d.id), emailLower);
  return deliveries.length;
}
