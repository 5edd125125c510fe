import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { bucketRange, bucketStart, buildSeries, canonicalTimeZone, countsOf, defaultRange, MAX_BUCKETS, ratesOf, ratio, type BucketRow } from './rules.ts';

const d = (iso: string) => new Date(iso);
const iso = (xs: Date[]) => xs.map((x) => x.toISOString());
const starts = (from: string, to: string, size: 'hour' | 'day', tz: string) => {
  const r = bucketRange(d(from), d(to), size, tz);
  if (!r.ok) throw new Error(r.reason);
  return r;
};

describe('time zones', () => {
  it('knows IANA zones by their canonical name and refuses others', () => {
    expect(canonicalTimeZone('Europe/Paris')).toBe('Europe/Paris');
    expect(canonicalTimeZone('europe/paris')).toBe('Europe/Paris');
    expect(canonicalTimeZone('UTC')).toBe('UTC');
    expect(canonicalTimeZone('Mars/Olympus_Mons')).toBeNull();
    expect(canonicalTimeZone('')).toBeNull();
    expect(canonicalTimeZone('x'.repeat(65))).toBeNull();
  });
});

describe('buckets', () => {
  it('starts a day at local midnight', () => {
    // 23:30 in Paris on the 10th, then 00:30 on the 11th
    expect(bucketStart(d('2026-03-10T22:30:00Z'), 'day', 'Europe/Paris').toISOString()).toBe('2026-03-09T23:00:00.000Z');
    expect(bucketStart(d('2026-03-10T23:30:00Z'), 'day', 'Europe/Paris').toISOString()).toBe('2026-03-10T23:00:00.000Z');
    expect(bucketStart(d('2026-03-10T23:30:00Z'), 'day', 'UTC').toISOString()).toBe('2026-03-10T00:00:00.000Z');
    expect(bucketStart(d('2026-03-10T23:30:00Z'), 'day', 'America/New_York').toISOString()).toBe('2026-03-10T04:00:00.000Z');
    expect(bucketStart(d('2026-03-10T23:00:00Z'), 'day', 'Europe/Paris').toISOString()).toBe('2026-03-10T23:00:00.000Z');
  });

  it('has a 23-hour day in spring and a 25-hour day in autumn', () => {
    const spring = starts('2026-03-28T00:00:00+01:00', '2026-03-31T00:00:00+02:00', 'day', 'Europe/Paris');
    expect(iso(spring.starts)).toEqual(['2026-03-27T23:00:00.000Z', '2026-03-28T23:00:00.000Z', '2026-03-29T22:00:00.000Z']);
    expect(spring.end.toISOString()).toBe('2026-03-30T22:00:00.000Z');
    const autumn = starts('2026-10-25T00:00:00+02:00', '2026-10-26T12:00:00+01:00', 'day', 'Europe/Paris');
    expect(iso(autumn.starts)).toEqual(['2026-10-24T22:00:00.000Z', '2026-10-25T23:00:00.000Z']);
    expect(autumn.starts[1]!.getTime() - autumn.starts[0]!.getTime()).toBe(25 * 3_600_000);
  });

  it('starts a day whose midnight does not exist at the first instant that does', () => {
    // São Paulo moved its clocks from 00:00 to 01:00 on 2018-11-04
    const r = starts('2018-11-03T12:00:00-03:00', '2018-11-05T12:00:00-02:00', 'day', 'America/Sao_Paulo');
    expect(iso(r.starts)).toEqual(['2018-11-03T03:00:00.000Z', '2018-11-04T03:00:00.000Z', '2018-11-05T02:00:00.000Z']);
  });

  it('goes straight to the next day a zone kept when it skipped one', () => {
    // Samoa skipped 30 December 2011, going from UTC-10 to UTC+14
    const r = starts('2011-12-29T12:00:00-10:00', '2011-12-31T12:00:00+14:00', 'day', 'Pacific/Apia');
    expect(iso(r.starts)).toEqual(['2011-12-29T10:00:00.000Z', '2011-12-30T10:00:00.000Z']);
  });

  it('uses local midnight in a half-hour zone, and UTC hours for hour buckets', () => {
    expect(bucketStart(d('2026-03-10T20:00:00Z'), 'day', 'Asia/Kolkata').toISOString()).toBe('2026-03-10T18:30:00.000Z');
    expect(bucketStart(d('2026-03-10T20:45:00Z'), 'hour', 'Asia/Kolkata').toISOString()).toBe('2026-03-10T20:00:00.000Z');
  });

  it('covers [from, to) with hour buckets', () => {
    expect(iso(starts('2026-03-10T10:30:00Z', '2026-03-10T13:00:00Z', 'hour', 'UTC').starts)).toEqual(['2026-03-10T10:00:00.000Z', '2026-03-10T11:00:00.000Z', '2026-03-10T12:00:00.000Z']);
    expect(starts('2026-03-10T10:30:00Z', '2026-03-10T13:00:00.001Z', 'hour', 'UTC').starts).toHaveLength(4);
  });

  it('refuses an empty, reversed or oversized range', () => {
    expect(bucketRange(d('2026-03-10T10:00:00Z'), d('2026-03-10T10:00:00Z'), 'hour', 'UTC')).toMatchObject({ ok: false, reason: /before/ });
    expect(bucketRange(d('2026-03-11T10:00:00Z'), d('2026-03-10T10:00:00Z'), 'day', 'UTC')).toMatchObject({ ok: false });
    expect(bucketRange(d('invalid'), d('2026-03-10T10:00:00Z'), 'day', 'UTC')).toMatchObject({ ok: false });
    const from = d('2026-01-01T00:00:00Z');
    expect(bucketRange(from, new Date(from.getTime() + MAX_BUCKETS * 3_600_000), 'hour', 'UTC')).toMatchObject({ ok: true });
    expect(bucketRange(from, new Date(from.getTime() + MAX_BUCKETS * 3_600_000 + 1), 'hour', 'UTC')).toMatchObject({ ok: false, reason: /at most 2000/ });
    expect(bucketRange(from, d('2100-01-01T00:00:00Z'), 'day', 'UTC')).toMatchObject({ ok: false });
  });

  it('defaults to the last 48 hours or 30 days', () => {
    const now = d('2026-03-10T12:00:00Z');
    expect(defaultRange(now, 'hour')).toEqual({ from: d('2026-03-08T12:00:00Z'), to: now });
    expect(defaultRange(now, 'day')).toEqual({ from: d('2026-02-08T12:00:00Z'), to: now });
    expect(defaultRange(now, 'day', d('2026-03-01T00:00:00Z'))).toEqual({ from: d('2026-03-01T00:00:00Z'), to: now });
  });

  const zones = ['UTC', 'Europe/Paris', 'America/New_York', 'America/Sao_Paulo', 'Asia/Kolkata', 'Asia/Kathmandu', 'Australia/Lord_Howe', 'Pacific/Apia', 'Pacific/Chatham', 'America/St_Johns'];

  it('puts every instant of a range in exactly one bucket, in every zone', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...zones),
        fc.constantFrom('hour' as const, 'day' as const),
        fc.integer({ min: Date.UTC(2005, 0, 1), max: Date.UTC(2030, 0, 1) }),
        fc.integer({ min: 1, max: 40 * 86_400_000 }),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 10 }),
        (tz, size, from, span, probes) => {
          const r = bucketRange(new Date(from), new Date(from + span), size, tz);
          if (!r.ok) return size === 'hour' && span > MAX_BUCKETS * 3_600_000 - 3_600_000;
          const s = r.starts.map((x) => x.getTime());
          for (let i = 1; i < s.length; i++) if (!(s[i]! > s[i - 1]!)) return false;
          if (!(s[0]! <= from && r.end.getTime() >= from + span)) return false;
          for (const x of s) if (bucketStart(new Date(x), size, tz).getTime() !== x) return false;
          // any instant of [from, to) belongs to the last bucket starting at or before it
          for (const p of probes) {
            const t = from + Math.floor(p * (span - 1));
            const b = bucketStart(new Date(t), size, tz).getTime();
            if (!s.includes(b)) return false;
          }
          return true;
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('figures', () => {
  it('divides safely', () => {
    expect(ratio(1, 0)).toBeNull();
    expect(ratio(0, 0)).toBeNull();
    expect(ratio(0, 5)).toBe(0);
    expect(ratio(2, 5)).toBe(0.4);
    expect(ratio(5, 6)).toBe(0.8333);
  });

  it('counts a bounce that was never sent as sent, and a late bounce against delivered', () => {
    const c = countsOf({
      sent: { total: 6, uniq: 0 },
      'bounced:unsent': { total: 1, uniq: 1 },
      'bounced:sent_hour': { total: 1, uniq: 1 },
      bounced: { total: 3, uniq: 2 },
      opened: { total: 5, uniq: 2 },
      clicked: { total: 4, uniq: 3 },
      complained: { total: 1, uniq: 1 },
      unsubscribed: { total: 2, uniq: 1 },
      deferred: { total: 3, uniq: 0 },
      something_new: { total: 9, uniq: 9 },
    });
    expect(c).toEqual({ queued: 0, sent: 7, delivered: 5, opened: 5, opened_unique: 2, clicked: 4, clicked_unique: 3, bounced: 2, complained: 1, unsubscribed: 1, blocked: 0, deferred: 3, failed: 0 });
    expect(ratesOf(c)).toEqual({ delivered: 0.7143, open: 0.4, click: 0.6, bounce: 0.2857, complaint: 0.2, unsubscribe: 0.2 });
  });

  it('has no rates without mail', () => {
    expect(ratesOf(countsOf({}))).toEqual({ delivered: null, open: null, click: null, bounce: null, complaint: null, unsubscribe: null });
  });

  it('fills empty buckets and totals the range', () => {
    const s = [d('2026-03-10T00:00:00Z'), d('2026-03-11T00:00:00Z'), d('2026-03-12T00:00:00Z')];
    const rows: BucketRow[] = [
      { bucket: 0, type: 'sent', total: 10, uniq: 0 },
      { bucket: 0, type: 'opened', total: 4, uniq: 3 },
      { bucket: 2, type: 'opened', total: 2, uniq: 1 },
      { bucket: 2, type: 'opened', total: 1, uniq: 0 },
      { bucket: 7, type: 'opened', total: 100, uniq: 100 },
    ];
    const r = buildSeries(s, rows);
    expect(r.buckets.map((b) => b.start)).toEqual(s);
    expect(r.buckets.map((b) => [b.sent, b.opened, b.opened_unique])).toEqual([
      [10, 4, 3],
      [0, 0, 0],
      [0, 3, 1],
    ]);
    expect(r.buckets[0]!.rates.open).toBe(0.3);
    expect(r.buckets[1]!.rates.open).toBeNull();
    expect(r.buckets[2]!.rates.open).toBeNull();
    expect(r.totals).toMatchObject({ sent: 10, delivered: 10, opened: 7, opened_unique: 4, rates: { open: 0.4, delivered: 1 } });
  });

  it('adds buckets up to the totals', () => {
    const types = ['queued', 'sent', 'opened', 'clicked', 'bounced', 'bounced:unsent', 'bounced:sent_hour', 'complained', 'unsubscribed', 'blocked', 'deferred', 'failed'];
    fc.assert(
      fc.property(fc.array(fc.record({ bucket: fc.integer({ min: 0, max: 4 }), type: fc.constantFrom(...types), total: fc.nat(1000), uniq: fc.nat(1000) })), (rows) => {
        // the rollup never has more late bounces in a bucket than sends
        const sane = rows.map((r) => (r.type === 'bounced:sent_hour' ? { ...r, total: 0 } : r));
        const r = buildSeries([0, 1, 2, 3, 4].map((i) => new Date(i * 86_400_000)), sane);
        for (const k of ['queued', 'sent', 'delivered', 'opened', 'opened_unique', 'clicked', 'clicked_unique', 'bounced', 'complained', 'unsubscribed', 'blocked', 'deferred', 'failed'] as const) {
          if (r.buckets.reduce((a, b) => a + b[k], 0) !== r.totals[k]) return false;
        }
        return r.buckets.every((b) => b.delivered >= 0);
      }),
    );
  });
});
