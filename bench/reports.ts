// Reports benchmark, on PostgreSQL: N message events (default 2,000,000) of twelve campaigns and of
// triggered mail in two audiences are written in INSERTs of ~5,000 rows, as the worker and the
// tracking endpoints write them, with the rollup trigger on. Then each report is answered from the
// rollups (the API's path: src/reports/service.ts) and by scanning message_events (the baseline:
// src/reports/scan.ts), the two answers compared, and both timed. Last, what the trigger costs an
// INSERT: the same events written with the trigger disabled and enabled.
//   npm run bench -- reports      (BENCH_EVENTS=200000 for a quicker run; DATABASE_URL to choose the server;
//                                  BENCH_KEEP=1 keeps the database to look into)
import pg from 'pg';
import { loadConfig } from '../src/platform/config.ts';
import { openPostgres } from '../src/platform/database.ts';
import { migrate } from '../src/platform/migrate.ts';
import { createContext } from '../src/platform/context.ts';
import * as orgs from '../src/organisations/service.ts';
import * as audience from '../src/audience/service.ts';
import { links, series, type SeriesQuery } from '../src/reports/service.ts';
import { bucketRange, buildSeries } from '../src/reports/rules.ts';
import { scanSeriesRows, scanTopLinks } from '../src/reports/scan.ts';
import type { Scope } from '../src/reports/store.ts';
import { fmt, printTable, sample, time, writeResults, type Row } from './support.ts';

const BASE = new Date('2026-01-05T00:00:00Z');
const DAY = 86_400_000;
const CAMPAIGNS = 12;
// events per delivery of the plan below: queued, sent or a refusal, a late bounce for 1 %, opens
// (35 % open, 1-3 times), clicks (8 %, 1-2), complaints and unsubscribes
const EVENTS_PER_DELIVERY = 1 + 0.99 + 0.02 + 0.98 * 0.35 * 2 + 0.98 * 0.08 * 1.5 + 0.98 * 0.005;

/**
 * One row per delivery with the fate its events will tell: the plan the events are generated from,
 * so that the deliveries (sent_at of the sent ones) and their events agree.
 */
async function plan(c: pg.Client, table: string, deliveries: number, messages: { campaign: string[]; triggeredShare: number; start: (i: number) => string }) {
  await c.query(`
    CREATE UNLOGGED TABLE ${table} AS
    SELECT n, gen_random_uuid() AS delivery_id, message_id, t0, campaign,
           r_bounce < 0.01 AS sync_bounce, r_bounce >= 0.01 AND r_bounce < 0.02 AS late_bounce,
           CASE WHEN r_bounce >= 0.02 AND r_open < 0.35 THEN 1 + floor(r2 * 3)::int ELSE 0 END AS opens,
           CASE WHEN r_bounce >= 0.02 AND r_open < 0.08 THEN 1 + floor(r3 * 2)::int ELSE 0 END AS clicks,
           CASE WHEN r_bounce >= 0.02 THEN r_misc ELSE 1 END AS r_misc
    FROM (
      SELECT n, random() AS r_bounce, random() AS r_open, random() AS r2, random() AS r3, random() AS r_misc,
             CASE WHEN n < ${Math.round(deliveries * (1 - messages.triggeredShare))}
                  THEN (ARRAY[${messages.campaign.map((m) => `'${m}'::uuid`).join(',')}])[1 + n % ${messages.campaign.length}]
                  ELSE gen_random_uuid() END AS message_id,
             n % ${messages.campaign.length} AS campaign,
             CASE WHEN n < ${Math.round(deliveries * (1 - messages.triggeredShare))}
                  THEN (ARRAY[${messages.campaign.map((_, i) => `'${messages.start(i)}'::timestamptz`).join(',')}])[1 + n % ${messages.campaign.length}] + ((n / ${messages.campaign.length}) % 3600) * interval '1 second'
                  ELSE '${BASE.toISOString()}'::timestamptz + random() * interval '30 days' END AS t0
      FROM generate_series(0, ${deliveries - 1}) n
    ) r`);
  await c.query(`CREATE INDEX ON ${table} (n)`);
}

function eventsSql(table: string, orgId: string) {
  return `
    INSERT INTO message_events (org_id, message_id, delivery_id, type, at, detail)
    SELECT '${orgId}', p.message_id, p.delivery_id, e.type, e.at, e.detail
    FROM ${table} p
    CROSS JOIN LATERAL (
      SELECT 'queued'::text AS type, p.t0 - interval '1 minute' AS at, '{}'::jsonb AS detail
      UNION ALL SELECT 'sent', p.t0, jsonb_build_object('smtp_response', '250 2.0.0 Ok') WHERE NOT p.sync_bounce
      UNION ALL SELECT 'bounced', p.t0, '{"kind": "hard", "smtp_response": "550 5.1.1 No such user"}' WHERE p.sync_bounce
      UNION ALL SELECT 'bounced', p.t0 + interval '5 hours', '{"kind": "soft"}' WHERE p.late_bounce
      UNION ALL SELECT 'opened', p.t0 + g * interval '9 hours' - interval '8 hours', '{}' FROM generate_series(1, p.opens) g
      UNION ALL SELECT 'clicked', p.t0 + g * interval '9 hours' - interval '7 hours', jsonb_build_object('url', 'https://bench.example/l/' || ((p.n + g) % 7), 'index', (p.n + g) % 7)
        FROM generate_series(1, p.clicks) g
      UNION ALL SELECT 'unsubscribed', p.t0 + interval '1 day', '{}' WHERE p.r_misc >= 0.001 AND p.r_misc < 0.005
      UNION ALL SELECT 'complained', p.t0 + interval '2 days', '{}' WHERE p.r_misc < 0.001
    ) e
    WHERE p.n >= $1 AND p.n < $2`;
}

async function ingest(c: pg.Client, table: string, orgId: string, deliveries: number, perStatement: number) {
  const text = eventsSql(table, orgId);
  let events = 0;
  let statements = 0;
  for (let lo = 0; lo < deliveries; lo += perStatement) {
    const r = await c.query(text, [lo, lo + perStatement]);
    events += r.rowCount ?? 0;
    statements++;
  }
  return { events, statements };
}

export async function reportsBench() {
  const target = Number(process.env.BENCH_EVENTS ?? 2_000_000);
  const batch = Number(process.env.BENCH_BATCH ?? 5000);
  const adminUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const dbName = `envoi_bench_reports_${Date.now()}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  const url = adminUrl.replace(/\/[^/?]*(\?|$)/, `/${dbName}$1`);
  const database = await openPostgres(url, 4);
  const c = new pg.Client({ connectionString: url });
  const results: Record<string, unknown> = { targetEvents: target, batch, database: 'postgres' };
  const rows: Row[] = [];
  try {
    await c.connect();
    await migrate(database);
    const ctx = createContext({ ...loadConfig({}), databaseUrl: url }, database);
    const org = await orgs.createOrganisation(ctx, { name: 'Bench', ownerEmail: 'bench@example.com', ownerPassword: 'bench bench bench' });
    const key = await orgs.createApiKey(ctx, org.organisation.id, { name: 'bench', role: 'owner' });
    const p = (await orgs.authenticate(ctx, key.key))!;
    const orgId = org.organisation.id;
    const [main, second, scratch] = [await audience.createAudience(ctx, p, 'Main'), await audience.createAudience(ctx, p, 'Second'), await audience.createAudience(ctx, p, 'Scratch')];

    // templates (one for the campaigns and one for triggered mail per audience) and the campaign messages
    const template = async (audienceId: string, name: string, category: string) => {
      const r = await c.query(`INSERT INTO templates (org_id, audience_id, name, language) VALUES ($1, $2, $3, 'en') RETURNING id`, [orgId, audienceId, name]);
      await c.query(`INSERT INTO template_versions (template_id, version, category, language, subject, format, body, created_by) VALUES ($1, 1, $2, 'en', 'x', 'html', '<p>x</p>', 'bench')`, [r.rows[0].id, category]);
      return r.rows[0].id as string;
    };
    const tpl = { news: await template(main.id, 'News', 'marketing'), tx: await template(main.id, 'Receipt', 'transactional'), news2: await template(second.id, 'News 2', 'marketing'), tx2: await template(second.id, 'Receipt 2', 'transactional') };
    const campaignIds: string[] = [];
    const starts: string[] = [];
    for (let i = 0; i < CAMPAIGNS; i++) {
      const inMain = i < 9;
      const start = new Date(BASE.getTime() + i * 2.5 * DAY + 9 * 3_600_000).toISOString();
      const r = await c.query(
        `INSERT INTO messages (org_id, audience_id, origin, category, template_id, template_version, created_by, created_at) VALUES ($1, $2, 'campaign', 'marketing', $3, 1, 'bench', $4) RETURNING id`,
        [orgId, inMain ? main.id : second.id, inMain ? tpl.news : tpl.news2, start],
      );
      campaignIds.push(r.rows[0].id);
      starts.push(start);
    }

    // the plan, the triggered messages and the deliveries
    const deliveries = Math.round(target / EVENTS_PER_DELIVERY);
    const setup = await time(async () => {
      await plan(c, 'bench_plan', deliveries, { campaign: campaignIds, triggeredShare: 0.1, start: (i) => starts[i]! });
      await c.query(
        `INSERT INTO messages (id, org_id, audience_id, origin, category, template_id, template_version, created_by, created_at)
         SELECT message_id, $1, CASE WHEN n % 10 < 7 THEN $2::uuid ELSE $3::uuid END, 'triggered', 'transactional', CASE WHEN n % 10 < 7 THEN $4::uuid ELSE $5::uuid END, 1, 'bench', t0
         FROM bench_plan WHERE NOT (message_id = ANY ($6::uuid[]))`,
        [orgId, main.id, second.id, tpl.tx, tpl.tx2, campaignIds],
      );
      await c.query(
        `INSERT INTO deliveries (id, org_id, message_id, email, lane, status, due_at, expires_at, attempts, sent_at, created_at, updated_at)
         SELECT delivery_id, $1, message_id, 'p' || n || '@bench.example', CASE WHEN message_id = ANY ($2::uuid[]) THEN 'bulk' ELSE 'transactional' END,
                CASE WHEN sync_bounce THEN 'bounced' WHEN late_bounce THEN 'bounced' ELSE 'sent' END, t0, t0 + interval '3 days', 1,
                CASE WHEN sync_bounce THEN NULL ELSE t0 END, t0, t0
         FROM bench_plan`,
        [orgId, campaignIds],
      );
    });
    results.setup = { deliveries, ms: setup.ms };

    // 1. ingest with the trigger on
    const perStatement = Math.max(1, Math.round(batch / EVENTS_PER_DELIVERY));
    const ing = await time(() => ingest(c, 'bench_plan', orgId, deliveries, perStatement));
    const n = ing.value.events;
    await c.query('ANALYZE');
    const sizes = (await c.query(`
      SELECT relname AS table, (SELECT count(*) FROM message_events) AS events,
             pg_total_relation_size(oid) AS bytes, reltuples::bigint AS rows
      FROM pg_class WHERE relname IN ('message_events', 'report_hourly', 'report_link_hourly', 'report_firsts', 'report_link_clicks') ORDER BY relname`)).rows;
    results.ingest = { events: n, statements: ing.value.statements, ms: ing.ms, eventsPerSecond: n / (ing.ms / 1000), tables: sizes };
    rows.push({ measure: `ingest ${fmt(n, 0)} events, ${fmt(ing.value.statements, 0)} INSERTs, trigger on`, value: `${fmt(n / (ing.ms / 1000), 0)} events/s`, baseline: `${fmt(ing.ms / 1000, 1)} s` });
    for (const s of sizes) rows.push({ measure: `  ${s.table}`, value: `${fmt(Number(s.rows), 0)} rows`, baseline: `${fmt(Number(s.bytes) / 1e6, 1)} MB` });

    // 2. reports: rollup (the service) against a scan of message_events, same answer
    const queries: { name: string; scope: Scope; q: SeriesQuery }[] = [
      { name: 'audience, 36 days by day (Europe/Paris)', scope: { kind: 'audience', id: main.id }, q: { audience_id: main.id, from: new Date(BASE.getTime() - DAY).toISOString(), to: new Date(BASE.getTime() + 35 * DAY).toISOString(), bucket: 'day', time_zone: 'Europe/Paris' } },
      { name: 'campaign template, 7 days by hour', scope: { kind: 'template', id: tpl.news }, q: { template_id: tpl.news, from: BASE.toISOString(), to: new Date(BASE.getTime() + 7 * DAY).toISOString(), bucket: 'hour' } },
      { name: 'triggered template, 36 days by day', scope: { kind: 'template', id: tpl.tx }, q: { template_id: tpl.tx, from: new Date(BASE.getTime() - DAY).toISOString(), to: new Date(BASE.getTime() + 35 * DAY).toISOString(), bucket: 'day' } },
      { name: 'one campaign, 72 hours by hour', scope: { kind: 'message', id: campaignIds[0]! }, q: { message_id: campaignIds[0]!, from: starts[0]!, to: new Date(new Date(starts[0]!).getTime() + 3 * DAY).toISOString(), bucket: 'hour' } },
    ];
    const compared: Record<string, unknown>[] = [];
    for (const { name, scope, q } of queries) {
      const answer = await series(ctx, p, q);
      const range = bucketRange(new Date(q.from!), new Date(q.to!), q.bucket!, answer.time_zone);
      if (!range.ok) throw new Error(range.reason);
      const scanned = buildSeries(range.starts, await scanSeriesRows(ctx.db, orgId, scope, range.starts, range.end));
      const same = JSON.stringify({ buckets: answer.buckets, totals: answer.totals }) === JSON.stringify(scanned);
      if (!same) throw new Error(`${name}: the rollup and the scan disagree\nrollup ${JSON.stringify(answer.totals)}\nscan   ${JSON.stringify(scanned.totals)}`);
      const fast = await sample(20, () => series(ctx, p, q));
      const slow = await sample(2, () => scanSeriesRows(ctx.db, orgId, scope, range.starts, range.end), 1);
      compared.push({ name, buckets: range.starts.length, sent: answer.totals.sent, rollup: fast, scan: slow, same });
      rows.push({ measure: `series: ${name}`, value: `p50 ${fmt(fast.p50, 2)} ms`, baseline: `scan p50 ${fmt(slow.p50, 0)} ms`, ratio: `${fmt(slow.p50 / fast.p50, 0)}x`, target: 'same answer' });
    }
    {
      const scope: Scope = { kind: 'audience', id: main.id };
      const answer = await links(ctx, p, { audience_id: main.id, limit: 10 });
      const scanned = await scanTopLinks(ctx.db, orgId, scope, 10);
      if (JSON.stringify(answer.links) !== JSON.stringify(scanned)) throw new Error(`top links disagree\n${JSON.stringify(answer.links)}\n${JSON.stringify(scanned)}`);
      const fast = await sample(20, () => links(ctx, p, { audience_id: main.id, limit: 10 }));
      const slow = await sample(2, () => scanTopLinks(ctx.db, orgId, scope, 10), 1);
      compared.push({ name: 'top links, audience, all time', rollup: fast, scan: slow, same: true });
      rows.push({ measure: 'top 10 links: audience, all time', value: `p50 ${fmt(fast.p50, 2)} ms`, baseline: `scan p50 ${fmt(slow.p50, 0)} ms`, ratio: `${fmt(slow.p50 / fast.p50, 0)}x`, target: 'same answer' });
    }
    results.reports = compared;

    // 3. what the trigger costs an INSERT: events of a scratch audience, written without then with it
    const scratchCampaign = (
      await c.query(`INSERT INTO messages (org_id, audience_id, origin, category, created_by) VALUES ($1, $2, 'campaign', 'marketing', 'bench') RETURNING id`, [orgId, scratch.id])
    ).rows[0].id as string;
    const scratchDeliveries = Math.round(Math.min(200_000, Math.max(50_000, n / 10)) / EVENTS_PER_DELIVERY);
    await plan(c, 'bench_scratch', scratchDeliveries, { campaign: [scratchCampaign], triggeredShare: 0, start: () => BASE.toISOString() });
    await c.query(
      `INSERT INTO deliveries (id, org_id, message_id, email, lane, status, due_at, expires_at, sent_at)
       SELECT delivery_id, $1, message_id, 's' || n || '@bench.example', 'bulk', 'sent', t0, t0, CASE WHEN sync_bounce THEN NULL ELSE t0 END FROM bench_scratch`,
      [orgId],
    );
    await c.query('ANALYZE bench_scratch');
    // Twice each way, alternating, best of each: this machine is shared and its timings wander.
    const runs: Record<'off' | 'on', number[]> = { off: [], on: [] };
    let written = { events: 0, statements: 0 };
    for (const mode of ['off', 'on', 'off', 'on'] as const) {
      if (mode === 'off') await c.query('ALTER TABLE message_events DISABLE TRIGGER message_events_report');
      const r = await time(() => ingest(c, 'bench_scratch', orgId, scratchDeliveries, perStatement));
      await c.query('ALTER TABLE message_events ENABLE TRIGGER message_events_report');
      runs[mode].push(r.ms);
      written = r.value;
      // back to the same state for the next run: no events, no rollup rows of the scratch audience
      await c.query(`DELETE FROM message_events WHERE message_id = $1`, [scratchCampaign]);
      await c.query(`DELETE FROM report_firsts WHERE delivery_id IN (SELECT delivery_id FROM bench_scratch)`);
      await c.query(`DELETE FROM report_link_clicks WHERE message_id = $1`, [scratchCampaign]);
      await c.query(`DELETE FROM report_hourly WHERE audience_id = $1`, [scratch.id]);
      await c.query(`DELETE FROM report_link_hourly WHERE audience_id = $1`, [scratch.id]);
      await c.query('VACUUM ANALYZE message_events, report_firsts, report_link_clicks, report_hourly, report_link_hourly');
    }
    const [off, on] = [Math.min(...runs.off), Math.min(...runs.on)];
    const perEvent = (ms: number) => (ms * 1000) / written.events;
    results.triggerCost = { events: written.events, statements: written.statements, offMs: runs.off, onMs: runs.on };
    rows.push({
      measure: `INSERT of ${fmt(written.events, 0)} events in ${fmt(written.statements, 0)} statements`,
      value: `trigger on ${fmt(perEvent(on), 1)} µs/event`,
      baseline: `off ${fmt(perEvent(off), 1)} µs/event`,
      ratio: `${fmt(on / off, 2)}x`,
      target: `trigger ${fmt(perEvent(on - off), 1)} µs/event`,
    });

    printTable(`Reports benchmark, ${fmt(n, 0)} events, PostgreSQL (${new Date().toISOString()})`, rows);
    writeResults('reports', results);
  } finally {
    await c.end().catch(() => {});
    await database.close();
    if (process.env.BENCH_KEEP) console.log(`kept database ${dbName}`);
    else await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin.end();
  }
}
