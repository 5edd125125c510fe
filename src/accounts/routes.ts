import { Type } from 'typebox';
import type { FastifyRequest } from 'fastify';
import type { Principal } from '../organisations/service.ts';
import type { App } from '../platform/http.ts';
import { requireRole } from '../platform/http.ts';
import type { AppContext } from '../platform/context.ts';
import * as svc from './service.ts';
import { accountPageUrl, sendAccountToken } from '../sending/service.ts';
import { badRequest } from '../platform/errors.ts';
import { hostedAccountPage } from './page-routes.ts';

const Id = Type.String({ format: 'uuid' });
const Email = Type.String({ minLength: 1, maxLength: 320 });
// The length rule itself (10..256) is passwordProblem's, with its message; this only bounds the body.
const Password = Type.String({ maxLength: 4096 });
const Token = Type.String({ minLength: 1, maxLength: 200 });
const Name = Type.Optional(Type.Union([Type.String({ maxLength: 500 }), Type.Null()]));
const AudienceParams = Type.Object({ audienceId: Id });
const ContactParams = Type.Object({ audienceId: Id, contactId: Id });
const body = <P extends Parameters<typeof Type.Object>[0]>(props: P) => Type.Object(props, { additionalProperties: false });
const PageUrl = (what: string) =>
  Type.Optional(Type.String({ minLength: 1, maxLength: 2000, description: `the page of your site that takes the ${what} token, on an origin listed in ENVOI_ACCOUNT_PAGE_ORIGINS: the emailed link is this page with \`?token=...\` added; without it, the link opens envoi's own ${what} page` }));
const Language = Type.Optional(Type.String({ minLength: 2, maxLength: 35, description: 'language of the email and of envoi\'s page (fr, en)' }));

/**
 * The caller's page for the token, on an origin the operator listed (ENVOI_ACCOUNT_PAGE_ORIGINS): a
 * link to anywhere would let any editor key send real reset links that deliver the token to a
 * server of its own. Refused before anything is written: a sign-up must not create the account and
 * then fail on its link.
 */
function checkPageUrl(ctx: AppContext, raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  const url = accountPageUrl(raw);
  if (!ctx.config.accountPageOrigins.includes(url.origin)) {
    throw badRequest(
      'page_url_not_allowed',
      ctx.config.accountPageOrigins.length
        ? `page_url must be on one of the origins set in ENVOI_ACCOUNT_PAGE_ORIGINS (${ctx.config.accountPageOrigins.join(', ')}), not ${url.origin}`
        : `page_url ${url.origin} is not allowed: list your site's origin in ENVOI_ACCOUNT_PAGE_ORIGINS, or leave page_url out and the email links to envoi's own page`,
    );
  }
  return raw;
}

/**
 * Called by the organiser's site backend with an API key, acting for a person. Every route writes
 * (a login moves the lockout counter), so each needs the editor role.
 */
export function accountRoutes(app: App, ctx: AppContext) {
  const t = (summary: string, description?: string) => ({ tags: ['contact accounts'], summary, ...(description ? { description } : {}) });
  // Raw tokens are meant to reach the person by email only; the test harness reads them here.
  const exposed = (field: string, issued: svc.IssuedToken | null) => (ctx.exposeTokensForTests && issued ? { [field]: issued.token } : {});
  const base = '/v1/audiences/:audienceId/accounts';
  /**
   * Emails the link, to the caller's page or to envoi's own. Once the account or token is written, a
   * mail that cannot be written (an audience's own version of the template that no longer renders)
   * is logged and answered as not sent, not as an error: the caller's retry would meet a 409, and a
   * reset request's answer would tell who has an account.
   */
  async function mailLink(req: FastifyRequest, p: Principal, audienceId: string, issued: svc.IssuedToken, pageUrl: string | undefined, language: string | undefined): Promise<boolean> {
    try {
      const page = pageUrl ?? hostedAccountPage(ctx, audienceId, issued.kind, language);
      return (await sendAccountToken(ctx, p, audienceId, issued, page, language)).status !== 'blocked';
    } catch (e) {
      req.log.warn({ err: e, audience_id: audienceId, kind: issued.kind }, 'account email not written');
      return false;
    }
  }

  app.post(
    base,
    {
      schema: {
        ...t('Create a contact account', 'Creates the contact when the email is new, otherwise attaches the account to the existing contact (409 if it already has one). The account starts unconfirmed; the confirmation link is emailed (`email_sent`: false when the address may not be written to, e.g. it bounced).'),
        params: AudienceParams,
        body: body({ email: Email, password: Password, first_name: Name, last_name: Name, page_url: PageUrl('confirmation'), language: Language }),
      },
    },
    async (req, reply) => {
      const p = requireRole(req, 'editor');
      const { page_url, language, ...input } = req.body;
      const pageUrl = checkPageUrl(ctx, page_url);
      const r = await svc.signUp(ctx, p, req.params.audienceId, input);
      const sent = await mailLink(req, p, req.params.audienceId, r.confirmToken, pageUrl, language);
      reply.status(201);
      return { contact_id: r.contactId, contact_created: r.contactCreated, confirmed: false, email_sent: sent, ...exposed('confirm_token', r.confirmToken) };
    },
  );

  app.post(
    `${base}/login`,
    {
      schema: {
        ...t('Check a contact password', '200 with the contact id; 401 for a wrong email or password (the same for both); 423 while the account is locked after too many wrong passwords, with `details.lock_end`.'),
        params: AudienceParams,
        body: body({ email: Email, password: Password }),
      },
    },
    async (req) => {
      const r = await svc.logIn(ctx, requireRole(req, 'editor'), req.params.audienceId, req.body.email, req.body.password);
      return { contact_id: r.contactId, confirmed: r.confirmed };
    },
  );

  app.post(`${base}/confirm`, { schema: { ...t('Confirm an account with its emailed token (single use)'), params: AudienceParams, body: body({ token: Token }) } }, async (req) => {
    const r = await svc.confirm(ctx, requireRole(req, 'editor'), req.params.audienceId, req.body.token);
    return { contact_id: r.contactId, confirmed: true };
  });

  app.post(
    `${base}/password-reset`,
    { schema: { ...t('Set a new password with a reset token (single use); also ends a lock'), params: AudienceParams, body: body({ token: Token, password: Password }) } },
    async (req) => {
      const r = await svc.resetPassword(ctx, requireRole(req, 'editor'), req.params.audienceId, req.body.token, req.body.password);
      return { contact_id: r.contactId };
    },
  );

  app.post(
    `${base}/password-reset-request`,
    {
      schema: {
        ...t('Ask for a password reset link', 'Always 202, whether or not the email has an account, so that it cannot be used to find out who has one; the link is emailed to an account holder.'),
        params: AudienceParams,
        body: body({ email: Email, page_url: PageUrl('reset'), language: Language }),
      },
    },
    async (req, reply) => {
      const p = requireRole(req, 'editor');
      const pageUrl = checkPageUrl(ctx, req.body.page_url);
      const issued = await svc.requestPasswordReset(ctx, p, req.params.audienceId, req.body.email);
      // The same answer whether or not the email has an account: no word on whether a mail went.
      if (issued) await mailLink(req, p, req.params.audienceId, issued, pageUrl, req.body.language);
      reply.status(202);
      return { accepted: true, ...exposed('reset_token', issued) };
    },
  );

  // the organiser's actions on one contact's account
  const contactAccount = '/v1/audiences/:audienceId/contacts/:contactId/account';
  app.post(`${contactAccount}/unlock`, { schema: { ...t("End a contact account's lock and clear its wrong-password counter"), params: ContactParams } }, async (req) =>
    svc.unlock(ctx, requireRole(req, 'editor'), req.params.audienceId, req.params.contactId),
  );
  app.post(
    `${contactAccount}/password-reset`,
    {
      schema: {
        ...t('Send the contact a password reset link', 'The earlier unused reset link stops working; the current password works until the new one is set. The link is emailed (`email_sent`), to `page_url` when given, otherwise to envoi\'s own page.'),
        params: ContactParams,
        // The body is optional (the back office posts none), which a body schema cannot say: checked below.
      },
    },
    async (req, reply) => {
      const p = requireRole(req, 'editor');
      const given = (req.body ?? {}) as Record<string, unknown>;
      if (typeof given !== 'object' || Array.isArray(given)) throw badRequest('invalid_request', 'body: must be an object like {"page_url": "https://..."}');
      const unknown = Object.keys(given).filter((k) => k !== 'page_url' && k !== 'language');
      if (unknown.length) throw badRequest('invalid_request', `body: unknown property ${JSON.stringify(unknown[0])}; expected page_url, language`);
      if (given.page_url !== undefined && (typeof given.page_url !== 'string' || given.page_url.length > 2000)) throw badRequest('invalid_request', 'body/page_url: must be a URL');
      if (given.language !== undefined && (typeof given.language !== 'string' || given.language.length < 2 || given.language.length > 35)) throw badRequest('invalid_request', 'body/language: must be a language tag like fr or en');
      const pageUrl = checkPageUrl(ctx, given.page_url as string | undefined);
      const issued = await svc.organiserPasswordReset(ctx, p, req.params.audienceId, req.params.contactId);
      const language = given.language as string | undefined;
      const sent = await mailLink(req, p, req.params.audienceId, issued, pageUrl, language);
      reply.status(202);
      return { accepted: true, expires_at: issued.expiresAt, email_sent: sent, ...exposed('reset_token', issued) };
    },
  );
}
