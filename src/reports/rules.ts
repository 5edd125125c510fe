/**
 * The pure part of reports: time buckets in a time zone, the report figures derived from the rollup's
 * per-type sums (0008_reports.sql says what each type counts), rates, and filling empty buckets.
 */

export type BucketSize = 'hour' | 'day';

/** A bound on one answer's size: 2,000 hours is 83 days, 2,000 days is five and a half years. */
export const MAX_BUCKETS = 2000;

const HOUR = 3_600_000;
const DAY = 86_400_000;

// ---- time zones ----

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' });
    formatters.set(timeZone, f);
  }
  return f;
}

/** The canonical IANA name of a time zone ("europe/paris" -> "Europe/Paris"), or null when there is no such zone. */
export function canonicalTimeZone(timeZone: string): string | null {
  if (timeZone.trim() === '' || timeZone.length > 64) return null;
  try {
    return formatter(timeZone).resolvedOptions().timeZone;
  } catch {
    return null;
  }
}

/** The local wall-clock reading of instant `t`, as milliseconds of a UTC clock showing the same reading. */
function localMs(t: number, timeZone: string): number {
  const p: Record<string, number> = {};
  for (const part of formatter(timeZone).formatToParts(t)) if (part.type !== 'literal') p[part.type] = Number(part.value);
  return Date.UTC(p.year!, p.month! - 1, p.day!, p.hour!, p.minute!, p.second!) + (((t % 1000) + 1000) % 1000);
}

/**
 * The first instant whose local reading is `wall` (as UTC milliseconds), or when that reading never
 * happens (a daylight-saving gap, a day a zone skipped), the first instant after it.
 */
function instantOfWall(wall: number, timeZone: string): number {
  const offset = (t: number) => localMs(t, timeZone) - t;
  // The offsets in force around the wall time; in an overlap two of them read `wall`, the earlier wins.
  const candidates = new Set([offset(wall - 14 * HOUR), offset(wall), offset(wall + 14 * HOUR), offset(wall - offset(wall))].map((o) => wall - o));
  const exact = [...candidates].filter((t) => localMs(t, timeZone) === wall);
  if (exact.length) return Math.min(...exact);
  // A gap: the earliest instant reading at or after `wall` (local time only moves forward across it).
  let lo = wall - 15 * HOUR;
  let hi = wall + 15 * HOUR;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (localMs(mid, timeZone) >= wall) hi = mid;
    else lo = mid;
  }
  return hi;
}

const floorDay = (ms: number) => Math.floor(ms / DAY) * DAY;

function startOfDay(t: number, timeZone: string): number {
  return instantOfWall(floorDay(localMs(t, timeZone)), timeZone);
}

/**
 * The start of the day after the one starting at `start`, whose local reading is `local`; and that
 * reading. Most days start at the same offset as the day before: one look-up confirms it.
 */
function nextDay(start: number, local: number, timeZone: string): { start: number; local: number } {
  const wall = floorDay(local) + DAY;
  const guess = start + (wall - local);
  if (localMs(guess, timeZone) === wall) return { start: guess, local: wall };
  const next = instantOfWall(wall, timeZone);
  // A zone setting its clock back across midnight would read the same date again: never loop.
  const s = next > start ? next : start + DAY;
  return { start: s, local: localMs(s, timeZone) };
}

/**
 * The start of the bucket holding instant `t`. Days start at local midnight in `timeZone` (23 or 25
 * hours long across a daylight-saving change). Hours are the UTC hours the rollup keeps, which are
 * the local hours of every zone with a whole-hour offset; in a zone like Asia/Kolkata (+05:30) they
 * start at half past the local hour, and its days at local midnight count the half hour before
 * midnight in the day before (the rollup cannot split an hour).
 */
export function bucketStart(t: Date, size: BucketSize, timeZone: string): Date {
  const ms = t.getTime();
  return new Date(size === 'hour' ? Math.floor(ms / HOUR) * HOUR : startOfDay(ms, timeZone));
}

export type BucketRange = { ok: true; starts: Date[]; end: Date } | { ok: false; reason: string };

/** The buckets covering [from, to): from the one holding `from` to the one holding the last instant before `to`. */
export function bucketRange(from: Date, to: Date, size: BucketSize, timeZone: string, max = MAX_BUCKETS): BucketRange {
  if (Number.isNaN(from.getTime()) || Number.isNaN(to.getTime())) return { ok: false, reason: 'from and to must be dates' };
  if (from.getTime() >= to.getTime()) return { ok: false, reason: 'from must be before to' };
  // A range far larger than `max` buckets is refused before walking it.
  if ((to.getTime() - from.getTime()) / (size === 'hour' ? HOUR : DAY) > max + 2) return tooMany(size, max);
  const starts: Date[] = [];
  let s = bucketStart(from, size, timeZone).getTime();
  let local = size === 'day' ? localMs(s, timeZone) : 0;
  while (s < to.getTime()) {
    if (starts.length === max) return tooMany(size, max);
    starts.push(new Date(s));
    if (size === 'hour') s += HOUR;
    else ({ start: s, local } = nextDay(s, local, timeZone));
  }
  return { ok: true, starts, end: new Date(s) };
}

const tooMany = (size: BucketSize, max: number): BucketRange => ({ ok: false, reason: `a report holds at most ${max} buckets: shorten the range or use a larger bucket than ${size}` });

/** The range of a report: `to` defaults to now, `from` to 48 hours (by hour) or 30 days (by day) before `to`. */
export function defaultRange(now: Date, size: BucketSize, from?: Date, to?: Date): { from: Date; to: Date } {
  const end = to ?? now;
  return { from: from ?? new Date(end.getTime() - (size === 'hour' ? 48 * HOUR : 30 * DAY)), to: end };
}

// ---- figures ----

export interface Sum {
  total: number;
  uniq: number;
}

/** Rollup sums by type (event types and the derived 'bounced:*' types). */
export type Measures = Record<string, Sum>;

export interface Counts {
  queued: number;
  /** sent, plus the bounces of mail that never got a 'sent' (refused by the relay): attempted sends */
  sent: number;
  /** sent minus bounced, where a later bounce lowers the bucket its mail was sent in */
  delivered: number;
  opened: number;
  opened_unique: number;
  clicked: number;
  clicked_unique: number;
  /** complaints, unsubscribes and bounces count once per delivery */
  bounced: number;
  complained: number;
  unsubscribed: number;
  blocked: number;
  deferred: number;
  failed: number;
}

export interface Rates {
  /** delivered / sent */
  delivered: number | null;
  /** unique opens / delivered */
  open: number | null;
  /** unique clicks / delivered */
  click: number | null;
  /** bounces / sent */
  bounce: number | null;
  /** complaints / delivered */
  complaint: number | null;
  /** unsubscribes / delivered */
  unsubscribe: number | null;
}

/** n / d to four decimals; null when there is nothing to divide by (no mail is not a 0 % rate). */
export function ratio(n: number, d: number): number | null {
  if (!(d > 0)) return null;
  return Math.round((n / d) * 10_000) / 10_000;
}

export function countsOf(m: Measures): Counts {
  const total = (type: string) => m[type]?.total ?? 0;
  const uniq = (type: string) => m[type]?.uniq ?? 0;
  return {
    queued: total('queued'),
    sent: total('sent') + total('bounced:unsent'),
    delivered: Math.max(0, total('sent') - total('bounced:sent_hour')),
    opened: total('opened'),
    opened_unique: uniq('opened'),
    clicked: total('clicked'),
    clicked_unique: uniq('clicked'),
    bounced: uniq('bounced'),
    complained: uniq('complained'),
    unsubscribed: uniq('unsubscribed'),
    blocked: total('blocked'),
    deferred: total('deferred'),
    failed: total('failed'),
  };
}

export function ratesOf(c: Counts): Rates {
  return {
    delivered: ratio(c.delivered, c.sent),
    open: ratio(c.opened_unique, c.delivered),
    click: ratio(c.clicked_unique, c.delivered),
    bounce: ratio(c.bounced, c.sent),
    complaint: ratio(c.complained, c.delivered),
    unsubscribe: ratio(c.unsubscribed, c.delivered),
  };
}

export interface BucketRow {
  /** index into the bucket starts */
  bucket: number;
  type: string;
  total: number;
  uniq: number;
}

export type Figures = Counts & { rates: Rates };
export type SeriesBucket = { start: Date } & Figures;

function addTo(m: Measures, type: string, s: Sum) {
  const cur = (m[type] ??= { total: 0, uniq: 0 });
  cur.total += s.total;
  cur.uniq += s.uniq;
}

const figures = (m: Measures): Figures => {
  const c = countsOf(m);
  return { ...c, rates: ratesOf(c) };
};

/** Every bucket of the range, empty ones included, and the range's totals. */
export function buildSeries(starts: readonly Date[], rows: readonly BucketRow[]): { buckets: SeriesBucket[]; totals: Figures } {
  const per: Measures[] = starts.map(() => ({}));
  const all: Measures = {};
  for (const r of rows) {
    const m = per[r.bucket];
    if (!m) continue; // outside the range asked for
    addTo(m, r.type, r);
    addTo(all, r.type, r);
  }
  return { buckets: starts.map((start, i) => ({ start, ...figures(per[i]!) })), totals: figures(all) };
}
