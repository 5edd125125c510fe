import { describe, expect, it } from 'vitest';
import { nextRun, progressOf, sendAtProblem, transition } from './rules.ts';

const now = new Date('2026-12-01T10:00:00Z');
const base = { status: 'draft' as const, paused_from: null, send_at: null, every_minutes: null };

describe('transition', () => {
  it('starts a draft now, or at its send time when that is later', () => {
    expect(transition(base, 'start', now)).toEqual({ ok: true, status: 'scheduled', next_run_at: now });
    const later = new Date('2026-12-02T08:00:00Z');
    expect(transition({ ...base, send_at: later }, 'start', now)).toEqual({ ok: true, status: 'scheduled', next_run_at: later });
    expect(transition({ ...base, send_at: new Date('2026-11-01T00:00:00Z') }, 'start', now)).toEqual({ ok: true, status: 'scheduled', next_run_at: now });
    expect(transition({ ...base, status: 'sending' }, 'start', now).ok).toBe(false);
  });

  it('says why a campaign that is not a draft cannot be started: cancelled, completed, paused or under way', () => {
    expect(transition({ ...base, status: 'cancelled' }, 'start', now)).toEqual({ ok: false, reason: 'the campaign is cancelled and cannot be started; create a new one' });
    expect(transition({ ...base, status: 'completed' }, 'start', now)).toMatchObject({ ok: false, reason: expect.stringContaining('completed and cannot be started again') });
    expect(transition({ ...base, status: 'paused', paused_from: 'sending' }, 'start', now)).toMatchObject({ ok: false, reason: expect.stringContaining('resume it') });
    expect(transition({ ...base, status: 'scheduled' }, 'start', now)).toMatchObject({ ok: false, reason: 'the campaign is already started (scheduled)' });
  });

  it('pauses what is scheduled, resolving or sending, and resumes to where it was', () => {
    for (const status of ['scheduled', 'resolving', 'sending'] as const) expect(transition({ ...base, status }, 'pause', now)).toEqual({ ok: true, status: 'paused' });
    for (const status of ['draft', 'paused', 'completed', 'cancelled'] as const) expect(transition({ ...base, status }, 'pause', now).ok).toBe(false);
    expect(transition({ ...base, status: 'paused', paused_from: 'resolving' }, 'resume', now)).toEqual({ ok: true, status: 'resolving' });
    expect(transition({ ...base, status: 'sending' }, 'resume', now)).toMatchObject({ ok: false, reason: expect.stringContaining('only a paused') });
  });

  it('cancels anything not over', () => {
    expect(transition({ ...base, status: 'paused', paused_from: 'sending' }, 'cancel', now)).toEqual({ ok: true, status: 'cancelled' });
    expect(transition({ ...base, status: 'completed' }, 'cancel', now).ok).toBe(false);
  });
});

describe('sendAtProblem', () => {
  it('refuses a send time past by more than a minute, names it', () => {
    expect(sendAtProblem(new Date('2020-01-01T00:00:00Z'), now)).toMatch(/2020-01-01T00:00:00.000Z has passed/);
    expect(sendAtProblem(new Date(now.getTime() - 30_000), now)).toBeNull();
    expect(sendAtProblem(new Date(now.getTime() + 3_600_000), now)).toBeNull();
  });
});

describe('nextRun', () => {
  it('is one period after the run started, never in the past, with no catch-up pile', () => {
    expect(nextRun(30, new Date('2026-12-01T09:50:00Z'), now)).toEqual(new Date('2026-12-01T10:20:00Z'));
    expect(nextRun(30, new Date('2026-12-01T08:00:00Z'), now).getTime()).toBe(now.getTime() + 1000);
  });
});

describe('progressOf', () => {
  it('counts pending, finished and blocked, and the share done', () => {
    const p = progressOf({ queued: 2, sending: 1, paused: 1, sent: 5, bounced: 1, blocked: 3 }, { excluded: 3 });
    expect(p).toMatchObject({ recipients: 13, pending: 4, sent: 5, blocked: 3, paused: 1, blocked_by_rule: { excluded: 3 } });
    expect(p.done).toBeCloseTo(6 / 10);
    expect(progressOf({ blocked: 2 }, {}).done).toBe(1);
  });
});
