/**
 * What the links in a sent message do: the open pixel and click redirects record events; the
 * unsubscribe link withdraws marketing consent for the audience (a ledger record with the message
 * as its proof) and, when the person asks, puts the address on the organisation's exclusion list.
 *
 * Every token is verified before anything is read: a forged or altered link gets nothing, not even
 * whether the delivery exists.
 */
import type { AppContext } from '../platform/context.ts';
import { verifyAnswerToken, verifyClickToken, verifyOpenToken } from '../mail/tracking-tokens.ts';
import { verifyUnsubscribeToken } from '../mail/compose.ts';
import { contactsForSending } from '../audience/service.ts';
import { appendConsent, excludeAddress, excludedAmong } from '../consent/service.ts';
import { emailKey } from './service.ts';
import * as store from './store.ts';

export interface Visitor {
  ip: string | null;
  userAgent: string | null;
}

const secretOf = (ctx: AppContext) => {
  if (!ctx.config.secret) throw new Error('no signing secret: createEnvoi resolves one at start');
  return ctx.config.secret;
};

async function event(ctx: AppContext, d: { id: string; org_id: string; message_id: string }, type: string, detail: Record<string, unknown>) {
  await store.insertEvents(ctx.db, [{ org_id: d.org_id, message_id: d.message_id, delivery_id: d.id, type, at: ctx.now(), detail: JSON.stringify(detail) }]);
}

// Only mail that left can be opened or clicked; a prefetch of a link in a queued message is noise.
// 'sending' too: the server may have taken the message while its outcome waits to be written (outcomes
// are written in groups), and a link scanner or a prefetching client opens it on arrival.
const OPENABLE = new Set(['sending', 'sent', 'bounced']);

/** Records an open; the pixel is served whatever happens, so nothing is returned. */
export async function recordOpen(ctx: AppContext, token: string, v: Visitor): Promise<void> {
  const id = verifyOpenToken(secretOf(ctx), token);
  if (!id) return;
  const d = await store.deliveryForTracking(ctx.db, id);
  if (!d || !OPENABLE.has(d.status)) return;
  await event(ctx, d, 'opened', { user_agent: v.userAgent?.slice(0, 300) ?? null });
}

/** The destination of a genuine click link (recorded as clicked), or null for anything else. */
export async function recordClick(ctx: AppContext, token: string, v: Visitor): Promise<string | null> {
  const link = verifyClickToken(secretOf(ctx), token);
  if (!link) return null;
  const d = await store.deliveryForTracking(ctx.db, link.deliveryId);
  // The link was signed for this delivery: even if the row is gone (erased), the person still gets where they clicked.
  if (d && OPENABLE.has(d.status)) await event(ctx, d, 'clicked', { url: link.url, index: link.index, user_agent: v.userAgent?.slice(0, 300) ?? null });
  return link.url;
}

export interface UnsubscribeTarget {
  deliveryId: string;
  organisation: string;
  audience: string;
  /** the address, partly masked: enough for the person to recognise it, not to harvest it */
  maskedEmail: string;
  alreadyUnsubscribed: boolean;
  excluded: boolean;
}

export function maskEmail(email: string): string {
  const at = email.lastIndexOf('@');
  if (at <= 0) return '***';
  const local = email.slice(0, at);
  return `${local.slice(0, Math.min(2, local.length))}${'*'.repeat(Math.max(1, local.length - 2))}${email.slice(at)}`;
}

async function target(ctx: AppContext, token: string) {
  const id = verifyUnsubscribeToken(secretOf(ctx), token);
  return id ? targetById(ctx, id) : null;
}

async function targetById(ctx: AppContext, id: string) {
  const d = await store.deliveryForTracking(ctx.db, id);
  if (!d) return null;
  const [contact] = d.contact_id ? await contactsForSending(ctx.db, d.org_id, [d.contact_id]) : [];
  return { d, contact };
}

/** What the unsubscribe page shows, or null when the link is not genuine. */
export async function unsubscribeTarget(ctx: AppContext, token: string): Promise<UnsubscribeTarget | null> {
  const t = await target(ctx, token);
  if (!t) return null;
  return {
    deliveryId: t.d.id,
    organisation: t.d.org_name,
    audience: t.d.audience_name,
    maskedEmail: maskEmail(t.d.email),
    alreadyUnsubscribed: !t.contact || (t.contact.marketing_withdrawn_at !== null && t.contact.marketing_authorized_at === null),
    excluded: (await excludedAmong(ctx.db, t.d.org_id, [emailKey(t.d.email)])).size > 0,
  };
}

export type UnsubscribeMethod = 'one_click' | 'unsubscribe_page' | 'mailto';

/**
 * Withdraws marketing consent for the audience of the message (once: a second click records nothing
 * new), and with `everything` also excludes the address from all the organisation's marketing.
 * Null when the link is not genuine.
 */
export async function unsubscribe(ctx: AppContext, token: string, opts: { method: UnsubscribeMethod; everything: boolean } & Visitor) {
  const id = verifyUnsubscribeToken(secretOf(ctx), token);
  return id ? unsubscribeDelivery(ctx, id, opts) : null;
}

/**
 * The same for a delivery named by the List-Unsubscribe mailto (`unsubscribe+<delivery>.<mark>@...`): the
 * address, marked like the link (src/mail/compose.ts), is only in the message, and a mail to it is the
 * person's request.
 */
export async function unsubscribeDelivery(ctx: AppContext, deliveryId: string, opts: { method: UnsubscribeMethod; everything: boolean } & Visitor) {
  const t = await targetById(ctx, deliveryId);
  if (!t) return null;
  const { d, contact } = t;
  const now = ctx.now();
  const result = await ctx.db.transaction().execute(async (trx) => {
    let withdrew = false;
    if (contact && !(contact.marketing_withdrawn_at !== null && contact.marketing_authorized_at === null)) {
      await appendConsent(
        trx,
        { id: contact.id, org_id: d.org_id, audience_id: contact.audience_id, email_lower: contact.email_lower },
        { action: 'unsubscribed', method: opts.method, ip: opts.ip, user_agent: opts.userAgent, message_id: d.message_id, delivery_id: d.id, actor: 'contact' },
        now,
      );
      withdrew = true;
    }
    const excluded = opts.everything ? await excludeAddress(trx, d.org_id, emailKey(d.email), 'asked on the unsubscribe page to stop all marketing', opts.method, now) : false;
    if (withdrew || excluded) {
      await store.insertEvents(trx, [
        { org_id: d.org_id, message_id: d.message_id, delivery_id: d.id, type: 'unsubscribed', at: now, detail: JSON.stringify({ method: opts.method, scope: excluded ? 'organisation' : 'audience' }) },
      ]);
    }
    return { withdrew, excluded };
  });
  return { ...result, organisation: d.org_name, audience: d.audience_name };
}

// ---- re-permission answers ----

async function answerTargetOf(ctx: AppContext, token: string) {
  const a = verifyAnswerToken(secretOf(ctx), token);
  if (!a) return null;
  const t = await targetById(ctx, a.deliveryId);
  if (!t || t.d.campaign_kind !== 'repermission' || !t.contact) return null;
  return { ...t, answer: a.answer, contact: t.contact };
}

/** What the YES / NO page shows, or null when the link is not genuine. */
export async function answerTarget(ctx: AppContext, token: string) {
  const t = await answerTargetOf(ctx, token);
  return t ? { answer: t.answer, organisation: t.d.org_name, audience: t.d.audience_name, maskedEmail: maskEmail(t.d.email) } : null;
}

/**
 * Records the person's answer, with the sentence they confirmed as its wording: YES is a fresh
 * consent (the new consenting list), NO a withdrawal. An answer after the deadline still counts; the
 * results show it as late. Null when the link is not genuine.
 */
export async function recordAnswer(ctx: AppContext, token: string, opts: { wording: (t: { organisation: string; audience: string }, answer: 'yes' | 'no') => string } & Visitor) {
  const t = await answerTargetOf(ctx, token);
  if (!t) return null;
  const now = ctx.now();
  await appendConsent(
    ctx.db,
    { id: t.contact.id, org_id: t.d.org_id, audience_id: t.contact.audience_id, email_lower: t.contact.email_lower },
    {
      action: t.answer === 'yes' ? 'repermission_yes' : 'repermission_no',
      method: 'repermission_click',
      wording: opts.wording({ organisation: t.d.org_name, audience: t.d.audience_name }, t.answer),
      wording_version: 'envoi-repermission-1',
      ip: opts.ip,
      user_agent: opts.userAgent,
      message_id: t.d.message_id,
      delivery_id: t.d.id,
      campaign_id: t.d.campaign_id,
      actor: 'contact',
    },
    now,
  );
  // The answers are the campaign's two links: reports list who clicked which, as for any link.
  await event(ctx, t.d, 'clicked', { url: `repermission:${t.answer}`, index: -1 });
  if (t.answer === 'no') await event(ctx, t.d, 'unsubscribed', { method: 'repermission_no', scope: 'audience' });
  return { answer: t.answer, late: t.d.deadline ? now > t.d.deadline : false };
}
