import { describe, expect, it } from 'vitest';
import { boundedMemo } from './bounded-memo.ts';

describe('boundedMemo', () => {
  it('computes a key once, undefined results included, and starts over past its bound', () => {
    const calls: string[] = [];
    const f = boundedMemo(2, (k) => (calls.push(k), k === 'none' ? undefined : k.toUpperCase()));
    expect([f('a'), f('a'), f('none'), f('none')]).toEqual(['A', 'A', undefined, undefined]);
    expect(calls).toEqual(['a', 'none']);
    f('b'); // past the bound: what was kept is dropped
    f('a');
    expect(calls).toEqual(['a', 'none', 'b', 'a']);
  });
});
