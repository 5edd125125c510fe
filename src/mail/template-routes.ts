import { Type } from 'typebox';
import type { App } from '../platform/http.ts';
import { requireRole } from '../platform/http.ts';
import type { AppContext } from '../platform/context.ts';
import { TEMPLATE_LIMITS } from './render.ts';
import * as svc from './template-service.ts';
import { BUILTIN_KINDS } from './builtin-templates.ts';

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
const AudienceParams = Type.Object({ audienceId: Id });
const TemplateParams = Type.Object({ audienceId: Id, id: Id });

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
}
