import { checkEmail } from '../platform/email-address.ts';

/*
 * The send-time policy: who may receive which message, and if not, which rule says no.
 *
 * Everything here is pure: no clock, no database, no randomness. `now` is a parameter so a dry run,
 * a worker and a test at a chosen instant all get the same answer for the same inputs. The only
 * state is a memo of computed window closings, which cannot change any result.
 */

export type Category = 'transactional' | 'participation' | 'marketing';
export type Origin = 'triggered' | 'campaign' | 'system';

/**
 * Every rule code, in the order `decide` checks them. When several rules apply to one recipient the
 * first of this list is the one reported, so dry-run counts are stable and add up to the total.
 *
 * 1. Rules that depend only on the message and `now` come first. They block every recipient alike,
 *    and the dry run must then say "the whole message is wrong" (12,000 x event_window_closed)
 *    rather than scatter the count over address problems nobody needs to fix for a send that cannot
 *    happen anyway.
 * 2. Then the recipient's audience (consent and participations only mean something in the audience
 *    the message is for; a mismatch is a wiring mistake upstream, never a reason to send).
 * 3. Then deliverability, for every category: an invalid or hard-bounced address cannot be written to.
 * 4. Then the category's own rules. For marketing, the person's own refusals (complaint, unsubscribe)
 *    before the organisation's (exclusion list) before the mere absence of consent, because those stay
 *    true even if consent were collected again, and they are what a person asking "why not me?" needs
 *    to hear.
 */
export const RULE_ORDER = [
  'triggered_marketing',
  'invitation_not_event_mail',
  'event_window_closed',
  'other_audience',
  'invalid_address',
  'hard_bounced',
  'not_person_concerned',
  'not_participant',
  'not_member',
  'complained',
  'unsubscribed',
  'excluded',
  'no_marketing_consent',
] as const;
export type RuleCode = (typeof RULE_ORDER)[number];

export const isRuleCode = (x: unknown): x is RuleCode => typeof x === 'string' && (RULE_ORDER as readonly string[]).includes(x);

export type Decision = { allow: true } | { allow: false; rule: RuleCode; detail: string };

// ---------------------------------------------------------------------------------------------
// Organisation settings

/**
 * How many local calendar days after an event's end its participants may still get event mail.
 * There is no "off": an organisation that wants a longer follow-up chooses up to 90 days, and
 * anything beyond that is marketing and needs consent.
 */
export const PARTICIPATION_WINDOW_DAYS = { default: 7, min: 0, max: 90 } as const;

/** Key of `organisations.settings` read by `validatePolicySettings`. */
export const PARTICIPATION_WINDOW_KEY = 'participation_window_days';

export interface PolicySettings {
  participationWindowDays: number;
}

export const DEFAULT_POLICY_SETTINGS: PolicySettings = Object.freeze({ participationWindowDays: PARTICIPATION_WINDOW_DAYS.default });

export function participationWindowProblem(value: unknown): string | null {
  const { min, max } = PARTICIPATION_WINDOW_DAYS;
  if (value === null) return `the participation window cannot be turned off; give a number of days between ${min} and ${max}`;
  if (typeof value !== 'number' || !Number.isInteger(value)) return `${PARTICIPATION_WINDOW_KEY} must be a whole number of days between ${min} and ${max}`;
  if (value < min || value > max) return `${PARTICIPATION_WINDOW_KEY} must be between ${min} and ${max} days (got ${value})`;
  return null;
}

/**
 * Reads the policy part of an organisation's `settings` JSON. A missing key means the default; a key
 * present with a bad value (including null) is refused, never replaced by the default, so a
 * mistyped setting is seen instead of silently changing the rules. Other keys are ignored.
 */
export function validatePolicySettings(orgSettings: unknown): { ok: true; value: PolicySettings } | { ok: false; reason: string } {
  if (orgSettings === undefined || orgSettings === null) return { ok: true, value: { ...DEFAULT_POLICY_SETTINGS } };
  if (typeof orgSettings !== 'object' || Array.isArray(orgSettings)) return { ok: false, reason: 'organisation settings must be a JSON object' };
  const settings = orgSettings as Record<string, unknown>;
  if (!Object.prototype.hasOwnProperty.call(settings, PARTICIPATION_WINDOW_KEY)) return { ok: true, value: { ...DEFAULT_POLICY_SETTINGS } };
  const days = settings[PARTICIPATION_WINDOW_KEY];
  const problem = participationWindowProblem(days);
  if (problem) return { ok: false, reason: problem };
  return { ok: true, value: { participationWindowDays: days as number } };
}

// ---------------------------------------------------------------------------------------------
// Inputs

export interface PolicyEvent {
  id: string;
  /** events.ends_at: an instant */
  endsAt: Date;
  /** events.time_zone: IANA name; the window is counted in this zone's calendar days */
  timeZone: string;
}

interface MessageCommon {
  audienceId: string;
  origin: Origin;
  /**
   * An invitation to someone who is not (yet) registered. Whatever the sender calls it, that is
   * marketing: it is refused as transactional or participation mail and needs consent as marketing.
   */
  invitation: boolean;
  settings: PolicySettings;
}

export type TransactionalMessage = MessageCommon & {
  category: 'transactional';
  /** contact id of the person whose action caused the message (registration, order, reset request) */
  personConcernedId: string;
};

export type ParticipationMessage = MessageCommon & {
  category: 'participation';
  about: { kind: 'event'; event: PolicyEvent } | { kind: 'community'; communityId: string };
};

export type MarketingMessage = MessageCommon & {
  category: 'marketing';
  /**
   * A re-permission request (reference: mailjet-gdpr-repermission): it asks for consent, so it goes
   * to contacts whose consent is unproven, but never to those who refused (unsubscribed, excluded,
   * complained). It can only grant consent by the person's click, never by silence.
   */
  repermission?: boolean;
};

export type PolicyMessage = TransactionalMessage | ParticipationMessage | MarketingMessage;

/**
 * The recorded marketing consent of a contact for its audience, as the consent ledger resolves it:
 * the latest record wins, so "opted in" and "withdrawn" cannot both hold.
 */
export type MarketingConsent =
  | { status: 'none' }
  | { status: 'opted_in'; since: Date }
  | { status: 'withdrawn'; at: Date };

export interface PolicyRecipient {
  contactId: string;
  /** contacts.audience_id */
  audienceId: string;
  /** the address as stored; checked with checkEmail, the same check as on input */
  email: string;
  /** suppression: any recorded hard bounce of this address blocks every category */
  hardBouncedAt: Date | null;
  /** suppression: any recorded spam complaint blocks marketing */
  complainedAt: Date | null;
  /** ids of the events the contact participates in */
  eventIds: readonly string[];
  /** ids of the communities the contact is a member of */
  communityIds: readonly string[];
  marketing: MarketingConsent;
  /** on the organisation's exclusion list (no marketing, transactional and event mail still go) */
  excluded: boolean;
}

/** Thrown for inputs no validated data can produce (bad settings, unknown time zone, invalid date). */
export class PolicyInputError extends Error {
  override name = 'PolicyInputError';
}

// ---------------------------------------------------------------------------------------------
// The decision

/** The triggered API sends without looking at opt-in (that is its point), so it must refuse marketing. */
export function triggeredCategoryAllowed(category: Category): boolean {
  return category !== 'marketing';
}

const ALLOW: Decision = Object.freeze({ allow: true });
const block = (rule: RuleCode, detail: string): Decision => ({ allow: false, rule, detail });

/** Decides whether `message` may go to `recipient` at `now`. The check order is RULE_ORDER's. */
export function decide(message: PolicyMessage, recipient: PolicyRecipient, now: Date): Decision {
  const nowMs = now.getTime();
  if (Number.isNaN(nowMs)) throw new PolicyInputError('now is not a valid date');

  // 1. The message alone.
  if (message.category === 'marketing' && message.origin === 'triggered') {
    return block('triggered_marketing', 'marketing mail cannot be sent through the triggered API, which does not check opt-in; send it as a campaign');
  }
  if (message.invitation && message.category !== 'marketing') {
    return block('invitation_not_event_mail', `an invitation is marketing mail, not ${message.category} mail; send it as marketing, to contacts who opted in`);
  }
  if (message.category === 'participation' && message.about.kind === 'event') {
    const { event } = message.about;
    const window = participationWindow(event, message.settings.participationWindowDays);
    if (nowMs >= window.closesAt.getTime()) {
      return block(
        'event_window_closed',
        `event ${event.id} ended on ${window.endDay} (${event.timeZone}); event mail was accepted until the end of ${window.lastDay} there ` +
          `(${message.settings.participationWindowDays}-day window, closed at ${window.closesAt.toISOString()})`,
      );
    }
  }

  // 2. The recipient's audience.
  if (recipient.audienceId !== message.audienceId) {
    return block('other_audience', `contact ${recipient.contactId} belongs to audience ${recipient.audienceId}, the message to audience ${message.audienceId}`);
  }

  // 3. Deliverability, every category.
  const address = checkEmail(recipient.email);
  if (!address.ok) return block('invalid_address', `invalid address: ${address.reason}`);
  if (recipient.hardBouncedAt) return block('hard_bounced', `the address hard-bounced on ${recipient.hardBouncedAt.toISOString()}`);

  // 4. The category's rules.
  switch (message.category) {
    case 'transactional':
      // Consent, unsubscribe, exclusion and complaints are about marketing: deliberately not looked at.
      if (recipient.contactId !== message.personConcernedId) {
        return block('not_person_concerned', `transactional mail goes only to the person whose action caused it (contact ${message.personConcernedId})`);
      }
      return ALLOW;
    case 'participation':
      if (message.about.kind === 'event') {
        if (!recipient.eventIds.includes(message.about.event.id)) return block('not_participant', `not a participant of event ${message.about.event.id}`);
      } else if (!recipient.communityIds.includes(message.about.communityId)) {
        return block('not_member', `not a member of community ${message.about.communityId}`);
      }
      return ALLOW;
    case 'marketing': {
      if (recipient.complainedAt) return block('complained', `marked a message as spam on ${recipient.complainedAt.toISOString()}`);
      const consent = recipient.marketing;
      if (consent.status === 'withdrawn') return block('unsubscribed', `withdrew marketing consent on ${consent.at.toISOString()}`);
      if (recipient.excluded) return block('excluded', 'on the organisation exclusion list');
      if (message.repermission) return ALLOW;
      if (consent.status === 'none') return block('no_marketing_consent', `no recorded marketing opt-in for audience ${message.audienceId}`);
      // An opt-in dated after `now` is not yet an opt-in: clock skew or a bad import must not send.
      if (consent.since.getTime() > nowMs) {
        return block('no_marketing_consent', `the marketing opt-in is dated ${consent.since.toISOString()}, after ${now.toISOString()}`);
      }
      return ALLOW;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Dry run

export interface DryRunCounts {
  allowed: number;
  /** only rules that blocked at least one recipient, keys in RULE_ORDER order */
  blocked: Partial<Record<RuleCode, number>>;
}

export function summarise(decisions: Iterable<Decision>): DryRunCounts {
  let allowed = 0;
  const counts = new Map<RuleCode, number>();
  for (const d of decisions) {
    if (d.allow) allowed++;
    else counts.set(d.rule, (counts.get(d.rule) ?? 0) + 1);
  }
  const blocked: Partial<Record<RuleCode, number>> = {};
  for (const rule of RULE_ORDER) {
    const n = counts.get(rule);
    if (n) blocked[rule] = n;
  }
  return { allowed, blocked };
}

// ---------------------------------------------------------------------------------------------
// Explanations for people (back office, dry run, delivery log)

const EXPLANATIONS: Record<RuleCode, { fr: string; en: string }> = {
  triggered_marketing: {
    fr: "Un email marketing ne peut pas partir par l'API d'envoi déclenché, qui ne vérifie pas le consentement : envoyez-le en campagne.",
    en: 'Marketing mail cannot be sent through the triggered API, which does not check consent: send it as a campaign.',
  },
  invitation_not_event_mail: {
    fr: "Une invitation est un email marketing, pas un email transactionnel ni lié à la participation : elle ne part qu'aux contacts ayant donné leur consentement.",
    en: 'An invitation is marketing mail, not transactional or event mail: it only goes to contacts who gave their consent.',
  },
  event_window_closed: {
    fr: "L'événement est terminé depuis plus longtemps que le délai autorisé pour les emails aux participants.",
    en: 'The event ended longer ago than the period allowed for mail to its participants.',
  },
  other_audience: {
    fr: "Le contact appartient à une autre audience que celle de l'email.",
    en: 'The contact belongs to another audience than the message.',
  },
  invalid_address: {
    fr: "L'adresse email n'est pas valide.",
    en: 'The email address is not valid.',
  },
  hard_bounced: {
    fr: "L'adresse a été rejetée définitivement (hard bounce) : plus aucun email n'y est envoyé.",
    en: 'The address hard-bounced: no mail is sent to it any more.',
  },
  not_person_concerned: {
    fr: "Un email transactionnel ne part qu'à la personne dont l'action l'a déclenché.",
    en: 'Transactional mail only goes to the person whose action caused it.',
  },
  not_participant: {
    fr: "Le contact n'est pas participant de cet événement.",
    en: 'The contact is not a participant of this event.',
  },
  not_member: {
    fr: "Le contact n'est pas membre de cette communauté.",
    en: 'The contact is not a member of this community.',
  },
  complained: {
    fr: "Le contact a signalé un de vos emails comme spam : il ne reçoit plus d'emails marketing.",
    en: 'The contact reported one of your emails as spam: they get no more marketing mail.',
  },
  unsubscribed: {
    fr: "Le contact s'est désabonné des emails marketing de cette audience.",
    en: "The contact unsubscribed from this audience's marketing mail.",
  },
  excluded: {
    fr: "Le contact est sur la liste d'exclusion de l'organisation : il ne reçoit pas d'emails marketing.",
    en: "The contact is on the organisation's exclusion list: they get no marketing mail.",
  },
  no_marketing_consent: {
    fr: "Aucun consentement marketing enregistré pour cette audience.",
    en: 'No recorded marketing consent for this audience.',
  },
};

export function explain(rule: RuleCode): { fr: string; en: string } {
  return EXPLANATIONS[rule];
}

// ---------------------------------------------------------------------------------------------
// The participation window, in the event's calendar

/*
 * Convention: the window is counted in whole calendar days of the event's own time zone. Event mail
 * is accepted until the end of the N-th local calendar day after the local date on which the event
 * ended, i.e. strictly before local midnight starting day (end date + N + 1). An event ending on
 * 2026-12-02 at 18:00 Europe/Paris with N = 7 accepts mail until 2026-12-09 23:59:59.999 Paris time
 * (2026-12-09T22:59:59.999Z); N = 0 means until the end of the event's last day.
 *
 * Why calendar days rather than N x 24 h from the end instant: organisers and the rule they follow
 * ("no mailing more than 7 days after the event", "thank-you mail at D+1") count days on the
 * calendar where the event took place. A 24 h count would depend on the hour the event ended and
 * would shift by an hour across a DST change; counting in UTC would move the boundary by up to
 * 14 hours away from the local midnight the organiser sees.
 *
 * Local midnight is found with Intl (the offset in force at an instant), not a fixed offset, so DST
 * is handled; where a DST change skips local midnight (America/Santiago in September), the day
 * starts at the transition instant, the first instant whose local date is the new day.
 */

export interface ParticipationWindow {
  /** local date (YYYY-MM-DD, event's zone) on which the event ended */
  endDay: string;
  /** last local date on which event mail is accepted */
  lastDay: string;
  /** first instant at which event mail is refused */
  closesAt: Date;
}

export function participationWindow(event: PolicyEvent, days: number): ParticipationWindow {
  const problem = participationWindowProblem(days);
  if (problem) throw new PolicyInputError(problem);
  const endsMs = event.endsAt instanceof Date ? event.endsAt.getTime() : NaN;
  if (Number.isNaN(endsMs)) throw new PolicyInputError(`event ${event.id}: ends_at is not a valid date`);
  const key = `${event.timeZone}\u0000${endsMs}\u0000${days}`;
  let w = windowMemo.get(key);
  if (!w) {
    const end = wallClock(endsMs, event.timeZone);
    const last = addDays(end, days);
    w = { endDay: dayString(end), lastDay: dayString(last), closesAtMs: startOfLocalDay(addDays(end, days + 1), event.timeZone) };
    if (windowMemo.size >= 10_000) windowMemo.clear();
    windowMemo.set(key, w);
  }
  return { endDay: w.endDay, lastDay: w.lastDay, closesAt: new Date(w.closesAtMs) };
}

// A send decides the same window for every recipient; computing it once per event keeps a
// 100,000-recipient dry run from formatting dates 100,000 times.
const windowMemo = new Map<string, { endDay: string; lastDay: string; closesAtMs: number }>();

interface Day {
  y: number;
  m: number;
  d: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    try {
      f = new Intl.DateTimeFormat('en-US', {
        timeZone,
        hourCycle: 'h23',
        era: 'short',
        year: 'numeric',
        month: 'numeric',
        day: 'numeric',
        hour: 'numeric',
        minute: 'numeric',
        second: 'numeric',
      });
    } catch {
      throw new PolicyInputError(`"${timeZone}" is not an IANA time zone`);
    }
    formatters.set(timeZone, f);
  }
  return f;
}

/** UTC milliseconds of a wall-clock reading (Date.UTC maps years 0-99 to 1900-1999; this does not). */
function utcMs(y: number, m: number, d: number, h = 0, mi = 0, s = 0): number {
  const date = new Date(0);
  date.setUTCFullYear(y, m - 1, d);
  date.setUTCHours(h, mi, s, 0);
  return date.getTime();
}

function wallClock(t: number, timeZone: string): Day & { h: number; mi: number; s: number } {
  const parts: Record<string, string> = {};
  for (const p of formatter(timeZone).formatToParts(t)) parts[p.type] = p.value;
  const year = Number(parts.year);
  return {
    y: parts.era === 'BC' || parts.era === 'B' ? 1 - year : year,
    m: Number(parts.month),
    d: Number(parts.day),
    h: Number(parts.hour) % 24,
    mi: Number(parts.minute),
    s: Number(parts.second),
  };
}

/** Offset of the zone at instant t, in ms (wall clock minus UTC). */
function offsetAt(t: number, timeZone: string): number {
  const w = wallClock(t, timeZone);
  const wholeSecond = t - (((t % 1000) + 1000) % 1000);
  return utcMs(w.y, w.m, w.d, w.h, w.mi, w.s) - wholeSecond;
}

function addDays(day: Day, n: number): Day {
  const date = new Date(utcMs(day.y, day.m, day.d) + n * 86_400_000);
  return { y: date.getUTCFullYear(), m: date.getUTCMonth() + 1, d: date.getUTCDate() };
}

function dayString(day: Day): string {
  return `${String(day.y).padStart(4, '0')}-${String(day.m).padStart(2, '0')}-${String(day.d).padStart(2, '0')}`;
}

const dayNumber = (day: Day) => day.y * 10_000 + day.m * 100 + day.d;

const HOUR = 3_600_000;

/**
 * The instant of a local wall-clock time `days` calendar days after the local date of `from`, in
 * `timeZone` (event mail: "the day before the start, at 09:00 where the event is"). A time that a
 * clock change skips is moved forward by the gap; a time that happens twice is the first one.
 */
export function localTimeAfter(from: Date, days: number, hour: number, minute: number, timeZone: string): Date {
  const day = addDays(wallClock(from.getTime(), timeZone), days);
  const wall = utcMs(day.y, day.m, day.d, hour, minute);
  const before = offsetAt(wall - 24 * HOUR, timeZone);
  const after = offsetAt(wall + 24 * HOUR, timeZone);
  const exact = [wall - before, wall - after].filter((t) => offsetAt(t, timeZone) === wall - t).sort((a, b) => a - b);
  return new Date(exact[0] ?? wall - before);
}

/** First instant whose local date in `timeZone` is `day`. */
function startOfLocalDay(day: Day, timeZone: string): number {
  const wall = utcMs(day.y, day.m, day.d);
  // The offsets on either side cover any transition near that midnight; an instant t is local
  // midnight exactly when the offset in force at t is the one used to compute it.
  const candidates = new Set([offsetAt(wall - 24 * HOUR, timeZone), offsetAt(wall + 24 * HOUR, timeZone), offsetAt(wall, timeZone)]);
  let best = Infinity;
  for (const offset of candidates) {
    const t = wall - offset;
    if (offsetAt(t, timeZone) === offset && t < best) best = t;
  }
  if (best !== Infinity) return best;
  // Midnight was skipped by a clock change: the day starts at the change, the first instant whose
  // local date is `day`. Offsets stay within +/-16 h (UTC+14 today, +/-15:56 in old LMT).
  const target = dayNumber(day);
  let lo = wall - 16 * HOUR; // local date before `day`
  let hi = wall + 16 * HOUR; // local date at or after `day`
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (dayNumber(wallClock(mid, timeZone)) >= target) hi = mid;
    else lo = mid;
  }
  return hi;
}
