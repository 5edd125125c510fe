// A throwaway PostgreSQL cluster of its own (initdb into a temporary folder, its own port and socket
// folder) for the tests that restart or stop the server: the machine's shared cluster serves other
// tests at the same time and is never touched.
import { execFile, execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../../bench/processes.ts';

const run = promisify(execFile);

export interface PgCluster {
  port: number;
  dir: string;
  /** URL of database `name` (default postgres) on this cluster. */
  url(name?: string): string;
  /**
   * Stops the server and starts it again. `fast` closes every connection and checkpoints; `immediate`
   * is a crash, recovered from the WAL at the next start. `downMs` keeps it down that long in between
   * (a real restart of a loaded server takes seconds, the throwaway one a fraction of one).
   */
  restart(mode: 'fast' | 'immediate', opts?: { downMs?: number }): Promise<{ ms: number }>;
  /** The last lines of the server's log, for a failure message. */
  log(lines?: number): string;
  /** Stops the server and removes its folder. */
  destroy(): Promise<void>;
}

/** The newest PostgreSQL installed the Debian way (/usr/lib/postgresql/<version>/bin), or ENVOI_TEST_PG_BIN. */
export function postgresBin(): string | null {
  if (process.env.ENVOI_TEST_PG_BIN) return process.env.ENVOI_TEST_PG_BIN;
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(root, versions[0], 'bin') : null;
}

/** initdb refuses to run as root: there the cluster belongs to the `postgres` system user. */
function asOwner(): { prefix: string[]; uid: number | null; gid: number | null } {
  if (process.getuid?.() !== 0) return { prefix: [], uid: null, gid: null };
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  return { prefix: ['runuser', '-u', 'postgres', '--'], uid, gid };
}

export async function startPgCluster(): Promise<PgCluster> {
  const bin = postgresBin();
  if (!bin) throw new Error('no PostgreSQL server binaries found (/usr/lib/postgresql/<version>/bin); set ENVOI_TEST_PG_BIN');
  const owner = asOwner();
  const dir = mkdtempSync(join(tmpdir(), 'envoi-pg-'));
  const data = join(dir, 'data');
  const logFile = join(dir, 'server.log');
  if (owner.uid !== null) chownSync(dir, owner.uid, owner.gid!);
  const argv = (name: string, args: string[]) => [...owner.prefix, join(bin, name), ...args] as [string, ...string[]];
  const tool = (name: string, args: string[]) => {
    const [cmd, ...rest] = argv(name, args);
    return run(cmd, rest, { timeout: 120_000 });
  };
  const ctl = (args: string[]) => tool('pg_ctl', ['-D', data, '-l', logFile, '-w', '-t', '60', ...args]);

  await tool('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync', '--no-instructions']);
  const port = await freePort();
  // fsync off: the tests kill processes, not the machine, so the kernel's page cache keeps every
  // write; syncing would only load the disk other tests share.
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60 -c shared_buffers=32MB`;
  await ctl(['-o', options, 'start']);

  let destroyed = false;
  const stopNow = () => {
    const [cmd, ...rest] = argv('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
    try {
      execFileSync(cmd, rest, { stdio: 'ignore' });
    } catch {
      /* already stopped */
    }
  };
  // If the test process dies before afterAll, the server must not outlive it.
  process.once('exit', () => {
    if (!destroyed) stopNow();
  });

  return {
    port,
    dir,
    url: (name = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${name}`,
    async restart(mode, opts = {}) {
      const t0 = Date.now();
      await ctl(['-m', mode, 'stop']);
      if (opts.downMs) await new Promise((r) => setTimeout(r, opts.downMs));
      await ctl(['-o', options, 'start']);
      return { ms: Date.now() - t0 };
    },
    log(lines = 40) {
      try {
        return readFileSync(logFile, 'utf8').split('\n').slice(-lines).join('\n');
      } catch {
        return '(no server log)';
      }
    },
    async destroy() {
      if (destroyed) return;
      destroyed = true;
      await ctl(['-m', 'immediate', 'stop']).catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
