/*
 * Pure rules of campaigns: what may happen to a campaign in each state, when a recurring campaign
 * runs next, and how its progress reads.
 */
import type { CampaignStatus, DeliveryStatus } from '../platform/schema.ts';

export type CampaignAction = 'start' | 'pause' | 'resume' | 'cancel';

/** The state an action leads to, or why it cannot happen now. */
export function transition(
  c: { status: CampaignStatus; paused_from: CampaignStatus | null; send_at: Date | null; every_minutes: number | null },
  action: CampaignAction,
  now: Date,
): { ok: true; status: CampaignStatus; next_run_at?: Date | null } | { ok: false; reason: string } {
  switch (action) {
    case 'start':
      if (c.status === 'cancelled') return { ok: false, reason: 'the campaign is cancelled and cannot be started; create a new one' };
      if (c.status === 'completed') return { ok: false, reason: 'the campaign is completed and cannot be started again; create a new one' };
      if (c.status === 'paused') return { ok: false, reason: 'the campaign is already started and paused; resume it instead' };
      if (c.status !== 'draft') return { ok: false, reason: `the campaign is already started (${c.status})` };
      return { ok: true, status: 'scheduled', next_run_at: c.send_at && c.send_at > now ? c.send_at : now };
    case 'pause':
      if (c.status !== 'scheduled' && c.status !== 'resolving' && c.status !== 'sending') return { ok: false, reason: `a ${c.status} campaign cannot be paused` };
      return { ok: true, status: 'paused' };
    case 'resume':
      if (c.status !== 'paused' || !c.paused_from) return { ok: false, reason: `only a paused campaign can be resumed; this one is ${c.status}` };
      return { ok: true, status: c.paused_from };
    case 'cancel':
      if (c.status === 'completed' || c.status === 'cancelled') return { ok: false, reason: `the campaign is already ${c.status}` };
      return { ok: true, status: 'cancelled' };
  }
}

export const DEFAULT_EVERY_MINUTES = 30;

/** The slack given to a send time just before now: a "now" computed on another machine, or a request in flight. */
export const SEND_AT_SLACK_MS = 60_000;

/** Why a campaign cannot be created with this send time, or null: a time already past would send at once, which is not what was asked. */
export function sendAtProblem(sendAt: Date, now: Date): string | null {
  if (sendAt.getTime() >= now.getTime() - SEND_AT_SLACK_MS) return null;
  return `the send time ${sendAt.toISOString()} has passed (it is now ${now.toISOString()}); give a later send_at, or none to send now`;
}

/** After a recurring run starts at `startedAt`, the next one is a period later; a late run does not pile up catch-ups. */
export function nextRun(everyMinutes: number, startedAt: Date, now: Date): Date {
  const period = everyMinutes * 60_000;
  const next = startedAt.getTime() + period;
  return new Date(Math.max(next, now.getTime() + 1000));
}

export const PENDING_STATUSES: readonly DeliveryStatus[] = ['queued', 'sending', 'deferred', 'paused'];

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
  /** share of allowed recipients whose delivery is over (sent, bounced or failed), 0..1 */
  done: number;
}

export function progressOf(counts: Partial<Record<DeliveryStatus, number>>, blockedByRule: Record<string, number>): Progress {
  const n = (s: DeliveryStatus) => counts[s] ?? 0;
  const pending = PENDING_STATUSES.reduce((sum, s) => sum + n(s), 0);
  const finished = n('sent') + n('bounced') + n('failed');
  const recipients = pending + finished + n('blocked');
  return {
    recipients,
    pending,
    queued: n('queued'),
    sending: n('sending'),
    deferred: n('deferred'),
    paused: n('paused'),
    sent: n('sent'),
    bounced: n('bounced'),
    failed: n('failed'),
    blocked: n('blocked'),
    blocked_by_rule: blockedByRule,
    done: pending + finished === 0 ? 1 : finished / (pending + finished),
  };
}
