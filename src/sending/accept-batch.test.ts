import { describe, expect, it } from 'vitest';
import { Batcher, Loader } from './accept-batch.ts';

const tick = () => new Promise((r) => setImmediate(r));

describe('Batcher', () => {
  it('runs what is submitted in one turn as one batch, and answers each item by its index', async () => {
    const runs: number[][] = [];
    const b = new Batcher<number, number>(async (items) => {
      runs.push(items);
      return items.map((i) => i * 10);
    });
    expect(await Promise.all([1, 2, 3].map((i) => b.submit(i)))).toEqual([10, 20, 30]);
    expect(runs).toEqual([[1, 2, 3]]);
  });

  it('fails only the item answered with an Error, and every item of a run that throws', async () => {
    const b = new Batcher<number, number>(async (items) => {
      if (items.includes(99)) throw new Error('database away');
      return items.map((i) => (i === 2 ? new Error(`bad ${i}`) : i));
    });
    const first = await Promise.allSettled([1, 2, 3].map((i) => b.submit(i)));
    expect(first.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((first[1] as PromiseRejectedResult).reason.message).toBe('bad 2');
    const second = await Promise.allSettled([4, 99].map((i) => b.submit(i)));
    expect(second.map((r) => r.status)).toEqual(['rejected', 'rejected']);
  });

  it('keeps at most maxInFlight runs going; what arrives meanwhile goes in the next run, up to maxItems', async () => {
    const release: (() => void)[] = [];
    const runs: number[][] = [];
    const b = new Batcher<number, number>(
      async (items) => {
        runs.push(items);
        await new Promise<void>((r) => release.push(r));
        return items;
      },
      { maxInFlight: 1, maxItems: 3 },
    );
    const all = [b.submit(1)];
    await tick();
    expect(runs).toEqual([[1]]);
    for (const i of [2, 3, 4, 5]) all.push(b.submit(i));
    await tick();
    expect(runs).toHaveLength(1); // the first run still holds the only slot
    release.shift()!();
    await tick();
    expect(runs[1]).toEqual([2, 3, 4]);
    release.shift()!();
    await tick();
    expect(runs[2]).toEqual([5]);
    release.shift()!();
    expect(await Promise.all(all)).toEqual([1, 2, 3, 4, 5]);
    expect(b.stats).toEqual({ runs: 3, items: 5, largest: 3 });
  });
});

describe('Loader', () => {
  it('fetches each distinct key of a turn once, and answers undefined for a key not found', async () => {
    const fetched: string[][] = [];
    const l = new Loader<string, string>(
      async (keys) => {
        fetched.push(keys);
        return new Map(keys.filter((k) => k !== 'missing').map((k) => [k, k.toUpperCase()]));
      },
      (k) => k,
    );
    expect(await Promise.all(['a', 'b', 'a', 'missing'].map((k) => l.load(k)))).toEqual(['A', 'B', 'A', undefined]);
    expect(fetched).toEqual([['a', 'b', 'missing']]);
    // Nothing is kept: the next turn asks again.
    expect(await l.load('a')).toBe('A');
    expect(fetched).toHaveLength(2);
  });
});
