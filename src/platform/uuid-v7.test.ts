import { describe, expect, it } from 'vitest';
import { monotonicUuidV7 } from './uuid-v7.ts';

const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('monotonic UUID v7', () => {
  it('writes the millisecond in front, the version and the variant where RFC 9562 puts them', () => {
    const ms = Date.UTC(2026, 11, 1, 9, 30);
    const id = monotonicUuidV7(() => ms)();
    expect(id).toMatch(V7);
    expect(parseInt(id.replace(/-/g, '').slice(0, 12), 16)).toBe(ms);
  });

  it('only ever increases: within one millisecond, across milliseconds, and when the clock goes back', () => {
    const clock = [5, 5, 5, 6, 6, 4, 4, 4, 9, 3];
    let tick = 0;
    const next = monotonicUuidV7(() => 1_700_000_000_000 + clock[Math.floor(tick++ / 1000) % clock.length]!);
    let prev = next();
    for (let i = 1; i < 10_000; i++) {
      const id = next();
      expect(id).toMatch(V7);
      if (!(id > prev)) throw new Error(`${id} does not follow ${prev}`);
      prev = id;
    }
  });

  it('keeps its random parts random', () => {
    const next = monotonicUuidV7(() => 0);
    const a = monotonicUuidV7(() => 0)();
    const b = next();
    // Two generators starting in the same millisecond do not collide.
    expect(a).not.toBe(b);
    const tails = new Set(Array.from({ length: 1000 }, () => next().slice(-8)));
    expect(tails.size).toBeGreaterThan(990);
  });
});
