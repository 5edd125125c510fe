import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { checkEmail } from '../platform/email-address.ts';
import {
  DEFAULT_POLICY_SETTINGS,
  PolicyInputError,
  RULE_ORDER,
  decide,
  explain,
  isRuleCode,
  participationWindow,
  participationWindowProblem,
  summarise,
  triggeredCategoryAllowed,
  validatePolicySettings,
  type Decision,
  type MarketingConsent,
  type PolicyEvent,
  type PolicyMessage,
  type PolicyRecipient,
  type RuleCode,
} from './rules.ts';

// ---------------------------------------------------------------------------------------------
// Fixtures

const NOW = new Date('2026-12-05T12:00:00Z');
const settings = { participationWindowDays: 7 };
const event: PolicyEvent = { id: 'e1', endsAt: new Date('2026-12-02T17:00:00Z'), timeZone: 'Europe/Paris' };

const transactional: PolicyMessage = { category: 'transactional', audienceId: 'a1', origin: 'triggered', invitation: false, settings, personConcernedId: 'c1' };
const participationEvent: PolicyMessage = { category: 'participation', audienceId: 'a1', origin: 'campaign', invitation: false, settings, about: { kind: 'event', event } };
const participationCommunity: PolicyMessage = { category: 'participation', audienceId: 'a1', origin: 'campaign', invitation: false, settings, about: { kind: 'community', communityId: 'k1' } };
const marketing: PolicyMessage = { category: 'marketing', audienceId: 'a1', origin: 'campaign', invitation: false, settings };

/** Everything in order: the person concerned, a participant, a member, opted in, deliverable. */
const ok: PolicyRecipient = {
  contactId: 'c1',
  audienceId: 'a1',
  email: 'Ada.Lovelace@example.org',
  hardBouncedAt: null,
  complainedAt: null,
  eventIds: ['e0', 'e1'],
  communityIds: ['k1'],
  marketing: { status: 'opted_in', since: new Date('2025-01-10T09:00:00Z') },
  excluded: false,
};

const rec = (patch: Partial<PolicyRecipient>): PolicyRecipient => ({ ...ok, ...patch });
const ruleOf = (d: Decision): RuleCode | 'allow' => (d.allow ? 'allow' : d.rule);

// ---------------------------------------------------------------------------------------------
// Settings

describe('policy settings', () => {
  it('defaults to a 7-day window when the organisation has not set one', () => {
    expect(validatePolicySettings({})).toEqual({ ok: true, value: { participationWindowDays: 7 } });
    expect(validatePolicySettings(undefined)).toEqual({ ok: true, value: { participationWindowDays: 7 } });
    expect(validatePolicySettings(null)).toEqual({ ok: true, value: { participationWindowDays: 7 } });
    expect(validatePolicySettings({ other_capability: { x: 1 } })).toEqual({ ok: true, value: { participationWindowDays: 7 } });
    expect(DEFAULT_POLICY_SETTINGS.participationWindowDays).toBe(7);
  });

  it('accepts whole numbers of days from 0 to 90', () => {
    for (const days of [0, 1, 7, 30, 90]) {
      expect(validatePolicySettings({ participation_window_days: days })).toEqual({ ok: true, value: { participationWindowDays: days } });
      expect(participationWindowProblem(days)).toBeNull();
    }
  });

  it('never lets the window be turned off or bent: null, out of range, fractions and strings are refused', () => {
    const off = validatePolicySettings({ participation_window_days: null });
    expect(off.ok).toBe(false);
    if (!off.ok) expect(off.reason).toMatch(/cannot be turned off/);
    for (const bad of [-1, 91, 1000, 7.5, Number.NaN, Number.POSITIVE_INFINITY, '7', true, [], {}, undefined]) {
      const r = validatePolicySettings({ participation_window_days: bad });
      expect(r.ok, `value ${String(bad)}`).toBe(false);
      if (!r.ok) expect(r.reason).toMatch(/participation/);
    }
    expect(participationWindowProblem(91)).toMatch(/between 0 and 90/);
  });

  it('refuses settings that are not an object', () => {
    for (const bad of ['x', 7, [], true]) expect(validatePolicySettings(bad).ok).toBe(false);
  });

  it('does not let an unvalidated window through decide: it throws rather than deciding', () => {
    for (const days of [-1, 91, 2.5, Number.NaN]) {
      const m: PolicyMessage = { ...participationEvent, settings: { participationWindowDays: days } };
      expect(() => decide(m, ok, NOW)).toThrow(PolicyInputError);
    }
  });

  it('throws on an unknown time zone, an invalid end date or an invalid now', () => {
    const badZone: PolicyMessage = { ...participationEvent, about: { kind: 'event', event: { ...event, timeZone: 'Mars/Olympus_Mons' } } };
    expect(() => decide(badZone, ok, NOW)).toThrow(PolicyInputError);
    const badEnd: PolicyMessage = { ...participationEvent, about: { kind: 'event', event: { ...event, endsAt: new Date('nope') } } };
    expect(() => decide(badEnd, ok, NOW)).toThrow(PolicyInputError);
    expect(() => decide(marketing, ok, new Date(Number.NaN))).toThrow(PolicyInputError);
  });
});

// ---------------------------------------------------------------------------------------------
// Each rule

describe('each rule', () => {
  it('allows the plain case in every category', () => {
    for (const m of [transactional, participationEvent, participationCommunity, marketing]) expect(decide(m, ok, NOW)).toEqual({ allow: true });
  });

  it('invalid_address: uses the same address check as input', () => {
    for (const email of ['', 'no-at-sign', 'a@b', 'a@[127.0.0.1]', 'a b@example.org', 'x@-bad-.com']) {
      expect(checkEmail(email).ok).toBe(false);
      const d = decide(marketing, rec({ email }), NOW);
      expect(d).toMatchObject({ allow: false, rule: 'invalid_address' });
      if (!d.allow) expect(d.detail).toBe(`invalid address: ${(checkEmail(email) as { reason: string }).reason}`);
    }
  });

  it('hard_bounced: blocks every category and says when', () => {
    const r = rec({ hardBouncedAt: new Date('2026-11-01T08:00:00Z') });
    for (const m of [transactional, participationEvent, participationCommunity, marketing]) {
      const d = decide(m, r, NOW);
      expect(d).toMatchObject({ allow: false, rule: 'hard_bounced' });
      if (!d.allow) expect(d.detail).toContain('2026-11-01T08:00:00.000Z');
    }
  });

  it('not_person_concerned: transactional mail goes only to the person whose action caused it', () => {
    const d = decide(transactional, rec({ contactId: 'c2' }), NOW);
    expect(d).toMatchObject({ allow: false, rule: 'not_person_concerned' });
    if (!d.allow) expect(d.detail).toContain('c1');
  });

  it('not_participant / not_member: participation mail only to that event or community', () => {
    expect(decide(participationEvent, rec({ eventIds: ['e0', 'e2'] }), NOW)).toMatchObject({ allow: false, rule: 'not_participant' });
    expect(decide(participationEvent, rec({ eventIds: [] }), NOW)).toMatchObject({ allow: false, rule: 'not_participant' });
    expect(decide(participationCommunity, rec({ communityIds: ['k2'] }), NOW)).toMatchObject({ allow: false, rule: 'not_member' });
    // Membership of a community does not make a participant of an event, nor the reverse.
    expect(decide(participationEvent, rec({ eventIds: ['k1'], communityIds: ['e1'] }), NOW)).toMatchObject({ rule: 'not_participant' });
    expect(decide(participationCommunity, rec({ eventIds: ['k1'], communityIds: ['e1'] }), NOW)).toMatchObject({ rule: 'not_member' });
  });

  it('event_window_closed: no event mail after the window, with the local dates in the detail', () => {
    const d = decide(participationEvent, ok, new Date('2026-12-20T00:00:00Z'));
    expect(d).toMatchObject({ allow: false, rule: 'event_window_closed' });
    if (!d.allow) {
      expect(d.detail).toContain('2026-12-02');
      expect(d.detail).toContain('2026-12-09');
      expect(d.detail).toContain('Europe/Paris');
      expect(d.detail).toContain('2026-12-09T23:00:00.000Z');
    }
    // Communities have no end: no window.
    expect(decide(participationCommunity, ok, new Date('2040-01-01T00:00:00Z'))).toEqual({ allow: true });
  });

  it('event mail before and during the event is allowed', () => {
    expect(decide(participationEvent, ok, new Date('2026-01-01T00:00:00Z'))).toEqual({ allow: true });
    expect(decide(participationEvent, ok, event.endsAt)).toEqual({ allow: true });
  });

  it('complained, unsubscribed, excluded, no_marketing_consent: marketing needs a clean, active opt-in', () => {
    expect(decide(marketing, rec({ complainedAt: new Date('2026-06-01T00:00:00Z') }), NOW)).toMatchObject({ allow: false, rule: 'complained' });
    expect(decide(marketing, rec({ marketing: { status: 'withdrawn', at: new Date('2026-06-01T00:00:00Z') } }), NOW)).toMatchObject({ allow: false, rule: 'unsubscribed' });
    expect(decide(marketing, rec({ excluded: true }), NOW)).toMatchObject({ allow: false, rule: 'excluded' });
    expect(decide(marketing, rec({ marketing: { status: 'none' } }), NOW)).toMatchObject({ allow: false, rule: 'no_marketing_consent' });
  });

  it('an opt-in counts from its own instant, not before', () => {
    const since = new Date('2026-12-05T12:00:00Z');
    const r = rec({ marketing: { status: 'opted_in', since } });
    expect(decide(marketing, r, new Date(since.getTime() - 1))).toMatchObject({ allow: false, rule: 'no_marketing_consent' });
    expect(decide(marketing, r, since)).toEqual({ allow: true });
  });

  it('other_audience: consent and participations only count in the audience of the message', () => {
    for (const m of [transactional, participationEvent, participationCommunity, marketing]) {
      expect(decide(m, rec({ audienceId: 'a2' }), NOW)).toMatchObject({ allow: false, rule: 'other_audience' });
    }
  });

  it('triggered_marketing: the triggered API refuses marketing, in decide and as a pure check', () => {
    expect(triggeredCategoryAllowed('marketing')).toBe(false);
    expect(triggeredCategoryAllowed('transactional')).toBe(true);
    expect(triggeredCategoryAllowed('participation')).toBe(true);
    // Even a recipient with a perfect opt-in: triggered sends are not the place for marketing.
    expect(decide({ ...marketing, origin: 'triggered' }, ok, NOW)).toMatchObject({ allow: false, rule: 'triggered_marketing' });
    expect(decide({ ...marketing, origin: 'system' }, ok, NOW)).toEqual({ allow: true });
    expect(decide({ ...participationEvent, origin: 'triggered' }, ok, NOW)).toEqual({ allow: true });
    expect(decide({ ...transactional, origin: 'system' }, ok, NOW)).toEqual({ allow: true });
  });
});

// ---------------------------------------------------------------------------------------------
// Category x recipient state

describe('category x recipient state', () => {
  const past = new Date('2026-06-01T00:00:00Z');
  const states: Record<string, PolicyRecipient> = {
    ok,
    invalid_address: rec({ email: 'not an address' }),
    hard_bounced: rec({ hardBouncedAt: past }),
    complained: rec({ complainedAt: past }),
    unsubscribed: rec({ marketing: { status: 'withdrawn', at: past } }),
    no_consent: rec({ marketing: { status: 'none' } }),
    future_opt_in: rec({ marketing: { status: 'opted_in', since: new Date('2027-01-01T00:00:00Z') } }),
    excluded: rec({ excluded: true }),
    someone_else: rec({ contactId: 'c2' }),
    not_participant: rec({ eventIds: [] }),
    not_member: rec({ communityIds: [] }),
    other_audience: rec({ audienceId: 'a2' }),
    unsubscribed_excluded_complained: rec({ marketing: { status: 'withdrawn', at: past }, excluded: true, complainedAt: past }),
    unsubscribed_excluded: rec({ marketing: { status: 'withdrawn', at: past }, excluded: true }),
    excluded_no_consent: rec({ marketing: { status: 'none' }, excluded: true }),
    excluded_future_opt_in: rec({ marketing: { status: 'opted_in', since: new Date('2027-01-01T00:00:00Z') }, excluded: true }),
    bounced_invalid: rec({ hardBouncedAt: past, email: 'nope' }),
    bounced_someone_else_not_participant_complained: rec({ hardBouncedAt: past, contactId: 'c2', eventIds: [], communityIds: [], complainedAt: past }),
    other_audience_invalid: rec({ audienceId: 'a2', email: 'nope' }),
    someone_else_not_participant_no_consent: rec({ contactId: 'c2', eventIds: [], communityIds: [], marketing: { status: 'none' } }),
  };
  const A = 'allow';
  // columns: transactional, participation (event), participation (community), marketing
  const expected: Record<keyof typeof states, [string, string, string, string]> = {
    ok: [A, A, A, A],
    invalid_address: ['invalid_address', 'invalid_address', 'invalid_address', 'invalid_address'],
    hard_bounced: ['hard_bounced', 'hard_bounced', 'hard_bounced', 'hard_bounced'],
    complained: [A, A, A, 'complained'],
    unsubscribed: [A, A, A, 'unsubscribed'],
    no_consent: [A, A, A, 'no_marketing_consent'],
    future_opt_in: [A, A, A, 'no_marketing_consent'],
    excluded: [A, A, A, 'excluded'],
    someone_else: ['not_person_concerned', A, A, A],
    not_participant: [A, 'not_participant', A, A],
    not_member: [A, A, 'not_member', A],
    other_audience: ['other_audience', 'other_audience', 'other_audience', 'other_audience'],
    unsubscribed_excluded_complained: [A, A, A, 'complained'],
    unsubscribed_excluded: [A, A, A, 'unsubscribed'],
    excluded_no_consent: [A, A, A, 'excluded'],
    excluded_future_opt_in: [A, A, A, 'excluded'],
    bounced_invalid: ['invalid_address', 'invalid_address', 'invalid_address', 'invalid_address'],
    bounced_someone_else_not_participant_complained: ['hard_bounced', 'hard_bounced', 'hard_bounced', 'hard_bounced'],
    other_audience_invalid: ['other_audience', 'other_audience', 'other_audience', 'other_audience'],
    someone_else_not_participant_no_consent: ['not_person_concerned', 'not_participant', 'not_member', 'no_marketing_consent'],
  };
  const messages = [transactional, participationEvent, participationCommunity, marketing];
  const names = ['transactional', 'participation (event)', 'participation (community)', 'marketing'];
  const cases = Object.entries(expected).flatMap(([state, row]) => row.map((want, i) => ({ state, category: names[i]!, message: messages[i]!, want })));

  it.each(cases)('$state / $category -> $want', ({ state, message, want }) => {
    expect(ruleOf(decide(message, states[state]!, NOW))).toBe(want);
  });
});

describe('messages that are wrong for every recipient', () => {
  const late = new Date('2027-01-01T00:00:00Z');
  const cases: { name: string; message: PolicyMessage; now: Date; want: string }[] = [
    { name: 'triggered marketing', message: { ...marketing, origin: 'triggered' }, now: NOW, want: 'triggered_marketing' },
    { name: 'triggered marketing invitation', message: { ...marketing, origin: 'triggered', invitation: true }, now: NOW, want: 'triggered_marketing' },
    { name: 'event invitation', message: { ...participationEvent, invitation: true }, now: NOW, want: 'invitation_not_event_mail' },
    { name: 'community invitation', message: { ...participationCommunity, invitation: true }, now: NOW, want: 'invitation_not_event_mail' },
    { name: 'transactional invitation', message: { ...transactional, invitation: true }, now: NOW, want: 'invitation_not_event_mail' },
    { name: 'event invitation after the window', message: { ...participationEvent, invitation: true }, now: late, want: 'invitation_not_event_mail' },
    { name: 'event mail after the window', message: participationEvent, now: late, want: 'event_window_closed' },
  ];
  // Whatever is wrong with the recipient, the message-level rule is the one reported (RULE_ORDER).
  const recipients = [ok, rec({ email: 'bad' }), rec({ hardBouncedAt: NOW }), rec({ audienceId: 'a2' }), rec({ eventIds: [], contactId: 'c9', marketing: { status: 'none' } })];
  it.each(cases)('$name -> $want', ({ message, now, want }) => {
    for (const r of recipients) expect(ruleOf(decide(message, r, now))).toBe(want);
  });
});

describe('transactional mail ignores marketing state but not deliverability', () => {
  const past = new Date('2026-01-01T00:00:00Z');
  it('goes to the person concerned whatever their consent, unsubscribe, exclusion, complaint or participations', () => {
    const r = rec({ marketing: { status: 'withdrawn', at: past }, excluded: true, complainedAt: past, eventIds: [], communityIds: [] });
    expect(decide(transactional, r, NOW)).toEqual({ allow: true });
    expect(decide(transactional, rec({ marketing: { status: 'none' } }), NOW)).toEqual({ allow: true });
  });
  it('still refuses an invalid or hard-bounced address of the person concerned', () => {
    expect(decide(transactional, rec({ email: 'x@localhost', excluded: true }), NOW)).toMatchObject({ rule: 'invalid_address' });
    expect(decide(transactional, rec({ hardBouncedAt: past, marketing: { status: 'none' } }), NOW)).toMatchObject({ rule: 'hard_bounced' });
  });
});

describe('invitations', () => {
  it('an invitation is marketing: allowed as marketing with consent, refused without', () => {
    const invitation: PolicyMessage = { ...marketing, invitation: true };
    expect(decide(invitation, rec({ eventIds: [] }), NOW)).toEqual({ allow: true });
    expect(decide(invitation, rec({ marketing: { status: 'none' }, eventIds: [] }), NOW)).toMatchObject({ rule: 'no_marketing_consent' });
    expect(decide(invitation, rec({ excluded: true }), NOW)).toMatchObject({ rule: 'excluded' });
  });
  it('is never event mail, even to people already registered to the event', () => {
    const d = decide({ ...participationEvent, invitation: true }, ok, NOW);
    expect(d).toMatchObject({ allow: false, rule: 'invitation_not_event_mail' });
    if (!d.allow) expect(d.detail).toMatch(/marketing/);
  });
});

// ---------------------------------------------------------------------------------------------
// The window in the event's time zone

describe('participation window: end + N local calendar days, in the event time zone', () => {
  const cases: { name: string; endsAt: string; timeZone: string; days: number; endDay: string; lastDay: string; closesAt: string }[] = [
    { name: 'Paris, the documented example', endsAt: '2026-12-02T17:00:00Z', timeZone: 'Europe/Paris', days: 7, endDay: '2026-12-02', lastDay: '2026-12-09', closesAt: '2026-12-09T23:00:00.000Z' },
    { name: 'Paris, ends in summer time, closes in winter time (25 Oct 2026)', endsAt: '2026-10-20T16:00:00Z', timeZone: 'Europe/Paris', days: 7, endDay: '2026-10-20', lastDay: '2026-10-27', closesAt: '2026-10-27T23:00:00.000Z' },
    { name: 'Paris, the 25-hour day of the change is the last day', endsAt: '2026-10-18T20:00:00Z', timeZone: 'Europe/Paris', days: 7, endDay: '2026-10-18', lastDay: '2026-10-25', closesAt: '2026-10-25T23:00:00.000Z' },
    { name: 'Paris, ends in the repeated hour of the change, window 0', endsAt: '2026-10-25T00:30:00Z', timeZone: 'Europe/Paris', days: 0, endDay: '2026-10-25', lastDay: '2026-10-25', closesAt: '2026-10-25T23:00:00.000Z' },
    { name: 'Paris, ends in winter time, closes in summer time (29 Mar 2026)', endsAt: '2026-03-22T17:00:00Z', timeZone: 'Europe/Paris', days: 7, endDay: '2026-03-22', lastDay: '2026-03-29', closesAt: '2026-03-29T22:00:00.000Z' },
    { name: 'Paris, ends at 23:30 local: the local date counts, not the UTC one', endsAt: '2026-12-02T22:30:00Z', timeZone: 'Europe/Paris', days: 7, endDay: '2026-12-02', lastDay: '2026-12-09', closesAt: '2026-12-09T23:00:00.000Z' },
    { name: 'Paris, ends at 00:30 local: next local day although still the previous UTC day', endsAt: '2026-12-02T23:30:00Z', timeZone: 'Europe/Paris', days: 7, endDay: '2026-12-03', lastDay: '2026-12-10', closesAt: '2026-12-10T23:00:00.000Z' },
    { name: 'New York, ends on local 30 Oct (UTC 31 Oct), closes after the 1 Nov change', endsAt: '2026-10-31T00:00:00Z', timeZone: 'America/New_York', days: 7, endDay: '2026-10-30', lastDay: '2026-11-06', closesAt: '2026-11-07T05:00:00.000Z' },
    { name: 'New York, spring change (8 Mar 2026)', endsAt: '2026-03-05T23:00:00Z', timeZone: 'America/New_York', days: 7, endDay: '2026-03-05', lastDay: '2026-03-12', closesAt: '2026-03-13T04:00:00.000Z' },
    { name: 'Auckland, ends in NZDT, closes in NZST (5 Apr 2026)', endsAt: '2026-03-31T09:00:00Z', timeZone: 'Pacific/Auckland', days: 7, endDay: '2026-03-31', lastDay: '2026-04-07', closesAt: '2026-04-07T12:00:00.000Z' },
    { name: 'Auckland, ends in NZST, closes in NZDT (27 Sep 2026)', endsAt: '2026-09-22T06:00:00Z', timeZone: 'Pacific/Auckland', days: 7, endDay: '2026-09-22', lastDay: '2026-09-29', closesAt: '2026-09-29T11:00:00.000Z' },
    { name: 'Auckland, local date a day ahead of UTC', endsAt: '2026-12-01T20:00:00Z', timeZone: 'Pacific/Auckland', days: 7, endDay: '2026-12-02', lastDay: '2026-12-09', closesAt: '2026-12-09T11:00:00.000Z' },
    { name: 'Kolkata, half-hour offset', endsAt: '2026-12-02T20:00:00Z', timeZone: 'Asia/Kolkata', days: 7, endDay: '2026-12-03', lastDay: '2026-12-10', closesAt: '2026-12-10T18:30:00.000Z' },
    { name: 'Kathmandu, 45-minute offset', endsAt: '2026-12-02T10:00:00Z', timeZone: 'Asia/Kathmandu', days: 7, endDay: '2026-12-02', lastDay: '2026-12-09', closesAt: '2026-12-09T18:15:00.000Z' },
    { name: 'UTC, last millisecond of the day', endsAt: '2026-12-02T23:59:59.999Z', timeZone: 'UTC', days: 7, endDay: '2026-12-02', lastDay: '2026-12-09', closesAt: '2026-12-10T00:00:00.000Z' },
    { name: 'UTC, first millisecond of the next day', endsAt: '2026-12-03T00:00:00Z', timeZone: 'UTC', days: 7, endDay: '2026-12-03', lastDay: '2026-12-10', closesAt: '2026-12-11T00:00:00.000Z' },
    { name: 'UTC, window 0: until the end of the last day', endsAt: '2026-12-02T10:00:00Z', timeZone: 'UTC', days: 0, endDay: '2026-12-02', lastDay: '2026-12-02', closesAt: '2026-12-03T00:00:00.000Z' },
    { name: 'UTC, window 90 across a year end', endsAt: '2026-12-02T10:00:00Z', timeZone: 'UTC', days: 90, endDay: '2026-12-02', lastDay: '2027-03-02', closesAt: '2027-03-03T00:00:00.000Z' },
    { name: 'UTC, window 3 across 29 February', endsAt: '2028-02-27T10:00:00Z', timeZone: 'UTC', days: 3, endDay: '2028-02-27', lastDay: '2028-03-01', closesAt: '2028-03-02T00:00:00.000Z' },
    { name: 'Santiago, local midnight skipped (6 Sep 2026): the day starts at 01:00', endsAt: '2026-08-29T20:00:00Z', timeZone: 'America/Santiago', days: 7, endDay: '2026-08-29', lastDay: '2026-09-05', closesAt: '2026-09-06T04:00:00.000Z' },
    { name: 'Santiago, clocks back at 24:00 (5 Apr 2026): closes at the only local midnight', endsAt: '2026-03-28T20:00:00Z', timeZone: 'America/Santiago', days: 7, endDay: '2026-03-28', lastDay: '2026-04-04', closesAt: '2026-04-05T04:00:00.000Z' },
  ];

  it.each(cases)('$name', ({ endsAt, timeZone, days, endDay, lastDay, closesAt }) => {
    const ev: PolicyEvent = { id: 'e1', endsAt: new Date(endsAt), timeZone };
    const window = participationWindow(ev, days);
    expect(window).toEqual({ endDay, lastDay, closesAt: new Date(closesAt) });
    const m: PolicyMessage = { ...participationEvent, settings: { participationWindowDays: days }, about: { kind: 'event', event: ev } };
    const boundary = new Date(closesAt).getTime();
    expect(decide(m, ok, new Date(boundary - 1))).toEqual({ allow: true });
    expect(decide(m, ok, new Date(boundary))).toMatchObject({ allow: false, rule: 'event_window_closed' });
    expect(decide(m, ok, new Date(boundary + 1))).toMatchObject({ allow: false, rule: 'event_window_closed' });
  });

  it('uses the organisation setting, not the default', () => {
    const m: PolicyMessage = { ...participationEvent, settings: { participationWindowDays: 3 } };
    // ends 2026-12-02 Paris; 3 days -> closes at the start of 2026-12-06 Paris
    expect(decide(m, ok, new Date('2026-12-05T22:59:59.999Z'))).toEqual({ allow: true });
    expect(decide(m, ok, new Date('2026-12-05T23:00:00.000Z'))).toMatchObject({ rule: 'event_window_closed' });
  });
});

// ---------------------------------------------------------------------------------------------
// Explanations and dry-run counts

describe('explain', () => {
  it('gives a distinct French and English sentence for every rule', () => {
    const fr = new Set<string>();
    const en = new Set<string>();
    for (const rule of RULE_ORDER) {
      const e = explain(rule);
      expect(e.fr.length, rule).toBeGreaterThan(20);
      expect(e.en.length, rule).toBeGreaterThan(20);
      expect(e.fr).not.toBe(e.en);
      expect(e.fr.endsWith('.') && e.en.endsWith('.'), rule).toBe(true);
      fr.add(e.fr);
      en.add(e.en);
    }
    expect(fr.size).toBe(RULE_ORDER.length);
    expect(en.size).toBe(RULE_ORDER.length);
  });

  it('knows its rule codes', () => {
    expect(new Set(RULE_ORDER).size).toBe(RULE_ORDER.length);
    expect(isRuleCode('excluded')).toBe(true);
    expect(isRuleCode('allow')).toBe(false);
    expect(isRuleCode(3)).toBe(false);
  });
});

describe('summarise', () => {
  it('counts allowed and blocked per rule, keys in check order, zero rules left out', () => {
    const decisions: Decision[] = [
      { allow: true },
      { allow: false, rule: 'no_marketing_consent', detail: '' },
      { allow: true },
      { allow: false, rule: 'excluded', detail: '' },
      { allow: false, rule: 'no_marketing_consent', detail: '' },
      { allow: false, rule: 'invalid_address', detail: '' },
    ];
    const s = summarise(decisions);
    expect(s).toEqual({ allowed: 2, blocked: { invalid_address: 1, excluded: 1, no_marketing_consent: 2 } });
    expect(Object.keys(s.blocked)).toEqual(['invalid_address', 'excluded', 'no_marketing_consent']);
    expect(summarise([])).toEqual({ allowed: 0, blocked: {} });
  });

  it('accepts any iterable, such as a generator over a large selection', () => {
    function* many() {
      for (let i = 0; i < 1000; i++) yield decide(marketing, rec({ excluded: i % 10 === 0 }), NOW);
    }
    expect(summarise(many())).toEqual({ allowed: 900, blocked: { excluded: 100 } });
  });
});

// ---------------------------------------------------------------------------------------------
// Properties

const ZONES = [
  'UTC', 'Europe/Paris', 'America/New_York', 'Pacific/Auckland', 'Asia/Kolkata', 'Asia/Kathmandu', 'America/Santiago',
  'Australia/Lord_Howe', 'Pacific/Chatham', 'America/St_Johns', 'Pacific/Kiritimati', 'Pacific/Pago_Pago', 'America/Havana', 'Asia/Tehran',
];

const instant = (min: string, max: string) => fc.date({ min: new Date(min), max: new Date(max), noInvalidDate: true });
const arbPast = instant('2020-01-01T00:00:00Z', '2030-12-31T00:00:00Z');

const arbConsent: fc.Arbitrary<MarketingConsent> = fc.oneof(
  fc.constant<MarketingConsent>({ status: 'none' }),
  arbPast.map((since): MarketingConsent => ({ status: 'opted_in', since })),
  arbPast.map((at): MarketingConsent => ({ status: 'withdrawn', at })),
);

/** Mostly absent, so that recipients with only one or two things wrong are common. */
const rarely = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | null> => fc.oneof({ arbitrary: fc.constant(null), weight: 3 }, { arbitrary: arb, weight: 1 });

const arbRecipient: fc.Arbitrary<PolicyRecipient> = fc.record({
  contactId: fc.constantFrom('c1', 'c2'),
  audienceId: fc.constantFrom('a1', 'a1', 'a1', 'a2'),
  email: fc.oneof(
    { arbitrary: fc.constantFrom('ada@example.org', 'Bob.Smith+tag@example.co.uk', 'zoë@exämple.fr'), weight: 4 },
    { arbitrary: fc.constantFrom('bad', '', 'a@b', 'x@[1.2.3.4]', ' @example.org'), weight: 1 },
    { arbitrary: fc.emailAddress(), weight: 1 },
    { arbitrary: fc.string(), weight: 1 },
  ),
  hardBouncedAt: rarely(arbPast),
  complainedAt: rarely(arbPast),
  eventIds: fc.subarray(['e1', 'e2', 'e3']),
  communityIds: fc.subarray(['k1', 'k2']),
  marketing: arbConsent,
  excluded: fc.boolean(),
});

const arbEvent: fc.Arbitrary<PolicyEvent> = fc.record({
  id: fc.constantFrom('e1', 'e2'),
  endsAt: instant('2020-01-01T00:00:00Z', '2030-12-31T00:00:00Z'),
  timeZone: fc.constantFrom(...ZONES),
});

const arbCommon = fc.record({
  audienceId: fc.constantFrom('a1', 'a1', 'a1', 'a2'),
  origin: fc.constantFrom('triggered' as const, 'campaign' as const, 'system' as const),
  invitation: fc.oneof({ arbitrary: fc.constant(false), weight: 3 }, { arbitrary: fc.constant(true), weight: 1 }),
  settings: fc.record({ participationWindowDays: fc.integer({ min: 0, max: 90 }) }),
});

const arbMessage: fc.Arbitrary<PolicyMessage> = fc.oneof(
  fc.tuple(arbCommon, fc.constantFrom('c1', 'c2')).map(([c, personConcernedId]): PolicyMessage => ({ ...c, category: 'transactional', personConcernedId })),
  fc.tuple(arbCommon, arbEvent).map(([c, ev]): PolicyMessage => ({ ...c, category: 'participation', about: { kind: 'event', event: ev } })),
  fc.tuple(arbCommon, fc.constantFrom('k1', 'k2')).map(([c, communityId]): PolicyMessage => ({ ...c, category: 'participation', about: { kind: 'community', communityId } })),
  arbCommon.map((c): PolicyMessage => ({ ...c, category: 'marketing' })),
);

const arbNow = instant('2019-06-01T00:00:00Z', '2031-06-01T00:00:00Z');

/** A message, a recipient and a now that is, half the time for event mail, around the event's window. */
const arbCase: fc.Arbitrary<[PolicyMessage, PolicyRecipient, Date]> = fc
  .tuple(arbMessage, arbRecipient, arbNow, fc.boolean(), fc.integer({ min: -3 * 86_400_000, max: 95 * 86_400_000 }))
  .map(([m, r, now, near, offset]) => [m, r, near && m.category === 'participation' && m.about.kind === 'event' ? new Date(m.about.event.endsAt.getTime() + offset) : now]);

/** Every rule that applies, found independently of decide's early returns. */
function applicable(m: PolicyMessage, r: PolicyRecipient, now: Date): Set<RuleCode> {
  const out = new Set<RuleCode>();
  if (m.category === 'marketing' && m.origin === 'triggered') out.add('triggered_marketing');
  if (m.invitation && m.category !== 'marketing') out.add('invitation_not_event_mail');
  if (m.category === 'participation' && m.about.kind === 'event' && now >= participationWindow(m.about.event, m.settings.participationWindowDays).closesAt) out.add('event_window_closed');
  if (r.audienceId !== m.audienceId) out.add('other_audience');
  if (!checkEmail(r.email).ok) out.add('invalid_address');
  if (r.hardBouncedAt !== null) out.add('hard_bounced');
  if (m.category === 'transactional' && r.contactId !== m.personConcernedId) out.add('not_person_concerned');
  if (m.category === 'participation' && m.about.kind === 'event' && !r.eventIds.includes(m.about.event.id)) out.add('not_participant');
  if (m.category === 'participation' && m.about.kind === 'community' && !r.communityIds.includes(m.about.communityId)) out.add('not_member');
  if (m.category === 'marketing') {
    if (r.complainedAt !== null) out.add('complained');
    if (r.marketing.status === 'withdrawn') out.add('unsubscribed');
    if (r.excluded) out.add('excluded');
    if (r.marketing.status === 'none' || (r.marketing.status === 'opted_in' && r.marketing.since > now)) out.add('no_marketing_consent');
  }
  return out;
}

/** Local calendar date and time of an instant, read with a different Intl path than the code under test. */
function local(t: number, timeZone: string): { day: string; time: string } {
  const s = new Intl.DateTimeFormat('sv-SE', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' }).format(t);
  const [day, time] = s.split(' ');
  return { day: day!, time: time! };
}
const nextDay = (day: string, n = 1) => new Date(Date.parse(`${day}T00:00:00Z`) + n * 86_400_000).toISOString().slice(0, 10);

describe('properties', () => {
  it('reports exactly the first applicable rule in RULE_ORDER, and allows only when none applies', () => {
    const seen = new Set<string>();
    fc.assert(
      fc.property(arbCase, ([m, r, now]) => {
        const rules = applicable(m, r, now);
        const first = RULE_ORDER.find((rule) => rules.has(rule));
        const d = decide(m, r, now);
        expect(ruleOf(d)).toBe(first ?? 'allow');
        if (!d.allow) expect(d.detail.length).toBeGreaterThan(0);
        seen.add(ruleOf(d));
      }),
      { numRuns: 4000 },
    );
    // The generators reach every outcome (each is expected dozens of times in 4,000 runs), so the
    // property above says something about every rule.
    expect([...seen].sort()).toEqual([...RULE_ORDER, 'allow'].sort());
  });

  it('marketing is never allowed without an active opt-in for the audience, nor after an unsubscribe, exclusion or complaint', () => {
    fc.assert(
      fc.property(arbMessage.filter((m) => m.category === 'marketing'), arbRecipient, arbNow, (m, r, now) => {
        const d = decide(m, r, now);
        if (d.allow) {
          expect(r.marketing.status).toBe('opted_in');
          if (r.marketing.status === 'opted_in') expect(r.marketing.since.getTime()).toBeLessThanOrEqual(now.getTime());
          expect(r.audienceId).toBe(m.audienceId);
          expect(r.excluded).toBe(false);
          expect(r.complainedAt).toBeNull();
          expect(r.hardBouncedAt).toBeNull();
          expect(m.origin).not.toBe('triggered');
        }
        if (r.marketing.status !== 'opted_in') expect(d.allow).toBe(false);
      }),
      { numRuns: 2000 },
    );
  });

  it('transactional mail to the person concerned, with a valid non-bounced address, is always allowed', () => {
    fc.assert(
      fc.property(arbRecipient, arbCommon, arbNow, (r0, c, now) => {
        const r: PolicyRecipient = { ...r0, audienceId: c.audienceId, hardBouncedAt: null, email: checkEmail(r0.email).ok ? r0.email : 'ok@example.org' };
        const m: PolicyMessage = { ...c, invitation: false, category: 'transactional', personConcernedId: r.contactId };
        expect(decide(m, r, now)).toEqual({ allow: true });
      }),
      { numRuns: 1000 },
    );
  });

  it('an invalid or hard-bounced address is never sent to, whatever the message', () => {
    fc.assert(
      fc.property(arbMessage, arbRecipient, arbNow, (m, r, now) => {
        if (!checkEmail(r.email).ok || r.hardBouncedAt) expect(decide(m, r, now).allow).toBe(false);
      }),
      { numRuns: 1000 },
    );
  });

  it('is deterministic and does not touch its inputs', () => {
    fc.assert(
      fc.property(arbCase, ([m, r, now]) => {
        const [m2, r2, now2] = structuredClone([m, r, now]);
        const first = decide(m, r, now);
        expect(decide(m2, r2, now2)).toEqual(first);
        expect(decide(m, r, now)).toEqual(first);
        expect([m, r, now]).toEqual([m2, r2, now2]);
      }),
      { numRuns: 1000 },
    );
  });

  it('once the window is closed it stays closed, and it never closes before the end of the event\'s own day + N', () => {
    fc.assert(
      fc.property(arbEvent, fc.integer({ min: 0, max: 90 }), arbNow, fc.integer({ min: 0, max: 400 * 86_400_000 }), (ev, days, now, later) => {
        const m: PolicyMessage = { ...participationEvent, settings: { participationWindowDays: days }, about: { kind: 'event', event: ev } };
        const r = rec({ eventIds: [ev.id] });
        const closedNow = !decide(m, r, now).allow;
        if (closedNow) expect(decide(m, r, new Date(now.getTime() + later)).allow).toBe(false);
        // Mail during the event and at its end is always allowed.
        expect(decide(m, r, ev.endsAt).allow).toBe(true);
        // At least N x 24 h minus a DST hour, at most (N + 1) x 24 h plus one, after the end.
        const closesAt = participationWindow(ev, days).closesAt.getTime();
        expect(closesAt - ev.endsAt.getTime()).toBeGreaterThan(days * 86_400_000 - 3_600_000);
        expect(closesAt - ev.endsAt.getTime()).toBeLessThanOrEqual((days + 1) * 86_400_000 + 3_600_000);
      }),
      { numRuns: 1000 },
    );
  });

  it('closes exactly where the local date turns from end day + N to the day after', () => {
    fc.assert(
      fc.property(arbEvent, fc.integer({ min: 0, max: 90 }), (ev, days) => {
        const w = participationWindow(ev, days);
        const closesAt = w.closesAt.getTime();
        expect(w.endDay).toBe(local(ev.endsAt.getTime(), ev.timeZone).day);
        expect(w.lastDay).toBe(nextDay(w.endDay, days));
        expect(local(closesAt - 1, ev.timeZone).day).toBe(w.lastDay);
        const at = local(closesAt, ev.timeZone);
        expect(at.day).toBe(nextDay(w.lastDay));
        // Local midnight, unless a clock change skipped it (then the day starts just after the change).
        if (at.time !== '00:00:00') expect(local(closesAt - 1, ev.timeZone).time).toBe('23:59:59');
      }),
      { numRuns: 2000 },
    );
  });

  it('summarise counts every decision once, in any order', () => {
    fc.assert(
      fc.property(fc.array(arbCase, { maxLength: 60 }), (rows) => {
        const decisions = rows.map(([m, r, now]) => decide(m, r, now));
        const s = summarise(decisions);
        const blockedTotal = Object.values(s.blocked).reduce((a, b) => a + (b ?? 0), 0);
        expect(s.allowed + blockedTotal).toBe(decisions.length);
        expect(s.allowed).toBe(decisions.filter((d) => d.allow).length);
        expect(Object.values(s.blocked).every((n) => (n ?? 0) > 0)).toBe(true);
        expect(summarise([...decisions].reverse())).toEqual(s);
      }),
      { numRuns: 300 },
    );
  });
});

describe('localTimeAfter', () => {
  it('finds a local time N days after a local date, across DST, in the zone of the event', async () => {
    const { localTimeAfter } = await import('./rules.ts');
    // The day before an event starting 2026-03-30 10:00 Paris, at 09:00: the 29th, already in summer time (UTC+2).
    expect(localTimeAfter(new Date('2026-03-30T08:00:00Z'), -1, 9, 0, 'Europe/Paris').toISOString()).toBe('2026-03-29T07:00:00.000Z');
    expect(localTimeAfter(new Date('2026-03-28T08:00:00Z'), 0, 9, 0, 'Europe/Paris').toISOString()).toBe('2026-03-28T08:00:00.000Z');
    // 02:30 does not exist on 2026-03-29 in Paris: moved forward by the hour skipped.
    expect(localTimeAfter(new Date('2026-03-29T00:00:00Z'), 0, 2, 30, 'Europe/Paris').toISOString()).toBe('2026-03-29T01:30:00.000Z');
    // 02:30 happens twice on 2026-10-25: the first one (summer time).
    expect(localTimeAfter(new Date('2026-10-25T00:00:00Z'), 0, 2, 30, 'Europe/Paris').toISOString()).toBe('2026-10-25T00:30:00.000Z');
    // The local date, not the UTC one: 23:30 in New York on the 1st is the 2nd in UTC.
    expect(localTimeAfter(new Date('2026-12-02T04:30:00Z'), 1, 10, 0, 'America/New_York').toISOString()).toBe('2026-12-02T15:00:00.000Z');
  });
});

describe('re-permission requests', () => {
  it('go to contacts without proven consent, never to those who refused, complained, bounced or are excluded', async () => {
    const { decide, DEFAULT_POLICY_SETTINGS } = await import('./rules.ts');
    const now = new Date('2026-12-01T12:00:00Z');
    const msg = { category: 'marketing' as const, audienceId: 'a', origin: 'campaign' as const, invitation: false, settings: DEFAULT_POLICY_SETTINGS, repermission: true };
    const base = { contactId: 'c', audienceId: 'a', email: 'x@example.com', hardBouncedAt: null, complainedAt: null, eventIds: [], communityIds: [], marketing: { status: 'none' as const }, excluded: false };
    expect(decide(msg, base, now)).toEqual({ allow: true });
    expect(decide({ ...msg, repermission: false }, base, now)).toMatchObject({ allow: false, rule: 'no_marketing_consent' });
    expect(decide(msg, { ...base, marketing: { status: 'withdrawn', at: now } }, now)).toMatchObject({ rule: 'unsubscribed' });
    expect(decide(msg, { ...base, excluded: true }, now)).toMatchObject({ rule: 'excluded' });
    expect(decide(msg, { ...base, complainedAt: now }, now)).toMatchObject({ rule: 'complained' });
    expect(decide(msg, { ...base, hardBouncedAt: now }, now)).toMatchObject({ rule: 'hard_bounced' });
    expect(decide(msg, { ...base, audienceId: 'b' }, now)).toMatchObject({ allow: false, rule: 'other_audience' });
  });
});
