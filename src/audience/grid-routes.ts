import { Type } from 'typebox';
import type { App } from '../platform/http.ts';
import { MAX_LIST_OFFSET, requireRole } from '../platform/http.ts';
import type { AppContext } from '../platform/context.ts';
import * as svc from './grid-service.ts';

const Id = Type.String({ format: 'uuid' });
const AudienceParams = Type.Object({ audienceId: Id });
const ViewParams = Type.Object({ audienceId: Id, viewId: Id });

// Filters and sorts are checked by grid-rules (with paths and operator lists in the messages), not
// by the schema: a JSON-schema error on a nested union would say much less.
const Filter = Type.Unknown({ description: 'A filter tree: {and:[...]}, {or:[...]}, {not:...}, {field, op, value}, {event:{in|all|not_in:[ids]}}, {community:{...}}' });
const SortSpec = Type.Unknown({ description: '{field, dir: "asc"|"desc"} or "field" / "-field"; nulls last, id breaks ties' });
// null first: with coerceTypes, ajv would otherwise turn a null into [""] or "" while trying the other branch.
const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([Type.Null(), t]);
const Columns = Type.Array(Type.String({ maxLength: 100 }), { maxItems: 200 });
const paging = {
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: svc.MAX_PAGE, default: 50 })),
  cursor: Type.Optional(Nullable(Type.String({ maxLength: 4000 }))),
  offset: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_LIST_OFFSET })),
  count: Type.Optional(Type.Boolean()),
};
const QueryBody = Type.Object(
  { filter: Type.Optional(Filter), sort: Type.Optional(SortSpec), columns: Type.Optional(Nullable(Columns)), ...paging },
  { additionalProperties: false },
);
const ViewRunBody = Type.Object(paging, { additionalProperties: false });
const ViewName = Type.String({ minLength: 1, maxLength: 200, pattern: '\\S' });
const ViewBody = Type.Object(
  { name: ViewName, filter: Type.Optional(Filter), columns: Type.Optional(Nullable(Columns)), sort: Type.Optional(SortSpec) },
  { additionalProperties: false },
);
const ViewPatch = Type.Object(
  { name: Type.Optional(ViewName), filter: Type.Optional(Filter), columns: Type.Optional(Nullable(Columns)), sort: Type.Optional(SortSpec) },
  { additionalProperties: false },
);
const BulkBody = Type.Object(
  {
    target: Type.Object(
      {
        view_id: Type.Optional(Id),
        filter: Type.Optional(Filter),
        contact_ids: Type.Optional(Type.Array(Type.String({ maxLength: 64 }), { minItems: 1, maxItems: svc.MAX_BULK_IDS })),
      },
      { additionalProperties: false },
    ),
    // Checked by the service: email is refused with its own message, values by the field types.
    set: Type.Object(
      {
        email: Type.Optional(Type.Unknown()),
        first_name: Type.Optional(Nullable(Type.String({ maxLength: 500 }))),
        last_name: Type.Optional(Nullable(Type.String({ maxLength: 500 }))),
        company: Type.Optional(Nullable(Type.String({ maxLength: 500 }))),
        job_title: Type.Optional(Nullable(Type.String({ maxLength: 500 }))),
        company_id: Type.Optional(Nullable(Id)),
        fields: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);
const ListQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: svc.MAX_PAGE, default: 50 })),
    cursor: Type.Optional(Type.String({ maxLength: 4000 })),
    offset: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_LIST_OFFSET })),
    sort: Type.Optional(Type.String({ maxLength: 100, description: '"field" or "-field" (descending)' })),
    q: Type.Optional(Type.String({ maxLength: 200, description: 'quick search: every word in the first name, last name or email' })),
    count: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

export function gridRoutes(app: App, ctx: AppContext) {
  const t = (summary: string) => ({ tags: ['contacts grid'], summary });

  app.post(
    '/v1/audiences/:audienceId/contacts/query',
    { schema: { ...t('Filter, sort and page the contacts of an audience'), params: AudienceParams, body: QueryBody } },
    async (req) => svc.queryGrid(ctx, requireRole(req), req.params.audienceId, req.body),
  );
  app.get(
    '/v1/audiences/:audienceId/contacts',
    { schema: { ...t('List the contacts of an audience (quick search, sort, paging)'), params: AudienceParams, querystring: ListQuery } },
    async (req) => {
      const { sort, q, ...page } = req.query;
      return svc.queryGrid(ctx, requireRole(req), req.params.audienceId, { sort, q, ...page });
    },
  );
  app.get(
    '/v1/audiences/:audienceId/contacts/columns',
    { schema: { ...t('The grid columns of an audience, with their filter operators'), params: AudienceParams } },
    async (req) => ({ columns: await svc.listGridColumns(ctx, requireRole(req), req.params.audienceId) }),
  );
  app.post(
    '/v1/audiences/:audienceId/contacts/bulk-update',
    { schema: { ...t('Set values on every contact of a view, a filter or a selection, in one transaction'), params: AudienceParams, body: BulkBody } },
    async (req) => svc.bulkUpdateContacts(ctx, requireRole(req, 'editor'), req.params.audienceId, req.body as svc.BulkInput),
  );

  // saved views
  app.get('/v1/audiences/:audienceId/views', { schema: { ...t('Saved views of an audience'), params: AudienceParams } }, async (req) => ({
    views: await svc.listViews(ctx, requireRole(req), req.params.audienceId),
  }));
  app.post('/v1/audiences/:audienceId/views', { schema: { ...t('Save a view (filter, columns, sort)'), params: AudienceParams, body: ViewBody } }, async (req, reply) => {
    reply.status(201);
    return svc.createView(ctx, requireRole(req, 'editor'), req.params.audienceId, req.body);
  });
  app.get('/v1/audiences/:audienceId/views/:viewId', { schema: { ...t('One saved view'), params: ViewParams } }, async (req) =>
    svc.getView(ctx, requireRole(req), req.params.audienceId, req.params.viewId),
  );
  app.patch('/v1/audiences/:audienceId/views/:viewId', { schema: { ...t('Rename or change a saved view'), params: ViewParams, body: ViewPatch } }, async (req) =>
    svc.updateView(ctx, requireRole(req, 'editor'), req.params.audienceId, req.params.viewId, req.body),
  );
  app.delete('/v1/audiences/:audienceId/views/:viewId', { schema: { ...t('Delete a saved view'), params: ViewParams } }, async (req, reply) => {
    await svc.deleteView(ctx, requireRole(req, 'editor'), req.params.audienceId, req.params.viewId);
    reply.status(204);
  });
  app.post(
    '/v1/audiences/:audienceId/views/:viewId/query',
    {
      schema: { ...t('Run a saved view (paging parameters optional)'), params: ViewParams, body: ViewRunBody },
      // Running a view needs nothing but its id: an empty POST is the first page.
      preValidation: async (req) => {
        req.body ??= {};
      },
    },
    async (req) => svc.queryView(ctx, requireRole(req), req.params.audienceId, req.params.viewId, req.body),
  );
}
