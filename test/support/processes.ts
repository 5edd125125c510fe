// envoi as child processes for the crash suites: `envoi worker` and `envoi serve` started from the
// checkout's bin, killed without warning, restarted. The generic parts (start, watch, stop on every exit
// path) are the benchmarks' own helpers.
import { fileURLToPath } from 'node:url';
import { alive, children, startChild, stopChild, type Child } from '../../bench/processes.ts';

export { alive, freePort, stopChild, type Child } from '../../bench/processes.ts';

const BIN = fileURLToPath(new URL('../../bin/envoi.mjs', import.meta.url));

export const TEST_SECRET = 'test-secret-test-secret-test-secret!';

/** The environment of an envoi child: this one's, minus anything that would point it elsewhere. */
export function envoiEnv(vars: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ENVOI_SECRET: TEST_SECRET, LOG_LEVEL: 'warn', ...vars };
  // A developer's config file must not change what the test runs against.
  delete env.ENVOI_CONFIG;
  if (!('DATABASE_URL' in vars)) delete env.DATABASE_URL;
  return env;
}

export function startEnvoi(name: string, command: 'worker' | 'serve', env: NodeJS.ProcessEnv): Child {
  return startChild(name, process.execPath, [BIN, command], env);
}

/** Waits until `check` holds, failing early (with its last lines) if `child` dies meanwhile. */
export async function untilWith(child: Child | null, what: string, ms: number, check: () => Promise<boolean> | boolean): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (child && !alive(child)) throw new Error(`${child.name} exited while waiting for ${what}:\n${child.lines.slice(-30).join('\n')}`);
    if (await check()) return;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}${child ? `; last lines of ${child.name}:\n${child.lines.slice(-30).join('\n')}` : ''}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Starts `envoi worker` and resolves with it and the id it leases deliveries under, once it runs. */
export async function startWorker(name: string, env: NodeJS.ProcessEnv): Promise<{ child: Child; id: string }> {
  const child = startEnvoi(name, 'worker', env);
  let id: string | undefined;
  await untilWith(child, `${name} to start`, 90_000, () => {
    for (const l of child.lines) id ??= /^envoi worker (\S+) on PostgreSQL/.exec(l)?.[1];
    return id !== undefined;
  });
  return { child, id: id! };
}

/** Starts `envoi serve` on `port` and resolves once it answers /healthz. */
export async function startServer(name: string, port: number, env: NodeJS.ProcessEnv): Promise<Child> {
  const child = startEnvoi(name, 'serve', { ...env, HOST: '127.0.0.1', PORT: String(port), ENVOI_PUBLIC_URL: `http://127.0.0.1:${port}` });
  await untilWith(child, `${name} to answer /healthz`, 90_000, async () => (await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok).catch(() => false)));
  return child;
}

/** SIGKILL: no handler runs, nothing is flushed or recorded. Resolves once the process is gone. */
export async function killHard(c: Child): Promise<void> {
  if (!alive(c)) return;
  c.proc.kill('SIGKILL');
  await c.exited;
}

/** Stops children politely (SIGTERM, then SIGKILL). */
export async function stopAll(list: readonly (Child | null | undefined)[]): Promise<void> {
  await Promise.all(list.filter((c): c is Child => Boolean(c)).map((c) => stopChild(c, 10_000)));
}

/** Every child this test file started, in order, whether it came up or not: for afterAll and for reading their logs. */
export const started: readonly Child[] = children;

/** Log lines of level warn or error (envoi logs one JSON object per line). */
export function problems(c: Child): string[] {
  return c.lines.filter((l) => /"level":"(warn|error)"/.test(l) || /^\{"level":(40|50|60)/.test(l));
}

/**
 * A small seeded generator (mulberry32): the random moments of a crash run are printed with their
 * seed, and the same seed gives the same moments again.
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seed of this run: ENVOI_CRASH_SEED to replay one, otherwise a fresh one. */
export function crashSeed(): number {
  const given = process.env.ENVOI_CRASH_SEED;
  if (given !== undefined && given !== '') {
    const n = Number(given);
    if (!Number.isInteger(n) || n < 0) throw new Error(`ENVOI_CRASH_SEED must be a non-negative integer, got "${given}"`);
    return n;
  }
  return Math.floor(Math.random() * 2 ** 31);
}

/** "message (n); ..." for log lines, grouped by their message: what went wrong, in one line. */
export function summarise(lines: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const l of lines) {
    let msg = l.slice(0, 100);
    try {
      const j = JSON.parse(l) as { msg?: unknown };
      if (typeof j.msg === 'string') msg = j.msg;
    } catch {
      /* not a JSON line */
    }
    counts.set(msg, (counts.get(msg) ?? 0) + 1);
  }
  return [...counts].map(([m, n]) => `${m} (${n})`).join('; ');
}
