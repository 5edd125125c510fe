// The grid page alone, to see where the time between an HTTP request and its page query goes. Seeds
// once (CSV import + participations, as bench/grid.ts), then times in interleaved rounds, each
// measure once per round in a rotating order so that load changes hit them all alike:
//   sql      the page's SQL on a plain pg client (the baseline of issue 6)
//   pool     the same SQL through the application's Kysely pool (checkout + driver)
//   service  queryGrid with a fresh principal per call, as each HTTP request has
//   http     POST /v1/audiences/:id/contacts/query through fastify inject
//   floor    GET /healthz with the same bearer header: fastify + the auth hook, no query
//   roundTrip  SELECT 1 through the pool: the least each lookup before the page costs
// for two pages: the filtered one of issue 6, and one the index answers at once (where the overhead shows).
// and, for the HTTP requests, the queries each one ran (count, their time) and this process's CPU.
//   npx tsx bench/grid-page.ts     BENCH_CONTACTS (default 200000) BENCH_ROUNDS (default 200)
//   BENCH_PROFILE=/dir             a V8 CPU profile of the HTTP rounds
import { createReadStream, mkdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { CompiledQuery } from 'kysely';
import pg from 'pg';
import { openPostgres } from '../src/platform/database.ts';
import { importContacts } from '../src/audience/import-service.ts';
import { queryGrid } from '../src/audience/grid-service.ts';
import { createEnvoi } from '../src/app.ts';
import { writeContactsCsv } from './dataset.ts';
import { gridAudience } from './grid-audience.ts';
import { fmt } from './support.ts';

type Timer = () => Promise<unknown>;

const quantile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
};

/** Runs every measure once per round (rotating who goes first), after the same warm-up for each. */
export async function interleaved(measures: Record<string, Timer>, rounds: number, warmup: number) {
  const names = Object.keys(measures);
  const times: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  const cpuUs: Record<string, number> = Object.fromEntries(names.map((n) => [n, 0]));
  for (let r = -warmup; r < rounds; r++) {
    for (let k = 0; k < names.length; k++) {
      const name = names[(k + Math.max(r, 0)) % names.length]!;
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      await measures[name]!();
      const ms = performance.now() - t0;
      const c = process.cpuUsage(c0);
      if (r >= 0) {
        times[name]!.push(ms);
        cpuUs[name]! += c.user + c.system;
      }
    }
  }
  return Object.fromEntries(names.map((n) => [n, { n: times[n]!.length, p50: quantile(times[n]!, 0.5), p95: quantile(times[n]!, 0.95), cpuMs: cpuUs[n]! / 1000 / rounds }]));
}

export async function seedGridAudience(url: string, n: number) {
  const queries: { sql: string; params: readonly unknown[]; ms: number }[] = [];
  let logging = false;
  const database = await openPostgres(url, 10, (sql, params, ms) => {
    if (logging) queries.push({ sql, params, ms });
  });
  const { config, ctx, key, p, aud, events } = await gridAudience(database, url);
  const csv = join(tmpdir(), `envoi-bench-page-${n}-${process.pid}.csv`);
  try {
    await writeContactsCsv(csv, n);
    const imp = await importContacts(ctx, p, { audienceId: aud.id, source: 'cli' }, createReadStream(csv));
    if (imp.created !== n) throw new Error(`import created ${imp.created} of ${n}`);
  } finally {
    unlinkSync(csv);
  }
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  for (const [i, share] of [0.3, 0.2, 0.1].entries()) {
    await c.query(
      `INSERT INTO participants (org_id, audience_id, event_id, contact_id, data)
       SELECT org_id, audience_id, $1, id, jsonb_build_object('email', email) FROM contacts
       WHERE audience_id = $2 AND (hashtext(id::text || $3) & 1023) < $4`,
      [events[i]!.id, aud.id, String(i), Math.round(share * 1024)],
    );
  }
  await c.query('ANALYZE');
  await c.end();
  return {
    database,
    config,
    ctx,
    key: key.key,
    p,
    audienceId: aud.id,
    events,
    queries,
    setLogging: (on: boolean) => {
      logging = on;
    },
  };
}

export async function gridPageBench() {
  const n = Number(process.env.BENCH_CONTACTS ?? 200_000);
  const rounds = Number(process.env.BENCH_ROUNDS ?? 200);
  const adminUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const dbName = `envoi_bench_page_${Date.now()}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  const url = adminUrl.replace(/\/[^/?]*(\?|$)/, `/${dbName}$1`);
  let seeded: Awaited<ReturnType<typeof seedGridAudience>> | null = null;
  try {
    seeded = await seedGridAudience(url, n);
    const s = seeded;
    const raw = new pg.Client({ connectionString: url });
    await raw.connect();
    const envoi = await createEnvoi({ config: s.config, database: s.database });
    const headers = { authorization: `Bearer ${s.key}`, 'content-type': 'application/json' };
    const event = s.events[0]!.id;
    const pages = {
      // the page of issue 6: the SQL filters most of the audience, so its own time dominates
      'event + 2 field filters': { and: [{ event: { in: [event] } }, { field: 'job_title', op: 'contains', value: 'engineer' }, { field: 'diet', op: 'in', value: ['vegan', 'vegetarian'] }] },
      // a page the index answers at once: what comes around the query stands out
      'event filter only': { event: { in: [event] } },
    };
    for (const [label, filter] of Object.entries(pages)) {
      const query = { filter, sort: { field: 'last_name', dir: 'asc' }, limit: 50, count: false };
      s.setLogging(true);
      await queryGrid(s.ctx, { ...s.p }, s.audienceId, query);
      s.setLogging(false);
      const page = s.queries.find((q) => /order by/i.test(q.sql) && /limit/i.test(q.sql));
      if (!page) throw new Error('no page query seen');
      s.queries.length = 0;
      if (process.env.BENCH_EXPLAIN) {
        const plan = await raw.query(`EXPLAIN (ANALYZE, BUFFERS) ${page.sql}`, [...page.params]);
        console.log(plan.rows.map((x) => x['QUERY PLAN']).join('\n'));
      }
      const payload = JSON.stringify(query);
      const compiled = CompiledQuery.raw(page.sql, [...page.params]);
      let httpCalls = 0;
      let httpQueries = 0;
      let httpQueryMs = 0;
      const http = async () => {
        s.setLogging(true);
        const r = await envoi.http.inject({ method: 'POST', url: `/v1/audiences/${s.audienceId}/contacts/query`, headers, payload });
        s.setLogging(false);
        if (r.statusCode !== 200) throw new Error(`HTTP ${r.statusCode}: ${r.body}`);
        httpCalls++;
        for (const q of s.queries) {
          httpQueries++;
          httpQueryMs += q.ms;
        }
        s.queries.length = 0;
      };
      const measures: Record<string, Timer> = {
        sql: () => raw.query(page.sql, [...page.params]),
        pool: () => s.database.db.executeQuery(compiled),
        service: () => queryGrid(s.ctx, { ...s.p }, s.audienceId, query),
        http,
        floor: () => envoi.http.inject({ method: 'GET', url: '/healthz', headers }),
        roundTrip: () => s.database.db.executeQuery(CompiledQuery.raw('SELECT 1', [])),
      };
      const profileDir = process.env.BENCH_PROFILE;
      const session = profileDir ? new Session() : null;
      if (session) {
        session.connect();
        await session.post('Profiler.enable');
        await session.post('Profiler.start');
      }
      const r = await interleaved(measures, rounds, 10);
      if (session && profileDir) {
        const { profile } = await session.post('Profiler.stop');
        mkdirSync(profileDir, { recursive: true });
        const file = join(profileDir, `grid-page-${Date.now()}.cpuprofile`);
        writeFileSync(file, JSON.stringify(profile));
        console.log(`profile written to ${file}`);
        session.disconnect();
      }
      const [load] = loadavg();
      console.log(`\nGrid page (${label}, sort last_name, 50 rows), ${fmt(n, 0)} contacts, ${rounds} interleaved rounds (+10 warm-up each), load ${fmt(load!, 1)}, ${new Date().toISOString()}\n`);
      console.log('| measure | p50 ms | p95 ms | p50 / sql | p95 / sql | CPU ms of this process per call |');
      console.log('|---|---|---|---|---|---|');
      for (const [name, m] of Object.entries(r)) {
        console.log(`| ${name} | ${fmt(m.p50, 2)} | ${fmt(m.p95, 2)} | ${fmt(m.p50 / r.sql!.p50, 2)}x | ${fmt(m.p95 / r.sql!.p95, 2)}x | ${fmt(m.cpuMs, 2)} |`);
      }
      console.log(
        `\nper HTTP request: ${fmt(httpQueries / httpCalls, 2)} queries, ${fmt(httpQueryMs / httpCalls, 2)} ms in them (as Kysely times them); ` +
          `HTTP minus SQL: p50 ${fmt(r.http!.p50 - r.sql!.p50, 2)} ms`,
      );
    }
    await raw.end();
    await envoi.http.close();
  } finally {
    await seeded?.database.close();
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin.end();
  }
}

if (process.argv[1]?.endsWith('grid-page.ts')) await gridPageBench();
