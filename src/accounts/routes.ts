import { Type } from 'typebox';
import type { App } from '../platform/http.ts';
import { requireRole } from '../platform/http.ts';
import type { AppContext } from '../platform/context.ts';
import * as svc from './service.ts';

const Id = Type.String({ format: 'uuid' });
const Email = Type.String({ minLength: 1, maxLength: 320 });
// The length rule itself (10..256) is passwordProblem's, with its message; this only bounds the body.
const Password = Type.String({ maxLength: 4096 });
const Token = Type.String({ minLength: 1, maxLength: 200 });
const Name = Type.Optional(Type.Union([Type.String({ maxLength: 500 }), Type.Null()]));
const AudienceParams = Type.Object({ audienceId: Id });
const ContactParams = Type.Object({ audienceId: Id, contactId: Id });
const body = <P extends Parameters<typeof Type.Object>[0]>(props: P) => Type.Object(props, { additionalProperties: false });

/**
 * Called by the organiser's site backend with an API key, acting for a person. Every route writes
 * (a login moves the lockout counter), so each needs the editor role.
 */
export function accountRoutes(app: App, ctx: AppContext) {
  const t = (summary: string, description?: string) => ({ tags: ['contact accounts'], summary, ...(description ? { description } : {}) });
  // Raw tokens are meant to reach the person by email only; the test harness reads them here.
  const exposed = (field: string, issued: svc.IssuedToken | null) => (ctx.exposeTokensForTests && issued ? { [field]: issued.token } : {});
  const base = '/v1/audiences/:audienceId/accounts';

  app.post(
    base,
    {
      schema: {
        ...t('Create a contact account', 'Creates the contact when the email is new, otherwise attaches the account to the existing contact (409 if it already has one). The account starts unconfirmed; a confirmation token is emailed.'),
        params: AudienceParams,
        body: body({ email: Email, password: Password, first_name: Name, last_name: Name }),
      },
    },
    async (req, reply) => {
      const r = await svc.signUp(ctx, requireRole(req, 'editor'), req.params.audienceId, req.body);
      reply.status(201);
      return { contact_id: r.contactId, contact_created: r.contactCreated, confirmed: false, ...exposed('confirm_token', r.confirmToken) };
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
        ...t('Ask for a password reset link', 'Always 202, whether or not the email has an account, so that it cannot be used to find out who has one.'),
        params: AudienceParams,
        body: body({ email: Email }),
      },
    },
    async (req, reply) => {
      const issued = await svc.requestPasswordReset(ctx, requireRole(req, 'editor'), req.params.audienceId, req.body.email);
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
    { schema: { ...t('Send the contact a password reset link', 'The earlier unused reset link stops working; the current password works until the new one is set.'), params: ContactParams } },
    async (req, reply) => {
      const issued = await svc.organiserPasswordReset(ctx, requireRole(req, 'editor'), req.params.audienceId, req.params.contactId);
      reply.status(202);
      return { accepted: true, expires_at: issued.expiresAt, ...exposed('reset_token', issued) };
    },
  );
}
