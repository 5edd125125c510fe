import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { limitHeapGrowth } from './heap-growth.ts';

// A process keeps 100 MB of objects alive and churns through objects that outlive a few scavenges
// (as a page of rows does while its messages are sent); it prints its peak heap over what stays live.
const churn = (limit: boolean) => `
  ${limit ? `const { limitHeapGrowth } = await import(${JSON.stringify(new URL('./heap-growth.ts', import.meta.url).href)}); limitHeapGrowth();` : ''}
  const live = (globalThis.live = []);
  for (let i = 0; i < 800000; i++) live.push({ a: i, b: 'x' + i, c: [i] });
  let recent = [];
  let peak = 0;
  for (let r = 0; r < 300; r++) {
    recent.push(Array.from({ length: 20000 }, (_, i) => ({ i, s: 'y' + i })));
    if (recent.length > 4) recent.shift();
    peak = Math.max(peak, process.memoryUsage().heapUsed);
  }
  recent = [];
  gc();
  process.stdout.write(String(peak / process.memoryUsage().heapUsed));`;

function peakOverLive(limit: boolean): number {
  const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', '--input-type=module', '-e', churn(limit)], {
    cwd: fileURLToPath(new URL('../..', import.meta.url)),
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`child failed: ${r.stderr}`);
  return Number(r.stdout);
}

describe('limitHeapGrowth', () => {
  it('keeps the heap near what is live between full collections, where V8 alone lets it grow to about 4x', () => {
    const limited = peakOverLive(true);
    const free = peakOverLive(false);
    expect(limited).toBeLessThan(2.6);
    expect(free).toBeGreaterThan(limited + 0.8);
  }, 60_000);

  it('refuses a percent that is not a positive integer', () => {
    expect(() => limitHeapGrowth(0)).toThrow(/positive integer/);
    expect(() => limitHeapGrowth(1.5)).toThrow(/positive integer/);
  });
});
