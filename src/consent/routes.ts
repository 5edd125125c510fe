import { Type } from 'typebox';
import type { App } from '../platform/http.ts';
import { MAX_LIST_OFFSET, requireRole } from '../platform/http.ts';
import type { AppContext } from '../platform/context.ts';
import { AppError } from '../platform/errors.ts';
import { CONSENT_METHODS } from './ledger-rules.ts';
import { Readable } from 'node:stream';
import * as svc from './service.ts';
import { PROOF_COLUMNS } from './service.ts';
import { csvStream } from '../audience/csv-export.ts';
import { PersonValues, toValues } from '../audience/routes.ts';
import * as subjects from './subject-service.ts';
import { audienceFor } from '../audience/service.ts';

/** The ledger actions by which a person stopped marketing mail of an audience. */
const STOPS = ['unsubscribed', 'withdrawn', 'repermission_no'] as const;

const Id = Type.String({ format: 'uuid' });
const ContactParams = Type.Object({ audienceId: Id, contactId: Id });

// What an organiser may record by hand; the other actions come from envoi's own flows (unsubscribe
// page, double opt-in, re-permission), which carry their proof themselves.
const RecordBody = Type.Object(
  {
    action: Type.Union([Type.Literal('given'), Type.Literal('confirmed'), Type.Literal('withdrawn')]),
    method: Type.Union(CONSENT_METHODS.filter((m) => ['api', 'back_office', 'import', 'registration_checkbox', 'signup_form'].includes(m)).map((m) => Type.Literal(m))),
    wording: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 5000 }), Type.Null()], { description: 'the exact text the person agreed to (required for an opt-in)' })),
    wording_version: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 100 }), Type.Null()])),
    ip: Type.Optional(Type.Union([Type.String({ maxLength: 100 }), Type.Null()])),
    user_agent: Type.Optional(Type.Union([Type.String({ maxLength: 500 }), Type.Null()])),
    at: Type.Optional(Type.String({ format: 'date-time', description: 'when it happened, if earlier than now (an import of proofs)' })),
  },
  { additionalProperties: false },
);

const ExclusionBody = Type.Object(
  { items: Type.Array(Type.Object({ email: Type.String({ minLength: 1, maxLength: 320 }), reason: Type.Optional(Type.Union([Type.String({ maxLength: 500 }), Type.Null()])) }, { additionalProperties: false }), { minItems: 1, maxItems: 10_000 }) },
  { additionalProperties: false },
);

const RegistrationBody = Type.Object(
  {
    participant: PersonValues,
    marketing_consent: Type.Optional(
      Type.Object(
        {
          given: Type.Boolean({ description: 'whether the box was ticked; unticked (or absent) records nothing' }),
          wording: Type.String({ minLength: 10, maxLength: 2000, description: 'the exact sentence next to the checkbox' }),
          wording_version: Type.String({ minLength: 1, maxLength: 100 }),
        },
        { additionalProperties: false },
      ),
    ),
    ip: Type.Optional(Type.String({ maxLength: 100 })),
    user_agent: Type.Optional(Type.String({ maxLength: 500 })),
  },
  { additionalProperties: false },
);

export async function consentRoutes(app: App, ctx: AppContext) {
  const t = (summary: string, description?: string) => ({ tags: ['consent'], summary, ...(description ? { description } : {}) });
  const base = '/v1/audiences/:audienceId/contacts/:contactId/consents';

  app.post(base, { schema: { ...t('Record a marketing consent change with its proof', 'Appends to the audience ledger; the contact\'s marketing authorisation date follows.'), params: ContactParams, body: RecordBody } }, async (req, reply) => {
    const { at, ...rest } = req.body;
    const r = await svc.recordConsent(ctx, requireRole(req, 'editor'), req.params.audienceId, req.params.contactId, { ...rest, at: at ? new Date(at) : undefined });
    return reply.status(201).send(r);
  });
  app.get(base, { schema: { ...t('Consent history of a contact: every record with its proof'), params: ContactParams } }, async (req) =>
    svc.consentHistory(ctx, requireRole(req), req.params.audienceId, req.params.contactId),
  );
  app.get('/v1/audiences/:audienceId/consent-ledger/verify', { schema: { ...t('Recompute the hash chain of the audience ledger', 'ok: false names the first record that was altered, removed or reordered.'), params: Type.Object({ audienceId: Id }) } }, async (req) =>
    svc.verifyLedger(ctx, requireRole(req), req.params.audienceId),
  );

  app.get(
    '/v1/audiences/:audienceId/unsubscribes',
    {
      schema: {
        ...t('Who stopped marketing mail of an audience, newest first', 'The ledger records of unsubscribes (link, one-click, mailto), withdrawals and re-permission NO answers, with their proof. `has_more` when another page follows.'),
        params: Type.Object({ audienceId: Id }),
        querystring: Type.Object({ limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }), offset: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 0 }) }, { additionalProperties: false }),
      },
    },
    async (req) => {
      const p = requireRole(req);
      const audience = await audienceFor(ctx, p, req.params.audienceId);
      const rows = await ctx.db
        .selectFrom('consent_records')
        .selectAll()
        .where('org_id', '=', p.orgId)
        .where('audience_id', '=', audience.id)
        .where('action', 'in', [...STOPS])
        .orderBy('seq', 'desc')
        .limit(req.query.limit + 1)
        .offset(req.query.offset)
        .execute();
      return { items: rows.slice(0, req.query.limit).map(svc.publicRecord), has_more: rows.length > req.query.limit };
    },
  );

  const Subject = Type.Object({ email: Type.String({ minLength: 3, maxLength: 320 }) }, { additionalProperties: false });
  app.post('/v1/data-subjects/export', { schema: { ...t('Everything held about one person, as JSON (GDPR access / portability)', 'Contacts in every audience you see, participations, memberships, account state, consent records, messages and their events.'), body: Subject } }, async (req) =>
    subjects.exportSubject(ctx, requireRole(req, 'editor'), req.body.email),
  );
  app.post('/v1/data-subjects/erase', { schema: { ...t('Erase one person everywhere (GDPR erasure)', 'Records the withdrawal in each ledger (kept as a hashed address), anonymises the message log, deletes the contacts with their participations, memberships and account.'), body: Subject } }, async (req) =>
    subjects.eraseSubject(ctx, requireRole(req, 'owner'), req.body.email),
  );

  app.post(
    '/v1/events/:eventId/registrations',
    {
      schema: {
        ...t(
          'Register a participant from your registration form, with its marketing checkbox',
          'Registering is consent to the mail about the participation only; a ticked marketing checkbox is recorded in the ledger with its wording as an opt-in.',
        ),
        params: Type.Object({ eventId: Id }),
        body: RegistrationBody,
      },
    },
    async (req, reply) => reply.status(201).send(await svc.registerWithConsent(ctx, requireRole(req, 'editor'), req.params.eventId, { ...req.body, participant: toValues(req.body.participant) })),
  );

  app.get(
    '/v1/audiences/:audienceId/consent-ledger/export',
    { schema: { ...t('Export the proofs of an audience (every ledger record), as CSV or JSON lines'), params: Type.Object({ audienceId: Id }), querystring: Type.Object({ format: Type.Optional(Type.Union([Type.Literal('csv'), Type.Literal('json')])), contact_id: Type.Optional(Id) }) } },
    async (req, reply) => {
      const rows = await svc.proofRows(ctx, requireRole(req), req.params.audienceId, req.query.contact_id);
      if (req.query.format === 'json') {
        return reply.header('content-type', 'application/x-ndjson; charset=utf-8').header('content-disposition', `attachment; filename="consent-proofs-${req.params.audienceId}.ndjson"`).send(Readable.from((async function* () {
          for await (const r of rows) yield `${JSON.stringify(r)}\n`;
        })()));
      }
      const columns = PROOF_COLUMNS.map((key) => ({ key, label: key }));
      return reply.header('content-type', 'text/csv; charset=utf-8').header('content-disposition', `attachment; filename="consent-proofs-${req.params.audienceId}.csv"`).send(csvStream(columns, rows));
    },
  );

  await app.register(async (scoped: App) => {
    scoped.addContentTypeParser(['text/csv', 'application/csv'], (_req, payload, done) => done(null, payload));
    scoped.post(
      '/v1/exclusions/import',
      { bodyLimit: svc.MAX_EXCLUSION_IMPORT_BYTES, schema: { ...t('Import addresses into the exclusion list from a CSV file (body, text/csv; columns email and optionally reason)', 'Good rows are kept; each bad one is reported with its line number.') } },
      async (req, reply) => {
        const p = requireRole(req, 'editor');
        const body = req.body as unknown;
        if (!body || typeof (body as Readable).pipe !== 'function') throw new AppError(415, 'unsupported_media_type', 'send the CSV file as the request body with content-type text/csv');
        // Fastify's bodyLimit does not apply to a body handed over as a stream: the limit is ours to keep,
        // and kept before a single row is written, so that a refused file leaves no half-import behind.
        const tooLarge = () => new AppError(413, 'file_too_large', `the file is larger than the ${svc.MAX_EXCLUSION_IMPORT_BYTES / 1024 / 1024} MB an exclusion import accepts`);
        if (Number(req.headers['content-length']) > svc.MAX_EXCLUSION_IMPORT_BYTES) {
          reply.header('connection', 'close');
          throw tooLarge();
        }
        const chunks: Buffer[] = [];
        let size = 0;
        for await (const chunk of body as Readable) {
          size += (chunk as Buffer).length;
          if (size > svc.MAX_EXCLUSION_IMPORT_BYTES) {
            reply.header('connection', 'close');
            throw tooLarge();
          }
          chunks.push(chunk as Buffer);
        }
        return reply.status(201).send(await svc.importExclusions(ctx, p, Buffer.concat(chunks)));
      },
    );
  });

  app.get('/v1/exclusions/export', { schema: { ...t('Export the exclusion list as CSV') } }, async (req, reply) => {
    const p = requireRole(req);
    const rows = (async function* () {
      for (let offset = 0; ; offset += 1000) {
        const page = await svc.listExclusions(ctx, p, { limit: 1000, offset });
        for (const r of page.items) yield { email: r.email_lower, reason: r.reason, source: r.source, created_by: r.created_by, created_at: r.created_at };
        if (page.items.length < 1000) return;
      }
    })();
    return reply.header('content-type', 'text/csv; charset=utf-8').header('content-disposition', 'attachment; filename="exclusions.csv"').send(csvStream(['email', 'reason', 'source', 'created_by', 'created_at'].map((key) => ({ key, label: key })), rows));
  });

  app.get(
    '/v1/exclusions',
    { schema: { ...t('The exclusion list: addresses that get no marketing from any audience'), querystring: Type.Object({ limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }), offset: Type.Integer({ minimum: 0, maximum: MAX_LIST_OFFSET, default: 0 }), q: Type.Optional(Type.String({ maxLength: 320 })) }) } },
    async (req) => svc.listExclusions(ctx, requireRole(req), req.query),
  );
  app.post('/v1/exclusions', { schema: { ...t('Add addresses to the exclusion list', 'Transactional and event mail still go to them.'), body: ExclusionBody } }, async (req, reply) =>
    reply.status(201).send(await svc.addExclusions(ctx, requireRole(req, 'editor'), req.body.items, 'back_office')),
  );
  app.delete('/v1/exclusions/:email', { schema: { ...t('Remove an address from the exclusion list'), params: Type.Object({ email: Type.String({ minLength: 1, maxLength: 320 }) }) } }, async (req, reply) => {
    await svc.removeExclusion(ctx, requireRole(req, 'editor'), req.params.email);
    return reply.status(204).send();
  });
}
