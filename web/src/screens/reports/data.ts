import { useQuery } from '@tanstack/react-query';
import { get } from '../../api.ts';

export type Scope = { audience_id: string } | { template_id: string } | { message_id: string } | { campaign_id: string };
/** Whose clickers a report lists: one campaign message, or every run of a campaign. */
export type ClickerScope = { message_id: string } | { campaign_id: string };

export interface Rates {
  delivered: number | null;
  open: number | null;
  click: number | null;
  bounce: number | null;
  complaint: number | null;
  unsubscribe: number | null;
}
export interface Figures {
  queued: number;
  sent: number;
  delivered: number;
  opened: number;
  opened_unique: number;
  clicked: number;
  clicked_unique: number;
  bounced: number;
  complained: number;
  unsubscribed: number;
  blocked: number;
  deferred: number;
  failed: number;
  rates: Rates;
}
export interface Series {
  bucket: 'hour' | 'day';
  time_zone: string;
  from: string;
  to: string;
  buckets: (Figures & { start: string })[];
  totals: Figures;
}
export interface LinkRow {
  url: string;
  clicks: number;
  unique_clickers: number;
}
export interface Clicker {
  delivery_id: string;
  contact_id: string | null;
  email: string;
  url: string;
  first_click_at: string;
  last_click_at: string;
  clicks: number;
}

/** The ranges a report offers, with the bucket that draws each well. */
export const RANGES = { '48h': { hours: 48, bucket: 'hour' }, '7d': { hours: 168, bucket: 'hour' }, '30d': { hours: 720, bucket: 'day' }, '90d': { hours: 2160, bucket: 'day' }, '365d': { hours: 8760, bucket: 'day' } } as const;
export type RangeKey = keyof typeof RANGES;

export const timeZone = () => Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';

export function seriesQuery(scope: Scope, range: RangeKey, now = Date.now()) {
  const r = RANGES[range];
  return { ...scope, bucket: r.bucket, from: new Date(now - r.hours * 3_600_000).toISOString(), time_zone: timeZone() };
}

export const useSeries = (scope: Scope, range: RangeKey) =>
  useQuery({
    queryKey: ['reports', 'series', scope, range],
    // The range ends now: asked again every minute while the report is open.
    queryFn: () => get<Series>('/v1/reports/series', seriesQuery(scope, range)),
    refetchInterval: 60_000,
  });

export const useLinks = (scope: Scope) =>
  useQuery({ queryKey: ['reports', 'links', scope], queryFn: async () => (await get<{ links: LinkRow[] }>('/v1/reports/links', { ...scope, limit: 20 })).links, refetchInterval: 60_000 });

export const useClickers = (of: ClickerScope, url: string | null, offset: number) =>
  useQuery({
    queryKey: ['reports', 'clickers', of, url, offset],
    queryFn: async () => (await get<{ items: Clicker[] }>('/v1/reports/clickers', { ...of, url, limit: 50, offset })).items,
  });
