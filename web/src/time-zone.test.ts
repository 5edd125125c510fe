import { describe, expect, it } from 'vitest';
import { zonedInputToIso } from './time-zone.ts';

describe('zonedInputToIso', () => {
  it('reads the typed time as the wall clock of the named zone, whatever the process zone', () => {
    expect(zonedInputToIso('2027-07-01T18:00', 'Europe/Paris')).toBe('2027-07-01T16:00:00.000Z');
    expect(zonedInputToIso('2027-01-15T18:00', 'Europe/Paris')).toBe('2027-01-15T17:00:00.000Z');
    expect(zonedInputToIso('2027-07-01T18:00', 'America/New_York')).toBe('2027-07-01T22:00:00.000Z');
    expect(zonedInputToIso('2027-07-01T18:00', 'UTC')).toBe('2027-07-01T18:00:00.000Z');
  });

  it('crosses a daylight-saving change: the offset is that of the answer, not of the guess', () => {
    // Paris moved to summer time at 2027-03-28 02:00 (01:00Z): 03:30 that day is 01:30Z, 01:30 is 00:30Z.
    expect(zonedInputToIso('2027-03-28T03:30', 'Europe/Paris')).toBe('2027-03-28T01:30:00.000Z');
    expect(zonedInputToIso('2027-03-28T01:30', 'Europe/Paris')).toBe('2027-03-28T00:30:00.000Z');
    // Back to winter time at 2027-10-31 03:00 (01:00Z): 04:00 is 03:00Z.
    expect(zonedInputToIso('2027-10-31T04:00', 'Europe/Paris')).toBe('2027-10-31T03:00:00.000Z');
  });
});
