import { Type } from 'typebox';
import type { App } from '../platform/http.ts';
import { idempotencyKey, MAX_LIST_OFFSET, requireRole } from '../platform/http.ts';
import type { AppContext } from '../platform/context.ts';
import { AppError } from '../platform/errors.ts';
import { checkRateLimit } from '../sending/service.ts';
import * as svc from './service.ts';

const Id = Type.String({ format: 'uuid' });
const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);
const Text = Type.Optional(Nullable(Type.String({ maxLength: 500 })));

// Triggers, waits and conditions are checked by src/programs/rules.ts, whose messages name the
// exact part that is wrong; the schema only says what they look like.
const TriggerDoc = Type.Unknown({
  description:
    '{"type": "message_sent" | "message_opened" | "message_clicked", "template_id"} | {"type": "external_event", "name": "purchase"} | ' +
    '{"type": "date_field", "field": "birthday", "offset_days": 0, "hour": 9, "time_zone": "UTC"} (a central date field, every year; offset_days < 0: before the date)',
});
const WaitDoc = Type.Unknown({ description: 'exactly one of {"days"}, {"hours"}, {"minutes"}, {"seconds"}: the time between the trigger and the mail' });
const ConditionDoc = Type.Unknown({
  description:
    'checked on the contact when the wait is over; null: always. {"field", "op": "gte" | "lte" | "eq" | "ne" | "exists", "value"} on a built-in or central field, ' +
    '{"external_event": "purchase", "count_gte": 2, "within_days"?} over the contact\'s external events, and {"all": [...]}, {"any": [...]}, {"not": ...}',
});

const ProgramBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    trigger: TriggerDoc,
    wait: WaitDoc,
    condition: Type.Optional(Nullable(ConditionDoc)),
    template_id: Type.String({ format: 'uuid', description: 'transactional and participation templates go as triggered mail; marketing templates only to contacts with consent' }),
    enabled: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

const ProgramPatch = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    trigger: Type.Optional(Type.Unknown({ description: 'cannot change: create a new program' })),
    wait: Type.Optional(WaitDoc),
    condition: Type.Optional(Nullable(ConditionDoc)),
    template_id: Type.Optional(Id),
    enabled: Type.Optional(Type.Boolean({ description: 'a disabled program enters nobody; its waiting entries wait, and go on when it is enabled again' })),
  },
  { additionalProperties: false },
);

const EventBody = Type.Object(
  {
    audience_id: Id,
    contact: Type.Object(
      {
        contact_id: Type.Optional(Id),
        email: Type.Optional(Type.String({ minLength: 3, maxLength: 320 })),
        first_name: Text,
        last_name: Text,
        company: Text,
        job_title: Text,
        fields: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
      },
      { additionalProperties: false, description: 'a contact of the audience, or an email (the contact is created when new)' },
    ),
    name: Type.String({ minLength: 1, maxLength: 64, description: 'what happened: purchase, session_attended... (compared without case)' }),
    occurred_at: Type.Optional(Type.String({ format: 'date-time', description: 'default: now; programs are due at occurred_at + their wait' })),
    properties: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'up to 16 KB; templates read them as {{ vars.trigger.properties.x }}' })),
    idempotency_key: Type.Optional(Type.String({ minLength: 1, maxLength: 255, description: 'or the Idempotency-Key header: a repeat is answered with the first event and enters nobody again' })),
  },
  { additionalProperties: false },
);

const EntriesQuery = Type.Object({
  status: Type.Optional(Type.Union([Type.Literal('waiting'), Type.Literal('sent'), Type.Literal('skipped'), Type.Literal('failed')])),
  limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }),
  offset: Type.Integer({ minimum: 0, maximum: MAX_LIST_OFFSET, default: 0 }),
});

export function programRoutes(app: App, ctx: AppContext) {
  const t = (summary: string, description?: string) => ({ tags: ['programs'], summary, ...(description ? { description } : {}) });
  const AudienceParams = Type.Object({ audienceId: Id });
  const ProgramParams = Type.Object({ id: Id });

  app.post(
    '/v1/audiences/:audienceId/programs',
    { schema: { ...t('Create a follow-up program', 'A trigger enters a contact, the program waits, checks its condition, and sends the template; each contact passes at most once per trigger.'), params: AudienceParams, body: ProgramBody } },
    async (req, reply) => reply.status(201).send(await svc.createProgram(ctx, requireRole(req, 'editor'), req.params.audienceId, req.body)),
  );
  app.get('/v1/audiences/:audienceId/programs', { schema: { ...t('Programs of an audience, with their entries by status'), params: AudienceParams } }, async (req) => ({
    programs: await svc.listPrograms(ctx, requireRole(req), req.params.audienceId),
  }));
  app.get('/v1/programs/:id', { schema: { ...t('A program'), params: ProgramParams } }, async (req) => svc.getProgram(ctx, requireRole(req), req.params.id));
  app.patch('/v1/programs/:id', { schema: { ...t('Change a program', 'Waiting entries keep the due time they were given.'), params: ProgramParams, body: ProgramPatch } }, async (req) =>
    svc.updateProgram(ctx, requireRole(req, 'editor'), req.params.id, req.body),
  );
  app.delete('/v1/programs/:id', { schema: { ...t('Delete a program and its entries', 'Mail already sent stays in the message log.'), params: ProgramParams } }, async (req, reply) => {
    await svc.deleteProgram(ctx, requireRole(req, 'editor'), req.params.id);
    return reply.status(204).send();
  });
  app.get(
    '/v1/programs/:id/entries',
    { schema: { ...t('Contacts who entered a program', 'Newest first; each with its due time, status, the reason of a skip (the condition as found, the policy rule) and the message sent.'), params: ProgramParams, querystring: EntriesQuery } },
    async (req) => svc.listEntries(ctx, requireRole(req), req.params.id, req.query),
  );

  app.post(
    '/v1/external-events',
    {
      schema: {
        ...t('Report what a contact did elsewhere', 'A purchase, a session attended...: starts the programs this name triggers (an event mapped to a triggered email is a program with no wait) and counts in their conditions. 202 once stored. Counted against the API key\'s rate limit, as POST /v1/messages is.'),
        body: EventBody,
      },
    },
    async (req, reply) => {
      const p = requireRole(req, 'editor');
      // An event mapped to mail with no wait sends like POST /v1/messages: the same per-key limit applies.
      const rate = await checkRateLimit(ctx, p);
      if (rate.limited) {
        reply.header('retry-after', String(rate.retryAfterSeconds));
        throw new AppError(429, 'rate_limited', `this API key may make ${rate.limit} requests per minute; retry in ${rate.retryAfterSeconds} s`, { retry_after_seconds: rate.retryAfterSeconds });
      }
      const body = { ...req.body };
      const key = idempotencyKey(req, body.idempotency_key);
      if (key !== undefined) body.idempotency_key = key;
      const r = await svc.recordExternalEvent(ctx, p, body);
      if (r.replayed) reply.header('idempotent-replayed', 'true');
      const { replayed: _r, ...answer } = r;
      return reply.status(202).send(answer);
    },
  );
}
