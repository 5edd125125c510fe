import { Type } from 'typebox';
import type { App } from '../platform/http.ts';
import { requireRole } from '../platform/http.ts';
import type { AppContext } from '../platform/context.ts';
import { ALL_EVENTS, EVENT_TYPES, MAX_URL_LENGTH, SIGNATURE_TOLERANCE_SECONDS } from './rules.ts';
import * as svc from './service.ts';

const Id = Type.String({ format: 'uuid' });
const EndpointParams = Type.Object({ id: Id });
const DeliveryParams = Type.Object({ id: Id, deliveryId: Id });

const Url = Type.String({ minLength: 1, maxLength: MAX_URL_LENGTH, description: 'https URL the events are POSTed to (plain http only for localhost and 127.0.0.1); no user name or password in it' });
const Events = Type.Array(Type.String({ minLength: 1, maxLength: 100 }), {
  minItems: 1,
  maxItems: 50,
  description: `event types to receive, or ["${ALL_EVENTS}"] for all, those of later versions included: ${EVENT_TYPES.join(', ')}`,
});
const Description = Type.String({ maxLength: 500 });

const CreateBody = Type.Object(
  { url: Url, events: Type.Optional(Events), description: Type.Optional(Description), enabled: Type.Optional(Type.Boolean()) },
  { additionalProperties: false },
);
const UpdateBody = Type.Object(
  { url: Type.Optional(Url), events: Type.Optional(Events), description: Type.Optional(Description), enabled: Type.Optional(Type.Boolean()) },
  { additionalProperties: false, minProperties: 1 },
);
const DeliveriesQuery = Type.Object({
  status: Type.Optional(Type.Enum(['pending', 'delivered', 'failed'])),
  limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }),
  offset: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 0 }),
});

const RECEIVING = `
Each event is one \`POST\` with a JSON body \`{"id", "type", "occurred_at", "organisation_id", "data"}\` and these headers:

| header | value |
| --- | --- |
| \`X-Envoi-Event\` | the event type (\`contact.created\`, ..., \`ping\`) |
| \`X-Envoi-Delivery\` | the delivery id: the same on every retry and replay of this event to this endpoint; de-duplicate on it |
| \`X-Envoi-Timestamp\` | when this attempt was signed, in Unix seconds |
| \`X-Envoi-Signature\` | \`v1=\` and the hex HMAC-SHA256 of \`<timestamp>.<raw body>\`, keyed by the webhook's secret |

**Verifying a request** (as for Stripe's webhooks):
1. read the raw body as received, before any JSON parsing;
2. compute \`HMAC-SHA256(secret, X-Envoi-Timestamp + "." + raw body)\` in hex (the key is the whole secret string, \`whsec_\` prefix included);
3. compare it with the value after \`v1=\` in constant time (\`crypto.timingSafeEqual\`, \`hmac.compare_digest\`); more than one \`v1=\` value, comma-separated, may come: accept if any matches;
4. refuse a timestamp more than ${SIGNATURE_TOLERANCE_SECONDS / 60} minutes from your clock, so that a captured request cannot be played again later.

\`\`\`js
const expected = crypto.createHmac('sha256', secret).update(\`\${req.headers['x-envoi-timestamp']}.\${rawBody}\`).digest('hex');
const given = req.headers['x-envoi-signature'].split(',').map((s) => s.trim()).filter((s) => s.startsWith('v1=')).map((s) => s.slice(3));
const ok = given.some((g) => g.length === expected.length && crypto.timingSafeEqual(Buffer.from(g), Buffer.from(expected)))
  && Math.abs(Date.now() / 1000 - Number(req.headers['x-envoi-timestamp'])) <= 300;
\`\`\`

**Answering**: any 2xx within 10 seconds marks the delivery delivered. Anything else (3xx included: redirects are never followed), or no answer, is retried with exponential backoff (30 s, 1 min, 2 min, ... up to 2 h between attempts, with jitter) for 24 hours, then the delivery is marked failed. Answer quickly and do the work afterwards. Events may arrive out of order, and more than once: use \`occurred_at\` and \`X-Envoi-Delivery\`.

**Payloads** (\`data\`): \`contact.*\`: \`contact_id\`, \`audience_id\`, \`email\`, and for \`contact.updated\` \`changed\` (column names, custom fields as \`fields.<key>\`); \`consent.changed\`: \`consent_record_id\`, \`contact_id\`, \`audience_id\`, \`email\`, \`purpose\`, \`action\`, \`method\`, \`at\`; \`message.*\`: \`message_id\`, \`delivery_id\`, \`audience_id\`, \`campaign_id\`, \`contact_id\`, \`email\`, \`at\`, \`detail\`. Events and their delivery log are kept 30 days.`;

export function webhookRoutes(app: App, ctx: AppContext) {
  const t = (summary: string, description?: string) => ({ tags: ['webhooks'], summary, ...(description ? { description } : {}) });

  app.post(
    '/v1/webhooks',
    {
      schema: {
        ...t(
          'Create a webhook: events of the organisation POSTed, signed, to a URL',
          `The answer holds the signing \`secret\`, shown this once: store it where your receiver can read it.\n${RECEIVING}`,
        ),
        body: CreateBody,
      },
    },
    async (req, reply) => reply.status(201).send(await svc.createEndpoint(ctx, requireRole(req, 'editor'), req.body)),
  );
  app.get('/v1/webhooks', { schema: t('Webhooks of the organisation') }, async (req) => ({ webhooks: await svc.listEndpoints(ctx, requireRole(req)) }));
  app.get('/v1/webhooks/:id', { schema: { ...t('One webhook (its secret is never shown again)'), params: EndpointParams } }, async (req) => svc.getEndpoint(ctx, requireRole(req), req.params.id));
  app.patch(
    '/v1/webhooks/:id',
    { schema: { ...t('Change a webhook: URL, events, description, or enabled', 'A disabled webhook receives nothing; its pending deliveries wait, and resume when it is enabled again.'), params: EndpointParams, body: UpdateBody } },
    async (req) => svc.updateEndpoint(ctx, requireRole(req, 'editor'), req.params.id, req.body),
  );
  app.delete('/v1/webhooks/:id', { schema: { ...t('Delete a webhook with its delivery log'), params: EndpointParams } }, async (req, reply) => {
    await svc.deleteEndpoint(ctx, requireRole(req, 'editor'), req.params.id);
    return reply.status(204).send();
  });

  app.get(
    '/v1/webhooks/:id/deliveries',
    { schema: { ...t('The delivery log of a webhook, newest first', 'Each delivery with its event, attempts, last HTTP status, error and the start of the answer.'), params: EndpointParams, querystring: DeliveriesQuery } },
    async (req) => svc.listDeliveries(ctx, requireRole(req), req.params.id, { status: req.query.status as 'pending' | 'delivered' | 'failed' | undefined, limit: req.query.limit, offset: req.query.offset }),
  );
  app.get('/v1/webhooks/:id/deliveries/:deliveryId', { schema: { ...t('One delivery of a webhook'), params: DeliveryParams } }, async (req) =>
    svc.getDelivery(ctx, requireRole(req), req.params.id, req.params.deliveryId),
  );
  app.post(
    '/v1/webhooks/:id/deliveries/:deliveryId/replay',
    { schema: { ...t('Send a delivery again now', 'Delivered or failed, it becomes pending with a new attempt at once, and 24 hours of retries if that fails. Same X-Envoi-Delivery as before.'), params: DeliveryParams } },
    async (req, reply) => reply.status(202).send(await svc.replayDelivery(ctx, requireRole(req, 'editor'), req.params.id, req.params.deliveryId)),
  );
  app.post(
    '/v1/webhooks/:id/test',
    { schema: { ...t('Send a ping event to this webhook', 'Whatever it subscribes to; follow it in the delivery log.'), params: EndpointParams } },
    async (req, reply) => reply.status(202).send(await svc.sendTest(ctx, requireRole(req, 'editor'), req.params.id)),
  );
}
