import { Type } from 'typebox';
import type { FastifyReply } from 'fastify';
import type { App } from '../platform/http.ts';
import { requireRole } from '../platform/http.ts';
import type { AppContext } from '../platform/context.ts';
import { AppError, badRequest } from '../platform/errors.ts';
import { audienceFor, contactFor, eventFor } from '../audience/service.ts';
import { acceptTriggered, checkRateLimit } from '../sending/service.ts';
import { compileTemplate, render, TEMPLATE_LIMITS, type ContactData } from './render.ts';
import * as svc from './template-service.ts';
import { BUILTIN_KINDS } from './builtin-templates.ts';
import { findPreview, keepPreview } from './template-previews.ts';

const Id = Type.String({ format: 'uuid' });
const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);
const Source = (minLength = 0) => Type.String({ minLength, maxLength: TEMPLATE_LIMITS.sourceChars });
const Category = Type.Union([Type.Literal('transactional'), Type.Literal('participation'), Type.Literal('marketing')]);

const fields = {
  name: Type.String({ minLength: 1, maxLength: 200, pattern: '\\S' }),
  category: Category,
  language: Type.String({ minLength: 2, maxLength: 35, description: 'BCP 47 tag: fr, en, fr-CA...' }),
  subject: Type.String({ minLength: 1, maxLength: 2000 }),
  preheader: Type.Optional(Nullable(Type.String({ maxLength: 2000 }))),
  format: Type.Optional(Type.Union([Type.Literal('html'), Type.Literal('mjml')], { description: 'how `body` is written; default html' })),
  body: Source(1),
  text: Type.Optional(Nullable(Source())),
  tracking: Type.Optional(Type.Boolean()),
  event_id: Type.Optional(Nullable(Id)),
  community_id: Type.Optional(Nullable(Id)),
  from_name: Type.Optional(Nullable(Type.String({ maxLength: 200 }))),
  from_email: Type.Optional(Nullable(Type.String({ maxLength: 320 }))),
  reply_to: Type.Optional(Nullable(Type.String({ maxLength: 320 }))),
  builtin_kind: Type.Optional(
    Nullable(Type.Union(BUILTIN_KINDS.map((k) => Type.Literal(k)), { description: "replace envoi's built-in template of this kind, in this template's language, for this audience" })),
  ),
};

const CreateBody = Type.Object(fields, { additionalProperties: false });
const PatchBody = Type.Object(
  {
    ...Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, Type.Optional(v)])),
    version: Type.Optional(Type.Integer({ minimum: 1, description: 'the version being edited: 409 if the template has moved on since' })),
  },
  { additionalProperties: false },
);
const PreviewBody = Type.Object(
  {
    contact_id: Type.Optional(Id),
    contact: Type.Optional(
      Type.Object(
        {
          email: Type.Optional(Type.String({ maxLength: 320 })),
          first_name: Type.Optional(Nullable(Type.String({ maxLength: 500 }))),
          last_name: Type.Optional(Nullable(Type.String({ maxLength: 500 }))),
          company: Type.Optional(Nullable(Type.String({ maxLength: 500 }))),
          job_title: Type.Optional(Nullable(Type.String({ maxLength: 500 }))),
          fields: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
        },
        { additionalProperties: false },
      ),
    ),
    variables: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  { additionalProperties: false },
);
const RenderBody = Type.Object(
  {
    template: Type.Object(
      {
        category: Type.Optional(Category),
        language: Type.String({ minLength: 2, maxLength: 35 }),
        subject: Type.String({ maxLength: 2000 }),
        preheader: Type.Optional(Nullable(Type.String({ maxLength: 2000 }))),
        format: Type.Optional(Type.Union([Type.Literal('html'), Type.Literal('mjml')])),
        body: Source(),
        text: Type.Optional(Nullable(Source())),
        event_id: Type.Optional(Nullable(Id)),
      },
      { additionalProperties: false, description: 'the source being edited, saved or not' },
    ),
    contact_id: PreviewBody.properties.contact_id,
    contact: PreviewBody.properties.contact,
    variables: PreviewBody.properties.variables,
  },
  { additionalProperties: false },
);
const TestBody = Type.Object(
  {
    email: Type.String({ minLength: 3, maxLength: 320, description: 'where the test goes; the address becomes a contact of the audience if it is not one, and its own values fill the template' }),
    variables: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  { additionalProperties: false },
);
const AudienceParams = Type.Object({ audienceId: Id });
const TemplateParams = Type.Object({ audienceId: Id, id: Id });

/**
 * Rendered email HTML for an <iframe src>: the back office's own policy (no inline style, no remote
 * image) would strip an email of its looks if the preview were a srcdoc or blob document, which
 * inherit it. This document gets a policy of its own instead: sandboxed (an opaque origin, no script,
 * even opened in a tab of its own), styles inline, images from anywhere; nothing else loads.
 */
export function sendEmailDocument(reply: FastifyReply, html: string) {
  return reply
    .header('content-type', 'text/html; charset=utf-8')
    .header('content-security-policy', "sandbox; default-src 'none'; style-src 'unsafe-inline' https:; img-src https: http: data:; font-src https: data:; frame-ancestors 'self'")
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('cache-control', 'private, no-store')
    .send(html);
}

export function templateRoutes(app: App, ctx: AppContext) {
  const t = (summary: string, description?: string) => ({ tags: ['templates'], summary, ...(description ? { description } : {}) });
  const base = '/v1/audiences/:audienceId/templates';

  app.get(base, { schema: { ...t('Templates of an audience'), params: AudienceParams } }, async (req) => ({
    templates: await svc.listTemplates(ctx, requireRole(req), req.params.audienceId),
  }));

  app.post(
    base,
    {
      schema: {
        ...t(
          'Create a template',
          'Liquid in the subject, preheader, body and text (`{{ first_name }}`, `{{ contact.company }}`, `{{ event.name }}`, `{{ vars.x }}` or `{{ x }}` for variables given at send time, `{{ unsubscribe_url }}` or `[UNSUBLINK]`). The body is HTML or MJML (`format`). A template that does not compile is refused with a 400 saying where. A participation template names its event or community.',
        ),
        params: AudienceParams,
        body: CreateBody,
      },
    },
    async (req, reply) => {
      reply.status(201);
      return svc.createTemplate(ctx, requireRole(req, 'editor'), req.params.audienceId, req.body as svc.TemplateInput);
    },
  );

  app.post(
    `${base}/from-builtin`,
    {
      schema: {
        ...t('Copy a built-in template (re_permission, double_opt_in, ...) into the audience, to use as is or edit'),
        params: AudienceParams,
        body: Type.Object(
          { builtin: Type.Union(BUILTIN_KINDS.map((k) => Type.Literal(k))), language: Type.Union([Type.Literal('fr'), Type.Literal('en')]), name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })) },
          { additionalProperties: false },
        ),
      },
    },
    async (req, reply) => reply.status(201).send(await svc.createFromBuiltin(ctx, requireRole(req, 'editor'), req.params.audienceId, req.body)),
  );

  app.get(`${base}/:id`, { schema: { ...t('One template (its current version)'), params: TemplateParams } }, async (req) =>
    svc.getTemplate(ctx, requireRole(req), req.params.audienceId, req.params.id),
  );

  app.patch(
    `${base}/:id`,
    { schema: { ...t('Edit a template', 'Every edit makes a new version; mail already queued keeps the version it was accepted with.'), params: TemplateParams, body: PatchBody } },
    async (req) => svc.updateTemplate(ctx, requireRole(req, 'editor'), req.params.audienceId, req.params.id, req.body as svc.TemplatePatch),
  );

  app.delete(`${base}/:id`, { schema: { ...t('Delete a template', 'New sends can no longer use it; mail already queued still goes out.'), params: TemplateParams } }, async (req, reply) => {
    await svc.deleteTemplate(ctx, requireRole(req, 'editor'), req.params.audienceId, req.params.id);
    reply.status(204);
  });

  app.post(
    `${base}/:id/preview`,
    {
      schema: {
        ...t('Render a template', 'For a stored contact (`contact_id`) or sample values (`contact`), with `variables`. Strict: a variable the template uses but nobody gives is a 400 naming it.'),
        params: TemplateParams,
        body: PreviewBody,
      },
    },
    async (req) => svc.previewTemplate(ctx, requireRole(req), req.params.audienceId, req.params.id, req.body),
  );

  app.post(
    `${base}/render`,
    {
      schema: {
        ...t(
          'Render a template being edited, saved or not (the live preview)',
          'As the preview of a stored template, for a contact (`contact_id`), sample values (`contact`) or a sample person, with `variables`; strict in the same way. `html_url` serves the rendered HTML for a sandboxed frame for ten minutes.',
        ),
        params: AudienceParams,
        body: RenderBody,
      },
    },
    async (req) => {
      const p = requireRole(req);
      const { audienceId } = req.params;
      await audienceFor(ctx, p, audienceId);
      const draft = req.body.template;
      const keys = await svc.audienceFieldKeys(ctx, p, audienceId);
      let contact: ContactData;
      if (req.body.contact_id) contact = svc.contactData(await contactFor(ctx, p, audienceId, req.body.contact_id), keys);
      else {
        const { fields, ...builtins } = req.body.contact ?? {};
        contact = svc.contactData({ email: 'sample.contact@example.com', first_name: 'Camille', last_name: 'Martin', company: 'Example', job_title: null, ...builtins, fields: fields ?? {} }, keys);
      }
      let event = null;
      if (draft.event_id) {
        const e = await eventFor(ctx, p, draft.event_id).catch(() => null);
        if (!e || e.audience_id !== audienceId) throw badRequest('unknown_event', 'event_id names no event of this audience');
        event = svc.eventData(e);
      }
      try {
        const compiled = await compileTemplate({ category: draft.category ?? 'marketing', language: draft.language, subject: draft.subject, preheader: draft.preheader ?? null, format: draft.format ?? 'html', body: draft.body, text: draft.text ?? null, tracking: false });
        const r = render(compiled, { contact, event, vars: req.body.variables ?? {}, unsubscribe: `${ctx.config.publicUrl}/u/preview` }, 'preview');
        const token = await keepPreview(ctx.db, { orgId: p.orgId, principal: `${p.kind}:${p.id}`, audienceId, html: r.html, now: ctx.now() });
        return { subject: r.subject, preheader: r.preheader, html: r.html, text: r.text, html_url: `/v1/audiences/${audienceId}/templates/previews/${token}` };
      } catch (e) {
        throw svc.asBadRequest(e);
      }
    },
  );

  app.get(
    `${base}/previews/:token`,
    { schema: { ...t('The HTML of a rendered preview, as a sandboxed document for a frame'), params: Type.Object({ audienceId: Id, token: Type.String({ minLength: 1, maxLength: 64 }) }) } },
    async (req, reply) => {
      const p = requireRole(req);
      await audienceFor(ctx, p, req.params.audienceId);
      const html = await findPreview(ctx.db, { orgId: p.orgId, audienceId: req.params.audienceId, token: req.params.token, now: ctx.now() });
      if (html === null) throw new AppError(404, 'not_found', 'preview not found or expired: render it again');
      return sendEmailDocument(reply, html);
    },
  );

  app.post(
    `${base}/:id/test`,
    {
      schema: {
        ...t(
          'Send a test of a template to one address',
          'The saved version, with "[Test]" before its subject, goes to `email` as one transactional message whatever the category (a test is not a mailing: no consent is asked, no tracking, and it does not count in the template report). Strict like the preview: a variable the template uses but nobody gives is a 400 naming it.',
        ),
        params: TemplateParams,
        body: TestBody,
      },
    },
    async (req, reply) => {
      const p = requireRole(req, 'editor');
      // A test is a message like any other for the sending rate of an API key.
      const rate = await checkRateLimit(ctx, p);
      if (rate.limited) {
        reply.header('retry-after', String(rate.retryAfterSeconds));
        throw new AppError(429, 'rate_limited', `this API key may send ${rate.limit} requests per minute; retry in ${rate.retryAfterSeconds} s`, { retry_after_seconds: rate.retryAfterSeconds });
      }
      const tpl = await svc.templateFor(ctx, p, req.params.id, req.params.audienceId);
      // The compiled HTML keeps its Liquid (MJML already turned into HTML, preheader in), so the test renders per recipient like the real thing.
      const compiled = await svc.compiledVersion(tpl.id, tpl.version, tpl);
      const r = await acceptTriggered(ctx, p, {
        audience_id: tpl.audience_id,
        ...(tpl.event_id ? { event_id: tpl.event_id } : {}),
        language: tpl.language,
        subject: `[Test] ${tpl.subject}`,
        html: compiled.html,
        text: tpl.text_body,
        to: { email: req.body.email },
        variables: req.body.variables,
        tags: ['test'],
      });
      const { replayed: _r, ...answer } = r;
      return reply.status(202).send(answer);
    },
  );
}
