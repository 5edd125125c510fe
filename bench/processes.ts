// Child processes of a benchmark (envoi processes, postfix's SMTP tools) and what /proc says about
// them: started, watched, stopped on every exit path, their CPU and memory read from Linux's /proc.
import { fileURLToPath } from 'node:url';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';

export interface Child {
  name: string;
  proc: ChildProcess;
  lines: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Every child started, in order: for stopping them all and showing their last lines. */
export const children: Child[] = [];

/** Starts a process whose output is kept (the last 300 lines) for the error report. */
export function startChild(name: string, command: string, args: string[], childEnv: NodeJS.ProcessEnv): Child {
  const proc = spawn(command, args, { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const keep = (chunk: Buffer) => {
    for (const l of chunk.toString('utf8').split('\n')) {
      if (!l.trim()) continue;
      lines.push(l);
      if (lines.length > 300) lines.splice(0, lines.length - 300);
    }
  };
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.once('exit', (code, signal) => {
      lines.push(`[${name} exited: ${signal ?? code}]`);
      resolve({ code, signal });
    });
    proc.once('error', (e) => {
      lines.push(`[${name} could not start: ${String(e)}]`);
      resolve({ code: null, signal: null });
    });
  });
  const child = { name, proc, lines, exited };
  children.push(child);
  return child;
}

export const alive = (c: Child) => c.proc.exitCode === null && c.proc.signalCode === null && c.proc.pid !== undefined;

/** Throws, with the child's last lines, when one of `list` has died. */
export function assertAlive(list: Child[]) {
  for (const c of list) if (!alive(c)) throw new Error(`${c.name} died:\n${c.lines.slice(-30).join('\n')}`);
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
export async function stopChild(c: Child, graceMs = 8000) {
  if (!alive(c)) return;
  c.proc.kill('SIGCONT');
  c.proc.kill('SIGTERM');
  const timer = setTimeout(() => {
    if (alive(c)) c.proc.kill('SIGKILL');
  }, graceMs);
  await c.exited;
  clearTimeout(timer);
}

// Last resort: whatever happens to this process, its children do not outlive it.
process.on('exit', () => {
  for (const c of children) if (alive(c)) c.proc.kill('SIGKILL');
});

export async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined> | T | undefined, child?: Child, everyMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (child && !alive(child)) throw new Error(`${child.name} exited while waiting for ${what}:\n${child.lines.slice(-30).join('\n')}`);
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${child ? `:\n${child.lines.slice(-30).join('\n')}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Resolves true once something on `port` greets like an SMTP server. */
export function smtpGreets(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect(port, '127.0.0.1');
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1000, () => done(false));
    sock.once('error', () => done(false));
    sock.once('data', (d) => {
      sock.write('QUIT\r\n');
      done(d.toString().startsWith('220'));
    });
  });
}

/** The shared tool that fetches smtp-sink / smtp-source from Debian's postfix package without starting postfix (`../shared` beside the checkout). */
export const POSTFIX_TOOLS = process.env.ENVOI_POSTFIX_TOOLS ?? fileURLToPath(new URL('../../shared/tools/postfix-test-tools', import.meta.url));

/** postfix's smtp-sink on a free loopback port (the first run fetches postfix from Debian). */
export async function startPostfixSink(env: NodeJS.ProcessEnv): Promise<{ child: Child; port: number }> {
  const port = await freePort();
  const asRoot = process.getuid?.() === 0 ? ['-u', 'nobody'] : [];
  const child = startChild('smtp-sink', POSTFIX_TOOLS, ['smtp-sink', ...asRoot, `127.0.0.1:${port}`, '1000'], env);
  await until('postfix smtp-sink', 120_000, async () => ((await smtpGreets(port)) ? true : undefined), child);
  return { child, port };
}

// ---- /proc (Linux) ----

export const CLK_TCK = 100;

/**
 * The node flags `envoi worker` runs with here: the README's production setting (a 32 MB young
 * generation semi-space; BENCHMARKS.md, Campaign). BENCH_WORKER_NODE_FLAGS="" runs V8's defaults.
 */
export const WORKER_NODE_FLAGS = (process.env.BENCH_WORKER_NODE_FLAGS ?? '--max-semi-space-size=32').split(/\s+/).filter(Boolean);

/** utime + stime of a process, in clock ticks (0 when it is gone). */
export function ticksOf(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return Number(rest[11]) + Number(rest[12]);
  } catch {
    return 0;
  }
}

/** The PostgreSQL backends serving database `dbName`, with their CPU ticks. */
export function postgresBackends(dbName: string): Map<number, number> {
  const out = new Map<number, number>();
  let pids: string[] = [];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return out;
  }
  for (const d of pids) {
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8');
      if (cmd.startsWith('postgres: ') && cmd.includes(` ${dbName} `)) out.set(Number(d), ticksOf(Number(d)));
    } catch {}
  }
  return out;
}

/** Busy and total ticks of the whole machine (all cores). */
export function machineTicks(): { busy: number; total: number } {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
    return { busy: total - f[3]! - f[4]!, total };
  } catch {
    return { busy: 0, total: 0 };
  }
}

/** A field of /proc/<pid>/status in kB (VmRSS, VmHWM...), NaN when unreadable. */
export function statusKb(pid: number | undefined, field: 'VmRSS' | 'VmHWM'): number {
  if (!pid) return NaN;
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

/** Resets this process's VmHWM to its current RSS; false where /proc/self/clear_refs cannot be written. */
export function resetPeakRss(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}
