import { describe, expect, it } from 'vitest';
import { DomainLimiter, domainOf } from './domain-limiter.ts';

const tick = () => new Promise((r) => setTimeout(r, 1));

describe('DomainLimiter', () => {
  it('keeps at most N sends per domain in flight, others unaffected, and runs every one', async () => {
    const limiter = new DomainLimiter(2);
    const peak: Record<string, number> = {};
    const now: Record<string, number> = {};
    const done: string[] = [];
    const job = (domain: string, i: number) =>
      limiter.run(domain, async () => {
        now[domain] = (now[domain] ?? 0) + 1;
        peak[domain] = Math.max(peak[domain] ?? 0, now[domain]!);
        await tick();
        now[domain]!--;
        done.push(`${domain}${i}`);
      });
    await Promise.all([...Array.from({ length: 10 }, (_, i) => job('gmail.com', i)), ...Array.from({ length: 3 }, (_, i) => job('example.org', i))]);
    expect(peak).toEqual({ 'gmail.com': 2, 'example.org': 2 });
    expect(done).toHaveLength(13);
    expect(limiter.inFlight('gmail.com')).toBe(0);
  });

  it('frees the slot when a send throws', async () => {
    const limiter = new DomainLimiter(1);
    await expect(limiter.run('a.com', async () => { throw new Error('boom'); })).rejects.toThrow('boom');
    expect(await limiter.run('a.com', async () => 'ok')).toBe('ok');
  });

  it('serves waiters in order', async () => {
    const limiter = new DomainLimiter(1);
    const order: number[] = [];
    await Promise.all([1, 2, 3, 4].map((i) => limiter.run('x.com', async () => { order.push(i); await tick(); })));
    expect(order).toEqual([1, 2, 3, 4]);
  });

  it('compares domains without case', () => {
    expect(domainOf('Ada@Example.COM')).toBe('example.com');
    expect(() => new DomainLimiter(0)).toThrow();
  });
});
