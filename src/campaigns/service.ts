/**
 * Campaigns: a template sent to a saved view, a filter or a selection, now, later, or every N
 * minutes to the contacts who newly match. Recipients are resolved when a run starts, a page of contacts
 * at a time, each page decided by the send-time policy and written as deliveries; the workers then
 * send them like any other mail, and decide each one again at send time.
 */
import type { AppContext } from '../platform/context.ts';
import { isConnectionError } from '../platform/database.ts';
import type { CampaignStatus, CampaignTarget, EventMailKind } from '../platform/schema.ts';
import { explain } from '../consent/rules.ts';
import { answersOfCampaign } from '../consent/service.ts';
import { DEFAULT_TIMING, eventMailName, eventMailProblem, eventMailSendAt, type EventTimes } from './event-mail-rules.ts';
import { AppError, badRequest, conflict, notFound } from '../platform/errors.ts';
import type { Principal } from '../organisations/service.ts';
import { audienceFor, eventFor } from '../audience/service.ts';
import { createView, resolveTarget, targetContactsPage, targetIdsPage } from '../audience/grid-service.ts';
import { compiledVersion, templateFor } from '../mail/template-service.ts';
import * as sending from '../sending/service.ts';
import { DEFAULT_EVERY_MINUTES, nextRun, PENDING_STATUSES, progressOf, sendAtProblem, transition, type CampaignAction } from './rules.ts';
import * as store from './store.ts';

export interface CampaignInput {
  name: string;
  template_id: string;
  target: CampaignTarget;
  send_at?: string | null;
  /** recurring: every N minutes (30 when `recurring` is true without a period) */
  every_minutes?: number | null;
  recurring?: boolean;
  /** start at once (now or at send_at) instead of saving a draft */
  start?: boolean;
  /** a re-permission campaign: asks for consent again, answers counted until (and after) the deadline */
  repermission?: { deadline: string };
}

const PAGE = 2000;

async function campaignFor(ctx: AppContext, p: Principal, id: string) {
  const c = await store.findCampaign(ctx.db, p.orgId, id);
  if (!c) throw notFound('campaign');
  await audienceFor(ctx, p, c.audience_id).catch(() => {
    throw notFound('campaign');
  });
  return c;
}

function checkTarget(target: CampaignTarget): void {
  const keys = Object.keys(target ?? {});
  if (keys.length !== 1 || !['view_id', 'filter', 'contact_ids'].includes(keys[0]!)) {
    throw badRequest('invalid_target', 'target takes exactly one of view_id (a saved view), filter, or contact_ids (a selection)');
  }
}

/**
 * Participation mail about an event is refused, with the reason, when it would go after the event's
 * window closes: at creation and at start, not only recipient by recipient at send time.
 */
async function assertEventWindow(ctx: AppContext, p: Principal, t: { category: string; event_id: string | null }, sendAt: Date) {
  if (t.category !== 'participation' || !t.event_id) return;
  const event = await eventFor(ctx, p, t.event_id);
  const closesAt = await sending.eventMailClosesAt(ctx, p, event);
  const problem = eventMailProblem(sendAt, closesAt, ctx.now());
  if (problem) throw new AppError(409, problem.code, problem.message, { closes_at: closesAt.toISOString(), ...(problem.code === 'event_window_closed' ? { explanation: explain('event_window_closed') } : {}) });
}

type Extra = { kind: 'event'; event_mail: EventMailKind; event_id: string };

export async function createCampaign(ctx: AppContext, p: Principal, audienceId: string, input: CampaignInput, extra?: Extra) {
  await audienceFor(ctx, p, audienceId);
  const t = await templateFor(ctx, p, input.template_id, audienceId);
  checkTarget(input.target);
  // The target is checked now (a bad filter is a 400 today, not a failed run tonight), and again at each run.
  await resolveTarget(ctx, audienceId, input.target, ctx.now());
  const sendAt = input.send_at ? new Date(input.send_at) : null;
  if (sendAt && Number.isNaN(sendAt.getTime())) throw badRequest('invalid_send_at', 'send_at is not a date-time');
  // Event mail (extra) has its own check, with the event's window, in assertEventWindow.
  const passed = sendAt && !extra ? sendAtProblem(sendAt, ctx.now()) : null;
  if (passed) throw badRequest('send_time_passed', passed, { send_at: sendAt!.toISOString() });
  const every = input.every_minutes ?? (input.recurring ? DEFAULT_EVERY_MINUTES : null);
  let deadline: Date | null = null;
  if (input.repermission) {
    deadline = new Date(input.repermission.deadline);
    if (Number.isNaN(deadline.getTime())) throw badRequest('invalid_deadline', 'repermission.deadline is not a date-time');
    if (deadline.getTime() <= (sendAt ?? ctx.now()).getTime()) throw badRequest('invalid_deadline', 'the deadline must be after the send time: people need time to answer');
    if (t.category !== 'marketing') throw badRequest('repermission_template', 're-permission asks for marketing consent: use a marketing template (POST .../templates/from-builtin with re_permission gives a ready one)');
    if (input.every_minutes || input.recurring) throw badRequest('repermission_recurring', 'a re-permission campaign is sent once');
  }
  // A re-permission campaign's NO link is its way out; any other marketing mail needs its unsubscribe link
  // (templates are checked when saved, but a NO link alone passes there for the re-permission campaigns).
  if (t.category === 'marketing' && !input.repermission && !(await compiledVersion(t.id, t.version, t)).hasUnsubscribeLink) {
    throw badRequest('unsubscribe_link_missing', 'a marketing campaign needs an unsubscribe link in its template: put [UNSUBLINK] (or {{ unsubscribe_url }}) in the body; a NO link is enough only for a re-permission campaign');
  }
  if (t.category === 'transactional') {
    throw badRequest('transactional_campaign', 'transactional mail goes to the person whose action caused it, one at a time: send it with POST /v1/messages, not as a campaign');
  }
  const now = ctx.now();
  if (input.start) await assertEventWindow(ctx, p, t, sendAt && sendAt > now ? sendAt : now);
  const row = await store.insertCampaign(ctx.db, {
    org_id: p.orgId,
    audience_id: audienceId,
    name: input.name,
    ...(extra ?? {}),
    ...(deadline ? { kind: 'repermission' as const, deadline } : {}),
    template_id: t.id,
    target: JSON.stringify(input.target),
    status: input.start ? 'scheduled' : 'draft',
    send_at: sendAt,
    every_minutes: every,
    next_run_at: input.start ? (sendAt && sendAt > now ? sendAt : now) : null,
    created_by: `${p.kind}:${p.id}`,
    created_at: now,
    updated_at: now,
  });
  return present(ctx, row);
}

export async function listCampaigns(ctx: AppContext, p: Principal, audienceId: string) {
  await audienceFor(ctx, p, audienceId);
  return Promise.all((await store.listCampaigns(ctx.db, audienceId)).map((c) => present(ctx, c)));
}

export async function getCampaign(ctx: AppContext, p: Principal, id: string) {
  return present(ctx, await campaignFor(ctx, p, id));
}

async function present(ctx: AppContext, c: store.CampaignRow) {
  const current = c.message_id ? await sending.messageCounts(ctx, c.message_id) : null;
  const all = c.every_minutes ? await sending.campaignCounts(ctx, c.id) : null;
  return {
    id: c.id,
    audience_id: c.audience_id,
    name: c.name,
    template_id: c.template_id,
    target: c.target,
    kind: c.kind,
    deadline: c.deadline,
    event_id: c.event_id,
    event_mail: c.event_mail,
    status: c.status,
    send_at: c.send_at,
    every_minutes: c.every_minutes,
    next_run_at: c.status === 'scheduled' ? c.next_run_at : null,
    runs: c.runs,
    message_id: c.message_id,
    last_error: c.last_error,
    created_at: c.created_at,
    started_at: c.started_at,
    completed_at: c.completed_at,
    progress: current ? progressOf(current.counts, current.blocked_by_rule) : null,
    ...(all ? { all_runs: progressOf(all.counts, all.blocked_by_rule) } : {}),
  };
}

/** Start, pause, resume or cancel. Pausing holds the deliveries not yet sent; resuming releases them. */
export async function act(ctx: AppContext, p: Principal, id: string, action: CampaignAction) {
  const c = await campaignFor(ctx, p, id);
  const now = ctx.now();
  const t = transition(c, action, now);
  if (!t.ok) throw conflict('invalid_transition', t.reason, { status: c.status });
  if (action === 'start') await assertEventWindow(ctx, p, await templateFor(ctx, p, c.template_id), t.next_run_at ?? now);
  const set: Parameters<typeof store.updateIf>[3] = { status: t.status, updated_at: now };
  if (action === 'start') set.next_run_at = t.next_run_at ?? now;
  if (action === 'pause') set.paused_from = c.status as CampaignStatus;
  // A resolution that was under way is taken up again by whichever scheduler comes first.
  if (action === 'resume') Object.assign(set, { paused_from: null, lease_until: null, leased_by: null });
  if (action === 'cancel') set.completed_at = now;
  const updated = await store.updateIf(ctx.db, c.id, [c.status], set);
  if (!updated) throw conflict('invalid_transition', 'the campaign changed meanwhile; reload it', { status: c.status });
  if (c.message_id && (action === 'pause' || action === 'cancel')) await sending.holdMessage(ctx, c.message_id, true);
  if (c.message_id && action === 'resume') await sending.holdMessage(ctx, c.message_id, false);
  return present(ctx, updated);
}

/** The policy counts of a campaign (or a prospective one) over its whole target, nothing written. */
export async function dryRun(ctx: AppContext, p: Principal, audienceId: string, input: { template_id: string; target: CampaignTarget; repermission?: boolean }) {
  await audienceFor(ctx, p, audienceId);
  checkTarget(input.target);
  const target = await resolveTarget(ctx, audienceId, input.target, ctx.now());
  async function* pages() {
    let after: string | null = null;
    for (;;) {
      const ids = await targetIdsPage(ctx, target, after, 5000);
      if (ids.length === 0) return;
      yield ids;
      after = ids[ids.length - 1]!;
    }
  }
  return sending.dryRunPages(ctx, p, audienceId, input.template_id, 'campaign', pages(), { repermission: input.repermission });
}

export async function dryRunCampaign(ctx: AppContext, p: Principal, id: string) {
  const c = await campaignFor(ctx, p, id);
  return dryRun(ctx, p, c.audience_id, { template_id: c.template_id, target: c.target as CampaignTarget, repermission: c.kind === 'repermission' });
}

// ---- runs (the scheduler) ----

/** The campaign's creator, as the scheduler acts for them; a campaign of a revoked key still runs for its organisation. */
function principalOf(c: store.CampaignRow): Principal {
  const [kind, id] = c.created_by.split(':') as ['user' | 'key', string];
  return { orgId: c.org_id, role: 'owner', kind: kind === 'user' ? 'user' : 'key', id: id ?? 'scheduler', audienceIds: null, rateLimitPerMinute: null };
}

/**
 * Takes one due campaign and resolves its run: creates the run's message, then writes its
 * recipients a page at a time, renewing the lease as it goes. Returns false when nothing was due.
 */
export async function runDue(ctx: AppContext, holder: string, leaseMs = 60_000): Promise<boolean> {
  const now = ctx.now();
  const c = await store.claimDue(ctx.db, holder, now, new Date(now.getTime() + leaseMs));
  if (!c) return false;
  const p = principalOf(c);
  try {
    let msg: sending.BulkMessage;
    let after: string | null = c.resolved_after;
    // A scheduled campaign starts a new run; a resolving one was interrupted and carries on.
    if (c.previous_status === 'scheduled' || !c.message_id) {
      msg = await sending.createBulkMessage(ctx, p, { templateId: c.template_id, campaignId: c.id, repermission: c.kind === 'repermission' });
      after = null;
      const started = await store.advance(ctx.db, c.id, holder, { message_id: msg.id, resolved_after: null, runs: c.runs + 1, started_at: c.started_at ?? now, last_error: null });
      if (!started) return true;
    } else {
      msg = await sending.bulkMessage(ctx, p, c.message_id, { repermission: c.kind === 'repermission' });
    }
    const target = await resolveTarget(ctx, c.audience_id, c.target as CampaignTarget, ctx.now());
    for (;;) {
      let contacts = await targetContactsPage(ctx, target, after, PAGE);
      if (contacts.length === 0) break;
      const last = contacts[contacts.length - 1]!.id;
      let blockedBefore: Set<string> | undefined;
      if (c.every_minutes) {
        const seen = await sending.alreadyRecipients(ctx, c.id, contacts.map((x) => x.id));
        contacts = contacts.filter((x) => !seen.reached.has(x.id));
        blockedBefore = seen.blockedOnly;
      }
      if (contacts.length) await sending.enqueueContacts(ctx, msg, contacts, { onlyIfAllowed: blockedBefore });
      const t = ctx.now();
      const still = await store.advance(ctx.db, c.id, holder, { resolved_after: last, lease_until: new Date(t.getTime() + leaseMs), updated_at: t });
      if (!still) {
        // Paused or cancelled while this page was written: hold what it queued too.
        const cur = await store.findCampaign(ctx.db, c.org_id, c.id);
        if (cur && (cur.status === 'paused' || cur.status === 'cancelled')) await sending.holdMessage(ctx, msg.id, true);
        return true;
      }
      after = last;
    }
    const end = ctx.now();
    await store.advance(
      ctx.db,
      c.id,
      holder,
      c.every_minutes
        ? { status: 'scheduled', next_run_at: nextRun(c.every_minutes, c.next_run_at ?? now, end), resolved_after: null, leased_by: null, lease_until: null, updated_at: end }
        : { status: 'sending', resolved_after: null, leased_by: null, lease_until: null, updated_at: end },
    );
  } catch (e) {
    // The database went away (a restart, a cut connection): nothing is wrong with the campaign. It
    // stays resolving under this lease, and the next pass carries on after the last page written.
    if (isConnectionError(e)) throw e;
    // Nothing a retry fixes by itself (a deleted template, a view whose field is gone): stop, and say why.
    const reason = e instanceof AppError ? e.message : `internal error: ${(e as Error)?.message ?? String(e)}`;
    await store.updateIf(ctx.db, c.id, ['resolving'], { status: 'paused', paused_from: 'scheduled', last_error: reason.slice(0, 1000), leased_by: null, lease_until: null, updated_at: ctx.now() });
    if (!(e instanceof AppError)) throw e;
  }
  return true;
}

/** Marks sending campaigns whose deliveries are all over as completed. */
export async function completeFinished(ctx: AppContext): Promise<number> {
  let n = 0;
  for (const c of await store.sendingCampaigns(ctx.db, 100)) {
    // Runs every second in every worker: ask whether one delivery is still pending rather than count them all.
    if (!c.message_id || !(await store.hasDeliveryIn(ctx.db, c.message_id, PENDING_STATUSES))) {
      const now = ctx.now();
      if (await store.updateIf(ctx.db, c.id, ['sending'], { status: 'completed', completed_at: now, updated_at: now })) n++;
    }
  }
  return n;
}

// ---- event lifecycle mail ----

/**
 * Schedules a participation email of an event (reminder D-1, thank-you D+1, practical information,
 * badge, new content) to its participants as they are when it goes, in the event's time zone. The
 * template must be a participation template of this event: an invitation to people who are not
 * registered is marketing, and goes as a marketing campaign to contacts who consented.
 */
export async function scheduleEventMail(ctx: AppContext, p: Principal, eventId: string, input: { kind: EventMailKind; template_id: string; send_at?: string | null; name?: string }) {
  const event = await eventFor(ctx, p, eventId);
  const t = await templateFor(ctx, p, input.template_id, event.audience_id);
  if (t.category !== 'participation' || t.event_id !== event.id) {
    throw badRequest(
      'not_event_mail',
      t.category === 'marketing'
        ? 'this is a marketing template: mail to people about something other than their participation (an invitation included) goes as a marketing campaign, to contacts who consented'
        : 'event mail needs a participation template of this event (category participation, event_id of this event)',
    );
  }
  const given = input.send_at ? new Date(input.send_at) : null;
  if (given && Number.isNaN(given.getTime())) throw badRequest('invalid_send_at', 'send_at is not a date-time');
  const sendAt = eventMailSendAt(input.kind, event, given, ctx.now());
  return createCampaign(
    ctx,
    p,
    event.audience_id,
    { name: input.name ?? eventMailName(input.kind, event.name, t.language), template_id: t.id, target: { filter: { event: { in: [event.id] } } }, send_at: sendAt.toISOString(), start: true },
    { kind: 'event', event_mail: input.kind, event_id: event.id },
  );
}

/**
 * After an event moved (PATCH /v1/events/{id}), its reminder and thank-you that still wait at their
 * default time (the day before the old start, the day after the old end) move with it: a postponed
 * event must not get "see you tomorrow" a month early, nor "thank you for coming" before it happens.
 * A send time the organiser chose is theirs and stays. Returns how many campaigns moved.
 */
export async function followEventTimes(ctx: AppContext, eventId: string, before: EventTimes, after: EventTimes): Promise<number> {
  const same = before.starts_at.getTime() === after.starts_at.getTime() && before.ends_at.getTime() === after.ends_at.getTime() && before.time_zone === after.time_zone;
  if (same) return 0;
  const now = ctx.now();
  let moved = 0;
  for (const c of await store.listEventCampaigns(ctx.db, eventId)) {
    if (c.status !== 'scheduled' || !c.event_mail || !DEFAULT_TIMING[c.event_mail] || !c.send_at) continue;
    if (eventMailSendAt(c.event_mail, before, null, now).getTime() !== c.send_at.getTime()) continue;
    const next = eventMailSendAt(c.event_mail, after, null, now);
    const at = next.getTime() < now.getTime() ? now : next;
    if (await store.updateIf(ctx.db, c.id, ['scheduled'], { send_at: at, next_run_at: at, updated_at: now })) moved++;
  }
  return moved;
}

export async function listEventMail(ctx: AppContext, p: Principal, eventId: string) {
  const event = await eventFor(ctx, p, eventId);
  return Promise.all((await store.listEventCampaigns(ctx.db, event.id)).map((c) => present(ctx, c)));
}

// ---- re-permission results ----

/**
 * The outcome of a re-permission campaign, from the ledger: who answered YES (the new consenting
 * list), who answered after the deadline (counted, shown as late), who said NO, and how many did
 * not answer (not unsubscribed: they simply have no fresh consent).
 */
export async function repermissionResults(ctx: AppContext, p: Principal, id: string) {
  const c = await campaignFor(ctx, p, id);
  if (c.kind !== 'repermission' || !c.deadline) throw badRequest('not_repermission', 'this campaign is not a re-permission campaign');
  const deadline = c.deadline;
  const [answers, counts] = await Promise.all([answersOfCampaign(ctx, c.id), sending.campaignCounts(ctx, c.id)]);
  const yes = answers.filter((a) => a.answer === 'yes');
  const no = answers.filter((a) => a.answer === 'no');
  const reached = (counts.counts.sent ?? 0) + (counts.counts.bounced ?? 0);
  return {
    campaign_id: c.id,
    deadline,
    closed: ctx.now() > deadline,
    sent: counts.counts.sent ?? 0,
    yes: yes.length,
    yes_on_time: yes.filter((a) => a.at <= deadline).length,
    yes_late: yes.filter((a) => a.at > deadline).length,
    no: no.length,
    unanswered: Math.max(0, reached - yes.length - no.length),
    consenting: yes.map((a) => ({ contact_id: a.contact_id, email: a.email, answered_at: a.at, late: a.at > deadline })),
  };
}

/** Saves the YES answerers of a re-permission campaign as a view of the audience: the new consenting list to send to. */
export async function repermissionView(ctx: AppContext, p: Principal, id: string) {
  const c = await campaignFor(ctx, p, id);
  if (c.kind !== 'repermission') throw badRequest('not_repermission', 'this campaign is not a re-permission campaign');
  return createView(ctx, p, c.audience_id, { name: `YES: ${c.name}`.slice(0, 200), filter: { repermission: { campaign_id: c.id, answer: 'yes' } } });
}
