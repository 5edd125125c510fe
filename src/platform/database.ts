import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { PGlite, types as pgliteTypes } from '@electric-sql/pglite';
import type { Config } from './config.ts';
import type { DB } from './schema.ts';

export type DatabaseKind = 'pglite' | 'postgres';

export interface Database {
  db: Kysely<DB>;
  kind: DatabaseKind;
  /** Runs a script of several statements (migrations). */
  exec(script: string): Promise<void>;
  /**
   * Calls `onMessage` for each NOTIFY on `channel` from any process (PostgreSQL), reconnecting after
   * the server goes away; resolves with the function that stops listening. On PGlite the database is
   * this process's own, whose writers wake their readers directly: nothing to listen to.
   */
  listen(channel: string, onMessage: (payload: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

// Both drivers return the same JS types: int8 as number (counts never near 2^53 here), numeric as
// number, `date` as the ISO day string (pg would otherwise build a Date at local midnight).
const INT8 = 20;
const NUMERIC = 1700;
const DATE = 1082;
pg.types.setTypeParser(INT8, (v) => Number(v));
pg.types.setTypeParser(NUMERIC, (v) => Number(v));
pg.types.setTypeParser(DATE, (v) => v);

export async function openDatabase(config: Pick<Config, 'databaseUrl' | 'dataDir'>, opts: { poolSize?: number } = {}): Promise<Database> {
  if (config.databaseUrl) return openPostgres(config.databaseUrl, opts.poolSize ?? 10);
  return openPGlite(config.dataDir);
}

// SQLSTATEs of a session the server ended or refused (class 08 connection exception, 57P0x shutdown
// or crash recovery, 53300 too many connections) and the socket errors of a server not there.
const CONNECTION_CODES = /^(08...|57P0[123]|53300|ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN)$/;

/**
 * Whether `e` says the database could not be reached or dropped the session (a server restart, a cut
 * connection, a pooler going away) rather than that the statement was wrong: the same work succeeds
 * once the server is back, so it is retried, never recorded as a failure of the work itself.
 */
export function isConnectionError(e: unknown): boolean {
  const err = e as { code?: unknown; message?: unknown; errors?: unknown } | null;
  if (typeof err?.code === 'string' && CONNECTION_CODES.test(err.code)) return true;
  // node-postgres ends a broken client with plain errors ("Connection terminated unexpectedly",
  // "... due to connection timeout", "Client has encountered a connection error and is not queryable").
  if (typeof err?.message === 'string' && /^Connection terminated|is not queryable/.test(err.message)) return true;
  return Array.isArray(err?.errors) && err.errors.some(isConnectionError);
}

/** Called after each query with its SQL and parameters (benchmarks replay the grid's SQL directly). */
export type QueryLog = (sql: string, parameters: readonly unknown[], ms: number) => void;

export async function openPostgres(url: string, poolSize = 10, onQuery?: QueryLog): Promise<Database> {
  const pool = new pg.Pool({ connectionString: url, max: poolSize });
  // A client that loses its server (restart, network) must not crash the process. The pool listens
  // only to its idle clients; one checked out when the server goes (a query in flight) emits 'error'
  // with no listener, an uncaught exception, unless each connection has its own for its whole life.
  // Its query fails by itself, and the pool discards the broken client when it is released.
  pool.on('error', () => {});
  pool.on('connect', (client) => client.on('error', () => {}));
  const db = new Kysely<DB>({
    dialect: new PostgresDialect({ pool }),
    log: onQuery
      ? (e) => {
          if (e.level === 'query') onQuery(e.query.sql, e.query.parameters, e.queryDurationMillis);
        }
      : undefined,
  });
  await sql`select 1`.execute(db);
  return {
    db,
    kind: 'postgres',
    async exec(script) {
      const client = await pool.connect();
      try {
        await client.query(script);
      } finally {
        client.release();
      }
    },
    listen: (channel, onMessage) => listenPostgres(url, channel, onMessage),
    close: () => db.destroy(),
  };
}

async function listenPostgres(url: string, channel: string, onMessage: (payload: string) => void): Promise<() => Promise<void>> {
  let stopped = false;
  let client: pg.Client | null = null;
  let retry: NodeJS.Timeout | null = null;
  const connect = async () => {
    if (stopped) return;
    const c = new pg.Client({ connectionString: url });
    // A lost connection (server restart) is retried; pollers cover the gap.
    c.on('error', () => {
      if (client === c) client = null;
      c.end().catch(() => {});
      if (!stopped) retry = setTimeout(() => void connect(), 1000).unref();
    });
    c.on('notification', (n) => {
      if (n.channel === channel) onMessage(n.payload ?? '');
    });
    try {
      await c.connect();
      await c.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
      client = c;
    } catch {
      c.end().catch(() => {});
      if (!stopped) retry = setTimeout(() => void connect(), 1000).unref();
    }
  };
  await connect();
  return async () => {
    stopped = true;
    if (retry) clearTimeout(retry);
    await client?.end().catch(() => {});
  };
}

/**
 * PGlite's shared buffers: its memory stays the process's once touched, and at PostgreSQL's 128 MB
 * default they were a quarter of an `envoi start` holding a 100,000-contact audience, for no speed
 * the campaign or grid benchmarks could tell apart from 32 MB (BENCHMARKS.md, Campaign).
 */
const PGLITE_SHARED_BUFFERS = '32MB';

/** `dataDir` is a folder, or `memory://` for a throwaway in-memory database (tests). */
export async function openPGlite(dataDir: string): Promise<Database> {
  const inMemory = dataDir === 'memory://';
  if (!inMemory && !existsSync(join(dataDir, 'PG_VERSION'))) {
    try {
      mkdirSync(dataDir, { recursive: true });
    } catch (e) {
      throw new Error(`cannot make the PGlite data folder ${dataDir}: ${(e as Error).message}`);
    }
    await initialiseInChildProcess(dataDir);
  }
  const pglite = await PGlite.create(inMemory ? undefined : dataDir, {
    startParams: [...PGlite.defaultStartParams, '-c', `shared_buffers=${PGLITE_SHARED_BUFFERS}`],
    parsers: {
      [pgliteTypes.INT8]: (v: string) => Number(v),
      [pgliteTypes.NUMERIC]: (v: string) => Number(v),
      [pgliteTypes.DATE]: (v: string) => v,
    },
  });
  if (inMemory) await collectStartupGarbage();
  const pool = new PGlitePool(pglite);
  const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool: pool as unknown as pg.Pool }) });
  return {
    db,
    kind: 'pglite',
    async exec(script) {
      const release = await pool.lock();
      try {
        await pglite.exec(script);
      } finally {
        release();
      }
    },
    listen: async () => async () => {},
    close: () => db.destroy(),
  };
}

/**
 * A new data folder is set up by initdb in a process of its own: in this one, what initdb leaves
 * behind (its WebAssembly instance, and what PGlite keeps of it) held 140 MB of RSS after every
 * collection, for as long as envoi ran (BENCHMARKS.md, Campaign).
 */
async function initialiseInChildProcess(dataDir: string): Promise<void> {
  const script = `const { PGlite } = await import(${JSON.stringify(import.meta.resolve('@electric-sql/pglite'))});
    const db = await PGlite.create(${JSON.stringify(dataDir)});
    await db.close();`;
  await new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    child.once('error', (e) => reject(new Error(`could not start the process that sets up the PGlite data folder ${dataDir}: ${e.message}`)));
    child.once('exit', (code, signal) => (code === 0 ? resolve() : reject(new Error(`setting up the PGlite data folder ${dataDir} failed (${signal ?? `exit ${code}`}): ${stderr.trim()}`))));
  });
}

/**
 * An in-memory database is set up by initdb in this process, a second WebAssembly instance whose memory (about 450 MB)
 * PGlite lets go of once done, but which V8 only frees at its next full collection: in a process
 * that then mostly waits on I/O that can take the whole run (a first `envoi start` sat at 900 MB of
 * RSS instead of 470; BENCHMARKS.md, Campaign). One full collection now, then.
 */
async function collectStartupGarbage() {
  let gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
  }
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
}

/**
 * PGlite is one Postgres backend in this process: one session. Kysely's Postgres dialect asks a pool
 * for a client per query or transaction, so this pool hands out that single session to one borrower
 * at a time; a transaction therefore owns the database until it commits, as it would own its
 * connection on a server.
 */
class PGlitePool {
  #tail: Promise<void> = Promise.resolve();
  #ended = false;
  constructor(private readonly pglite: PGlite) {}

  lock(): Promise<() => void> {
    let release!: () => void;
    const next = new Promise<void>((r) => (release = r));
    const acquired = this.#tail.then(() => release);
    this.#tail = this.#tail.then(() => next);
    return acquired;
  }

  async connect() {
    if (this.#ended) throw new Error('database is closed');
    const release = await this.lock();
    const pglite = this.pglite;
    return {
      async query(text: string, params: unknown[]) {
        // PGlite runs the query on this thread: give sockets and timers their turn first, or a long run
        // of queries (a campaign being resolved) starves SMTP connections into timeouts.
        await new Promise((r) => setImmediate(r));
        // Without parameters, use the simple protocol so a multi-statement script runs as on pg.
        if (params.length === 0) {
          const results = await pglite.exec(text);
          const last = results[results.length - 1];
          return { command: 'UPDATE', rowCount: last?.affectedRows ?? 0, rows: last?.rows ?? [] };
        }
        const res = await pglite.query(text, params);
        return { command: 'UPDATE', rowCount: res.affectedRows ?? 0, rows: res.rows };
      },
      release,
    };
  }

  async end() {
    this.#ended = true;
    const release = await this.lock();
    await this.pglite.close();
    release();
  }
}
