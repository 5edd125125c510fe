import { describe, expect, it } from 'vitest';
import { Recorder } from './worker.ts';
import type { Outcome } from './store.ts';

const outcome = (i: number): Outcome => ({ id: `d${i}`, status: 'sent', event: 'sent', detail: {} });

function recorder(groupMs: number, groupSize: number) {
  const writes: string[][] = [];
  let release: (() => void) | null = null;
  let hold = false;
  const r = new Recorder(
    async (batch) => {
      writes.push(batch.map((o) => o.id));
      if (hold) await new Promise<void>((resolve) => (release = resolve));
    },
    groupMs,
    groupSize,
  );
  return { r, writes, holdWrites: (on: boolean) => (hold = on), release: () => release?.() };
}

describe('Recorder (outcome groups)', () => {
  it('waits up to groupMs to write what came meanwhile as one group', async () => {
    const { r, writes } = recorder(40, 1000);
    for (let i = 0; i < 5; i++) r.push(outcome(i));
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(writes).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(writes).toEqual([['d0', 'd1', 'd2', 'd3', 'd4']]);
  });

  it('writes an urgent outcome (transactional) at once, with whatever is pending', async () => {
    const { r, writes } = recorder(10_000, 1000);
    r.push(outcome(0));
    r.push(outcome(1), true);
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(writes).toEqual([['d0', 'd1']]);
    // and the next plain one waits for its group again
    r.push(outcome(2));
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(writes).toEqual([['d0', 'd1']]);
    await r.drain();
    expect(writes).toEqual([['d0', 'd1'], ['d2']]);
  });

  it('writes a full group at once, without waiting', async () => {
    const { r, writes } = recorder(10_000, 3);
    for (let i = 0; i < 3; i++) r.push(outcome(i));
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(writes).toEqual([['d0', 'd1', 'd2']]);
  });

  it('drain writes everything now, including what is pushed while a write runs, and loses nothing', async () => {
    const { r, writes, holdWrites, release } = recorder(10_000, 1000);
    r.push(outcome(0));
    holdWrites(true);
    const drained = r.drain();
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(writes).toEqual([['d0']]);
    r.push(outcome(1));
    r.push(outcome(2));
    holdWrites(false);
    release();
    await drained;
    expect(writes).toEqual([['d0'], ['d1', 'd2']]);
    await r.drain(); // nothing pending: resolves at once
    expect(writes.flat()).toEqual(['d0', 'd1', 'd2']);
  });
});
