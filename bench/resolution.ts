// A campaign's resolution alone: the scheduler turning the target into delivery rows (a page of the
// target, the send-time policy, the deliveries and their queued/blocked events), with no worker
// sending meanwhile, against PostgreSQL writing the same rows itself in one statement.
//
//   BENCH_CONTACTS=100000 npm run bench -- resolution
//   BENCH_RUNS=3          runs of each, alternating (the best of each is reported; all are in the JSON)
//   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres (the admin URL; a fresh database is created and dropped)
//
// The audience and newsletter are the campaign bench's (bench/campaign-seed.ts): 70% with marketing
// consent, 5% excluded, 2% hard-bounced. The baseline is the floor of the write: the same number of
// delivery rows and events, with the statuses the policy gives, inserted by one INSERT ... SELECT from
// the contacts (no policy in the application, no round trip per page).
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { sql } from 'kysely';
import { loadConfig } from '../src/platform/config.ts';
import { openPostgres } from '../src/platform/database.ts';
import { createEnvoi } from '../src/app.ts';
import * as orgs from '../src/organisations/service.ts';
import * as audience from '../src/audience/service.ts';
import { createView } from '../src/audience/grid-service.ts';
import { createTemplate } from '../src/mail/template-service.ts';
import { createCampaign, runDue } from '../src/campaigns/service.ts';
import { expectedCounts, SEED, seedSql, TEMPLATE } from './campaign-seed.ts';
import { postgresBackends } from './processes.ts';
import { fmt, printTable, writeResults, type Row } from './support.ts';

const env = process.env;

interface Run {
  ms: number;
  nodeUsPerRecipient: number;
  pgUsPerRecipient: number;
}

/** CPU of this process and of the database's backends over `fn`, per recipient. */
async function measured(dbName: string, n: number, fn: () => Promise<unknown>): Promise<Run> {
  const b0 = postgresBackends(dbName);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await fn();
  const ms = performance.now() - t0;
  const c = process.cpuUsage(c0);
  let ticks = 0;
  for (const [pid, t] of postgresBackends(dbName)) ticks += t - (b0.get(pid) ?? 0);
  return { ms, nodeUsPerRecipient: (c.user + c.system) / n, pgUsPerRecipient: (ticks * 10_000) / n };
}

export async function resolutionBench() {
  const n = Number(env.BENCH_CONTACTS ?? 100_000);
  const runs = Number(env.BENCH_RUNS ?? 3);
  if (!Number.isInteger(n) || n < 1000) throw new Error(`BENCH_CONTACTS must be an integer >= 1000, got "${env.BENCH_CONTACTS}"`);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`BENCH_RUNS must be an integer >= 1, got "${env.BENCH_RUNS}"`);
  const adminUrl = env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const dbName = `envoi_bench_resolution_${Date.now()}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  const url = adminUrl.replace(/\/[^/?]*(\?|$)/, `/${dbName}$1`);
  const database = await openPostgres(url, 4);
  const envoi = await createEnvoi({ config: { ...loadConfig({}), secret: randomBytes(24).toString('hex'), publicUrl: 'http://127.0.0.1:8080', databaseUrl: url }, database, logger: false });
  try {
    const ctx = envoi.ctx;
    const org = await orgs.createOrganisation(ctx, { name: 'Bench news', ownerEmail: 'owner@bench.example.com', ownerPassword: 'bench bench bench' });
    const key = await orgs.createApiKey(ctx, org.organisation.id, { name: 'bench', role: 'owner' });
    const p = (await orgs.authenticate(ctx, key.key))!;
    const aud = await audience.createAudience(ctx, p, 'Newsletter readers');
    console.log(`[resolution] seeding ${fmt(n, 0)} contacts`);
    await database.exec(seedSql(org.organisation.id, aud.id, n));
    const template = await createTemplate(ctx, p, aud.id, TEMPLATE);
    const view = await createView(ctx, p, aud.id, { name: 'Everyone', filter: { and: [] } });
    const expected = expectedCounts(n);

    const envoiRuns: Run[] = [];
    const sqlRuns: Run[] = [];
    for (let r = 0; r < runs; r++) {
      // envoi: a campaign started now, resolved by one scheduler pass
      await createCampaign(ctx, p, aud.id, { name: `run ${r}`, template_id: template.id, target: { view_id: view.id }, start: true });
      envoiRuns.push(await measured(dbName, n, () => runDue(ctx, 'bench')));
      const counts = await database.db
        .selectFrom('deliveries as d')
        .innerJoin('campaigns as c', 'c.message_id', 'd.message_id')
        .select(['d.status', (eb) => eb.fn.countAll<number>().as('n')])
        .where('c.name', '=', `run ${r}`)
        .groupBy('d.status')
        .execute();
      const by = Object.fromEntries(counts.map((x) => [x.status, Number(x.n)]));
      const blocked = Object.values(expected.blocked).reduce((a, b) => a + (b ?? 0), 0);
      if (by.queued !== expected.allowed || by.blocked !== blocked) throw new Error(`run ${r}: ${JSON.stringify(by)}, expected ${expected.allowed} queued and ${blocked} blocked`);

      // the floor: the same rows and events written by PostgreSQL alone, into a message of their own
      const floor = await sql<{ id: string }>`
        INSERT INTO messages (org_id, audience_id, origin, category, template_id, template_version, variables, created_by, created_at)
        SELECT m.org_id, m.audience_id, m.origin, m.category, m.template_id, m.template_version, m.variables, m.created_by, now()
        FROM campaigns c JOIN messages m ON m.id = c.message_id WHERE c.name = ${`run ${r}`}
        RETURNING id`.execute(database.db);
      const floorId = floor.rows[0]!.id;
      const status = `CASE WHEN ${SEED.hardBounced.sql} OR ${SEED.excluded.sql} OR NOT (${SEED.consent.sql}) THEN 'blocked' ELSE 'queued' END`;
      sqlRuns.push(
        await measured(dbName, n, () =>
          database.exec(`
            WITH c AS (SELECT id, email, (row_number() OVER (ORDER BY id)) - 1 AS i FROM contacts WHERE audience_id = '${aud.id}'),
            d AS (
              INSERT INTO deliveries (id, org_id, message_id, contact_id, email, lane, priority, status, rule, rule_detail, due_at, expires_at, created_at, updated_at)
              SELECT gen_random_uuid(), '${org.organisation.id}', '${floorId}', c.id, c.email, 'bulk', 0, ${status},
                     CASE WHEN ${status} = 'blocked' THEN 'no_marketing_consent' END, NULL, now(), now() + interval '3 days', now(), now()
              FROM c
              RETURNING id, status
            )
            INSERT INTO message_events (org_id, message_id, delivery_id, type, at, detail)
            SELECT '${org.organisation.id}', '${floorId}', d.id, CASE WHEN d.status = 'blocked' THEN 'blocked' ELSE 'queued' END, now(), '{}'::jsonb FROM d`),
        ),
      );
      console.log(`[resolution] run ${r + 1}/${runs}: envoi ${fmt(envoiRuns[r]!.ms, 0)} ms, PostgreSQL alone ${fmt(sqlRuns[r]!.ms, 0)} ms`);
    }

    const best = (list: Run[]) => list.reduce((a, b) => (b.ms < a.ms ? b : a));
    const e = best(envoiRuns);
    const s = best(sqlRuns);
    const rows: Row[] = [
      { measure: 'resolve + write the deliveries and their events (one scheduler pass)', value: `${fmt(e.ms / 1000, 2)} s (${fmt((n / e.ms) * 1000, 0)} recipients/s)`, baseline: `PostgreSQL alone, one INSERT ... SELECT: ${fmt(s.ms / 1000, 2)} s`, ratio: `${fmt(e.ms / s.ms, 2)}x the floor` },
      { measure: 'CPU per recipient: this process (scheduler) / PostgreSQL', value: `${fmt(e.nodeUsPerRecipient, 1)} / ${fmt(e.pgUsPerRecipient, 1)} us`, baseline: `PostgreSQL alone: ${fmt(s.pgUsPerRecipient, 1)} us`, ratio: `${fmt((e.nodeUsPerRecipient + e.pgUsPerRecipient) / s.pgUsPerRecipient, 2)}x` },
      { measure: 'policy counts', value: `${fmt(expected.allowed, 0)} queued, ${Object.entries(expected.blocked).map(([k, v]) => `${k} ${fmt(v ?? 0, 0)}`).join(', ')}`, baseline: 'seeded expectation', ratio: 'exact' },
    ];
    printTable(`Campaign resolution: ${fmt(n, 0)} contacts, best of ${runs} (${new Date().toISOString()})`, rows);
    writeResults('resolution', { contacts: n, runs, envoi: envoiRuns, postgresAlone: sqlRuns, rows });
  } finally {
    await envoi.close().catch(() => {});
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch((e) => console.error(`could not drop ${dbName}: ${String(e)}`));
    await admin.end().catch(() => {});
  }
}
