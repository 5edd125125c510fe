/**
 * Reports on what happened to sent mail: trend series by hour or day, top links, and who clicked.
 * Everything is read from the rollups the database keeps as events arrive (0008_reports.sql), never
 * from message_events, so a report costs the same at ten events or ten million.
 */
import type { Readable } from 'node:stream';
import type { AppContext } from '../platform/context.ts';
import type { Principal } from '../organisations/service.ts';
import { badRequest, notFound } from '../platform/errors.ts';
import { audienceFor } from '../audience/service.ts';
import { templateFor } from '../mail/template-service.ts';
import { csvStream, type ExportColumn } from '../audience/csv-export.ts';
import { bucketRange, buildSeries, canonicalTimeZone, defaultRange, type BucketSize } from './rules.ts';
import * as store from './store.ts';

export interface ScopeQuery {
  audience_id?: string;
  template_id?: string;
  message_id?: string;
  campaign_id?: string;
}

async function campaignScope(ctx: AppContext, p: Principal, id: string): Promise<store.Scope & { kind: 'campaign' }> {
  const c = await ctx.db.selectFrom('campaigns').select(['id', 'audience_id']).where('org_id', '=', p.orgId).where('id', '=', id).executeTakeFirst();
  if (!c) throw notFound('campaign');
  await audienceFor(ctx, p, c.audience_id).catch(() => {
    throw notFound('campaign');
  });
  return { kind: 'campaign', id: c.id };
}

async function messageFor(ctx: AppContext, p: Principal, id: string) {
  const m = await store.findMessage(ctx.db, p.orgId, id);
  if (!m) throw notFound('message');
  await audienceFor(ctx, p, m.audience_id).catch(() => {
    throw notFound('message');
  });
  return m;
}

/** The one audience, template, campaign or campaign message a report is about, once the caller may see it (404 otherwise). */
async function scopeOf(ctx: AppContext, p: Principal, q: ScopeQuery): Promise<store.Scope> {
  const given = (['audience_id', 'template_id', 'message_id', 'campaign_id'] as const).filter((k) => q[k] !== undefined);
  if (given.length !== 1) throw badRequest('scope_required', 'give exactly one of audience_id, template_id, campaign_id or message_id');
  if (q.audience_id !== undefined) return { kind: 'audience', id: (await audienceFor(ctx, p, q.audience_id)).id };
  if (q.template_id !== undefined) return { kind: 'template', id: (await templateFor(ctx, p, q.template_id)).id };
  if (q.campaign_id !== undefined) return campaignScope(ctx, p, q.campaign_id);
  const m = await messageFor(ctx, p, q.message_id!);
  if (m.origin !== 'campaign') {
    throw badRequest(
      'not_a_campaign',
      `message ${m.id} was sent to one person (${m.origin} mail), which has no trend to report: GET /v1/messages/${m.id} shows its events; report on its template_id or audience_id`,
    );
  }
  return { kind: 'message', id: m.id };
}

const scopeAnswer = (s: store.Scope) => ({ [`${s.kind}_id`]: s.id });

function date(value: string | undefined, name: string): Date | undefined {
  if (value === undefined) return undefined;
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) throw badRequest('invalid_date', `${name} is not a date-time`);
  return d;
}

export interface SeriesQuery extends ScopeQuery {
  from?: string;
  to?: string;
  bucket?: BucketSize;
  time_zone?: string;
}

export async function series(ctx: AppContext, p: Principal, q: SeriesQuery) {
  const size = q.bucket ?? 'day';
  const timeZone = canonicalTimeZone(q.time_zone ?? 'UTC');
  if (!timeZone) throw badRequest('invalid_time_zone', `time_zone "${q.time_zone}" is not an IANA time zone (like Europe/Paris or UTC)`);
  const { from, to } = defaultRange(ctx.now(), size, date(q.from, 'from'), date(q.to, 'to'));
  const range = bucketRange(from, to, size, timeZone);
  if (!range.ok) throw badRequest('invalid_range', range.reason);
  const scope = await scopeOf(ctx, p, q);
  const rows = await store.seriesRows(ctx.db, p.orgId, scope, range.starts, range.end);
  return { ...scopeAnswer(scope), bucket: size, time_zone: timeZone, from: range.starts[0]!, to: range.end, ...buildSeries(range.starts, rows) };
}

export interface LinksQuery extends ScopeQuery {
  from?: string;
  to?: string;
  limit?: number;
}

/**
 * The most clicked links. Without from/to, over all time. A link's unique clickers in a range are
 * the people whose first click on it fell in the range. The rollup is hourly: every hour overlapping
 * [from, to) counts whole.
 */
export async function links(ctx: AppContext, p: Principal, q: LinksQuery) {
  const from = date(q.from, 'from');
  const to = date(q.to, 'to');
  if (from && to && from >= to) throw badRequest('invalid_range', 'from must be before to');
  const scope = await scopeOf(ctx, p, q);
  const hour = (d: Date | undefined) => (d ? new Date(Math.floor(d.getTime() / 3_600_000) * 3_600_000) : undefined);
  return { ...scopeAnswer(scope), from: from ?? null, to: to ?? null, links: await store.topLinks(ctx.db, p.orgId, scope, { from: hour(from), to: to }, q.limit ?? 20) };
}

export interface ClickersQuery {
  message_id?: string;
  campaign_id?: string;
  url?: string;
  limit?: number;
  offset?: number;
}

/** A campaign message, or all the runs of a campaign: whose clickers are listed. */
async function clickerScope(ctx: AppContext, p: Principal, q: Pick<ClickersQuery, 'message_id' | 'campaign_id'>): Promise<store.Scope & { kind: 'message' | 'campaign' }> {
  if ((q.message_id === undefined) === (q.campaign_id === undefined)) throw badRequest('scope_required', 'give message_id (one run) or campaign_id (all its runs)');
  if (q.campaign_id !== undefined) return campaignScope(ctx, p, q.campaign_id);
  return { kind: 'message', id: (await messageFor(ctx, p, q.message_id!)).id };
}

export async function clickers(ctx: AppContext, p: Principal, q: ClickersQuery) {
  const scope = await clickerScope(ctx, p, q);
  const rows = await store.clickers(ctx.db, p.orgId, scope, q.url ?? null, { limit: q.limit ?? 100, offset: q.offset ?? 0 });
  return { ...scopeAnswer(scope), url: q.url ?? null, items: rows.map((r) => r.clicker) };
}

const CLICKER_COLUMNS: ExportColumn[] = [
  { key: 'contact_id', label: 'Contact id' },
  { key: 'email', label: 'Email' },
  { key: 'url', label: 'URL' },
  { key: 'first_click_at', label: 'First click' },
  { key: 'last_click_at', label: 'Last click' },
  { key: 'clicks', label: 'Clicks' },
];

/** The clicker list as CSV, streamed a page at a time, after the access check (a 404 must not be a cut stream). */
export async function clickersCsv(ctx: AppContext, p: Principal, q: Omit<ClickersQuery, 'limit' | 'offset'>, batchSize = 1000): Promise<{ stream: Readable; filename: string }> {
  const scope = await clickerScope(ctx, p, q);
  async function* rows() {
    let after: store.ClickerCursor | null = null;
    for (;;) {
      const page = await store.clickers(ctx.db, p.orgId, scope, q.url ?? null, { limit: batchSize, after });
      for (const r of page) yield r.clicker as unknown as Record<string, unknown>;
      if (page.length < batchSize) return;
      after = page[page.length - 1]!.cursor;
    }
  }
  return { stream: csvStream(CLICKER_COLUMNS, rows()), filename: `clickers-${scope.id}.csv` };
}
