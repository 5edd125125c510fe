import { Type } from 'typebox';
import type { App } from '../platform/http.ts';
import { requireRole } from '../platform/http.ts';
import type { AppContext } from '../platform/context.ts';
import { applyReportedEvents } from './bounce-service.ts';

const MAX_EVENTS = 1000;

const ReportedEvent = Type.Object(
  {
    delivery_id: Type.Optional(Type.String({ format: 'uuid', description: 'the delivery (its id is also in the VERP return path, bounce+<id>.<mark>@, and in the Message-ID)' })),
    message_id: Type.Optional(
      Type.String({ minLength: 1, maxLength: 255, description: 'the id returned by POST /v1/messages (with email), or the Message-ID header envoi set, <delivery id@domain>' }),
    ),
    email: Type.Optional(Type.String({ minLength: 3, maxLength: 320, description: 'the recipient, to find its delivery of message_id' })),
    type: Type.Union([Type.Literal('hard_bounce'), Type.Literal('soft_bounce'), Type.Literal('complaint')]),
    status: Type.Optional(Type.String({ pattern: '^[245]\\.\\d{1,3}\\.\\d{1,3}$', description: 'enhanced status code (RFC 3463), e.g. 5.1.1' })),
    diagnostic: Type.Optional(Type.String({ maxLength: 2000, description: "the receiving server's reply, e.g. 550 5.1.1 User unknown" })),
    feedback_type: Type.Optional(Type.String({ minLength: 1, maxLength: 40, description: 'for a complaint: the ARF Feedback-Type (default abuse)' })),
    at: Type.Optional(Type.String({ format: 'date-time', description: 'when the relay learnt it; default now' })),
  },
  { additionalProperties: false },
);

const Body = Type.Object({ events: Type.Array(ReportedEvent, { minItems: 1, maxItems: MAX_EVENTS }) }, { additionalProperties: false });

export function bounceRoutes(app: App, ctx: AppContext) {
  app.post(
    '/v1/bounces',
    {
      schema: {
        tags: ['messages'],
        summary: "Report bounces and complaints from your relay's webhook",
        description:
          `Up to ${MAX_EVENTS} events a call, applied in order. A hard bounce marks the delivery bounced and, when its status is about the address (5.1.x, 5.2.1, or no status at all), ` +
          'suppresses the address for every category of mail; a soft bounce is recorded only; a complaint stops marketing mail to the address. ' +
          'Each event is applied once: a repeat answers `duplicate`. A delivery this key cannot see answers `unknown_delivery`. The same intake as DSNs sent to the VERP return path.',
        body: Body,
      },
    },
    async (req) => applyReportedEvents(ctx, requireRole(req, 'editor'), req.body.events),
  );
}
