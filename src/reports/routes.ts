import { Type } from 'typebox';
import type { App } from '../platform/http.ts';
import { MAX_LIST_OFFSET, requireRole } from '../platform/http.ts';
import type { AppContext } from '../platform/context.ts';
import * as svc from './service.ts';
import { csvStream } from '../audience/csv-export.ts';

// The series as a spreadsheet: one row a bucket, the counts and then the rates.
const SERIES_COUNTS = ['sent', 'delivered', 'opened', 'opened_unique', 'clicked', 'clicked_unique', 'bounced', 'complained', 'unsubscribed', 'blocked', 'deferred', 'failed'] as const;
const SERIES_RATES = ['delivered', 'open', 'click', 'bounce', 'complaint', 'unsubscribe'] as const;
const SERIES_COLUMNS = [{ key: 'start', label: 'start' }, ...SERIES_COUNTS.map((key) => ({ key, label: key })), ...SERIES_RATES.map((r) => ({ key: `rate_${r}`, label: `${r}_rate` }))];

const Scope = {
  audience_id: Type.Optional(Type.String({ format: 'uuid', description: 'every message of the audience' })),
  template_id: Type.Optional(Type.String({ format: 'uuid', description: 'every message sent with the template (triggered and campaigns)' })),
  message_id: Type.Optional(Type.String({ format: 'uuid', description: "one campaign's message (one run)" })),
  campaign_id: Type.Optional(Type.String({ format: 'uuid', description: 'every run of a campaign (a recurring one has one message a run)' })),
};
const Instant = (what: string) => Type.Optional(Type.String({ format: 'date-time', description: `${what}, with its offset (2026-03-01T00:00:00+01:00)` }));

const SeriesQuery = Type.Object(
  {
    ...Scope,
    from: Instant('start of the range (default: 48 hours or 30 days before `to`); the first bucket is the one holding it'),
    to: Instant('end of the range, exclusive (default: now)'),
    bucket: Type.Optional(Type.Union([Type.Literal('hour'), Type.Literal('day')], { default: 'day' })),
    time_zone: Type.Optional(Type.String({ minLength: 1, maxLength: 64, default: 'UTC', description: 'IANA time zone whose midnights start the days' })),
    format: Type.Optional(Type.Union([Type.Literal('json'), Type.Literal('csv')], { default: 'json', description: 'csv: one row a bucket, counts then rates' })),
  },
  { additionalProperties: false },
);

const LinksQuery = Type.Object(
  {
    ...Scope,
    from: Instant('start of the range (default: all time); the rollup is hourly: every hour overlapping [from, to) counts whole'),
    to: Instant('end of the range, exclusive (default: all time)'),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 20 })),
  },
  { additionalProperties: false },
);

const ClickersQuery = Type.Object(
  {
    message_id: Type.Optional(Type.String({ format: 'uuid', description: 'one campaign message (one run)' })),
    campaign_id: Type.Optional(Type.String({ format: 'uuid', description: 'every run of a campaign' })),
    url: Type.Optional(Type.String({ minLength: 1, maxLength: 8000, description: 'one link of the message, as in GET /v1/reports/links; default every link' })),
    format: Type.Optional(Type.Union([Type.Literal('json'), Type.Literal('csv')], { default: 'json', description: 'csv: the whole list as a streamed CSV file' })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
    offset: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_LIST_OFFSET, default: 0 })),
  },
  { additionalProperties: false },
);

export function reportRoutes(app: App, ctx: AppContext) {
  const t = (summary: string, description: string) => ({ tags: ['reports'], summary, description });

  app.get(
    '/v1/reports/series',
    {
      schema: {
        ...t(
          'Trend of an audience, a template or a campaign',
          'Counts per hour or per day (days start at midnight in `time_zone`) of each event, and the rates: delivered / sent, unique opens, unique clicks, complaints and unsubscribes / delivered, bounces / sent. ' +
            'Unique counts count a delivery once, in the bucket of its first open or click, so buckets add up to the totals. ' +
            'A bounce arriving after the send lowers `delivered` in the bucket the mail was sent in. Rates are null when there is nothing to divide by.',
        ),
        querystring: SeriesQuery,
      },
    },
    async (req, reply) => {
      const { format, ...q } = req.query;
      const s = await svc.series(ctx, requireRole(req), q);
      if (format !== 'csv') return s;
      const rows = (async function* () {
        for (const b of s.buckets) {
          yield { start: b.start.toISOString(), ...Object.fromEntries(SERIES_COUNTS.map((k) => [k, b[k]])), ...Object.fromEntries(SERIES_RATES.map((r) => [`rate_${r}`, b.rates[r]])) };
        }
      })();
      const scope = q.message_id ?? q.campaign_id ?? q.template_id ?? q.audience_id;
      return reply.header('content-type', 'text/csv; charset=utf-8').header('content-disposition', `attachment; filename="report-${scope}-${s.bucket}.csv"`).send(csvStream(SERIES_COLUMNS, rows));
    },
  );

  app.get(
    '/v1/reports/links',
    { schema: { ...t('Most clicked links', 'Links of an audience, a template or a campaign by clicks, with the number of people who clicked each.'), querystring: LinksQuery } },
    async (req) => svc.links(ctx, requireRole(req), req.query),
  );

  app.get(
    '/v1/reports/clickers',
    {
      schema: {
        ...t(
          'Who clicked the links of a message',
          'Each person and link: contact, address, first and last click, clicks; first clickers first. `format=csv` streams the whole list as CSV (cells that a spreadsheet would run as a formula are neutralised).',
        ),
        querystring: ClickersQuery,
      },
    },
    async (req, reply) => {
      const p = requireRole(req);
      const q = req.query;
      if (q.format !== 'csv') return svc.clickers(ctx, p, q);
      const { stream, filename } = await svc.clickersCsv(ctx, p, { message_id: q.message_id, campaign_id: q.campaign_id, url: q.url });
      reply.header('content-type', 'text/csv; charset=utf-8');
      reply.header('content-disposition', `attachment; filename="${filename}"`);
      return reply.send(stream);
    },
  );
}
