// Triggered-API benchmark: POST /v1/messages end to end on PostgreSQL, with real processes.
// `envoi serve` (the API; with DATABASE_URL it runs no worker), BENCH_WORKERS `envoi worker` processes
// sending to an SMTP sink in a process of its own (postfix's smtp-sink, or a smtp-server script), and
// autocannon in this process. Each request is a distinct recipient (a pre-created contact) and a
// distinct idempotency key; the template is personalised (subject and body) and has a tracked link.
// For each load (300/s, 1,000/s, then as fast as it goes), two baselines are measured first with the
// same connections and rate: the same server's GET /healthz (the no-op route), and pgbench running a
// single-row INSERT (autocommit: one durable commit per row) on the same database. Every accept is
// committed before its 202, so accepted/s is compared with both.
// After each load the bench waits for the queue to drain, then reads accept -> SMTP hand-off
// (deliveries.sent_at - created_at) from the database.
// Last, the workers are paused (SIGSTOP): healthz, pgbench and the API are loaded as fast as they go
// with nothing else running (the API alone, and how many messages share each write transaction),
// then the workers are resumed with the API idle: their hand-off rate on that backlog is the capacity
// the API would meet next.
// Also measured: the statements one accepted message costs, alone and with `connections` requests at
// once (counted in this process through the same service code), raw PostgreSQL round trips and
// hot-row upserts, CPU per process from /proc, and PL/pgSQL trigger time (track_functions on the bench
// database).
//   npm run bench -- triggered                   (about 5 minutes; BENCH_SECONDS=5 for about 2)
//   BENCH_SECONDS=15       each load and each baseline      BENCH_CONNECTIONS=50   autocannon connections, pgbench clients
//   BENCH_WORKERS=2        `envoi worker` processes          BENCH_RATES=300,1000,max (none: only the paused-worker phase)
//   BENCH_SINK=postfix     or node (smtp-server script)      BENCH_WARMUP_SECONDS=3, BENCH_DRAIN_SECONDS=180
//   BENCH_BACKLOG=0        skips the paused-worker phase     BENCH_PROFILE=/dir     V8 CPU profiles of serve and workers
//   BENCH_KEEP_DB=1        keeps the bench database (its name is printed; drop it yourself)
//   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres (the admin URL; a fresh database is created and dropped)
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import autocannon from 'autocannon';
import pg from 'pg';
import { loadConfig } from '../src/platform/config.ts';
import { openPostgres } from '../src/platform/database.ts';
import { createContext } from '../src/platform/context.ts';
import * as orgs from '../src/organisations/service.ts';
import * as sending from '../src/sending/service.ts';
import { fmt, printTable, writeResults, type Row } from './support.ts';
import { assertAlive, children, CLK_TCK, POSTFIX_TOOLS, WORKER_NODE_FLAGS, freePort, machineTicks, postgresBackends, smtpGreets, startChild, stopChild, ticksOf, until, type Child } from './processes.ts';

const env = process.env;
const int = (name: string, fallback: number, min = 1) => {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min) throw new Error(`${name} must be a number >= ${min}, got "${raw}"`);
  return n;
};

async function startSink(): Promise<{ child: Child; port: number; kind: string }> {
  const wanted = env.BENCH_SINK ?? 'postfix';
  if (wanted === 'postfix') {
    const port = await freePort();
    const asRoot = process.getuid?.() === 0 ? ['-u', 'nobody'] : [];
    const child = startChild('smtp-sink', POSTFIX_TOOLS, ['smtp-sink', ...asRoot, `127.0.0.1:${port}`, '1000'], env);
    try {
      // The first run downloads postfix from Debian.
      await until('postfix smtp-sink', 120_000, async () => ((await smtpGreets(port)) ? true : undefined), child);
      return { child, port, kind: "postfix's smtp-sink" };
    } catch (e) {
      console.error(`postfix smtp-sink unavailable (${(e as Error).message.split('\n')[0]}); using the smtp-server sink`);
      await stopChild(child);
    }
  }
  const child = startChild('smtp-sink', process.execPath, ['--import', 'tsx', 'bench/smtp-sink-process.ts', '0'], env);
  const port = await until('smtp-server sink', 30_000, () => {
    const m = child.lines.map((l) => /^listening (\d+)/.exec(l)).find(Boolean);
    return m ? Number(m[1]) : undefined;
  }, child);
  return { child, port, kind: 'smtp-server (node, own process)' };
}

// ---- CPU accounting from /proc (Linux): which process is using the cores ----

interface CpuSnap {
  t: number;
  serve: number;
  workers: number;
  sink: number;
  pg: Map<number, number>;
  bench: NodeJS.CpuUsage;
  machine: { busy: number; total: number };
}

function cpuSnap(p: { serve: Child; workers: Child[]; sink: Child; dbName: string }): CpuSnap {
  return {
    t: performance.now(),
    serve: ticksOf(p.serve.proc.pid),
    workers: p.workers.reduce((a, w) => a + ticksOf(w.proc.pid), 0),
    sink: ticksOf(p.sink.proc.pid),
    pg: postgresBackends(p.dbName),
    bench: process.cpuUsage(),
    machine: machineTicks(),
  };
}

/** Cores used by each part between two snapshots. */
function cores(a: CpuSnap, b: CpuSnap) {
  const s = (b.t - a.t) / 1000;
  let pgTicks = 0;
  for (const [pid, t] of b.pg) pgTicks += t - (a.pg.get(pid) ?? 0);
  const bench = (b.bench.user - a.bench.user + b.bench.system - a.bench.system) / 1e6 / s;
  const c = (ticks: number) => ticks / CLK_TCK / s;
  const machineTotal = b.machine.total - a.machine.total;
  const ours = c(b.serve - a.serve) + c(b.workers - a.workers) + c(b.sink - a.sink) + c(pgTicks) + bench;
  const machine = machineTotal > 0 ? ((b.machine.busy - a.machine.busy) / machineTotal) * (machineTotal / CLK_TCK / s) : 0;
  return {
    seconds: s,
    serve: c(b.serve - a.serve),
    workers: c(b.workers - a.workers),
    sink: c(b.sink - a.sink),
    postgres: c(pgTicks),
    autocannon: bench,
    machineBusy: machine,
    others: Math.max(0, machine - ours),
  };
}
type Cores = ReturnType<typeof cores>;
const coresLine = (c: Cores) =>
  c.seconds < 0.5
    ? `n/a (${fmt(c.seconds, 2)} s window)`
    : `serve ${fmt(c.serve, 2)}, workers ${fmt(c.workers, 2)}, postgres ${fmt(c.postgres, 2)}, sink ${fmt(c.sink, 2)}, autocannon ${fmt(c.autocannon, 2)}; others ${fmt(c.others, 2)}`;

// ---- load ----

interface LoadResult {
  seconds: number;
  accepted: number;
  acceptedPerSecond: number;
  requestsPerSecond: number;
  statusCodes: Record<string, number>;
  non2xx: number;
  errors: number;
  timeouts: number;
  latency: { p50: number; p90: number; p99: number; max: number; mean: number };
}

async function load(opts: autocannon.Options, acceptStatus: number): Promise<LoadResult> {
  const r = await autocannon(opts);
  const statusCodes = Object.fromEntries(Object.entries(r.statusCodeStats ?? {}).map(([k, v]) => [k, (v as { count: number }).count]));
  const accepted = statusCodes[String(acceptStatus)] ?? 0;
  const total = Object.values(statusCodes).reduce((a, b) => a + b, 0);
  return {
    seconds: r.duration,
    accepted,
    acceptedPerSecond: accepted / r.duration,
    requestsPerSecond: total / r.duration,
    statusCodes,
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    // autocannon records the latency of 2xx responses only: here, of the 202s (or the healthz 200s)
    latency: { p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99, max: r.latency.max, mean: r.latency.mean },
  };
}

// ---- pgbench: the database's own single-row insert rate at the same concurrency ----

/**
 * PostgreSQL's pgbench running a one-row INSERT (autocommit, so one commit each) with `clients`
 * connections for `seconds`, at `rate` transactions per second if given: the durable-write baseline
 * of the same machine in the same run.
 */
async function pgbenchInsert(url: string, clients: number, seconds: number, rate?: number): Promise<{ tps: number; latencyMs: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'envoi-pgbench-'));
  const script = join(dir, 'insert.sql');
  writeFileSync(script, '\\set v random(1, 1000000000)\nINSERT INTO bench_pgbench (v) VALUES (:v);\n');
  try {
    const args = ['-n', '-c', String(clients), '-j', '2', '-T', String(Math.max(1, Math.round(seconds))), '-f', script, ...(rate ? ['-R', String(rate)] : []), url];
    const out = await new Promise<string>((resolve, reject) => {
      execFile('pgbench', args, { maxBuffer: 1 << 20 }, (err, stdout, stderr) => (err ? reject(new Error(`pgbench: ${err.message}\n${stderr}`)) : resolve(stdout)));
    });
    const tps = /tps = ([\d.]+)/.exec(out);
    const latency = /latency average = ([\d.]+) ms/.exec(out);
    if (!tps) throw new Error(`pgbench printed no tps:\n${out}`);
    return { tps: Number(tps[1]), latencyMs: latency ? Number(latency[1]) : NaN };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- the benchmark ----

export async function triggeredBench() {
  const seconds = int('BENCH_SECONDS', 15);
  const connections = int('BENCH_CONNECTIONS', 50);
  const workerCount = int('BENCH_WORKERS', 2);
  const warmupSeconds = int('BENCH_WARMUP_SECONDS', 3, 0);
  const drainSeconds = int('BENCH_DRAIN_SECONDS', 180);
  const settings = (env.BENCH_RATES ?? '300,1000,max').split(',').map((s) => s.trim()).filter((s) => s && s !== 'none').map((s) => {
    if (s === 'max') return { label: 'max', rate: undefined as number | undefined };
    const n = Number(s);
    if (!Number.isInteger(n) || n < 1) throw new Error(`BENCH_RATES: "${s}" is neither a rate nor max`);
    return { label: `${fmt(n, 0)}/s`, rate: n };
  });

  const adminUrl = env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const dbName = `envoi_bench_triggered_${Date.now()}`;
  const url = adminUrl.replace(/\/[^/?]*(\?|$)/, `/${dbName}$1`);
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  // PL/pgSQL time (triggers) per function in pg_stat_user_functions, for this database only
  await admin.query(`ALTER DATABASE ${dbName} SET track_functions = 'pl'`);
  const db = new pg.Pool({ connectionString: url, max: 2 });
  db.on('error', () => {});

  let cleaned: Promise<void> | null = null;
  const cleanup = () =>
    (cleaned ??= (async () => {
      await Promise.all(children.filter((c) => c.name !== 'smtp-sink').map((c) => stopChild(c)));
      await Promise.all(children.map((c) => stopChild(c)));
      await db.end().catch(() => {});
      // BENCH_KEEP_DB=1 keeps it, seeded and loaded, for EXPLAIN of the accept statements afterwards.
      if (env.BENCH_KEEP_DB === '1') console.error(`kept database ${dbName}`);
      else await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch((e) => console.error(`could not drop ${dbName}: ${String(e)}`));
      await admin.end().catch(() => {});
    })());
  const onSignal = (sig: NodeJS.Signals) => {
    console.error(`\n${sig}: stopping the bench's processes and dropping ${dbName}`);
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const results: Record<string, unknown> = { database: 'postgres', seconds, connections, workers: workerCount, startedAt: new Date().toISOString() };
  const rows: Row[] = [];
  let failed = false;
  try {
    // 1. processes: the sink, the API, the workers
    const sink = await startSink();
    const smtpUrl = `smtp://127.0.0.1:${sink.port}`;
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const common: NodeJS.ProcessEnv = {
      ...env,
      DATABASE_URL: url,
      HOST: '127.0.0.1',
      PORT: String(port),
      ENVOI_PUBLIC_URL: base,
      ENVOI_SECRET: randomBytes(24).toString('hex'),
      LOG_LEVEL: 'warn',
      NODE_ENV: 'production',
    };
    delete common.ENVOI_CONFIG;
    // BENCH_PROFILE=dir: V8 CPU profiles of serve and the workers (written when they stop) to see where their time goes.
    const prof = env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${env.BENCH_PROFILE}`] : [];
    const serve = startChild('envoi serve', process.execPath, [...prof, 'bin/envoi.mjs', 'serve'], common);
    await until('envoi serve /healthz', 90_000, async () => ((await fetch(`${base}/healthz`).then((r) => r.ok).catch(() => false)) ? true : undefined), serve);
    const workers: Child[] = [];
    for (let i = 0; i < workerCount; i++) workers.push(startChild(`envoi worker ${i + 1}`, process.execPath, [...WORKER_NODE_FLAGS, ...prof, 'bin/envoi.mjs', 'worker'], { ...common, SMTP_URL: smtpUrl }));
    for (const w of workers) await until(`${w.name} start`, 90_000, () => (w.lines.some((l) => l.startsWith('envoi worker ')) ? true : undefined), w);
    const procs = { serve, workers, sink: sink.child, dbName };
    results.sink = sink.kind;

    // 2. an organisation, an audience, a personalised transactional template, a key without a practical limit
    const api = async (method: string, path: string, token: string | null, body?: unknown) => {
      const r = await fetch(base + path, {
        method,
        headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: body !== undefined ? JSON.stringify(body) : undefined,
      });
      const text = await r.text();
      if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
      return JSON.parse(text) as Record<string, any>;
    };
    const org = await api('POST', '/v1/organisations', null, { name: 'Bench events', owner_email: 'owner@bench.example.com', owner_password: 'bench bench bench' });
    const session = org.token as string;
    const audience = await api('POST', '/v1/audiences', session, { name: 'Bench audience' });
    const template = await api('POST', `/v1/audiences/${audience.id}/templates`, session, {
      name: 'Booking confirmation',
      category: 'transactional',
      language: 'en',
      subject: 'Booking {{ booking }} confirmed, {{ first_name }}',
      format: 'html',
      body:
        '<html><body><p>Hello {{ first_name }} {{ last_name }},</p>' +
        '<p>Your booking <strong>{{ booking }}</strong> with {{ organisation_name }} is confirmed for {{ vars.seats }} seat(s).</p>' +
        '<p><a href="https://tickets.example.com/bookings/{{ booking }}">See your booking</a></p>' +
        '<p>Kind regards,<br>{{ organisation_name }}</p></body></html>',
    });
    const key = await api('POST', '/v1/api-keys', session, { name: 'bench', role: 'editor', rate_limit_per_minute: 1_000_000 });
    // Lifted: 2e9 per minute (the API caps what it accepts at 1,000,000; the column is an integer > 0).
    await db.query('UPDATE api_keys SET rate_limit_per_minute = 2000000000 WHERE id = $1', [key.id]);

    // Recipients: enough pre-created contacts for every request of every load, at up to 3,000/s for the uncapped one.
    const perSetting = settings.map((s) => Math.ceil((s.rate ?? 5000) * seconds * 1.2) + connections * 2);
    const poolSize = perSetting.reduce((a, b) => a + b, 0) + Math.ceil(5000 * (warmupSeconds + seconds) * 1.2) + connections + 1000;
    const ins = await db.query(
      `INSERT INTO contacts (org_id, audience_id, email, email_lower, first_name, last_name)
       SELECT $1, $2, 'guest' || i || '@bench.example.com', 'guest' || i || '@bench.example.com', 'Ada' || i, 'Lovelace' || i
       FROM generate_series(1, $3::int) AS i
       RETURNING id`,
      [org.organisation.id, audience.id, poolSize],
    );
    const contactIds = ins.rows.map((r: { id: string }) => r.id);
    await db.query('ANALYZE');
    let nextContact = 0;
    let beyondPool = 0;

    const headers = { 'content-type': 'application/json', authorization: `Bearer ${key.key}` };
    const messageBody = (prefix: string, i: number) => {
      const id = contactIds[nextContact++];
      if (!id) beyondPool++;
      return JSON.stringify({
        template_id: template.id,
        to: id ? { contact_id: id } : { email: `extra-${prefix}${i}@bench.example.com`, first_name: 'Extra', last_name: String(i) },
        variables: { booking: `B-${prefix}${i}`, seats: (i % 4) + 1 },
        idempotency_key: `${prefix}${i}`,
      });
    };

    // 3. one message by hand: proves the path (API -> queue -> worker -> sink) before loading it
    const first = await api('POST', '/v1/messages', key.key as string, JSON.parse(messageBody('probe-', 0)));
    await until('the probe message to reach the sink', 30_000, async () => {
      assertAlive(children);
      const r = await db.query('SELECT status, last_error FROM deliveries WHERE id = $1', [first.delivery_id]);
      const d = r.rows[0];
      if (d?.status === 'sent') return true;
      if (d && !['queued', 'sending'].includes(d.status)) throw new Error(`probe delivery ended ${d.status}: ${d.last_error}`);
      return undefined;
    });

    // 4. what one accepted message costs the database, counted in this process through the same service
    //    code the route runs (authenticate, rate limit, acceptTriggered), and the round-trip ceiling of
    //    this machine's PostgreSQL from Node (SELECT 1, as many clients as the API's pool).
    const statements: string[] = [];
    const counted = await openPostgres(url, 10, (q) => statements.push(q.replace(/\s+/g, ' ').slice(0, 160)));
    let cohortStatements = 0;
    try {
      const ctx = createContext({ ...loadConfig({}), databaseUrl: url, publicUrl: base }, counted);
      const p = (await orgs.authenticate(ctx, key.key as string))!;
      await sending.acceptTriggered(ctx, p, JSON.parse(messageBody('count-', 0))); // compiles and caches the template
      statements.length = 0;
      const p2 = (await orgs.authenticate(ctx, key.key as string))!;
      await sending.checkRateLimit(ctx, p2);
      await sending.acceptTriggered(ctx, p2, JSON.parse(messageBody('count-', 1)));
      // The same, for as many requests at once as the load has connections: what a batch costs each.
      const lone = [...statements];
      statements.length = 0;
      await Promise.all(
        Array.from({ length: connections }, async (_, i) => {
          const pi = (await orgs.authenticate(ctx, key.key as string))!;
          await sending.checkRateLimit(ctx, pi);
          await sending.acceptTriggered(ctx, pi, JSON.parse(messageBody('count-', 2 + i)));
        }),
      );
      cohortStatements = statements.length;
      statements.length = 0;
      statements.push(...lone);
    } finally {
      await counted.close();
    }
    const perMessage = statements.length;
    const perMessageInCohort = cohortStatements / connections;
    results.statementsPerAcceptedMessage = { count: perMessage, statements, cohort: { requests: connections, statements: cohortStatements, perMessage: perMessageInCohort } };
    // Raw PostgreSQL from Node, `connections` callers on a pool of 10 (the API's): a round trip, an
    // autocommit insert of distinct rows (group commit), and the rate limit's upsert of one hot row
    // (what every request of one API key does to rate_counters), on a scratch table.
    const raw = new pg.Pool({ connectionString: url, max: 10 });
    raw.on('error', () => {});
    const hammer = async (ms: number, fn: (i: number) => Promise<unknown>) => {
      let n = 0;
      const t0 = performance.now();
      const end = t0 + ms;
      await Promise.all(
        Array.from({ length: connections }, async () => {
          while (performance.now() < end) await fn(n++);
        }),
      );
      return n / ((performance.now() - t0) / 1000);
    };
    await raw.query('CREATE TABLE bench_counters (key text, window_start timestamptz, count integer NOT NULL, PRIMARY KEY (key, window_start))');
    const roundTripsPerSecond = await hammer(3000, () => raw.query('SELECT 1'));
    const distinctInsertsPerSecond = await hammer(3000, (i) => raw.query(`INSERT INTO bench_counters VALUES ($1, '2026-01-01', 1)`, [`row-${i}`]));
    const hotUpsertsPerSecond = await hammer(3000, () =>
      raw.query(`INSERT INTO bench_counters VALUES ('key:one', '2026-01-01', 1) ON CONFLICT (key, window_start) DO UPDATE SET count = bench_counters.count + 1`),
    );
    await raw.query('DROP TABLE bench_counters');
    await raw.end();
    results.postgres = { roundTripsPerSecond, distinctInsertsPerSecond, hotUpsertsPerSecond };

    const plpgsql = async () =>
      new Map(
        (await db.query('SELECT funcname, calls, total_time FROM pg_stat_user_functions')).rows.map((r: { funcname: string; calls: number; total_time: number }) => [
          r.funcname,
          { calls: Number(r.calls), ms: Number(r.total_time) },
        ]),
      );
    const commits = async () => Number((await db.query('SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()')).rows[0].xact_commit);

    const triggeredOpts = (prefix: string, rate: number | undefined, duration: number): autocannon.Options => {
      let n = 0;
      return {
        url: base,
        method: 'POST',
        headers,
        connections,
        duration,
        ...(rate ? { overallRate: rate } : {}),
        requests: [
          {
            setupRequest: (req: any) => {
              req.path = '/v1/messages';
              req.body = messageBody(prefix, n++);
              return req;
            },
          },
        ],
      };
    };

    // Done when nothing is pending and no delivery has appeared for a while: requests autocannon gave
    // up on at the end of its run are still being accepted by the API for up to about their latency.
    const drain = async (label: string, settleMs = 1000) => {
      const t0 = performance.now();
      const end = Date.now() + drainSeconds * 1000;
      let lastTotal = -1;
      let stableSince = performance.now();
      for (;;) {
        assertAlive(children);
        const r = await db.query(`SELECT count(*) FILTER (WHERE status IN ('queued', 'sending', 'deferred'))::int AS n, count(*)::int AS total FROM deliveries`);
        const now = performance.now();
        if (r.rows[0].total !== lastTotal) {
          lastTotal = r.rows[0].total;
          stableSince = now;
        }
        if (r.rows[0].n === 0 && now - stableSince >= settleMs) return { ms: now - t0, timedOut: false, pending: 0 };
        if (Date.now() > end) {
          console.error(`${label}: ${r.rows[0].n} deliveries still pending after ${drainSeconds} s; measuring what was sent`);
          return { ms: performance.now() - t0, timedOut: true, pending: r.rows[0].n as number };
        }
        await new Promise((res) => setTimeout(res, 250));
      }
    };

    // warm-up: JIT, pools, template caches; not measured
    if (warmupSeconds > 0) {
      await load(triggeredOpts('warm-', undefined, warmupSeconds), 202);
      await drain('warm-up');
    }

    await db.query('CREATE TABLE bench_pgbench (id bigserial PRIMARY KEY, v integer NOT NULL, at timestamptz NOT NULL DEFAULT now())');
    const pgbenchMax = await pgbenchInsert(url, connections, seconds);
    results.pgbench = { clients: connections, max: pgbenchMax };
    rows.push(
      { measure: 'statements per accepted message (API side), one request alone', value: fmt(perMessage, 0), baseline: 'see results JSON for the list' },
      {
        measure: `statements per accepted message, ${connections} requests at once`,
        value: fmt(perMessageInCohort, 2),
        baseline: `${fmt(cohortStatements, 0)} statements for ${connections} messages`,
        target: 'batched lookups and one write',
      },
      { measure: `pgbench single-row INSERT, ${connections} clients, as fast as it goes`, value: `${fmt(pgbenchMax.tps, 0)}/s`, baseline: `latency avg ${fmt(pgbenchMax.latencyMs, 2)} ms` },
      {
        measure: 'PostgreSQL round trips/s (SELECT 1, pool of 10)',
        value: fmt(roundTripsPerSecond, 0),
        baseline: `ceiling ${fmt(roundTripsPerSecond / perMessage, 0)} msg/s`,
        target: 'round trips / statements',
      },
      { measure: 'PostgreSQL autocommit inserts/s, distinct rows', value: fmt(distinctInsertsPerSecond, 0), baseline: 'group commit' },
      {
        measure: 'PostgreSQL upserts/s of one hot row (= one key\'s rate counter)',
        value: fmt(hotUpsertsPerSecond, 0),
        baseline: `${fmt(distinctInsertsPerSecond, 0)} distinct rows/s`,
        ratio: `${fmt(hotUpsertsPerSecond / distinctInsertsPerSecond, 2)}x`,
        target: 'ceiling per API key',
      },
    );
    const runs: Record<string, unknown>[] = [];
    for (const [idx, s] of settings.entries()) {
      assertAlive(children);
      const h0 = cpuSnap(procs);
      const healthz = await load({ url: `${base}/healthz`, connections, duration: seconds, ...(s.rate ? { overallRate: s.rate } : {}) }, 200);
      const h1 = cpuSnap(procs);
      const pgb = await pgbenchInsert(url, connections, seconds, s.rate);
      const prefix = `run${idx}-`;
      const x0 = await commits();
      const f0 = await plpgsql();
      const c0 = cpuSnap(procs);
      const trig = await load(triggeredOpts(prefix, s.rate, seconds), 202);
      const loadEnded = Date.now();
      const c1 = cpuSnap(procs);
      const drained = await drain(s.label, Math.max(1000, 1.5 * trig.latency.p99));
      const c2 = cpuSnap(procs);
      await new Promise((r) => setTimeout(r, 1100)); // PostgreSQL flushes its statistics at most once a second
      const x1 = await commits();
      const f1 = await plpgsql();
      const q = await db.query(
        `SELECT count(*)::int AS deliveries,
                count(*) FILTER (WHERE d.status = 'sent')::int AS sent,
                count(*) FILTER (WHERE d.status <> 'sent')::int AS not_sent,
                percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM d.sent_at - d.created_at) * 1000) FILTER (WHERE d.status = 'sent') AS p50,
                percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM d.sent_at - d.created_at) * 1000) FILTER (WHERE d.status = 'sent') AS p90,
                percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM d.sent_at - d.created_at) * 1000) FILTER (WHERE d.status = 'sent') AS p99,
                max(extract(epoch FROM d.sent_at - d.created_at) * 1000) AS max,
                max(d.sent_at) AS last_sent,
                extract(epoch FROM max(d.sent_at) - min(d.created_at)) AS span_s,
                extract(epoch FROM max(d.sent_at) - min(d.sent_at)) AS send_span_s
         FROM deliveries d JOIN messages m ON m.id = d.message_id
         WHERE m.idempotency_key LIKE $1`,
        [`${prefix}%`],
      );
      const st = q.rows[0];
      const byStatus = await db.query(
        `SELECT d.status, count(*)::int AS n FROM deliveries d JOIN messages m ON m.id = d.message_id WHERE m.idempotency_key LIKE $1 AND d.status <> 'sent' GROUP BY 1`,
        [`${prefix}%`],
      );
      const handoff = { p50: Number(st.p50 ?? NaN), p90: Number(st.p90 ?? NaN), p99: Number(st.p99 ?? NaN), max: Number(st.max ?? NaN) };
      const workerRate = st.sent > 1 && Number(st.send_span_s) > 0 ? st.sent / Number(st.send_span_s) : NaN;
      const loadCores = cores(c0, c1);
      // CPU milliseconds per message over load + drain (what each message cost each process, whatever the noise)
      const total = cores(c0, c2);
      const perMessage = (coresUsed: number, n: number) => (n > 0 ? (coresUsed * total.seconds * 1000) / n : NaN);
      // PL/pgSQL functions (the triggers) run by this load and its drain, ms per delivery, outermost first
      const functionsMs = Object.fromEntries(
        [...f1]
          .map(([name, v]) => [name, { calls: v.calls - (f0.get(name)?.calls ?? 0), msPerMessage: st.deliveries ? (v.ms - (f0.get(name)?.ms ?? 0)) / st.deliveries : NaN }] as const)
          .filter(([, v]) => v.calls > 0)
          .sort((a, b) => b[1].msPerMessage - a[1].msPerMessage),
      );
      const healthzCores = cores(h0, h1);
      const healthzRequests = Object.values(healthz.statusCodes).reduce((a, b) => a + b, 0);
      const cpuMs = {
        servePerMessage: perMessage(total.serve, st.deliveries),
        servePerHealthz: healthzRequests ? (healthzCores.serve * healthzCores.seconds * 1000) / healthzRequests : NaN,
        workersPerMessage: perMessage(total.workers, st.sent),
        postgresPerMessage: perMessage(total.postgres, st.deliveries),
      };
      const drainCores = cores(c1, c2);
      const run = {
        setting: s.label,
        offeredRate: s.rate ?? null,
        healthz,
        pgbench: pgb,
        triggered: trig,
        deliveries: st.deliveries,
        sent: st.sent,
        notSent: st.not_sent,
        notSentByStatus: Object.fromEntries(byStatus.rows.map((r: { status: string; n: number }) => [r.status, r.n])),
        handoffMs: handoff,
        workerSendsPerSecond: workerRate,
        drain: drained,
        lastHandoffAfterLoadMs: st.last_sent ? new Date(st.last_sent).getTime() - loadEnded : null,
        commitsPerDelivery: st.deliveries ? (x1 - x0) / st.deliveries : NaN,
        cpuMsPerMessage: cpuMs,
        plpgsqlMsPerMessage: functionsMs,
        cpuCoresDuringLoad: loadCores,
        cpuCoresDuringDrain: drainCores,
      };
      runs.push(run);

      const non2xx = Object.entries(trig.statusCodes).filter(([k]) => k !== '202');
      const ratio = (a: number, b: number, d = 2) => (b > 0 && Number.isFinite(a) ? `${fmt(a / b, a / b < 0.1 ? 3 : d)}x` : '');
      rows.push(
        {
          measure: `[${s.label}] accepted (202)/s`,
          value: fmt(trig.acceptedPerSecond, 0),
          baseline: `healthz ${fmt(healthz.acceptedPerSecond, 0)} req/s; pgbench INSERT ${fmt(pgb.tps, 0)}/s`,
          ratio: `${ratio(trig.acceptedPerSecond, healthz.acceptedPerSecond)} / ${ratio(trig.acceptedPerSecond, pgb.tps)}`,
          target: '>= 0.5x both',
        },
        {
          measure: `[${s.label}] non-2xx, errors`,
          value: `${fmt(trig.non2xx, 0)} non-2xx${non2xx.length ? ` (${non2xx.map(([k, v]) => `${k}: ${v}`).join(', ')})` : ''}, ${fmt(trig.errors, 0)} errors, ${fmt(trig.timeouts, 0)} timeouts`,
          baseline: `healthz ${fmt(healthz.non2xx + healthz.errors, 0)}`,
        },
        {
          measure: `[${s.label}] 202 latency p50 / p99`,
          value: `${fmt(trig.latency.p50)} / ${fmt(trig.latency.p99)} ms`,
          baseline: `healthz ${fmt(healthz.latency.p50)} / ${fmt(healthz.latency.p99)} ms`,
          ratio: `${ratio(trig.latency.p50, Math.max(healthz.latency.p50, 1), 1)} / ${ratio(trig.latency.p99, Math.max(healthz.latency.p99, 1), 1)}`,
        },
        {
          measure: `[${s.label}] accept -> SMTP hand-off p50 / p99`,
          value: `${fmt(handoff.p50)} / ${fmt(handoff.p99)} ms`,
          baseline: `202 p50 / p99 ${fmt(trig.latency.p50)} / ${fmt(trig.latency.p99)} ms`,
          ratio: `${ratio(handoff.p50, Math.max(trig.latency.p50, 1), 1)} / ${ratio(handoff.p99, Math.max(trig.latency.p99, 1), 1)}`,
        },
        {
          measure: `[${s.label}] deliveries not sent`,
          value: `${fmt(st.not_sent, 0)} of ${fmt(st.deliveries, 0)}${byStatus.rows.length ? ` (${byStatus.rows.map((r: any) => `${r.status}: ${r.n}`).join(', ')})` : ''}`,
          baseline: drained.timedOut
            ? `drain timed out (${drainSeconds} s)`
            : `last hand-off ${st.last_sent ? fmt((new Date(st.last_sent).getTime() - loadEnded) / 1000, 1) : '?'} s after the load`,
        },
        {
          measure: `[${s.label}] worker hand-offs/s (${workerCount} worker${workerCount > 1 ? 's' : ''})`,
          value: fmt(workerRate, 0),
          baseline: `202s ${fmt(trig.acceptedPerSecond, 0)}/s`,
          ratio: ratio(workerRate, trig.acceptedPerSecond),
        },
        { measure: `[${s.label}] PostgreSQL commits per message (API + worker)`, value: fmt(st.deliveries ? (x1 - x0) / st.deliveries : NaN, 1) },
        {
          measure: `[${s.label}] CPU ms per message: serve / workers / postgres`,
          value: `${fmt(cpuMs.servePerMessage, 2)} / ${fmt(cpuMs.workersPerMessage, 2)} / ${fmt(cpuMs.postgresPerMessage, 2)}`,
          baseline: `serve per healthz ${fmt(cpuMs.servePerHealthz, 3)}`,
          ratio: ratio(cpuMs.servePerMessage, cpuMs.servePerHealthz, 0),
        },
        {
          measure: `[${s.label}] PL/pgSQL (triggers) ms per message`,
          value:
            Object.entries(functionsMs)
              .slice(0, 3)
              .map(([name, v]) => `${name} ${fmt(v.msPerMessage, 2)} (${fmt(v.calls, 0)} calls)`)
              .join(', ') || 'none',
          baseline: `of ${fmt(cpuMs.postgresPerMessage, 2)} ms postgres CPU`,
        },
        { measure: `[${s.label}] CPU cores during load`, value: coresLine(loadCores), baseline: `machine busy ${fmt(loadCores.machineBusy, 2)} of 2` },
        { measure: `[${s.label}] CPU cores while draining`, value: coresLine(drainCores), baseline: `machine busy ${fmt(drainCores.machineBusy, 2)} of 2` },
      );
      console.error(
        `${s.label}: ${fmt(trig.acceptedPerSecond, 0)} accepted/s (healthz ${fmt(healthz.acceptedPerSecond, 0)}), 202 p99 ${fmt(trig.latency.p99)} ms, hand-off p99 ${fmt(handoff.p99)} ms, not sent ${st.not_sent}`,
      );
    }
    // 5. the workers alone on a backlog: paused (SIGSTOP) while the API queues as fast as it goes, then
    //    resumed with the API idle. Their hand-off rate is the capacity the API would meet next.
    if (env.BENCH_BACKLOG !== '0') {
      assertAlive(children);
      for (const w of workers) w.proc.kill('SIGSTOP');
      let queued: LoadResult;
      let apiOnly: { healthz: LoadResult; pgbench: { tps: number; latencyMs: number }; cores: Cores; commits: number };
      try {
        // The API alone against its baselines, all three with the workers stopped: what accepting costs.
        const healthz = await load({ url: `${base}/healthz`, connections, duration: seconds }, 200);
        const pgb = await pgbenchInsert(url, connections, seconds);
        const x0 = await commits();
        const a0 = cpuSnap(procs);
        queued = await load(triggeredOpts('backlog-', undefined, seconds), 202);
        const a1 = cpuSnap(procs);
        await new Promise((r) => setTimeout(r, 1100)); // PostgreSQL flushes its statistics at most once a second
        apiOnly = { healthz, pgbench: pgb, cores: cores(a0, a1), commits: (await commits()) - x0 };
        // Group commit as the rows show it: messages written by one transaction share its xmin.
        const tx = await db.query(`SELECT count(*)::int AS messages, count(DISTINCT xmin::text)::int AS transactions FROM messages WHERE idempotency_key LIKE 'backlog-%'`);
        results.writeTransactions = tx.rows[0];
      } finally {
        for (const w of workers) w.proc.kill('SIGCONT');
      }
      const c0 = cpuSnap(procs);
      const drained = await drain('backlog', Math.max(1000, 1.5 * queued.latency.p99));
      const c1 = cpuSnap(procs);
      const q = await db.query(
        `SELECT count(*)::int AS deliveries, count(*) FILTER (WHERE d.status = 'sent')::int AS sent,
                extract(epoch FROM max(d.sent_at) - min(d.sent_at)) AS send_span_s
         FROM deliveries d JOIN messages m ON m.id = d.message_id WHERE m.idempotency_key LIKE 'backlog-%'`,
      );
      const b = q.rows[0];
      const rate = b.sent > 1 && Number(b.send_span_s) > 0 ? b.sent / Number(b.send_span_s) : NaN;
      const drainCores = cores(c0, c1);
      const workerMs = b.sent ? (drainCores.workers * drainCores.seconds * 1000) / b.sent : NaN;
      const pgMs = b.sent ? (drainCores.postgres * drainCores.seconds * 1000) / b.sent : NaN;
      results.backlog = {
        workerCpuMsPerMessage: workerMs,
        postgresCpuMsPerMessage: pgMs, queued: queued.accepted, deliveries: b.deliveries, sent: b.sent, workerSendsPerSecond: rate, drain: drained, cpuCoresWhileDraining: drainCores };
      const apiMs = (c: number) => (queued.accepted ? (c * apiOnly.cores.seconds * 1000) / queued.accepted : NaN);
      results.apiOnly = {
        healthz: apiOnly.healthz,
        pgbench: apiOnly.pgbench,
        triggered: queued,
        commitsPerAccepted: queued.accepted ? apiOnly.commits / queued.accepted : NaN,
        cpuMsPerAccepted: { serve: apiMs(apiOnly.cores.serve), postgres: apiMs(apiOnly.cores.postgres), autocannon: apiMs(apiOnly.cores.autocannon) },
        cpuCores: apiOnly.cores,
      };
      const writeTx = results.writeTransactions as { messages: number; transactions: number };
      const r2 = (a: number, b: number) => (b > 0 ? `${fmt(a / b, a / b < 0.1 ? 3 : 2)}x` : '');
      rows.push(
        {
          measure: '[backlog] accepted (202)/s, workers paused',
          value: fmt(queued.acceptedPerSecond, 0),
          baseline: `healthz ${fmt(apiOnly.healthz.acceptedPerSecond, 0)} req/s; pgbench INSERT ${fmt(apiOnly.pgbench.tps, 0)}/s (same ${connections} connections, workers paused)`,
          ratio: `${r2(queued.acceptedPerSecond, apiOnly.healthz.acceptedPerSecond)} / ${r2(queued.acceptedPerSecond, apiOnly.pgbench.tps)}`,
          target: '>= 0.5x both',
        },
        {
          measure: '[backlog] 202 latency p50 / p99',
          value: `${fmt(queued.latency.p50)} / ${fmt(queued.latency.p99)} ms`,
          baseline: `healthz ${fmt(apiOnly.healthz.latency.p50)} / ${fmt(apiOnly.healthz.latency.p99)} ms; pgbench avg ${fmt(apiOnly.pgbench.latencyMs, 2)} ms`,
        },
        {
          measure: '[backlog] messages per write transaction (group commit)',
          value: fmt(writeTx.messages / Math.max(1, writeTx.transactions), 1),
          baseline: `${fmt(writeTx.messages, 0)} messages in ${fmt(writeTx.transactions, 0)} transactions`,
        },
        {
          measure: '[backlog] commits per accepted message (API only, read-only ones included)',
          value: fmt(queued.accepted ? apiOnly.commits / queued.accepted : NaN, 3),
          baseline: `${fmt(apiOnly.commits, 0)} commits for ${fmt(queued.accepted, 0)} messages`,
          target: 'group commit',
        },
        {
          measure: '[backlog] CPU ms per accepted message: serve / postgres / autocannon',
          value: `${fmt(apiMs(apiOnly.cores.serve), 3)} / ${fmt(apiMs(apiOnly.cores.postgres), 3)} / ${fmt(apiMs(apiOnly.cores.autocannon), 3)}`,
          baseline: `cores: ${coresLine(apiOnly.cores)}`,
        },
        {
          measure: `[backlog] worker hand-offs/s, API idle (${workerCount} worker${workerCount > 1 ? 's' : ''})`,
          value: fmt(rate, 0),
          baseline: `${fmt(b.sent, 0)} of ${fmt(b.deliveries, 0)} sent in ${fmt(Number(b.send_span_s), 1)} s`,
          ratio: `${r2(rate, queued.acceptedPerSecond)} the 202/s above`,
        },
        { measure: '[backlog] CPU ms per message: workers / postgres', value: `${fmt(workerMs, 2)} / ${fmt(pgMs, 2)}` },
        { measure: '[backlog] CPU cores while draining', value: coresLine(drainCores), baseline: `machine busy ${fmt(drainCores.machineBusy, 2)} of 2` },
      );
      console.error(`backlog: ${b.sent} of ${b.deliveries} sent at ${fmt(rate, 0)}/s once the workers resumed`);
    }
    if (beyondPool) console.error(`${beyondPool} requests went beyond the pre-created contacts and named a new email instead`);
    results.runs = runs;
    results.contactsPrecreated = poolSize;
    results.requestsBeyondContactPool = beyondPool;
    assertAlive(children);
    printTable(
      `Triggered API (POST /v1/messages), PostgreSQL, ${connections} connections, ${seconds} s per load, ${workerCount} worker process(es), sink: ${sink.kind} (${new Date().toISOString()})`,
      rows,
    );
    writeResults('triggered', results);
  } catch (e) {
    failed = true;
    for (const c of children) console.error(`\n--- last lines of ${c.name} ---\n${c.lines.slice(-20).join('\n')}`);
    throw e;
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    await cleanup();
    if (!failed) {
      const warnings = children.flatMap((c) => c.lines.filter((l) => /"level":"(warn|error)"|"level":(40|50)/.test(l)).map((l) => `${c.name}: ${l}`));
      if (warnings.length) console.error(`\n${warnings.length} warning/error log lines from the processes; first ones:\n${warnings.slice(0, 5).join('\n')}`);
    }
  }
}
