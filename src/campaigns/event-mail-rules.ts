/*
 * When each kind of event mail goes, in the event's time zone (reference: inwink-email-policy):
 * the reminder the day before the start, the thank-you the day after the end; practical
 * information, badges and new content when the organiser says (now by default).
 */
import type { EventMailKind } from '../platform/schema.ts';
import { localTimeAfter } from '../consent/rules.ts';

export const EVENT_MAIL_KINDS: readonly EventMailKind[] = ['reminder', 'thank_you', 'practical_info', 'badge', 'new_content'];

export const DEFAULT_TIMING: Partial<Record<EventMailKind, { from: 'start' | 'end'; days: number; hour: number; minute: number }>> = {
  reminder: { from: 'start', days: -1, hour: 9, minute: 0 },
  thank_you: { from: 'end', days: 1, hour: 10, minute: 0 },
};

export interface EventTimes {
  starts_at: Date;
  ends_at: Date;
  time_zone: string;
}

/** The send time of an event mail: the one given, else the kind's default, else now. */
export function eventMailSendAt(kind: EventMailKind, event: EventTimes, given: Date | null, now: Date): Date {
  if (given) return given;
  const t = DEFAULT_TIMING[kind];
  if (!t) return now;
  return localTimeAfter(t.from === 'start' ? event.starts_at : event.ends_at, t.days, t.hour, t.minute, event.time_zone);
}

/** Why an event mail cannot go at `sendAt`, or null. */
export function eventMailProblem(sendAt: Date, closesAt: Date, now: Date): { code: 'event_window_closed' | 'send_time_passed'; message: string } | null {
  if (sendAt.getTime() >= closesAt.getTime()) {
    return { code: 'event_window_closed', message: `event mail is accepted until ${closesAt.toISOString()} (the event's end + the organisation's participation window); ${sendAt.toISOString()} is after it` };
  }
  // A minute of slack for a "now" computed on another machine.
  if (sendAt.getTime() < now.getTime() - 60_000) {
    return { code: 'send_time_passed', message: `the send time ${sendAt.toISOString()} has passed; give send_at (or none, to send now)` };
  }
  return null;
}

const KIND_NAMES: Record<'fr' | 'en', Record<EventMailKind, string>> = {
  en: { reminder: 'Reminder', thank_you: 'Thank-you', practical_info: 'Practical information', badge: 'Badge', new_content: 'New content' },
  fr: { reminder: 'Rappel', thank_you: 'Remerciement', practical_info: 'Infos pratiques', badge: 'Badge', new_content: 'Nouveautés' },
};

/** The campaign name of an event mail when the organiser gives none, in the template's language. */
export function eventMailName(kind: EventMailKind, eventName: string, language: string | null | undefined): string {
  const fr = typeof language === 'string' && language.toLowerCase().startsWith('fr');
  return fr ? `${KIND_NAMES.fr[kind]} : ${eventName}` : `${KIND_NAMES.en[kind]}: ${eventName}`;
}
