import { describe, expect, it } from 'vitest';
import {
  categoryProblem,
  checkCondition,
  checkTrigger,
  checkWait,
  countKey,
  countsNeeded,
  cycleProblem,
  dateDueAt,
  daysToScan,
  dueAfter,
  evaluate,
  eventName,
  lateProblem,
  localDay,
  nextScanAt,
  occurrenceKey,
  occurrenceOn,
  presentWait,
  type Condition,
  type FieldInfo,
} from './rules.ts';

const FIELDS: FieldInfo[] = [
  { key: 'first_name', type: 'text' },
  { key: 'points', type: 'number' },
  { key: 'birthday', type: 'date' },
  { key: 'vip', type: 'boolean' },
  { key: 'tier', type: 'choice', options: ['silver', 'gold'] },
  { key: 'topics', type: 'multi_choice', options: ['jazz', 'rock'] },
];
const T1 = '11111111-1111-4111-8111-111111111111';
const T2 = '22222222-2222-4222-8222-222222222222';
const T3 = '33333333-3333-4333-8333-333333333333';

const ok = (raw: unknown): Condition => {
  const r = checkCondition(raw, FIELDS);
  if (!r.ok) throw new Error(r.problems.join('; '));
  return r.value;
};
const problems = (raw: unknown) => {
  const r = checkCondition(raw, FIELDS);
  return r.ok ? [] : r.problems;
};
const facts = (values: Record<string, unknown>, counts: [string, number | null, number][] = []) => ({ values, counts: new Map(counts.map(([n, w, c]) => [countKey(n, w), c])) });

describe('triggers', () => {
  it('accepts the three kinds, with date-field defaults', () => {
    expect(checkTrigger({ type: 'message_opened', template_id: T1.toUpperCase() })).toEqual({ ok: true, value: { type: 'message_opened', template_id: T1 } });
    expect(checkTrigger({ type: 'external_event', name: 'Purchase' })).toEqual({ ok: true, value: { type: 'external_event', name: 'purchase' } });
    expect(checkTrigger({ type: 'date_field', field: 'birthday' })).toEqual({ ok: true, value: { type: 'date_field', field: 'birthday', offset_days: 0, hour: 9, time_zone: 'UTC' } });
  });

  it('names what is wrong', () => {
    const r = checkTrigger({ type: 'date_field', field: 'birthday', offset_days: 1.5, hour: 25, time_zone: 'Mars/Olympus', extra: 1 });
    expect(r.ok).toBe(false);
    const text = !r.ok ? r.problems.join('\n') : '';
    expect(text).toMatch(/trigger\.extra: unknown property/);
    expect(text).toMatch(/offset_days/);
    expect(text).toMatch(/trigger\.hour/);
    expect(text).toMatch(/Mars\/Olympus/);
    expect(checkTrigger({ type: 'webhook' })).toMatchObject({ ok: false, problems: [expect.stringMatching(/"webhook" is not a trigger/)] });
    expect(checkTrigger({ type: 'message_sent' })).toMatchObject({ ok: false, problems: [expect.stringMatching(/template_id/)] });
    expect(checkTrigger({ type: 'external_event', name: 'has space' })).toMatchObject({ ok: false });
    expect(eventName('session_attended')).toEqual({ ok: true, value: 'session_attended' });
    expect(eventName('')).toMatchObject({ ok: false });
  });
});

describe('wait', () => {
  it('takes one unit and gives it back in the largest one', () => {
    expect(checkWait({ days: 3 })).toEqual({ ok: true, seconds: 259_200 });
    expect(checkWait({ seconds: 0 })).toEqual({ ok: true, seconds: 0 });
    expect(checkWait({ days: 1, hours: 2 })).toMatchObject({ ok: false });
    expect(checkWait({ days: -1 })).toMatchObject({ ok: false, problem: expect.stringMatching(/wait\.days/) });
    expect(checkWait({ days: 400 })).toMatchObject({ ok: false, problem: expect.stringMatching(/366/) });
    expect(checkWait(3)).toMatchObject({ ok: false });
    expect(presentWait(259_200)).toEqual({ days: 3 });
    expect(presentWait(7200)).toEqual({ hours: 2 });
    expect(presentWait(90)).toEqual({ seconds: 90 });
    expect(presentWait(0)).toEqual({ seconds: 0 });
  });

  it('computes the due time and refuses the very late', () => {
    const at = new Date('2027-03-01T10:00:00Z');
    expect(dueAfter(at, 3 * 86_400)).toEqual(new Date('2027-03-04T10:00:00Z'));
    expect(lateProblem(at, new Date('2027-03-03T10:00:00Z'))).toBeNull();
    expect(lateProblem(at, new Date('2027-03-05T10:00:00Z'))).toMatch(/too late/);
  });
});

describe('conditions', () => {
  it('checks fields, operators and values against the audience', () => {
    expect(ok({ external_event: 'Purchase', count_gte: 2 })).toEqual({ external_event: 'purchase', count_gte: 2 });
    expect(ok({ all: [{ field: 'points', op: 'gte', value: 10 }, { not: { field: 'vip', op: 'eq', value: true } }] })).toBeTruthy();
    expect(ok({ field: 'birthday', op: 'lte', value: '2000-01-01' })).toEqual({ field: 'birthday', op: 'lte', value: '2000-01-01' });
    expect(problems({ field: 'nope', op: 'eq', value: 1 })).toEqual([expect.stringMatching(/"nope" is not a field/)]);
    expect(problems({ field: 'points', op: 'greater', value: 1 })).toEqual([expect.stringMatching(/"greater" is not an operator/)]);
    expect(problems({ field: 'first_name', op: 'gte', value: 'a' })).toEqual([expect.stringMatching(/gte compares numbers and dates/)]);
    expect(problems({ field: 'points', op: 'eq', value: 'ten' })).toEqual([expect.stringMatching(/expected a number/)]);
    expect(problems({ field: 'tier', op: 'eq', value: 'bronze' })).toEqual([expect.stringMatching(/not an option/)]);
    expect(problems({ field: 'points', op: 'exists', value: 1 })).toEqual([expect.stringMatching(/takes no value/)]);
    expect(problems({ field: 'points', op: 'gte' })).toEqual([expect.stringMatching(/needs a value/)]);
    expect(problems({ external_event: 'purchase', count_gte: -1 })).toEqual([expect.stringMatching(/count_gte/)]);
    expect(problems({ all: [] })).toEqual([expect.stringMatching(/non-empty list/)]);
    expect(problems({ whatever: 1 })).toEqual([expect.stringMatching(/expected one of field/)]);
    expect(problems('x')).toHaveLength(1);
    let deep: unknown = { field: 'vip', op: 'exists' };
    for (let i = 0; i < 7; i++) deep = { not: deep };
    expect(problems(deep).join()).toMatch(/nested more than/);
    expect(problems({ any: Array.from({ length: 40 }, () => ({ field: 'vip', op: 'exists' })) }).join()).toMatch(/at most 30/);
  });

  it('evaluates, saying what it found', () => {
    const c = ok({ external_event: 'purchase', count_gte: 2 });
    expect(countsNeeded(c)).toEqual([{ name: 'purchase', withinDays: null }]);
    expect(evaluate(c, facts({}, [['purchase', null, 1]]))).toEqual({ pass: false, reason: 'purchase count is 1 (needs >= 2)' });
    expect(evaluate(c, facts({}, [['purchase', null, 2]])).pass).toBe(true);
    const within = ok({ external_event: 'purchase', count_gte: 1, within_days: 30 });
    expect(evaluate(within, facts({}, [['purchase', null, 5]])).pass).toBe(false);
    expect(evaluate(within, facts({}, [['purchase', 30, 1]])).reason).toMatch(/in the last 30 days/);

    const v = { first_name: 'Ada', points: 12, birthday: '1990-03-14', vip: false, tier: 'gold', topics: ['jazz'] };
    expect(evaluate(ok({ field: 'points', op: 'gte', value: 10 }), facts(v)).pass).toBe(true);
    expect(evaluate(ok({ field: 'points', op: 'lte', value: 10 }), facts(v))).toEqual({ pass: false, reason: 'points is 12 (needs <= 10)' });
    expect(evaluate(ok({ field: 'birthday', op: 'lte', value: '2000-01-01' }), facts(v)).pass).toBe(true);
    expect(evaluate(ok({ field: 'first_name', op: 'eq', value: 'ada' }), facts(v)).pass).toBe(true);
    expect(evaluate(ok({ field: 'tier', op: 'ne', value: 'gold' }), facts(v)).pass).toBe(false);
    expect(evaluate(ok({ field: 'topics', op: 'eq', value: 'jazz' }), facts(v)).pass).toBe(true);
    expect(evaluate(ok({ field: 'topics', op: 'ne', value: 'jazz' }), facts(v)).pass).toBe(false);
    expect(evaluate(ok({ field: 'vip', op: 'exists' }), facts(v)).pass).toBe(true);
    expect(evaluate(ok({ field: 'points', op: 'exists' }), facts({}))).toEqual({ pass: false, reason: 'points is empty (needs a value)' });
    expect(evaluate(ok({ field: 'points', op: 'gte', value: 1 }), facts({ points: null })).pass).toBe(false);
    expect(evaluate(ok({ field: 'tier', op: 'ne', value: 'gold' }), facts({})).pass).toBe(true);
    expect(evaluate(ok({ any: [{ field: 'vip', op: 'eq', value: true }, { field: 'points', op: 'gte', value: 100 }] }), facts(v)).reason).toMatch(/^none holds: vip is false .*; points is 12/);
    expect(evaluate(ok({ all: [{ field: 'points', op: 'gte', value: 1 }, { field: 'vip', op: 'eq', value: true }] }), facts(v)).reason).toBe('vip is false (needs = true)');
    expect(evaluate(ok({ not: { field: 'vip', op: 'eq', value: true } }), facts(v)).pass).toBe(true);
  });
});

describe('what a trigger may send', () => {
  it('keeps transactional mail for the person’s own actions', () => {
    const ext = { type: 'external_event', name: 'purchase' } as const;
    const bday = { type: 'date_field', field: 'birthday', offset_days: 0, hour: 9, time_zone: 'UTC' } as const;
    const opened = { type: 'message_opened', template_id: T1 } as const;
    expect(categoryProblem(ext, null, 'transactional')).toBeNull();
    expect(categoryProblem(bday, null, 'transactional')).toMatch(/not an action/);
    expect(categoryProblem(bday, null, 'marketing')).toBeNull();
    expect(categoryProblem(opened, 'transactional', 'transactional')).toBeNull();
    expect(categoryProblem(opened, 'marketing', 'transactional')).toMatch(/marketing template/);
    expect(categoryProblem(opened, 'marketing', 'participation')).toBeNull();
  });

  it('refuses programs that would trigger themselves', () => {
    expect(cycleProblem({ triggerTemplateId: null, templateId: T1 }, [])).toBeNull();
    expect(cycleProblem({ triggerTemplateId: T1, templateId: T1 }, [])).toMatch(/its own mail/);
    expect(cycleProblem({ triggerTemplateId: T1, templateId: T2 }, [])).toBeNull();
    const edges = [
      { name: 'B to C', triggerTemplateId: T2, templateId: T3 },
      { name: 'C to A', triggerTemplateId: T3, templateId: T1 },
    ];
    expect(cycleProblem({ triggerTemplateId: T1, templateId: T2 }, edges)).toBe('the program would trigger itself again through "B to C" -> "C to A": mail would never stop');
    expect(cycleProblem({ triggerTemplateId: T1, templateId: T2 }, edges.slice(0, 1))).toBeNull();
  });
});

describe('date fields', () => {
  it('finds the occurrence of a day, with 29 February on the 28th of common years', () => {
    expect(occurrenceOn('2027-03-14', 0)).toEqual({ key: '2027-03-14', monthDays: ['03-14'] });
    // a reminder 7 days before: mail of 7 March is about 14 March
    expect(occurrenceOn('2027-03-07', -7)).toEqual({ key: '2027-03-14', monthDays: ['03-14'] });
    expect(occurrenceOn('2027-02-28', 0)).toEqual({ key: '2027-02-28', monthDays: ['02-28', '02-29'] });
    expect(occurrenceOn('2028-02-28', 0)).toEqual({ key: '2028-02-28', monthDays: ['02-28'] });
    expect(occurrenceOn('2028-02-29', 0)).toEqual({ key: '2028-02-29', monthDays: ['02-29'] });
    expect(occurrenceKey('1992-02-29', 2027)).toBe('2027-02-28');
    expect(occurrenceKey('1992-02-29', 2028)).toBe('2028-02-29');
    expect(occurrenceKey('1990-03-14', 2027)).toBe('2027-03-14');
    expect(occurrenceKey('not a date', 2027)).toBeNull();
    expect(occurrenceKey(null, 2027)).toBeNull();
  });

  it('is due at the hour of the trigger’s zone, plus the wait', () => {
    expect(dateDueAt('2027-03-14', { hour: 9, time_zone: 'UTC' }, 0)).toEqual(new Date('2027-03-14T09:00:00Z'));
    expect(dateDueAt('2027-03-14', { hour: 9, time_zone: 'Europe/Paris' }, 0)).toEqual(new Date('2027-03-14T08:00:00Z'));
    expect(dateDueAt('2027-07-14', { hour: 9, time_zone: 'Europe/Paris' }, 1800)).toEqual(new Date('2027-07-14T07:30:00Z'));
    expect(dateDueAt('2027-03-14', { hour: 9, time_zone: 'Pacific/Kiritimati' }, 0)).toEqual(new Date('2027-03-13T19:00:00Z'));
    expect(dateDueAt('2027-03-14', { hour: 0, time_zone: 'America/Los_Angeles' }, 0)).toEqual(new Date('2027-03-14T08:00:00Z'));
  });

  it('scans each local day once, catching up a few days at most', () => {
    expect(localDay(new Date('2027-03-14T23:30:00Z'), 'UTC')).toBe('2027-03-14');
    expect(localDay(new Date('2027-03-14T23:30:00Z'), 'Europe/Paris')).toBe('2027-03-15');
    expect(daysToScan(null, '2027-03-14')).toEqual(['2027-03-14']);
    expect(daysToScan('2027-03-14', '2027-03-14')).toEqual([]);
    expect(daysToScan('2027-03-12', '2027-03-14')).toEqual(['2027-03-13', '2027-03-14']);
    expect(daysToScan('2027-01-01', '2027-03-14')).toEqual(['2027-03-11', '2027-03-12', '2027-03-13', '2027-03-14']);
    expect(nextScanAt(new Date('2027-03-14T15:00:00Z'), 'UTC')).toEqual(new Date('2027-03-15T00:00:00Z'));
    expect(nextScanAt(new Date('2027-03-14T15:00:00Z'), 'Europe/Paris')).toEqual(new Date('2027-03-14T23:00:00Z'));
  });
});
