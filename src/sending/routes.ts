import { Type } from 'typebox';
import type { App } from '../platform/http.ts';
import { idempotencyKey, MAX_LIST_OFFSET, requireRole } from '../platform/http.ts';
import type { AppContext } from '../platform/context.ts';
import { AppError } from '../platform/errors.ts';
import * as svc from './service.ts';
import { findMessageByKey } from './store.ts';
import { BUILTIN_KINDS } from '../mail/builtin-templates.ts';
import { simpleParser } from 'mailparser';
import { sendEmailDocument } from '../mail/template-routes.ts';

const Id = Type.String({ format: 'uuid' });
const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);
const Text = Type.Optional(Nullable(Type.String({ maxLength: 500 })));

const MessageBody = Type.Object(
  {
    template_id: Type.Optional(Id),
    builtin: Type.Optional(
      Type.Union(BUILTIN_KINDS.map((k) => Type.Literal(k)), { description: "one of envoi's built-in templates (with audience_id and language), or the audience's override of it" }),
    ),
    event_id: Type.Optional(Type.String({ format: 'uuid', description: 'the event a built-in or inline message is about (registration_confirmation)' })),
    audience_id: Type.Optional(Type.String({ format: 'uuid', description: 'required for a message without template_id' })),
    language: Type.Optional(Type.String({ minLength: 2, maxLength: 35 })),
    subject: Type.Optional(Type.String({ minLength: 1, maxLength: 2000, description: 'message without a stored template (transactional only): Liquid subject' })),
    html: Type.Optional(Type.String({ minLength: 1, maxLength: 1_000_000 })),
    text: Type.Optional(Nullable(Type.String({ maxLength: 1_000_000 }))),
    to: Type.Object(
      {
        contact_id: Type.Optional(Id),
        email: Type.Optional(Type.String({ minLength: 3, maxLength: 320 })),
        first_name: Text,
        last_name: Text,
        company: Text,
        job_title: Text,
        fields: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
      },
      { additionalProperties: false, description: 'a contact of the template audience, or an email (the contact is created when new)' },
    ),
    variables: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    idempotency_key: Type.Optional(Type.String({ minLength: 1, maxLength: 255, description: 'or the Idempotency-Key header: a repeat gets the first answer and sends nothing' })),
    custom_id: Type.Optional(Type.String({ maxLength: 255 })),
    tags: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { maxItems: 20 })),
    send_at: Type.Optional(Type.String({ format: 'date-time' })),
    sensitive: Type.Optional(
      Type.Boolean({ description: 'the variables hold secrets (a password-reset link): kept only until the message is delivered or given up, and its links are not click-tracked' }),
    ),
  },
  { additionalProperties: false },
);

const DryRunBody = Type.Object(
  {
    template_id: Id,
    contact_ids: Type.Optional(Type.Array(Id, { maxItems: 100_000 })),
    all: Type.Optional(Type.Boolean()),
    origin: Type.Optional(Type.Union([Type.Literal('campaign'), Type.Literal('triggered')], { description: 'how the mail would be sent; default campaign' })),
  },
  { additionalProperties: false },
);

const Page = Type.Object({ limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }), offset: Type.Integer({ minimum: 0, maximum: MAX_LIST_OFFSET, default: 0 }) });

export function sendingRoutes(app: App, ctx: AppContext) {
  const t = (tag: string, summary: string, description?: string) => ({ tags: [tag], summary, ...(description ? { description } : {}) });

  app.post(
    '/v1/messages',
    {
      schema: {
        ...t(
          'messages',
          'Send a triggered email',
          'One email to one person, caused by their own action (confirmation, receipt, reset): transactional or participation templates only; marketing is refused (422 triggered_marketing) because this API does not check opt-in. ' +
            'The sending policy is applied now and again at send time: a recipient it blocks gets a delivery with status `blocked` and the rule. 202 once the message is stored. ' +
            'API keys are limited to their `rate_limit_per_minute` (429 with Retry-After beyond it).',
        ),
        body: MessageBody,
      },
    },
    async (req, reply) => {
      const p = requireRole(req, 'editor');
      const rate = await svc.checkRateLimit(ctx, p);
      if (rate.limit !== null) reply.header('x-ratelimit-limit', String(rate.limit));
      if (rate.limited) {
        reply.header('retry-after', String(rate.retryAfterSeconds));
        reply.header('x-ratelimit-remaining', '0');
        throw new AppError(429, 'rate_limited', `this API key may send ${rate.limit} requests per minute; retry in ${rate.retryAfterSeconds} s`, { retry_after_seconds: rate.retryAfterSeconds });
      }
      if (rate.remaining !== null) reply.header('x-ratelimit-remaining', String(rate.remaining));
      const body = { ...req.body };
      const key = idempotencyKey(req, body.idempotency_key);
      if (key !== undefined) body.idempotency_key = key;
      const r = await svc.acceptTriggered(ctx, p, body);
      if (r.replayed) reply.header('idempotent-replayed', 'true');
      reply.status(202);
      const { replayed: _r, ...answer } = r;
      return answer;
    },
  );

  app.get(
    '/v1/messages',
    {
      schema: {
        ...t(
          'messages',
          'The message sent with an idempotency key',
          'For a client whose POST /v1/messages got no answer (a timeout, a cut connection, a server restart): whether the message was stored, and its status, without sending it again. 404 when no message holds the key.',
        ),
        querystring: Type.Object({ idempotency_key: Type.String({ minLength: 1, maxLength: 255 }) }, { additionalProperties: false }),
      },
    },
    async (req) => {
      const p = requireRole(req);
      const m = await findMessageByKey(ctx.db, p.orgId, req.query.idempotency_key);
      if (!m) throw new AppError(404, 'not_found', 'no message was stored with this idempotency_key');
      return svc.getMessage(ctx, p, m.id);
    },
  );

  app.get('/v1/messages/:id', { schema: { ...t('messages', 'A message: status, deliveries (with the rule of any blocked one) and event history'), params: Type.Object({ id: Id }) } }, async (req) =>
    svc.getMessage(ctx, requireRole(req), req.params.id),
  );

  app.post(
    '/v1/audiences/:audienceId/dry-run',
    {
      schema: {
        ...t('messages', 'What a send would do', 'Applies the sending policy to each prospective recipient without sending: how many would receive the template, how many each rule would block, and why.'),
        params: Type.Object({ audienceId: Id }),
        body: DryRunBody,
      },
    },
    async (req) => svc.dryRun(ctx, requireRole(req), req.params.audienceId, req.body),
  );

  app.get(
    '/v1/suppressions',
    { schema: { ...t('messages', 'Addresses the organisation no longer writes to', 'Hard bounces and spam complaints (from the bounce listener, `POST /v1/bounces`, or refusals at send time), newest first. The sending policy blocks every category of mail to a hard-bounced address, and marketing mail to one that complained.'), querystring: Page } },
    async (req) => svc.listSuppressions(ctx, requireRole(req), req.query),
  );

  app.get(
    '/v1/outbox',
    { schema: { ...t('messages', 'The development outbox', 'With no SMTP_URL configured, sent mail is kept here instead of leaving the machine. Newest first.'), querystring: Page } },
    async (req) => svc.listOutbox(ctx, requireRole(req), req.query),
  );

  app.get('/v1/outbox/:id', { schema: { ...t('messages', 'One message of the development outbox, with its full MIME source'), params: Type.Object({ id: Id }) } }, async (req) =>
    svc.getOutboxMessage(ctx, requireRole(req), req.params.id),
  );

  // The mailbox view of the outbox: the message as a mail client reads it.
  const parsedOutbox = async (p: ReturnType<typeof requireRole>, id: string) => {
    const m = await svc.getOutboxMessage(ctx, p, id);
    return { m, parsed: await simpleParser(m.raw, { skipImageLinks: true, skipTextToHtml: true }) };
  };
  app.get(
    '/v1/outbox/:id/message',
    { schema: { ...t('messages', 'One message of the development outbox, decoded: its headers, text part and whether it has an HTML part (GET .../html)'), params: Type.Object({ id: Id }) } },
    async (req) => {
      const { m, parsed } = await parsedOutbox(requireRole(req), req.params.id);
      return {
        id: m.id,
        message_id: m.message_id,
        delivery_id: m.delivery_id,
        envelope_from: m.envelope_from,
        envelope_to: m.envelope_to,
        created_at: m.created_at,
        subject: parsed.subject ?? m.subject,
        from: parsed.from?.text ?? null,
        to: [parsed.to ?? []].flat().map((a) => a.text).join(', ') || null,
        date: parsed.date ?? null,
        headers: parsed.headerLines.map((h) => ({ name: h.key, value: h.line.slice(h.line.indexOf(':') + 1).trim() })),
        text: parsed.text ?? null,
        has_html: typeof parsed.html === 'string',
        html_url: typeof parsed.html === 'string' ? `/v1/outbox/${m.id}/html` : null,
      };
    },
  );
  app.get(
    '/v1/outbox/:id/html',
    { schema: { ...t('messages', 'The HTML part of an outbox message, as a sandboxed document for a frame'), params: Type.Object({ id: Id }) } },
    async (req, reply) => {
      const { parsed } = await parsedOutbox(requireRole(req), req.params.id);
      if (typeof parsed.html !== 'string') throw new AppError(404, 'not_found', 'this message has no HTML part');
      return sendEmailDocument(reply, parsed.html);
    },
  );
}
