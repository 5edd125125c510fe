/**
 * The results of a pure function of a string, kept for the next call with the same string, up to
 * `max` of them (then all are dropped: the keys that matter come back at once). For what a campaign
 * repeats per recipient over a few distinct values, such as the domains of its addresses.
 */
export function boundedMemo<T>(max: number, f: (key: string) => T): (key: string) => T {
  const kept = new Map<string, T>();
  return (key) => {
    let v = kept.get(key);
    if (v === undefined && !kept.has(key)) {
      v = f(key);
      if (kept.size >= max) kept.clear();
      kept.set(key, v);
    }
    return v as T;
  };
}
