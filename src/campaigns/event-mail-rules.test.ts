import { describe, expect, it } from 'vitest';
import { eventMailName, eventMailProblem, eventMailSendAt } from './event-mail-rules.ts';

const event = { starts_at: new Date('2026-12-10T08:00:00Z'), ends_at: new Date('2026-12-11T17:00:00Z'), time_zone: 'Europe/Paris' };
const now = new Date('2026-12-01T12:00:00Z');

describe('eventMailSendAt', () => {
  it('sends the reminder the day before the start at 09:00 local, the thank-you the day after the end at 10:00 local', () => {
    expect(eventMailSendAt('reminder', event, null, now).toISOString()).toBe('2026-12-09T08:00:00.000Z');
    expect(eventMailSendAt('thank_you', event, null, now).toISOString()).toBe('2026-12-12T09:00:00.000Z');
  });
  it('counts local days: an event starting just after midnight in Tokyo is reminded on the previous Tokyo day', () => {
    const tokyo = { ...event, starts_at: new Date('2026-12-09T15:30:00Z'), time_zone: 'Asia/Tokyo' }; // 00:30 on the 10th in Tokyo
    expect(eventMailSendAt('reminder', tokyo, null, now).toISOString()).toBe('2026-12-09T00:00:00.000Z');
  });
  it('takes the given time, or now for the kinds without a default', () => {
    const at = new Date('2026-12-05T10:00:00Z');
    expect(eventMailSendAt('reminder', event, at, now)).toBe(at);
    expect(eventMailSendAt('practical_info', event, null, now)).toBe(now);
    expect(eventMailSendAt('badge', event, null, now)).toBe(now);
  });
});

describe('eventMailProblem', () => {
  const closes = new Date('2026-12-18T23:00:00Z');
  it('refuses from the closing instant on, and a time already past', () => {
    expect(eventMailProblem(new Date(closes.getTime() - 1), closes, now)).toBeNull();
    expect(eventMailProblem(closes, closes, now)?.code).toBe('event_window_closed');
    expect(eventMailProblem(new Date('2026-11-30T00:00:00Z'), closes, now)?.code).toBe('send_time_passed');
    expect(eventMailProblem(new Date(now.getTime() - 30_000), closes, now)).toBeNull();
  });
});

describe('eventMailName', () => {
  it("names the event mail in the template's language", () => {
    expect(eventMailName('reminder', 'Opening night', 'fr')).toBe('Rappel : Opening night');
    expect(eventMailName('practical_info', 'Forum', 'fr-CA')).toBe('Infos pratiques : Forum');
    expect(eventMailName('thank_you', 'Forum', 'en')).toBe('Thank-you: Forum');
    expect(eventMailName('new_content', 'Forum', null)).toBe('New content: Forum');
  });
});
