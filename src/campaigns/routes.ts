import { Type } from 'typebox';
import type { App } from '../platform/http.ts';
import { requireRole } from '../platform/http.ts';
import type { AppContext } from '../platform/context.ts';
import type { CampaignTarget } from '../platform/schema.ts';
import * as svc from './service.ts';
import { csvStream } from '../audience/csv-export.ts';
import { EVENT_MAIL_KINDS } from './event-mail-rules.ts';
import { answersOfCampaign } from '../consent/service.ts';

const Id = Type.String({ format: 'uuid' });
const Target = Type.Union(
  [
    Type.Object({ view_id: Id }, { additionalProperties: false }),
    Type.Object({ filter: Type.Unknown({ description: 'a grid filter, as in POST /v1/audiences/{id}/grid' }) }, { additionalProperties: false }),
    Type.Object({ contact_ids: Type.Array(Id, { minItems: 1, maxItems: 50_000 }) }, { additionalProperties: false }),
  ],
  { description: 'a saved view (Current view > Email the whole view), a filter, or a selection of contacts (Selection > Email the selection)' },
);
const CampaignBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    template_id: Id,
    target: Target,
    send_at: Type.Optional(Type.Union([Type.String({ format: 'date-time' }), Type.Null()])),
    recurring: Type.Optional(Type.Boolean({ description: 'run every every_minutes (30 by default), to the contacts who newly match' })),
    every_minutes: Type.Optional(Type.Union([Type.Integer({ minimum: 5, maximum: 10080 }), Type.Null()])),
    start: Type.Optional(Type.Boolean({ description: 'start at once (now, or at send_at); otherwise a draft' })),
    repermission: Type.Optional(
      Type.Object(
        { deadline: Type.String({ format: 'date-time', description: 'answers after it still count, shown as late' }) },
        { additionalProperties: false, description: 'a re-permission campaign: the template gets {{ yes_url }}, {{ no_url }} and {{ deadline }}; it goes to contacts without proven consent too, never to those who refused' },
      ),
    ),
  },
  { additionalProperties: false },
);
const DryRunBody = Type.Object({ template_id: Id, target: Target }, { additionalProperties: false });

export function campaignRoutes(app: App, ctx: AppContext) {
  const t = (summary: string, description?: string) => ({ tags: ['campaigns'], summary, ...(description ? { description } : {}) });
  const AudienceParams = Type.Object({ audienceId: Id });
  const CampaignParams = Type.Object({ id: Id });

  app.post('/v1/audiences/:audienceId/campaigns', { schema: { ...t('Create a campaign to a view or a selection', 'Recipients are resolved when it runs; each gets at most one copy.'), params: AudienceParams, body: CampaignBody } }, async (req, reply) =>
    reply.status(201).send(await svc.createCampaign(ctx, requireRole(req, 'editor'), req.params.audienceId, { ...req.body, target: req.body.target as CampaignTarget })),
  );
  app.get('/v1/audiences/:audienceId/campaigns', { schema: { ...t('Campaigns of an audience, with their progress'), params: AudienceParams } }, async (req) => ({
    campaigns: await svc.listCampaigns(ctx, requireRole(req), req.params.audienceId),
  }));
  app.post('/v1/audiences/:audienceId/campaigns/dry-run', { schema: { ...t('Policy counts of a prospective campaign: allowed, and blocked per rule; nothing is sent'), params: AudienceParams, body: DryRunBody } }, async (req) =>
    svc.dryRun(ctx, requireRole(req), req.params.audienceId, { template_id: req.body.template_id, target: req.body.target as CampaignTarget }),
  );
  app.get(
    '/v1/campaigns/:id/repermission',
    {
      schema: {
        ...t(
          'Results of a re-permission campaign: YES (the new consenting list, late ones marked), NO, unanswered',
          'format=csv exports the YES list, or the NO list with answer=no.',
        ),
        params: CampaignParams,
        querystring: Type.Object({ format: Type.Optional(Type.Union([Type.Literal('json'), Type.Literal('csv')])), answer: Type.Optional(Type.Union([Type.Literal('yes'), Type.Literal('no')], { default: 'yes' })) }),
      },
    },
    async (req, reply) => {
      const r = await svc.repermissionResults(ctx, requireRole(req), req.params.id);
      // Each person's last answer, as the YES list counts it: a NO after a YES is a NO.
      const refusing = (await answersOfCampaign(ctx, r.campaign_id)).filter((a) => a.answer === 'no').map((a) => ({ contact_id: a.contact_id, email: a.email, answered_at: a.at, late: a.at > r.deadline }));
      if (req.query.format !== 'csv') return { ...r, refusing };
      const list = req.query.answer === 'no' ? refusing : r.consenting;
      const rows = (async function* () {
        for (const c of list) yield { ...c, answered_at: c.answered_at.toISOString(), late: c.late ? 'yes' : 'no' };
      })();
      const columns = [
        { key: 'email', label: 'email' },
        { key: 'contact_id', label: 'contact_id' },
        { key: 'answered_at', label: 'answered_at' },
        { key: 'late', label: 'late' },
      ];
      const name = req.query.answer === 'no' ? 'repermission-no' : 'repermission';
      return reply.header('content-type', 'text/csv; charset=utf-8').header('content-disposition', `attachment; filename="${name}-${r.campaign_id}.csv"`).send(csvStream(columns, rows));
    },
  );
  app.post('/v1/campaigns/:id/repermission/view', { schema: { ...t('Save the YES answerers of a re-permission campaign as a view (late ones included)'), params: CampaignParams } }, async (req, reply) =>
    reply.status(201).send(await svc.repermissionView(ctx, requireRole(req, 'editor'), req.params.id)),
  );
  app.get('/v1/campaigns/:id', { schema: { ...t('A campaign and its progress: queued, sent, blocked by rule'), params: CampaignParams } }, async (req) => svc.getCampaign(ctx, requireRole(req), req.params.id));
  app.post('/v1/campaigns/:id/dry-run', { schema: { ...t('Policy counts of this campaign now'), params: CampaignParams } }, async (req) => svc.dryRunCampaign(ctx, requireRole(req), req.params.id));
  const EventMailBody = Type.Object(
    {
      kind: Type.Union(EVENT_MAIL_KINDS.map((k) => Type.Literal(k))),
      template_id: Id,
      send_at: Type.Optional(Type.Union([Type.String({ format: 'date-time' }), Type.Null()], { description: 'default: reminder the day before the start at 09:00, thank-you the day after the end at 10:00 (event time zone), others now' })),
      name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    },
    { additionalProperties: false },
  );
  app.post('/v1/events/:eventId/mail', { schema: { ...t('Schedule an event email to the current participants', 'Refused with the reason after the end of the event + the participation window (7 days by default).'), params: Type.Object({ eventId: Id }), body: EventMailBody } }, async (req, reply) =>
    reply.status(201).send(await svc.scheduleEventMail(ctx, requireRole(req, 'editor'), req.params.eventId, req.body)),
  );
  app.get('/v1/events/:eventId/mail', { schema: { ...t('Event emails of an event, scheduled and sent'), params: Type.Object({ eventId: Id }) } }, async (req) => ({
    campaigns: await svc.listEventMail(ctx, requireRole(req), req.params.eventId),
  }));

  for (const action of ['start', 'pause', 'resume', 'cancel'] as const) {
    app.post(`/v1/campaigns/:id/${action}`, { schema: { ...t(`${action[0]!.toUpperCase()}${action.slice(1)} a campaign`), params: CampaignParams } }, async (req) =>
      svc.act(ctx, requireRole(req, 'editor'), req.params.id, action),
    );
  }
}
