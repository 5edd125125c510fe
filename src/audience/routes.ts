import { Type, type Static } from 'typebox';
import type { App } from '../platform/http.ts';
import { MAX_LIST_OFFSET, requireRole } from '../platform/http.ts';
import type { AppContext } from '../platform/context.ts';
import * as svc from './service.ts';
import { followEventTimes } from '../campaigns/service.ts';
import { MAX_MESSAGES_PAGE, contactMessages } from './contact-messages.ts';

const Id = Type.String({ format: 'uuid' });
const Name = Type.String({ minLength: 1, maxLength: 200, pattern: '\\S' });
const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);
const Text = Nullable(Type.String({ maxLength: 500 }));

/** Built-in person fields at the top level, custom fields under `fields`. */
export const PersonValues = Type.Object(
  {
    email: Type.Optional(Nullable(Type.String({ maxLength: 320 }))),
    first_name: Type.Optional(Text),
    last_name: Type.Optional(Text),
    company: Type.Optional(Text),
    job_title: Type.Optional(Text),
    fields: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  { additionalProperties: false },
);
const ContactBody = Type.Object(
  { ...PersonValues.properties, company_id: Type.Optional(Nullable(Id)) },
  { additionalProperties: false },
);
type Person = Static<typeof PersonValues>;

export function toValues(b: Person): svc.ValuesInput {
  const { fields, ...builtins } = b;
  return { builtins, custom: fields ?? {} };
}

const FieldBody = Type.Object(
  {
    key: Type.String({ minLength: 1, maxLength: 63 }),
    label: Type.Optional(Type.String({ maxLength: 200 })),
    type: Type.Union(['text', 'number', 'date', 'boolean', 'choice', 'multi_choice'].map((t) => Type.Literal(t))),
    options: Type.Optional(Nullable(Type.Array(Type.String(), { maxItems: 500 }))),
  },
  { additionalProperties: false },
);
const EventBody = Type.Object(
  { name: Name, starts_at: Type.String({ format: 'date-time' }), ends_at: Type.String({ format: 'date-time' }), time_zone: Type.String({ minLength: 1, maxLength: 64 }) },
  { additionalProperties: false },
);
const Page = Type.Object({ limit: Type.Integer({ minimum: 1, maximum: 1000, default: 50 }), offset: Type.Integer({ minimum: 0, maximum: MAX_LIST_OFFSET, default: 0 }) });

export function audienceRoutes(app: App, ctx: AppContext) {
  const t = (tag: string, summary: string) => ({ tags: [tag], summary });

  // audiences
  app.get('/v1/audiences', { schema: t('audiences', 'List audiences') }, async (req) => ({ audiences: await svc.listAudiences(ctx, requireRole(req)) }));
  app.post('/v1/audiences', { schema: { ...t('audiences', 'Create an audience'), body: Type.Object({ name: Name }, { additionalProperties: false }) } }, async (req, reply) => {
    reply.status(201);
    return svc.createAudience(ctx, requireRole(req, 'editor'), req.body.name);
  });
  app.get('/v1/audiences/:audienceId', { schema: { ...t('audiences', 'One audience'), params: Type.Object({ audienceId: Id }) } }, async (req) =>
    svc.audienceFor(ctx, requireRole(req), req.params.audienceId),
  );
  app.patch(
    '/v1/audiences/:audienceId',
    { schema: { ...t('audiences', 'Rename an audience'), params: Type.Object({ audienceId: Id }), body: Type.Object({ name: Name }, { additionalProperties: false }) } },
    async (req) => svc.renameAudience(ctx, requireRole(req, 'editor'), req.params.audienceId, req.body.name),
  );

  // events and communities
  app.get('/v1/audiences/:audienceId/events', { schema: { ...t('events', 'Events of an audience'), params: Type.Object({ audienceId: Id }) } }, async (req) => ({
    events: await svc.listEvents(ctx, requireRole(req), req.params.audienceId),
  }));
  app.post('/v1/audiences/:audienceId/events', { schema: { ...t('events', 'Create an event'), params: Type.Object({ audienceId: Id }), body: EventBody } }, async (req, reply) => {
    reply.status(201);
    return svc.createEvent(ctx, requireRole(req, 'editor'), req.params.audienceId, req.body);
  });
  app.get('/v1/events/:eventId', { schema: { ...t('events', 'One event'), params: Type.Object({ eventId: Id }) } }, async (req) => svc.eventFor(ctx, requireRole(req), req.params.eventId));
  app.patch(
    '/v1/events/:eventId',
    { schema: { ...t('events', 'Edit an event'), description: 'A reminder or thank-you still waiting at its default time moves with new dates; one set at a chosen time stays.', params: Type.Object({ eventId: Id }), body: Type.Partial(EventBody) } },
    async (req) => {
      const p = requireRole(req, 'editor');
      const before = await svc.eventFor(ctx, p, req.params.eventId);
      const after = await svc.updateEvent(ctx, p, req.params.eventId, req.body);
      await followEventTimes(ctx, after.id, before, after);
      return after;
    },
  );
  app.get('/v1/audiences/:audienceId/communities', { schema: { ...t('communities', 'Communities of an audience'), params: Type.Object({ audienceId: Id }) } }, async (req) => ({
    communities: await svc.listCommunities(ctx, requireRole(req), req.params.audienceId),
  }));
  app.post(
    '/v1/audiences/:audienceId/communities',
    { schema: { ...t('communities', 'Create a community'), params: Type.Object({ audienceId: Id }), body: Type.Object({ name: Name }, { additionalProperties: false }) } },
    async (req, reply) => {
      reply.status(201);
      return svc.createCommunity(ctx, requireRole(req, 'editor'), req.params.audienceId, req.body.name);
    },
  );
  app.get('/v1/communities/:communityId', { schema: { ...t('communities', 'One community'), params: Type.Object({ communityId: Id }) } }, async (req) =>
    svc.communityFor(ctx, requireRole(req), req.params.communityId),
  );

  // fields: central on the audience, local on an event or a community
  for (const [path, key, tag] of [
    ['/v1/audiences/:scopeId/fields', 'audienceId', 'central fields'],
    ['/v1/events/:scopeId/fields', 'eventId', 'event fields'],
    ['/v1/communities/:scopeId/fields', 'communityId', 'community fields'],
  ] as const) {
    app.get(path, { schema: { ...t('fields', `List ${tag} (with built-ins and central fields)`), params: Type.Object({ scopeId: Id }) } }, async (req) => ({
      fields: await svc.listFields(ctx, requireRole(req), { [key]: req.params.scopeId }),
    }));
    app.post(path, { schema: { ...t('fields', `Create one of the ${tag}`), params: Type.Object({ scopeId: Id }), body: FieldBody } }, async (req, reply) => {
      reply.status(201);
      return svc.createField(ctx, requireRole(req, 'editor'), { [key]: req.params.scopeId }, req.body as svc.FieldInput);
    });
  }

  // companies
  app.get('/v1/audiences/:audienceId/companies', { schema: { ...t('companies', 'Companies of an audience'), params: Type.Object({ audienceId: Id }) } }, async (req) => ({
    companies: await svc.listCompanies(ctx, requireRole(req), req.params.audienceId),
  }));
  app.post(
    '/v1/audiences/:audienceId/companies',
    { schema: { ...t('companies', 'Create a company'), params: Type.Object({ audienceId: Id }), body: Type.Object({ name: Name }, { additionalProperties: false }) } },
    async (req, reply) => {
      reply.status(201);
      return svc.createCompany(ctx, requireRole(req, 'editor'), req.params.audienceId, req.body.name);
    },
  );

  // contacts
  const ContactParams = Type.Object({ audienceId: Id, contactId: Id });
  app.post('/v1/audiences/:audienceId/contacts', { schema: { ...t('contacts', 'Create a contact'), params: Type.Object({ audienceId: Id }), body: ContactBody } }, async (req, reply) => {
    const { company_id, ...person } = req.body;
    reply.status(201);
    return svc.createContact(ctx, requireRole(req, 'editor'), req.params.audienceId, { ...toValues(person), company_id });
  });
  app.get('/v1/audiences/:audienceId/contacts/:contactId', { schema: { ...t('contacts', 'One contact with its participations, memberships and account state'), params: ContactParams } }, async (req) =>
    svc.getContact(ctx, requireRole(req), req.params.audienceId, req.params.contactId),
  );
  app.patch(
    '/v1/audiences/:audienceId/contacts/:contactId',
    { schema: { ...t('contacts', 'Edit the audience contact (does not change participant or member records)'), params: ContactParams, body: ContactBody } },
    async (req) => {
      const { company_id, ...person } = req.body;
      return svc.updateContact(ctx, requireRole(req, 'editor'), req.params.audienceId, req.params.contactId, { ...toValues(person), company_id });
    },
  );
  app.delete(
    '/v1/audiences/:audienceId/contacts/:contactId',
    { schema: { ...t('contacts', 'Erase one contact everywhere in the audience (events, communities, account)'), params: ContactParams } },
    async (req) => svc.deleteContact(ctx, requireRole(req, 'editor'), req.params.audienceId, req.params.contactId),
  );

  app.get(
    '/v1/audiences/:audienceId/contacts/:contactId/messages',
    {
      schema: {
        ...t('contacts', 'The mail a contact received, newest first, each with its template, campaign, event and tracking history'),
        params: ContactParams,
        querystring: Type.Object({ limit: Type.Integer({ minimum: 1, maximum: MAX_MESSAGES_PAGE, default: 50 }), offset: Type.Integer({ minimum: 0, maximum: MAX_LIST_OFFSET, default: 0 }) }),
      },
    },
    async (req) => contactMessages(ctx, requireRole(req), req.params.audienceId, req.params.contactId, req.query),
  );

  // participants and members
  for (const [kind, base, scopeKey] of [
    ['participant', '/v1/events/:scopeId/participants', 'event'],
    ['member', '/v1/communities/:scopeId/members', 'community'],
  ] as const) {
    const tag = `${kind}s`;
    const One = Type.Object({ scopeId: Id, recordId: Id });
    app.get(base, { schema: { ...t(tag, `List the ${kind}s of a ${scopeKey}`), params: Type.Object({ scopeId: Id }), querystring: Page } }, async (req) =>
      svc.listRecords(ctx, requireRole(req), kind, req.params.scopeId, req.query),
    );
    app.post(base, { schema: { ...t(tag, `Register a ${kind}; with an email they become a contact of the audience`), params: Type.Object({ scopeId: Id }), body: PersonValues } }, async (req, reply) => {
      reply.status(201);
      return svc.addRecord(ctx, requireRole(req, 'editor'), kind, req.params.scopeId, toValues(req.body));
    });
    app.get(`${base}/:recordId`, { schema: { ...t(tag, `One ${kind}`), params: One } }, async (req) => svc.getRecord(ctx, requireRole(req), kind, req.params.scopeId, req.params.recordId));
    app.patch(`${base}/:recordId`, { schema: { ...t(tag, `Edit a ${kind}; built-in and central values also update the audience contact`), params: One, body: PersonValues } }, async (req) =>
      svc.updateRecord(ctx, requireRole(req, 'editor'), kind, req.params.scopeId, req.params.recordId, toValues(req.body)),
    );
    app.delete(`${base}/:recordId`, { schema: { ...t(tag, `Remove a ${kind} (the audience contact stays)`), params: One } }, async (req, reply) => {
      await svc.removeRecord(ctx, requireRole(req, 'editor'), kind, req.params.scopeId, req.params.recordId);
      reply.status(204);
    });
  }
}
