import { Type } from 'typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { App } from '../platform/http.ts';
import { requireRole } from '../platform/http.ts';
import type { AppContext } from '../platform/context.ts';
import { notFound } from '../platform/errors.ts';
import * as svc from './signup-service.ts';
import { confirmPage, formPage, messagePage } from './signup-pages.ts';

const Id = Type.String({ format: 'uuid' });
const FormBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    language: Type.Union([Type.Literal('fr'), Type.Literal('en')]),
    wording: Type.String({ minLength: 10, maxLength: 2000, description: 'the exact sentence next to the checkbox: recorded as the proof of consent' }),
    wording_version: Type.String({ minLength: 1, maxLength: 100 }),
    success_url: Type.Optional(Type.Union([Type.String({ maxLength: 2000 }), Type.Null()])),
  },
  { additionalProperties: false },
);
const Submission = Type.Object(
  {
    email: Type.Optional(Type.String({ maxLength: 320 })),
    first_name: Type.Optional(Type.String({ maxLength: 200 })),
    consent: Type.Optional(Type.Union([Type.String({ maxLength: 10 }), Type.Boolean()])),
    website: Type.Optional(Type.String({ maxLength: 500 })),
  },
  { additionalProperties: true },
);

const html = (reply: FastifyReply, status: number, body: string) =>
  reply.status(status).header('content-type', 'text/html; charset=utf-8').header('cache-control', 'no-store').header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'").send(body);
const visitor = (req: FastifyRequest) => ({ ip: req.ip ?? null, userAgent: typeof req.headers['user-agent'] === 'string' ? req.headers['user-agent'] : null });
const wantsJson = (req: FastifyRequest) => String(req.headers['content-type'] ?? '').startsWith('application/json');

export async function signupRoutes(app: App, ctx: AppContext) {
  const t = (summary: string, description?: string) => ({ tags: ['consent'], summary, ...(description ? { description } : {}) });

  app.post('/v1/audiences/:audienceId/signup-forms', { schema: { ...t('Create a newsletter signup form with double opt-in', 'Answers with its hosted page URL and the HTML to embed.'), params: Type.Object({ audienceId: Id }), body: FormBody } }, async (req, reply) =>
    reply.status(201).send(await svc.createForm(ctx, requireRole(req, 'editor'), req.params.audienceId, req.body)),
  );
  app.get('/v1/audiences/:audienceId/signup-forms', { schema: { ...t('Signup forms of an audience'), params: Type.Object({ audienceId: Id }) } }, async (req) => ({
    forms: await svc.listForms(ctx, requireRole(req), req.params.audienceId),
  }));
  app.get('/v1/signup-forms/:id', { schema: { ...t('One signup form'), params: Type.Object({ id: Id }) } }, async (req) => svc.getForm(ctx, requireRole(req), req.params.id));
  for (const [action, enabled] of [['disable', false], ['enable', true]] as const) {
    app.post(
      `/v1/signup-forms/:id/${action}`,
      { schema: { ...t(enabled ? 'Put a signup form back on line' : 'Take a signup form off line: its page and submissions answer 404; links already sent still confirm'), params: Type.Object({ id: Id }) } },
      async (req) => svc.setFormEnabled(ctx, requireRole(req, 'editor'), req.params.id, enabled),
    );
  }

  // The public side: the hosted page, the submission (from it, from an embedded form, or as JSON), the confirmation link.
  await app.register(async (scope: App) => {
    const Params = Type.Object({ formId: Id });
    scope.get('/f/:formId', { schema: { hide: true, params: Params } }, async (req, reply) => {
      const f = await svc.publicForm(ctx, req.params.formId);
      if (!f) throw notFound('signup form');
      return html(reply, 200, formPage(f.language, f, svc.formUrls(ctx, f.id).action_url));
    });
    scope.post('/f/:formId', { schema: { hide: true, params: Params, body: Submission } }, async (req, reply) => {
      const f = await svc.publicForm(ctx, req.params.formId);
      if (!f) throw notFound('signup form');
      const r = await svc.submit(ctx, f.id, { ...req.body, ...visitor(req) });
      if (wantsJson(req)) return reply.status(r.status === 'invalid' ? 400 : 202).send(r.status === 'invalid' ? { error: { code: 'invalid_signup', message: r.problems.join('; '), details: r.problems } } : r);
      if (r.status === 'invalid') return html(reply, 400, formPage(f.language, f, svc.formUrls(ctx, f.id).action_url, r.problems, typeof req.body.email === 'string' ? req.body.email : ''));
      return html(reply, 200, messagePage(f.language, 'inbox'));
    });
    const LinkParams = Type.Object({ formId: Id, token: Type.String({ minLength: 1, maxLength: 200 }) });
    // Exactly the two parts of the link that was sent (record id, MAC): anything appended makes it another link.
    const wellFormed = (token: string) => token.split('.').length === 2;
    // Opening the link confirms nothing (mail scanners open links): a valid one shows the button that does.
    scope.get('/f/:formId/confirm/:token', { schema: { hide: true, params: LinkParams } }, async (req, reply) => {
      const r = wellFormed(req.params.token) ? await svc.checkConfirmation(ctx, req.params.formId, req.params.token) : ({ status: 'invalid' } as const);
      if (r.status === 'pending') {
        // The button posts to the link itself, under the public URL as the link is (it may carry a path prefix).
        const self = `${ctx.config.publicUrl.replace(/\/+$/, '')}/f/${r.form.id}/confirm/${encodeURIComponent(req.params.token)}`;
        return html(reply, 200, confirmPage(r.form.language, r.form, self));
      }
      const f = r.status === 'already_confirmed' ? r.form : await svc.publicForm(ctx, req.params.formId);
      const lang = f?.language ?? 'en';
      if (r.status === 'invalid') return html(reply, 404, messagePage(lang, 'invalid'));
      if (r.status === 'expired') return html(reply, 410, messagePage(lang, 'expired'));
      if (r.form.success_url) return reply.redirect(r.form.success_url, 303);
      return html(reply, 200, messagePage(lang, 'already'));
    });
    scope.post('/f/:formId/confirm/:token', { schema: { hide: true, params: LinkParams } }, async (req, reply) => {
      const r = wellFormed(req.params.token) ? await svc.confirm(ctx, req.params.formId, req.params.token, visitor(req)) : ({ status: 'invalid' } as const);
      const f = r.status === 'confirmed' || r.status === 'already_confirmed' ? r.form : await svc.publicForm(ctx, req.params.formId);
      const lang = f?.language ?? 'en';
      if (r.status === 'invalid') return html(reply, 404, messagePage(lang, 'invalid'));
      if (r.status === 'expired') return html(reply, 410, messagePage(lang, 'expired'));
      // The organiser's own thank-you page, set on the form by them (never taken from the request).
      if (r.form.success_url) return reply.redirect(r.form.success_url, 303);
      return html(reply, 200, messagePage(lang, r.status === 'confirmed' ? 'confirmed' : 'already'));
    });
  });
}
