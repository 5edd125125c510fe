import type { Readable } from 'node:stream';
import { Type } from 'typebox';
import type { App } from '../platform/http.ts';
import { requireRole } from '../platform/http.ts';
import type { AppContext } from '../platform/context.ts';
import { AppError, badRequest } from '../platform/errors.ts';
import { MAX_IMPORT_BYTES, getImport, importContacts, listImports } from './import-service.ts';
import type { Delimiter, Mapping } from './import-rules.ts';
import { exportContacts } from './csv-export.ts';

const Id = Type.String({ format: 'uuid' });
const DELIMITERS: Record<string, Delimiter> = { comma: ',', semicolon: ';', tab: '\t' };

const ImportQuery = Type.Object(
  {
    mapping: Type.Optional(Type.String({ maxLength: 20_000, description: 'JSON object {"CSV header": "field key" | null}; without it, headers are matched to field keys, labels and usual aliases (Nom, Prénom, E-mail...)' })),
    event_id: Type.Optional(Id),
    community_id: Type.Optional(Id),
    empty_cells: Type.Optional(Type.Union([Type.Literal('keep'), Type.Literal('clear')], { default: 'keep', description: 'keep: an empty cell leaves the stored value; clear: it erases it' })),
    delimiter: Type.Optional(Type.Union([Type.Literal('comma'), Type.Literal('semicolon'), Type.Literal('tab')], { description: 'detected from the header line when absent' })),
  },
  { additionalProperties: false },
);

const ExportQuery = Type.Object(
  {
    view_id: Type.Optional(Id),
    // The grid on screen, as the body of POST .../contacts/query has it, each part JSON-encoded: a link can download it.
    filter: Type.Optional(Type.String({ maxLength: 20_000, description: 'JSON filter, as in POST .../contacts/query; exports only the matching contacts' })),
    sort: Type.Optional(Type.String({ maxLength: 2_000, description: 'JSON sort, as in POST .../contacts/query' })),
    columns: Type.Optional(Type.String({ maxLength: 20_000, description: 'JSON array of column keys, as in POST .../contacts/query (default: the grid\'s default columns)' })),
    q: Type.Optional(Type.String({ maxLength: 200, description: 'quick search over first name, last name and email' })),
    delimiter: Type.Optional(Type.Union([Type.Literal('comma'), Type.Literal('semicolon')], { default: 'comma' })),
    bom: Type.Optional(Type.Boolean({ default: false, description: 'start with a UTF-8 byte order mark (for Excel)' })),
  },
  { additionalProperties: false },
);

/** A JSON part of the export's query string, or a 400 naming it. */
function jsonParam(name: string, raw: string | undefined): unknown {
  if (raw === undefined || raw.trim() === '') return undefined;
  try {
    return JSON.parse(raw);
  } catch {
    throw badRequest('invalid_query', `${name} is not valid JSON`);
  }
}

function parseMapping(raw: string | undefined): Mapping | null {
  if (raw === undefined || raw.trim() === '') return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw badRequest('invalid_mapping', 'mapping must be a JSON object like {"E-mail": "email", "Prénom": "first_name"}');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw badRequest('invalid_mapping', 'mapping must be a JSON object of "CSV header": "field key"');
  return parsed as Mapping;
}

export async function importRoutes(app: App, ctx: AppContext) {
  const t = (summary: string, description?: string) => ({ tags: ['imports and exports'], summary, ...(description ? { description } : {}) });

  // Encapsulated so that the pass-through CSV body parser applies to this route only.
  await app.register(async (scoped: App) => {
    scoped.addContentTypeParser(['text/csv', 'application/csv'], (_req, payload, done) => done(null, payload));
    scoped.post(
      '/v1/audiences/:audienceId/imports',
      {
        // The body is streamed, never buffered; the limit is enforced while reading (import-service.ts).
        bodyLimit: MAX_IMPORT_BYTES,
        schema: {
          ...t('Import contacts from a CSV file (the request body, content-type text/csv), upserting by email'),
          params: Type.Object({ audienceId: Id }),
          querystring: ImportQuery,
        },
      },
      async (req, reply) => {
        try {
          const p = requireRole(req, 'editor');
          const body = req.body as unknown;
          if (!body || typeof (body as Readable).pipe !== 'function') {
            throw new AppError(415, 'unsupported_media_type', 'send the CSV file as the request body with content-type text/csv');
          }
          const length = Number(req.headers['content-length']);
          if (length > MAX_IMPORT_BYTES) throw new AppError(413, 'file_too_large', `the file is larger than the ${MAX_IMPORT_BYTES / 1024 / 1024} MB an import accepts`);
          const q = req.query;
          return await importContacts(
            ctx,
            p,
            {
              audienceId: req.params.audienceId,
              eventId: q.event_id,
              communityId: q.community_id,
              mapping: parseMapping(q.mapping),
              emptyClears: q.empty_cells === 'clear',
              delimiter: q.delimiter ? DELIMITERS[q.delimiter] : undefined,
              source: 'http',
            },
            body as Readable,
          );
        } catch (e) {
          // Refused before the upload was read: close rather than have Node drain a large body to keep the connection.
          if (!(req.raw as { complete?: boolean }).complete) reply.header('connection', 'close');
          throw e;
        }
      },
    );
  });

  app.get(
    '/v1/audiences/:audienceId/imports',
    { schema: { ...t('Imports into an audience, newest first (without their error lists)'), params: Type.Object({ audienceId: Id }) } },
    async (req) => ({ imports: await listImports(ctx, requireRole(req), req.params.audienceId) }),
  );
  app.get(
    '/v1/audiences/:audienceId/imports/:importId',
    { schema: { ...t('The report of one import: counts and bad rows with their line numbers'), params: Type.Object({ audienceId: Id, importId: Id }) } },
    async (req) => getImport(ctx, requireRole(req), req.params.audienceId, req.params.importId),
  );

  app.get(
    '/v1/audiences/:audienceId/contacts/export.csv',
    { schema: { ...t('Export the contacts as CSV (streamed; formula-like cells neutralised)', 'All contacts with every column; a saved view (view_id) or the grid on screen (filter, sort, columns, q): its rows and columns.'), params: Type.Object({ audienceId: Id }), querystring: ExportQuery } },
    async (req, reply) => {
      const p = requireRole(req);
      const q = req.query;
      const grid = { filter: jsonParam('filter', q.filter), sort: jsonParam('sort', q.sort), columns: jsonParam('columns', q.columns), q: q.q };
      const onScreen = Object.values(grid).some((v) => v !== undefined);
      if (onScreen && q.view_id) throw badRequest('view_or_filter', 'give view_id (a saved view) or filter, sort, columns and q (the grid on screen), not both');
      const { stream, filename } = await exportContacts(ctx, p, {
        audienceId: req.params.audienceId,
        viewId: q.view_id,
        grid: onScreen ? grid : undefined,
        delimiter: q.delimiter === 'semicolon' ? ';' : ',',
        bom: q.bom ?? false,
      });
      reply.header('content-type', 'text/csv; charset=utf-8');
      reply.header('content-disposition', `attachment; filename="${filename}"`);
      return reply.send(stream);
    },
  );
}
