import { useQuery } from '@tanstack/react-query';
import { get } from '../../api.ts';
import type { Explanation, Skipped } from './shared/rules.tsx';

export type CampaignStatus = 'draft' | 'scheduled' | 'resolving' | 'sending' | 'paused' | 'completed' | 'cancelled';
export const STATUSES: CampaignStatus[] = ['draft', 'scheduled', 'resolving', 'sending', 'paused', 'completed', 'cancelled'];
export type EventMailKind = 'reminder' | 'thank_you' | 'practical_info' | 'badge' | 'new_content';
export const EVENT_MAIL_KINDS: EventMailKind[] = ['reminder', 'thank_you', 'practical_info', 'badge', 'new_content'];

export interface Progress {
  recipients: number;
  pending: number;
  queued: number;
  sending: number;
  deferred: number;
  paused: number;
  sent: number;
  bounced: number;
  failed: number;
  blocked: number;
  blocked_by_rule: Record<string, number>;
  done: number;
}

export type Target = { view_id: string } | { contact_ids: string[] } | { filter: unknown };

export interface Campaign {
  id: string;
  audience_id: string;
  name: string;
  template_id: string;
  target: Target;
  kind: 'marketing' | 'repermission' | 'event';
  deadline: string | null;
  event_id: string | null;
  event_mail: EventMailKind | null;
  status: CampaignStatus;
  send_at: string | null;
  every_minutes: number | null;
  next_run_at: string | null;
  runs: number;
  message_id: string | null;
  last_error: string | null;
  created_at: string;
  started_at: string | null;
  completed_at: string | null;
  progress: Progress | null;
  all_runs?: Progress;
}

export interface DryRun {
  template_id: string;
  template_version: number;
  category: string;
  total: number;
  allowed: number;
  blocked: Record<string, number>;
  explanations: Record<string, Explanation>;
  /** the first recipients skipped under each rule, by name */
  skipped?: Record<string, Skipped>;
  unknown_contacts?: number;
}

export interface Answer {
  contact_id: string | null;
  email: string | null;
  answered_at: string;
  late: boolean;
}

export interface RepermissionResults {
  campaign_id: string;
  deadline: string;
  closed: boolean;
  sent: number;
  yes: number;
  yes_on_time: number;
  yes_late: number;
  no: number;
  unanswered: number;
  consenting: Answer[];
  refusing: Answer[];
}

export interface View {
  id: string;
  name: string;
}

/** States in which a campaign still moves: its screen polls them. */
export const isActive = (c: Pick<Campaign, 'status'> | undefined) => !!c && ['scheduled', 'resolving', 'sending'].includes(c.status);

/**
 * Whether the figures on screen can still change by themselves: a running campaign, or a paused one
 * whose deliveries already handed to a worker are still going out (pausing holds only what was not yet claimed).
 */
export const isMoving = (c: Pick<Campaign, 'status' | 'progress'> | undefined) =>
  isActive(c) || (!!c && c.status === 'paused' && !!c.progress && c.progress.queued + c.progress.sending + c.progress.deferred > 0);

export const campKeys = {
  list: (audienceId: string) => ['campaigns', 'audience', audienceId] as const,
  one: (id: string) => ['campaigns', id] as const,
  dryRun: (id: string) => ['campaigns', id, 'dry-run'] as const,
  repermission: (id: string) => ['campaigns', id, 'repermission'] as const,
  eventMail: (eventId: string) => ['campaigns', 'event', eventId] as const,
  views: (audienceId: string) => ['campaigns', 'views', audienceId] as const,
};

export const useCampaigns = (audienceId: string | null) =>
  useQuery({
    queryKey: campKeys.list(audienceId ?? ''),
    queryFn: async () => (await get<{ campaigns: Campaign[] }>(`/v1/audiences/${audienceId}/campaigns`)).campaigns,
    enabled: !!audienceId,
    refetchInterval: (q) => (q.state.data?.some(isMoving) ? 3000 : false),
  });

/** A campaign, polled every two seconds while it runs (or, paused, still drains): the live progress. */
export const useCampaign = (id: string) =>
  useQuery({ queryKey: campKeys.one(id), queryFn: () => get<Campaign>(`/v1/campaigns/${id}`), refetchInterval: (q) => (isMoving(q.state.data) ? 2000 : false) });

export const useViews = (audienceId: string | null) =>
  useQuery({ queryKey: campKeys.views(audienceId ?? ''), queryFn: async () => (await get<{ views: View[] }>(`/v1/audiences/${audienceId}/views`)).views, enabled: !!audienceId });
