// Campaign benchmark: a consent-filtered marketing campaign to N contacts (default 1,000,000) delivered
// to postfix's smtp-sink, in four set-ups measured in one run (the machine is shared: only ratios to a
// baseline of the same run mean much):
//   - PostgreSQL with 2 `envoi worker` processes (worker + campaign scheduler each), and with 1;
//   - PGlite (the embedded database) with the worker inside the process, as `envoi start` runs it;
//   - the naive baseline: a plain loop over nodemailer with ONE SMTP connection, rendering and sending
//     the same personalised messages (no database at all: it only measures what composing and sending
//     each message costs when done the simple way).
// The limit is postfix's smtp-source sending messages of the same size into the same sink (before and
// after): every rate is also given as a fraction of it. For each envoi set-up: the resolution (campaign
// start -> every delivery row written, status leaves 'resolving'), the send rate (first to last
// sent_at), the policy counts per rule against the seeded expectation (exact, or the bench fails),
// peak memory per process, and CPU per process.
//
// Seed (set-based SQL, deterministic from the contact number i): 70% with marketing consent, 5% on the
// exclusion list, 2% hard-bounced (suppressions). Consent is seeded by setting the derived column
// contacts.marketing_authorized_at directly, which is all the send-time policy reads: real
// consent_records cannot be inserted set-based (each record's hash covers its predecessor's) and
// appending 700,000 through the service would dominate the bench.
//
//   npm run bench -- campaign                     (1,000,000 contacts)
//   BENCH_CONTACTS=100000 npm run bench -- campaign
//   BENCH_SETUPS=pg2,pg1,pglite,naive   which set-ups to run (default all)
//   BENCH_PGLITE_CONTACTS=n      contacts of the PGlite set-up (default: BENCH_CONTACTS, at most 100,000)
//   BENCH_NAIVE_MESSAGES=5000    messages of the naive baseline
//   BENCH_CONCURRENCY=n          the workers' ENVOI_WORKER_CONCURRENCY (sends in flight, two per SMTP session; default: the worker's own, 20)
//   BENCH_SOURCE_MESSAGES=20000  messages of each smtp-source baseline run
//   BENCH_TIMEOUT_SECONDS=7200   give up waiting for a campaign to complete
//   BENCH_PROFILE=/dir           V8 CPU profiles of the worker processes (written when they stop)
//   BENCH_WORKER_NODE_FLAGS=...  node flags of the workers (default --max-semi-space-size=32, the README's; "" for none)
//   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres (the admin URL; fresh databases are created and dropped)
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import pg from 'pg';
import nodemailer from 'nodemailer';
import { sql } from 'kysely';
import { loadConfig } from '../src/platform/config.ts';
import { openPGlite, openPostgres, type Database } from '../src/platform/database.ts';
import { createEnvoi, type Envoi } from '../src/app.ts';
import * as orgs from '../src/organisations/service.ts';
import * as audience from '../src/audience/service.ts';
import { createView } from '../src/audience/grid-service.ts';
import { createTemplate } from '../src/mail/template-service.ts';
import { createCampaign } from '../src/campaigns/service.ts';
import { startWorkerInServer } from '../src/cli/worker.ts';
import { compileTemplate, render } from '../src/mail/render.ts';
import { composeMessage, deliveryTargets } from '../src/mail/compose.ts';
import { encodeHtml, skeletonOf } from '../src/mail/mime-skeleton.ts';
import { trackingFor } from '../src/mail/tracking-tokens.ts';
import { RULE_ORDER, type RuleCode } from '../src/consent/rules.ts';
import { ARTICLES, expectedCounts, SEED, seedSql, seededContact, TEMPLATE } from './campaign-seed.ts';
import {
  alive,
  assertAlive,
  children as benchChildren,
  CLK_TCK,
  machineTicks,
  POSTFIX_TOOLS,
  WORKER_NODE_FLAGS,
  postgresBackends,
  startChild,
  startPostfixSink,
  statusKb,
  resetPeakRss,
  stopChild,
  ticksOf,
  until,
  type Child,
} from './processes.ts';
import { fmt, printTable, writeResults, type Row } from './support.ts';
import { limitHeapGrowth } from '../src/platform/heap-growth.ts';

const env = process.env;
const int = (name: string, fallback: number, min = 1) => {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be an integer >= ${min}, got "${raw}"`);
  return n;
};

// ---- one set-up: a database with the seeded audience, a campaign, the worker(s) until it completes ----

interface Setup {
  name: string;
  label: string;
  database: 'postgres' | 'pglite';
  contacts: number;
  /** worker processes (0: the worker runs inside this process) */
  workers: number;
}

type Snap = ReturnType<typeof snapshot>;
function snapshot(workerPids: number[], sinkPid: number | undefined, dbName: string | null) {
  return {
    t: performance.now(),
    wall: Date.now(),
    workers: workerPids.map((pid) => ticksOf(pid)),
    sink: ticksOf(sinkPid),
    pg: dbName ? postgresBackends(dbName) : new Map<number, number>(),
    machine: machineTicks(),
    bench: process.cpuUsage(),
  };
}

function cores(a: Snap, b: Snap) {
  const s = (b.t - a.t) / 1000;
  let pgTicks = 0;
  for (const [pid, t] of b.pg) pgTicks += t - (a.pg.get(pid) ?? 0);
  const c = (ticks: number) => ticks / CLK_TCK / s;
  const mt = b.machine.total - a.machine.total;
  const machine = mt > 0 ? ((b.machine.busy - a.machine.busy) / mt) * (mt / CLK_TCK / s) : NaN;
  const bench = (b.bench.user - a.bench.user + b.bench.system - a.bench.system) / 1e6 / s;
  const perWorker = b.workers.map((t, i) => c(t - (a.workers[i] ?? 0)));
  const worker = perWorker.reduce((x, y) => x + y, 0);
  const r = { seconds: s, worker, perWorker, postgres: c(pgTicks), sink: c(b.sink - a.sink), bench, machineBusy: machine, others: 0 };
  r.others = Math.max(0, machine - r.worker - r.postgres - r.sink - bench);
  return r;
}
type Cores = ReturnType<typeof cores>;

const coresLine = (c: Cores, inProcess: boolean) =>
  c.seconds < 0.5
    ? `n/a (${fmt(c.seconds, 2)} s)`
    : inProcess
      ? `envoi (worker + PGlite, this process) ${fmt(c.bench, 2)}, sink ${fmt(c.sink, 2)}; others ${fmt(c.others, 2)}`
      : `worker${c.perWorker.length > 1 ? `s ${c.perWorker.map((x) => fmt(x, 2)).join(' + ')}` : ` ${fmt(c.worker, 2)}`}, postgres ${fmt(c.postgres, 2)}, sink ${fmt(c.sink, 2)}, bench ${fmt(c.bench, 2)}; others ${fmt(c.others, 2)}`;

const log = (msg: string) => console.error(`[campaign ${new Date().toISOString().slice(11, 19)}] ${msg}`);

/** What a set-up must undo if the bench is interrupted (a database to drop, a folder to remove). */
const pendingCleanups = new Set<() => Promise<void>>();

async function runSetup(setup: Setup, common: { sinkPort: number; sinkPid: number | undefined; concurrency: number | null; timeoutMs: number; adminUrl: string }) {
  const n = setup.contacts;
  const secret = randomBytes(24).toString('hex');
  const publicUrl = 'http://127.0.0.1:8080';
  const smtpUrl = `smtp://127.0.0.1:${common.sinkPort}`;
  const workers: Child[] = [];
  let envoi: Envoi | null = null;
  let database: Database | null = null;
  let admin: pg.Client | null = null;
  let dbName: string | null = null;
  let dataDir: string | null = null;
  let failed = false;
  const cleanup = async () => {
    const graceMs = env.BENCH_PROFILE ? 60_000 : 8000;
    await Promise.all(workers.map((c) => stopChild(c, graceMs)));
    await (envoi ? envoi.close() : database?.close())?.catch(() => {});
    if (admin && dbName) {
      await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch((e) => console.error(`could not drop ${dbName}: ${String(e)}`));
      await admin.end().catch(() => {});
      if (failed) console.error(`dropped ${dbName}`);
    }
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  };
  pendingCleanups.add(cleanup);
  try {
    // 1. the database, the organisation, the audience, N contacts
    let config = { ...loadConfig({}), secret, publicUrl };
    if (setup.database === 'postgres') {
      dbName = `envoi_bench_campaign_${Date.now()}`;
      const url = common.adminUrl.replace(/\/[^/?]*(\?|$)/, `/${dbName}$1`);
      admin = new pg.Client({ connectionString: common.adminUrl });
      await admin.connect();
      await admin.query(`CREATE DATABASE ${dbName}`);
      // PL/pgSQL time (the message_events triggers) per function in pg_stat_user_functions, this database only
      await admin.query(`ALTER DATABASE ${dbName} SET track_functions = 'pl'`);
      config = { ...config, databaseUrl: url };
      database = await openPostgres(url, 4);
    } else {
      dataDir = mkdtempSync(join(tmpdir(), 'envoi-bench-pglite-'));
      config = { ...config, databaseUrl: null, dataDir, smtpUrl };
      database = await openPGlite(dataDir);
    }
    envoi = await createEnvoi({ config, database, logger: false }); // applies the migrations
    const ctx = envoi.ctx;
    const org = await orgs.createOrganisation(ctx, { name: 'Bench news', ownerEmail: 'owner@bench.example.com', ownerPassword: 'bench bench bench' });
    const key = await orgs.createApiKey(ctx, org.organisation.id, { name: 'bench', role: 'owner' });
    const p = (await orgs.authenticate(ctx, key.key))!;
    const aud = await audience.createAudience(ctx, p, 'Newsletter readers');
    log(`${setup.label}: seeding ${fmt(n, 0)} contacts`);
    const t0 = performance.now();
    await database.exec(seedSql(org.organisation.id, aud.id, n));
    const seedMs = performance.now() - t0;
    const expected = expectedCounts(n);
    const template = await createTemplate(ctx, p, aud.id, TEMPLATE);
    const view = await createView(ctx, p, aud.id, { name: 'Everyone', filter: { and: [] } });

    // 2. the worker(s)
    if (setup.workers > 0) {
      const workerEnv: NodeJS.ProcessEnv = {
        ...env,
        DATABASE_URL: config.databaseUrl!,
        SMTP_URL: smtpUrl,
        ENVOI_SECRET: secret,
        ENVOI_PUBLIC_URL: publicUrl,
        LOG_LEVEL: 'warn',
        NODE_ENV: 'production',
        ...(common.concurrency ? { ENVOI_WORKER_CONCURRENCY: String(common.concurrency) } : {}),
      };
      delete workerEnv.ENVOI_CONFIG;
      const prof = env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${env.BENCH_PROFILE}`] : [];
      for (let w = 0; w < setup.workers; w++) workers.push(startChild(`envoi worker ${w + 1} (${setup.name})`, process.execPath, [...WORKER_NODE_FLAGS, ...prof, 'bin/envoi.mjs', 'worker'], workerEnv));
      for (const w of workers) await until(`${w.name} start`, 90_000, () => (w.lines.some((l) => l.startsWith('envoi worker ')) ? true : undefined), w);
    } else {
      startWorkerInServer(envoi);
    }
    const pids = workers.map((w) => w.proc.pid!);
    const rssOf = () => (setup.workers > 0 ? pids.map((pid) => statusKb(pid, 'VmRSS')) : [statusKb(process.pid, 'VmRSS')]);
    const idleRssKb = rssOf();

    // 3. the campaign: created and started through the service; a scheduler picks it up
    const plpgsql = async () =>
      setup.database === 'postgres'
        ? new Map(
            (await sql<{ funcname: string; calls: string; total_time: number }>`SELECT funcname, calls, total_time FROM pg_stat_user_functions`.execute(ctx.db)).rows.map((r) => [
              r.funcname,
              { calls: Number(r.calls), ms: Number(r.total_time) },
            ]),
          )
        : new Map<string, { calls: number; ms: number }>();
    const f0 = await plpgsql();
    // With the worker in this process, how long its event loop is held (PGlite runs queries on it).
    const loopDelay = monitorEventLoopDelay({ resolution: 10 });
    loopDelay.enable();
    log(`${setup.label}: starting the campaign (${fmt(expected.allowed, 0)} to send)`);
    const s0 = snapshot(pids, common.sinkPid, dbName);
    // With the worker in this process, VmHWM would hold the set-ups and seeds before: Linux resets it
    // to the current RSS on "5" in clear_refs (since 4.0), so it is this campaign's peak, not a sample.
    const ownPeak = setup.workers === 0 && resetPeakRss();
    const created = await createCampaign(ctx, p, aud.id, { name: 'Spring news', template_id: template.id, target: { view_id: view.id }, start: true });
    const peakRssKb = idleRssKb.map(() => 0);
    let resolvedAt: Date | null = null;
    let sResolved: Snap | null = null;
    let startedAt: Date | null = null;
    let messageId: string | null = null;
    let lastProgress = performance.now();
    const rssSamples: { s: number; rssMB: number[] }[] = [];
    const deadline = Date.now() + common.timeoutMs;
    for (;;) {
      assertAlive(workers);
      const r = (await sql<{ status: string; started_at: Date | null; updated_at: Date; message_id: string | null; last_error: string | null }>`
        SELECT status, started_at, updated_at, message_id, last_error FROM campaigns WHERE id = ${created.id}`.execute(ctx.db)).rows[0]!;
      const rss = rssOf();
      rss.forEach((kb, i) => (peakRssKb[i] = Math.max(peakRssKb[i]!, kb)));
      startedAt ??= r.started_at;
      messageId ??= r.message_id;
      if (!resolvedAt && (r.status === 'sending' || r.status === 'completed')) {
        // the scheduler's last write of the resolution sets status 'sending' and updated_at
        resolvedAt =
          r.status === 'sending' ? r.updated_at : (await sql<{ t: Date }>`SELECT max(created_at) AS t FROM deliveries WHERE message_id = ${r.message_id}`.execute(ctx.db)).rows[0]!.t;
        sResolved = snapshot(pids, common.sinkPid, dbName);
        log(`${setup.label}: recipients resolved ${fmt((resolvedAt.getTime() - startedAt!.getTime()) / 1000, 1)} s after the scheduler took the campaign`);
      }
      if (r.status === 'completed') break;
      if (r.status === 'paused' || r.status === 'cancelled') throw new Error(`the campaign stopped (${r.status}): ${r.last_error}`);
      if (Date.now() > deadline) throw new Error(`the campaign did not complete within ${common.timeoutMs / 1000} s (status ${r.status})`);
      if (performance.now() - lastProgress > 5000 && messageId) {
        lastProgress = performance.now();
        const st = (await sql<{ status: string; n: number }>`SELECT status, count(*)::int AS n FROM deliveries WHERE message_id = ${messageId} GROUP BY 1`.execute(ctx.db)).rows;
        rssSamples.push({ s: (performance.now() - s0.t) / 1000, rssMB: rss.map((kb) => kb / 1024) });
        log(`${setup.label} ${r.status}: ${st.map((x) => `${x.status} ${x.n}`).join(', ')}; RSS ${rss.map((kb) => `${fmt(kb / 1024, 0)} MB`).join(' + ')}`);
      }
      await new Promise((res) => setTimeout(res, setup.workers > 0 ? 200 : 500));
    }
    const s2 = snapshot(pids, common.sinkPid, dbName);
    loopDelay.disable();
    const hwmKb = setup.workers > 0 ? pids.map((pid) => statusKb(pid, 'VmHWM')) : ownPeak ? [statusKb(process.pid, 'VmHWM')] : peakRssKb;
    await new Promise((res) => setTimeout(res, 1100)); // PostgreSQL flushes its statistics at most once a second
    const f1 = await plpgsql();
    const plpgsqlMs = Object.fromEntries(
      [...f1]
        .map(([name, v]) => [name, { calls: v.calls - (f0.get(name)?.calls ?? 0), ms: v.ms - (f0.get(name)?.ms ?? 0) }] as const)
        .filter(([, v]) => v.calls > 0)
        .sort((a, b) => b[1].ms - a[1].ms),
    );
    log(`${setup.label}: campaign completed`);

    // 4. what the deliveries say
    const byRule = (await sql<{ status: string; rule: string | null; n: number }>`SELECT status, rule, count(*)::int AS n FROM deliveries WHERE message_id = ${messageId} GROUP BY 1, 2`.execute(ctx.db)).rows;
    const st = (
      await sql<{ deliveries: number; sent: number; first_sent: Date; last_sent: Date; sent_while_resolving: number }>`
        SELECT count(*)::int AS deliveries, count(*) FILTER (WHERE status = 'sent')::int AS sent, min(sent_at) AS first_sent, max(sent_at) AS last_sent,
               count(*) FILTER (WHERE status = 'sent' AND sent_at <= ${resolvedAt})::int AS sent_while_resolving
        FROM deliveries WHERE message_id = ${messageId}`.execute(ctx.db)
    ).rows[0]!;
    const statusCounts: Record<string, number> = {};
    const blocked: Partial<Record<RuleCode, number>> = {};
    for (const r of byRule) {
      statusCounts[r.status] = (statusCounts[r.status] ?? 0) + r.n;
      if (r.status === 'blocked') blocked[r.rule as RuleCode] = (blocked[r.rule as RuleCode] ?? 0) + r.n;
    }
    const mismatches: string[] = [];
    if (st.deliveries !== n) mismatches.push(`deliveries ${st.deliveries}, expected ${n}`);
    if (st.sent !== expected.allowed) mismatches.push(`sent ${st.sent}, expected ${expected.allowed} allowed`);
    for (const rule of RULE_ORDER) if ((blocked[rule] ?? 0) !== (expected.blocked[rule] ?? 0)) mismatches.push(`${rule}: ${blocked[rule] ?? 0}, expected ${expected.blocked[rule] ?? 0}`);
    for (const [status, k] of Object.entries(statusCounts)) if (status !== 'sent' && status !== 'blocked') mismatches.push(`${k} deliveries ended ${status}`);

    const sendSeconds = (st.last_sent.getTime() - st.first_sent.getTime()) / 1000;
    const whole = cores(s0, s2);
    const cpuMsPer = (c: number) => (st.sent ? (c * whole.seconds * 1000) / st.sent : NaN);
    const warnings = workers.flatMap((w) => w.lines.filter((l) => /"level":"(warn|error)"/.test(l)));
    return {
      ...setup,
      seedSeconds: seedMs / 1000,
      resolution: {
        seconds: (resolvedAt!.getTime() - startedAt!.getTime()) / 1000,
        deliveryRowsPerSecond: n / ((resolvedAt!.getTime() - startedAt!.getTime()) / 1000),
        schedulerPickupSeconds: (startedAt!.getTime() - s0.wall) / 1000,
        sentWhileResolving: st.sent_while_resolving,
      },
      sending: { sent: st.sent, seconds: sendSeconds, messagesPerSecond: st.sent / sendSeconds, fromCampaignStartSeconds: (st.last_sent.getTime() - s0.wall) / 1000 },
      policy: { statusCounts, blockedByRule: blocked, expected, match: mismatches.length === 0, mismatches },
      memory: { peakIsVmHWM: setup.workers > 0 || ownPeak, idleRssMB: idleRssKb.map((kb) => kb / 1024), peakRssMB_VmHWM: hwmKb.map((kb) => kb / 1024), peakRssMB_sampled: peakRssKb.map((kb) => kb / 1024), samples: rssSamples },
      cpuCores: { resolving: cores(s0, sResolved!), sending: cores(sResolved!, s2), whole },
      cpuMsPerSentMessage: { workers: cpuMsPer(setup.workers > 0 ? whole.worker : whole.bench), postgres: cpuMsPer(whole.postgres), sink: cpuMsPer(whole.sink) },
      plpgsqlMs,
      // this process's event loop: the worker's, when it runs here
      eventLoopDelayMs: { p50: loopDelay.percentile(50) / 1e6, p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 },
      workerWarnings: warnings.length,
      firstWarnings: warnings.slice(0, 5),
    };
  } catch (e) {
    failed = true;
    for (const c of workers) console.error(`\n--- last lines of ${c.name} ---\n${c.lines.slice(-20).join('\n')}`);
    throw e;
  } finally {
    pendingCleanups.delete(cleanup);
    await cleanup();
  }
}
type SetupResult = Awaited<ReturnType<typeof runSetup>>;

// ---- the naive baseline: a loop over nodemailer, one SMTP connection ----

async function naiveLoop(messages: number, sinkPort: number) {
  const compiled = await compileTemplate({ ...TEMPLATE, text: null, tracking: true });
  const secret = randomBytes(24).toString('hex');
  const publicUrl = 'http://127.0.0.1:8080';
  const bounceDomain = 'bounces.bench.example';
  const transporter = nodemailer.createTransport({ host: '127.0.0.1', port: sinkPort, pool: true, maxConnections: 1, maxMessages: Infinity });
  const allowed: number[] = [];
  for (let i = 0; allowed.length < messages; i++) if (!SEED.hardBounced.js(i) && !SEED.excluded.js(i) && SEED.consent.js(i)) allowed.push(i);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  try {
    for (const i of allowed) {
      const contact = seededContact(i);
      const deliveryId = randomUUID();
      const unsub = deliveryTargets(publicUrl, secret, deliveryId, bounceDomain);
      const r = render(compiled, { contact, event: null, vars: { organisation_name: 'Bench news' }, unsubscribe: unsub.url }, 'send', { tracking: trackingFor(publicUrl, secret, deliveryId) });
      await transporter.sendMail({
        from: { name: 'Bench news', address: 'news@bench.example' },
        to: { name: `${contact.first_name} ${contact.last_name}`, address: contact.email },
        subject: r.subject,
        html: r.html,
        text: r.text,
        messageId: `<${deliveryId}@${bounceDomain}>`,
        headers: { 'List-Unsubscribe': `<${unsub.url}>, <${unsub.mailto}>`, 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click' },
        envelope: { from: unsub.returnPath, to: [contact.email] },
      });
    }
  } finally {
    transporter.close();
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(c0);
  return { messages: allowed.length, seconds, messagesPerSecond: allowed.length / seconds, cpuMsPerMessage: (cpu.user + cpu.system) / 1000 / allowed.length };
}

// ---- the benchmark ----

export async function campaignBench() {
  const n = int('BENCH_CONTACTS', 1_000_000);
  const pgliteN = int('BENCH_PGLITE_CONTACTS', Math.min(n, 100_000));
  const sourceMessages = int('BENCH_SOURCE_MESSAGES', 20_000);
  const naiveMessages = int('BENCH_NAIVE_MESSAGES', 5000);
  const timeoutMs = int('BENCH_TIMEOUT_SECONDS', 7200) * 1000;
  const concurrency = env.BENCH_CONCURRENCY ? int('BENCH_CONCURRENCY', 10) : null;
  const wanted = new Set((env.BENCH_SETUPS ?? 'pg2,pg1,pglite,naive').split(',').map((x) => x.trim()));
  for (const w of wanted) if (!['pg1', 'pg2', 'pglite', 'naive'].includes(w)) throw new Error(`BENCH_SETUPS: unknown set-up "${w}" (pg1, pg2, pglite, naive)`);
  const adminUrl = env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  // The PGlite set-up runs `envoi start`'s server and worker in this process: with its heap policy,
  // set as src/cli/main.ts sets it, before this process grows a heap.
  if (wanted.has('pglite')) limitHeapGrowth();

  let sinkChild: Child | null = null;
  const onSignal = (sig: NodeJS.Signals) => {
    console.error(`\n${sig}: stopping the bench's processes, dropping its databases`);
    for (const c of benchChildren) if (alive(c)) c.proc.kill('SIGKILL');
    void Promise.race([Promise.all([...pendingCleanups].map((c) => c().catch(() => {}))), new Promise((r) => setTimeout(r, 15_000))]).finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const results: Record<string, unknown> = { contacts: n, pgliteContacts: pgliteN, startedAt: new Date().toISOString(), concurrency: concurrency ?? 'worker default (ENVOI_WORKER_CONCURRENCY, 20)' };
  try {
    // The message as the worker builds it (render, skeleton, compose), for the baseline's message size.
    const compiled = await compileTemplate({ ...TEMPLATE, text: null, tracking: true });
    const publicUrl = 'http://127.0.0.1:8080';
    const secret = randomBytes(24).toString('hex');
    const fakeDelivery = randomUUID();
    const unsub = deliveryTargets(publicUrl, secret, fakeDelivery, 'localhost');
    const contact = seededContact(0);
    const data = { contact, event: null, vars: { organisation_name: 'Bench news' }, unsubscribe: unsub.url };
    const rendered = render(compiled, data, 'send');
    const html = encodeHtml(compiled, await skeletonOf(compiled), data, rendered, trackingFor(publicUrl, secret, fakeDelivery));
    if (html.links.length !== ARTICLES.length) throw new Error(`the template should have ${ARTICLES.length} tracked links, the message has ${html.links.length}`);
    const raw = composeMessage({
      deliveryId: fakeDelivery,
      returnPath: unsub.returnPath,
      from: { name: 'Bench news', address: 'no-reply@localhost' },
      to: { name: `${contact.first_name} ${contact.last_name}`, address: contact.email },
      subject: rendered.subject,
      html,
      text: rendered.text,
      date: new Date(),
      bounceDomain: 'localhost',
      unsubscribe: unsub,
    }).raw;
    const messageBytes = raw.length;
    results.message = { mjmlBytes: TEMPLATE.body.length, htmlBytes: rendered.html.length, textBytes: rendered.text.length, rawBytes: messageBytes, trackedLinks: html.links.length, splicedFromSkeleton: html.spliced };

    const sink = await startPostfixSink(env);
    sinkChild = sink.child;
    const smtpSource = async (label: string) => {
      const m0 = machineTicks();
      const t0 = performance.now();
      const src = startChild(`smtp-source (${label})`, POSTFIX_TOOLS, ['smtp-source', '-s', '20', '-m', String(sourceMessages), '-l', String(messageBytes), `127.0.0.1:${sink.port}`], env);
      const exit = await src.exited;
      const seconds = (performance.now() - t0) / 1000;
      if (exit.code !== 0) throw new Error(`smtp-source exited ${exit.signal ?? exit.code}:\n${src.lines.slice(-20).join('\n')}`);
      const m1 = machineTicks();
      const busyCores = m1.total > m0.total ? ((m1.busy - m0.busy) / (m1.total - m0.total)) * ((m1.total - m0.total) / CLK_TCK / seconds) : NaN;
      return { messages: sourceMessages, bytes: messageBytes, seconds, perSecond: sourceMessages / seconds, machineBusyCores: busyCores };
    };
    log(`the SMTP limit: smtp-source ${fmt(sourceMessages, 0)} x ${fmt(messageBytes, 0)} bytes`);
    const before = await smtpSource('before');
    log(`smtp-source: ${fmt(before.perSecond, 0)} msg/s`);

    const common = { sinkPort: sink.port, sinkPid: sink.child.proc.pid, concurrency, timeoutMs, adminUrl };
    const setups: Setup[] = [
      // The target (2 processes) first, while the machine is as it was for smtp-source.
      { name: 'pg2', label: 'PostgreSQL, 2 worker processes', database: 'postgres', contacts: n, workers: 2 },
      { name: 'pg1', label: 'PostgreSQL, 1 worker process', database: 'postgres', contacts: n, workers: 1 },
      { name: 'pglite', label: 'PGlite, worker in the process', database: 'pglite', contacts: pgliteN, workers: 0 },
    ];
    const done: SetupResult[] = [];
    for (const setup of setups.filter((s) => wanted.has(s.name))) done.push(await runSetup(setup, common));
    let naive: Awaited<ReturnType<typeof naiveLoop>> | null = null;
    if (wanted.has('naive')) {
      log(`naive baseline: ${fmt(naiveMessages, 0)} messages, nodemailer, one connection`);
      naive = await naiveLoop(naiveMessages, sink.port);
    }
    const after = await smtpSource('after');
    const limit = (before.perSecond + after.perSecond) / 2;
    Object.assign(results, { smtpSource: { before, after, limit }, setups: done, naive });

    // ---- the table ----
    const rows: Row[] = [
      {
        measure: 'the SMTP limit: smtp-source -s 20 into smtp-sink, same message size',
        value: `${fmt(limit, 0)} msg/s`,
        baseline: `${fmt(before.perSecond, 0)} before, ${fmt(after.perSecond, 0)} after; ${fmt(messageBytes, 0)} bytes (MJML ${fmt(TEMPLATE.body.length, 0)} B, HTML ${fmt(rendered.html.length, 0)} B, ${ARTICLES.length} tracked links)`,
        ratio: '1',
      },
    ];
    const blockedLine = (b: Partial<Record<RuleCode, number>>) =>
      RULE_ORDER.filter((r) => b[r])
        .map((r) => `${r} ${fmt(b[r]!, 0)}`)
        .join(', ');
    for (const r of done) {
      const inProcess = r.workers === 0;
      const rate = r.sending.messagesPerSecond;
      const rssTarget = r.memory.peakRssMB_VmHWM.every((mb) => mb < 512) ? 'met' : 'NOT met';
      rows.push(
        { measure: `**${r.label}**, ${fmt(r.contacts, 0)} contacts: seed (SQL)`, value: `${fmt(r.seedSeconds, 1)} s` },
        {
          measure: `resolve recipients + write ${fmt(r.contacts, 0)} delivery rows`,
          value: `${fmt(r.resolution.seconds, 1)} s (${fmt(r.resolution.deliveryRowsPerSecond, 0)} rows/s)`,
          baseline: `${fmt(r.resolution.sentWhileResolving, 0)} sent meanwhile; scheduler pick-up ${fmt(r.resolution.schedulerPickupSeconds, 1)} s`,
        },
        {
          measure: `sent, first to last sent_at (${fmt(r.sending.sent, 0)} messages)`,
          value: `${fmt(rate, 0)} msg/s in ${fmt(r.sending.seconds, 1)} s`,
          baseline: `campaign created -> last sent ${fmt(r.sending.fromCampaignStartSeconds, 1)} s`,
          ratio: `${fmt(rate / limit, 3)} of the SMTP limit`,
          target: r.workers === 2 ? (rate / limit >= 0.5 ? '>= 0.5: met' : '>= 0.5: NOT met') : '',
        },
        {
          measure: 'policy counts (deliveries table)',
          value: `${fmt(r.sending.sent, 0)} sent; blocked: ${blockedLine(r.policy.blockedByRule)}`,
          baseline: `expected ${fmt(r.policy.expected.allowed, 0)}; ${blockedLine(r.policy.expected.blocked)}`,
          ratio: r.policy.match ? 'exact' : 'MISMATCH',
        },
        {
          measure: inProcess ? `peak RSS of the process (worker + PGlite; ${r.memory.peakIsVmHWM ? 'VmHWM from the campaign start' : 'sampled'})` : `peak RSS (VmHWM) per worker process`,
          value: r.memory.peakRssMB_VmHWM.map((mb) => `${fmt(mb, 0)} MB`).join(' + '),
          baseline: `idle ${r.memory.idleRssMB.map((mb) => `${fmt(mb, 0)} MB`).join(' + ')}`,
          target: `< 512 MB: ${rssTarget}`,
        },
        { measure: 'CPU cores while sending only', value: coresLine(r.cpuCores.sending, inProcess), baseline: `machine busy ${fmt(r.cpuCores.sending.machineBusy, 2)} of 2` },
        ...(inProcess ? [{ measure: 'event loop delay of the process (worker + PGlite)', value: `p50 ${fmt(r.eventLoopDelayMs.p50, 0)} ms, p99 ${fmt(r.eventLoopDelayMs.p99, 0)} ms, max ${fmt(r.eventLoopDelayMs.max, 0)} ms` }] : []),
        {
          measure: `CPU ms per sent message: ${inProcess ? 'envoi process' : 'workers'} / postgres / sink`,
          value: `${fmt(r.cpuMsPerSentMessage.workers, 2)} / ${inProcess ? '(inside)' : fmt(r.cpuMsPerSentMessage.postgres, 2)} / ${fmt(r.cpuMsPerSentMessage.sink, 3)}`,
          baseline: inProcess ? '' : `PL/pgSQL: ${Object.entries(r.plpgsqlMs).slice(0, 2).map(([name, v]) => `${name} ${fmt(v.ms / 1000, 1)} s (${fmt(v.calls, 0)} calls)`).join(', ') || 'none'}`,
        },
      );
    }
    if (naive) {
      rows.push({
        measure: `**naive baseline**: render + nodemailer, one SMTP connection (${fmt(naive.messages, 0)} messages)`,
        value: `${fmt(naive.messagesPerSecond, 0)} msg/s`,
        baseline: `${fmt(naive.cpuMsPerMessage, 2)} ms CPU per message`,
        ratio: `${fmt(naive.messagesPerSecond / limit, 3)} of the SMTP limit`,
      });
      for (const r of done) rows.push({ measure: `${r.label} / naive baseline`, value: `${fmt(r.sending.messagesPerSecond / naive.messagesPerSecond, 1)}x` });
    }
    printTable(`Campaign: ${fmt(n, 0)} contacts (PGlite ${fmt(pgliteN, 0)}), postfix smtp-sink (${new Date().toISOString()})`, rows);
    writeResults('campaign', results);
    const bad = done.filter((r) => !r.policy.match);
    if (bad.length) throw new Error(`policy counts differ from the seeded expectation:\n  ${bad.map((r) => `${r.label}: ${r.policy.mismatches.join('; ')}`).join('\n  ')}`);
    for (const r of done) if (r.workerWarnings) console.error(`\n${r.label}: ${r.workerWarnings} warning/error log lines from the workers; first ones:\n${r.firstWarnings.join('\n')}`);
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    if (sinkChild) await stopChild(sinkChild);
  }
}
