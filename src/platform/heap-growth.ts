import { setFlagsFromString } from 'node:v8';

/**
 * How far V8 lets the old generation grow past what survived its last full collection before it
 * collects again, in percent, in a process that holds the embedded database. Left to itself, on a
 * machine with gigabytes V8 grows it up to 4x: the embedded `envoi start` (PGlite's 128 MB of
 * WebAssembly memory, the server and the worker in one process), whose live objects are 65 MB, ran at
 * 260 MB of heap between collections and peaked at 570-600 MB of RSS; at 50% it peaked at 410-450 MB, with
 * a full collection every second or two of about 10 ms. A worker process on a PostgreSQL server keeps
 * V8's default: it stays under 512 MB without this, and the extra collections cost it ~8% of CPU per
 * message (BENCHMARKS.md, Campaign).
 */
export const HEAP_GROWING_PERCENT = 50;

/** Applies HEAP_GROWING_PERCENT to this process. V8 reads the flag at each full collection: it applies from the next one. */
export function limitHeapGrowth(percent = HEAP_GROWING_PERCENT): void {
  if (!Number.isInteger(percent) || percent < 1) throw new Error(`heap growing percent must be a positive integer, got ${percent}`);
  setFlagsFromString(`--heap-growing-percent=${percent}`);
}
