/**
 * Newsletter signup with double opt-in. Submitting the form records a `requested` consent (with the
 * form's exact wording, IP and user agent) and emails the built-in confirmation, a transactional
 * message; consent becomes active only when the person clicks its link, which records `confirmed`.
 */
import type { AppContext } from '../platform/context.ts';
import { AppError, badRequest, notFound } from '../platform/errors.ts';
import { checkEmail } from '../platform/email-address.ts';
import { safeEqual, sign } from '../platform/secrets.ts';
import { escapeHtml } from '../platform/public-page.ts';
import type { Principal } from '../organisations/service.ts';
import { audienceFor, contactsForSending, ensureContactByEmail } from '../audience/service.ts';
import { acceptTriggered } from '../sending/service.ts';
import { appendConsent } from './service.ts';
import * as store from './ledger-store.ts';

/** A confirmation link is good for a week; after that the person signs up again. */
export const CONFIRM_DAYS = 7;
/** One confirmation email per address and form in this time, whatever is submitted. */
export const RESEND_AFTER_MS = 10 * 60_000;

export interface FormInput {
  name: string;
  language: 'fr' | 'en';
  wording: string;
  wording_version: string;
  success_url?: string | null;
}

function checkSuccessUrl(url: string | null | undefined): string | null {
  if (url == null || url === '') return null;
  try {
    const u = new URL(url);
    if (u.protocol === 'https:' || u.protocol === 'http:') return u.toString();
  } catch {
    /* below */
  }
  throw badRequest('invalid_success_url', 'success_url must be an absolute http(s) URL of your site');
}

export function formUrls(ctx: AppContext, formId: string) {
  const base = ctx.config.publicUrl.replace(/\/+$/, '');
  return { hosted_url: `${base}/f/${formId}`, action_url: `${base}/f/${formId}` };
}

/** The HTML an organiser pastes into their site: posts to envoi, which answers with its own pages. */
export function embedHtml(ctx: AppContext, form: { id: string; language: 'fr' | 'en'; wording: string }): string {
  const { action_url } = formUrls(ctx, form.id);
  const t = form.language === 'fr' ? { email: 'Adresse email', name: 'Prénom', submit: "S'abonner" } : { email: 'Email address', name: 'First name', submit: 'Subscribe' };
  return [
    `<form method="post" action="${escapeHtml(action_url)}" accept-charset="utf-8">`,
    `  <label>${t.email} <input type="email" name="email" required autocomplete="email"></label>`,
    `  <label>${t.name} <input type="text" name="first_name" autocomplete="given-name"></label>`,
    `  <label><input type="checkbox" name="consent" value="yes" required> ${escapeHtml(form.wording)}</label>`,
    `  <input type="text" name="website" value="" tabindex="-1" autocomplete="off" style="position:absolute;left:-10000px" aria-hidden="true">`,
    `  <button type="submit">${t.submit}</button>`,
    `</form>`,
  ].join('\n');
}

function present(ctx: AppContext, f: Awaited<ReturnType<typeof findForm>> & {}) {
  return { ...f, ...formUrls(ctx, f.id), embed_html: embedHtml(ctx, f) };
}

const findForm = (ctx: AppContext, id: string) => ctx.db.selectFrom('signup_forms').selectAll().where('id', '=', id).executeTakeFirst();

export async function createForm(ctx: AppContext, p: Principal, audienceId: string, input: FormInput) {
  await audienceFor(ctx, p, audienceId);
  const row = await ctx.db
    .insertInto('signup_forms')
    .values({ org_id: p.orgId, audience_id: audienceId, name: input.name, language: input.language, wording: input.wording, wording_version: input.wording_version, success_url: checkSuccessUrl(input.success_url), created_by: `${p.kind}:${p.id}` })
    .returningAll()
    .executeTakeFirstOrThrow();
  return present(ctx, row);
}

export async function listForms(ctx: AppContext, p: Principal, audienceId: string) {
  await audienceFor(ctx, p, audienceId);
  const rows = await ctx.db.selectFrom('signup_forms').selectAll().where('audience_id', '=', audienceId).orderBy('created_at').execute();
  return rows.map((f) => present(ctx, f));
}

export async function getForm(ctx: AppContext, p: Principal, id: string) {
  const f = await findForm(ctx, id);
  if (!f || f.org_id !== p.orgId) throw notFound('signup form');
  await audienceFor(ctx, p, f.audience_id).catch(() => {
    throw notFound('signup form');
  });
  return present(ctx, f);
}

/**
 * Takes a form off line (its page and its submissions answer 404; embedded copies stop working) or
 * back on. Confirmation links already sent still confirm: the person asked while it was on line.
 */
export async function setFormEnabled(ctx: AppContext, p: Principal, id: string, enabled: boolean) {
  await getForm(ctx, p, id);
  const row = await ctx.db
    .updateTable('signup_forms')
    .set({ disabled_at: enabled ? null : ctx.now() })
    .where('id', '=', id)
    .where('org_id', '=', p.orgId)
    .returningAll()
    .executeTakeFirstOrThrow();
  return present(ctx, row);
}

/** A form the public may use: enabled. */
export async function publicForm(ctx: AppContext, id: string) {
  const f = await findForm(ctx, id);
  return f && !f.disabled_at ? f : null;
}

// Bound to the request and its form: a link confirms only what that form asked, and lands on its page.
const confirmMac = (secret: string, recordId: string, formId: string) => sign(secret, `optin:${recordId}:${formId}`).slice(0, 22);
const secretOf = (ctx: AppContext) => {
  if (!ctx.config.secret) throw new Error('no signing secret');
  return ctx.config.secret;
};

export function confirmToken(secret: string, recordId: string, formId: string) {
  return `${recordId}.${confirmMac(secret, recordId, formId)}`;
}

/** The form acts for its organisation, on its audience only. */
const formPrincipal = (f: { id: string; org_id: string; audience_id: string }): Principal => ({
  orgId: f.org_id,
  role: 'editor',
  kind: 'key',
  id: `signup-form:${f.id}`,
  audienceIds: [f.audience_id],
  rateLimitPerMinute: null,
});

export type SignupOutcome = { status: 'check_inbox' } | { status: 'invalid'; problems: string[] };

/**
 * A submission of the form. Always answers "check your inbox" for a well-formed submission, so the
 * form cannot be used to learn who is subscribed; a repeat within RESEND_AFTER_MS sends no new email.
 */
export async function submit(ctx: AppContext, formId: string, input: { email?: unknown; first_name?: unknown; consent?: unknown; website?: unknown; ip: string | null; userAgent: string | null }): Promise<SignupOutcome> {
  const f = await publicForm(ctx, formId);
  if (!f) throw notFound('signup form');
  const problems: string[] = [];
  const e = checkEmail(input.email);
  if (!e.ok) problems.push(`email: ${e.reason}`);
  if (![true, 'yes', 'on', 'true'].includes(input.consent as string | boolean)) problems.push('consent: tick the box to agree to receive the emails');
  const firstName = typeof input.first_name === 'string' ? input.first_name.trim().slice(0, 200) || null : null;
  if (problems.length || !e.ok) return { status: 'invalid', problems };
  // The field people cannot see: only robots fill it. They get the same answer and nothing happens.
  if (typeof input.website === 'string' && input.website !== '') return { status: 'check_inbox' };

  const p = formPrincipal(f);
  const contactId = (await ensureContactByEmail(ctx, p, f.audience_id, { builtins: { email: e.email, first_name: firstName }, custom: {} })).id;
  const [contact] = await contactsForSending(ctx.db, f.org_id, [contactId]);
  if (!contact) throw new AppError(500, 'internal', 'the contact vanished');
  const now = ctx.now();
  const recent = await ctx.db
    .selectFrom('consent_records')
    .select('id')
    .where('contact_id', '=', contactId)
    .where('action', '=', 'requested')
    .where('method', '=', 'signup_form')
    .where('at', '>', new Date(now.getTime() - RESEND_AFTER_MS))
    .limit(1)
    .executeTakeFirst();
  if (recent) return { status: 'check_inbox' };

  const record = await appendConsent(
    ctx.db,
    { id: contact.id, org_id: f.org_id, audience_id: f.audience_id, email_lower: contact.email_lower },
    { action: 'requested', method: 'signup_form', wording: f.wording, wording_version: f.wording_version, ip: input.ip, user_agent: input.userAgent, actor: 'contact' },
    now,
  );
  const base = ctx.config.publicUrl.replace(/\/+$/, '');
  await acceptTriggered(ctx, p, {
    builtin: 'double_opt_in',
    audience_id: f.audience_id,
    language: f.language,
    to: { contact_id: contact.id },
    variables: { confirm_url: `${base}/f/${f.id}/confirm/${confirmToken(secretOf(ctx), record.id, f.id)}` },
    sensitive: true,
  });
  return { status: 'check_inbox' };
}

type Form = NonNullable<Awaited<ReturnType<typeof findForm>>>;
export type ConfirmOutcome = { status: 'confirmed'; form: Form } | { status: 'already_confirmed'; form: Form } | { status: 'invalid' } | { status: 'expired' };
export type LinkCheck = { status: 'pending'; form: Form } | Exclude<ConfirmOutcome, { status: 'confirmed' }>;

/**
 * What the confirmation link would do, changing nothing: opening it shows a button, because mail
 * scanners open every link of a message and only a person presses the button.
 */
export async function checkConfirmation(ctx: AppContext, formId: string, token: string): Promise<LinkCheck> {
  const r = await verifiedRequest(ctx, formId, token);
  return 'requested' in r ? { status: 'pending', form: r.form } : r;
}

type ConsentRecordRow = NonNullable<Awaited<ReturnType<typeof store.findRecord>>>;
type Verified = { requested: ConsentRecordRow & { contact_id: string }; form: Form; now: Date };

async function verifiedRequest(ctx: AppContext, formId: string, token: string): Promise<Verified | Exclude<ConfirmOutcome, { status: 'confirmed' }>> {
  const [recordId, mac] = token.split('.');
  if (!recordId || !mac || !/^[0-9a-f-]{36}$/i.test(recordId) || !safeEqual(mac, confirmMac(secretOf(ctx), recordId, formId))) return { status: 'invalid' } as const;
  const requested = await store.findRecord(ctx.db, recordId);
  const form = await findForm(ctx, formId);
  if (!requested || !form || requested.action !== 'requested' || requested.audience_id !== form.audience_id || !requested.contact_id) return { status: 'invalid' } as const;
  const now = ctx.now();
  if (now.getTime() - requested.at.getTime() > CONFIRM_DAYS * 86_400_000) return { status: 'expired' } as const;
  const later = await ctx.db
    .selectFrom('consent_records')
    .select('id')
    .where('contact_id', '=', requested.contact_id)
    .where('action', '=', 'confirmed')
    .where('seq', '>', requested.seq)
    .limit(1)
    .executeTakeFirst();
  if (later) return { status: 'already_confirmed', form };
  return { requested: { ...requested, contact_id: requested.contact_id }, form, now };
}

/** The press of the confirmation button: consent is active from now, with the wording of the request as its proof. */
export async function confirm(ctx: AppContext, formId: string, token: string, v: { ip: string | null; userAgent: string | null }): Promise<ConfirmOutcome> {
  const r = await verifiedRequest(ctx, formId, token);
  if (!('requested' in r)) return r;
  const { requested, form, now } = r;
  const [contact] = await contactsForSending(ctx.db, requested.org_id, [requested.contact_id]);
  if (!contact) return { status: 'invalid' };
  await appendConsent(
    ctx.db,
    { id: contact.id, org_id: requested.org_id, audience_id: requested.audience_id, email_lower: contact.email_lower },
    { action: 'confirmed', method: 'double_opt_in', wording: requested.wording, wording_version: requested.wording_version, ip: v.ip, user_agent: v.userAgent, actor: 'contact' },
    now,
  );
  return { status: 'confirmed', form };
}
