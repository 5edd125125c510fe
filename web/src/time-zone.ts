/**
 * Wall-clock times of a named time zone (an event's), whatever the browser's own zone is: an
 * organiser in London typing "18:00" for a Paris event means 18:00 in Paris.
 */

function offsetMs(tz: string, at: number): number {
  const parts = new Intl.DateTimeFormat('en-US', { timeZone: tz, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' }).formatToParts(at);
  const get = (type: string) => Number(parts.find((p) => p.type === type)?.value);
  return Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'), get('second')) - Math.floor(at / 1000) * 1000;
}

/**
 * The instant (ISO 8601) a datetime-local value ("2027-07-01T18:00") means in `tz`. An unknown
 * zone falls back to the browser's, so the API's own message about the zone is what the user sees.
 */
export function zonedInputToIso(local: string, tz: string): string {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(local);
  if (!m) return new Date(local).toISOString();
  const wall = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]));
  try {
    // Twice: the offset at the first guess may differ from the offset at the answer (a DST change in between).
    let at = wall - offsetMs(tz, wall);
    at = wall - offsetMs(tz, at);
    return new Date(at).toISOString();
  } catch {
    return new Date(local).toISOString();
  }
}
