// Grid benchmark: an audience of N contacts (default 1,000,000) with events, communities and central
// fields, on PostgreSQL. Times the CSV import (against PostgreSQL's own COPY of the same file), a
// filtered + sorted grid page (against the same SQL run directly), the total count, and a bulk edit
// of a view of N/10 contacts.
//   npm run bench -- grid            (BENCH_CONTACTS=200000 for a quicker run; DATABASE_URL to choose the server)
import { createReadStream, readFileSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { loadConfig } from '../src/platform/config.ts';
import { openPostgres } from '../src/platform/database.ts';
import { migrate } from '../src/platform/migrate.ts';
import { createContext } from '../src/platform/context.ts';
import * as orgs from '../src/organisations/service.ts';
import * as audience from '../src/audience/service.ts';
import { DEFAULT_BATCH_SIZE, DEFAULT_LANES, importContacts } from '../src/audience/import-service.ts';
import { bulkUpdateContacts, createView, queryGrid, queryView } from '../src/audience/grid-service.ts';
import { createEnvoi } from '../src/app.ts';
import { writeContactsCsv } from './dataset.ts';
import { gridAudience } from './grid-audience.ts';
import { interleaved } from './grid-page.ts';
import { fmt, printTable, sample, time, writeResults, type Row } from './support.ts';

export async function gridBench() {
  const n = Number(process.env.BENCH_CONTACTS ?? 1_000_000);
  const adminUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const dbName = `envoi_bench_${Date.now()}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  const url = adminUrl.replace(/\/[^/?]*(\?|$)/, `/${dbName}$1`);
  let captured: { sql: string; params: readonly unknown[] } | null = null;
  let capture = false;
  let queryCount = 0;
  const database = await openPostgres(url, 10, (sql, params) => {
    queryCount++;
    if (capture && /limit/i.test(sql) && /order by/i.test(sql)) captured = { sql, params };
  });
  const csv = join(tmpdir(), `envoi-bench-${n}.csv`);
  const results: Record<string, unknown> = { contacts: n, database: 'postgres' };
  const rows: Row[] = [];
  try {
    const { config, ctx, key, p, aud, events, communities } = await gridAudience(database, url);

    // 1. CSV import vs COPY of the same file
    const bytes = await writeContactsCsv(csv, n);
    const copy = await time(async () => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query('CREATE TABLE copy_target (email text, first_name text, last_name text, company text, job_title text, diet text, score int, birthday date)');
      await c.query(`COPY copy_target FROM '${csv}' WITH (FORMAT csv, HEADER true)`);
      await c.query('DROP TABLE copy_target');
      await c.end();
    });
    const floor = await contactsFloor(adminUrl, csv, n);
    const mem0 = process.memoryUsage().rss;
    const cpu0 = process.cpuUsage();
    const backends = watchBackendCpu(url, 'envoi import');
    const imp = await time(() => importContacts(ctx, p, { audienceId: aud.id, source: 'cli' }, createReadStream(csv)));
    const nodeCpuS = cpuSeconds(process.cpuUsage(cpu0));
    const backendCpuS = await backends.stop();
    if (imp.value.created !== n) throw new Error(`import created ${imp.value.created} of ${n} rows: ${JSON.stringify(imp.value.errors.slice(0, 3))}`);
    const importRate = n / (imp.ms / 1000);
    const copyRate = n / (copy.ms / 1000);
    const shape = `${DEFAULT_LANES} lanes x ${fmt(DEFAULT_BATCH_SIZE, 0)}-row chunks`;
    results.import = {
      ms: imp.ms, rowsPerSecond: importRate, copyMs: copy.ms, copyRowsPerSecond: copyRate, fileBytes: bytes, rssGrowthMB: (process.memoryUsage().rss - mem0) / 1e6,
      lanes: DEFAULT_LANES, chunkRows: DEFAULT_BATCH_SIZE, nodeCpuSeconds: nodeCpuS, importBackendsCpuSeconds: backendCpuS,
    };
    const floorRate = n / (floor / 1000);
    results.import = { ...(results.import as object), contactsFloorMs: floor, contactsFloorRowsPerSecond: floorRate };
    rows.push({ measure: `CSV import, ${fmt(n, 0)} rows (${shape})`, value: `${fmt(importRate, 0)} rows/s`, baseline: `COPY ${fmt(copyRate, 0)} rows/s`, ratio: `${fmt(importRate / copyRate, 3)} of COPY`, target: '> 20,000 rows/s' });
    rows.push({ measure: '  the same rows into contacts by the database alone (COPY to staging + one INSERT)', value: `${fmt(floorRate, 0)} rows/s`, ratio: `import ${fmt(importRate / floorRate, 2)} of it` });
    rows.push({
      measure: 'CSV import: CPU seconds (this process / import backends)',
      value: `${fmt(nodeCpuS, 1)} s / ${backendCpuS === null ? 'n/a' : `${fmt(backendCpuS, 1)} s`}`,
      baseline: `wall ${fmt(imp.ms / 1000, 1)} s`,
      ratio: `${fmt(((nodeCpuS + (backendCpuS ?? 0)) * 1e6) / n, 1)} us CPU per row`,
    });

    // participations and memberships (setup, set-based)
    const setup = await time(async () => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      const shares = [0.3, 0.2, 0.1];
      for (const [i, ev] of events.entries()) {
        await c.query(
          `INSERT INTO participants (org_id, audience_id, event_id, contact_id, data)
           SELECT org_id, audience_id, $1, id, jsonb_build_object('email', email) FROM contacts
           WHERE audience_id = $2 AND (hashtext(id::text || $3) & 1023) < $4`,
          [ev.id, aud.id, String(i), Math.round(shares[i]! * 1024)],
        );
      }
      for (const [i, co] of communities.entries()) {
        await c.query(
          `INSERT INTO members (org_id, audience_id, community_id, contact_id, data)
           SELECT org_id, audience_id, $1, id, '{}'::jsonb FROM contacts WHERE audience_id = $2 AND (hashtext(id::text || 'c' || $3) & 1023) < 154`,
          [co.id, aud.id, String(i)],
        );
      }
      await c.query('ANALYZE');
      await c.end();
    });
    results.participationsSetupMs = setup.ms;

    // 2. a filtered + sorted page through the service, through HTTP, and the same SQL directly
    const query = {
      filter: { and: [{ event: { in: [events[0]!.id] } }, { field: 'job_title', op: 'contains', value: 'engineer' }, { field: 'diet', op: 'in', value: ['vegan', 'vegetarian'] }] },
      sort: { field: 'last_name', dir: 'asc' },
      limit: 50,
      count: false,
    };
    capture = true;
    await queryGrid(ctx, p, aud.id, query);
    capture = false;
    const direct = captured!;
    const raw = new pg.Client({ connectionString: url });
    await raw.connect();
    const envoi = await createEnvoi({ config, database });
    let httpQueries = 0;
    let httpCalls = 0;
    const pageMeasures = {
      sql: () => raw.query(direct.sql, [...direct.params]),
      // a fresh principal per call, as each HTTP request has (the audience check is per principal)
      service: () => queryGrid(ctx, { ...p }, aud.id, query),
      http: async () => {
        const before = queryCount;
        const r = await envoi.http.inject({ method: 'POST', url: `/v1/audiences/${aud.id}/contacts/query`, headers: { authorization: `Bearer ${key.key}`, 'content-type': 'application/json' }, payload: JSON.stringify(query) });
        if (r.statusCode !== 200) throw new Error(`grid page: HTTP ${r.statusCode} ${r.body}`);
        httpQueries += queryCount - before;
        httpCalls++;
      },
    };
    // The same samples and warm-up for each, interleaved so that a change of load hits all three.
    const pageTimes = await interleaved(pageMeasures, 30, 5);
    const [sqlPage, svcPage, httpPage] = [pageTimes.sql!, pageTimes.service!, pageTimes.http!];
    results.page = { service: svcPage, http: httpPage, directSql: sqlPage, queriesPerHttpRequest: httpQueries / httpCalls };
    rows.push({
      measure: 'grid page (event + 2 field filters, sort last_name, 50 rows), HTTP',
      value: `p50 ${fmt(httpPage.p50)} ms, p95 ${fmt(httpPage.p95)} ms`,
      baseline: `same SQL p50 ${fmt(sqlPage.p50)} ms, p95 ${fmt(sqlPage.p95)} ms`,
      ratio: `p50 ${fmt(httpPage.p50 / sqlPage.p50, 2)}x, p95 ${fmt(httpPage.p95 / sqlPage.p95, 2)}x`,
      target: 'p95 < 50 ms (< 100 ms issue 2), within 2x of SQL',
    });
    rows.push({
      measure: '  the same page through the service (no HTTP)',
      value: `p50 ${fmt(svcPage.p50)} ms, p95 ${fmt(svcPage.p95)} ms`,
      baseline: `${fmt(httpQueries / httpCalls, 2)} queries per HTTP request`,
      ratio: `CPU of this process per call: SQL ${fmt(sqlPage.cpuMs, 2)}, service ${fmt(svcPage.cpuMs, 2)}, HTTP ${fmt(httpPage.cpuMs, 2)} ms`,
    });

    // a page deep in a keyset walk: the third page of the same query
    const first = await queryGrid(ctx, p, aud.id, { ...query });
    const second = await queryGrid(ctx, p, aud.id, { ...query, cursor: first.next_cursor });
    const keyset = await sample(20, () => queryGrid(ctx, p, aud.id, { ...query, cursor: second.next_cursor }));
    rows.push({ measure: 'grid page 3 by cursor (service)', value: `p50 ${fmt(keyset.p50)} ms, p95 ${fmt(keyset.p95)} ms` });

    // 3. total count of the same filter, and of the whole audience
    const countFiltered = await sample(10, () => queryGrid(ctx, p, aud.id, { ...query, limit: 1, count: true }), 1);
    const countAll = await sample(5, () => queryGrid(ctx, p, aud.id, { limit: 1, count: true }), 1);
    const totals = await queryGrid(ctx, p, aud.id, { ...query, limit: 1, count: true });
    results.count = { filtered: countFiltered, all: countAll, filteredTotal: totals.total };
    rows.push({ measure: `total count, filtered (${fmt(totals.total ?? 0, 0)} contacts)`, value: `p50 ${fmt(countFiltered.p50)} ms` });
    rows.push({ measure: `total count, whole audience (${fmt(n, 0)})`, value: `p50 ${fmt(countAll.p50)} ms` });

    // 4. bulk edit of a saved view of ~N/10 contacts (participants of the third event)
    const view = await createView(ctx, p, aud.id, { name: 'Workshop participants', filter: { event: { in: [events[2]!.id] } } });
    const viewSize = (await queryView(ctx, p, aud.id, view.id, { limit: 1, count: true })).total ?? 0;
    const bulk = await time(() => bulkUpdateContacts(ctx, p, aud.id, { target: { view_id: view.id }, set: { job_title: 'Workshop attendee', fields: { score: 42 } } }));
    results.bulk = { ms: bulk.ms, updated: bulk.value.updated, viewSize };
    rows.push({ measure: `bulk edit of a view (${fmt(bulk.value.updated, 0)} contacts)`, value: `${fmt(bulk.ms / 1000, 2)} s`, baseline: `${fmt(bulk.value.updated / (bulk.ms / 1000), 0)} rows/s`, target: '< 10 s (issue 2), < 5 s (issue 6)' });

    // 5. the same file again: every row now updates a contact
    const again = await time(() => importContacts(ctx, p, { audienceId: aud.id, source: 'cli' }, createReadStream(csv)));
    if (again.value.updated !== n) throw new Error(`re-import updated ${again.value.updated} of ${n} rows`);
    results.reimport = { ms: again.ms, rowsPerSecond: n / (again.ms / 1000) };
    rows.push({ measure: `CSV re-import of the same file (${fmt(n, 0)} updates)`, value: `${fmt(n / (again.ms / 1000), 0)} rows/s`, baseline: `COPY ${fmt(copyRate, 0)} rows/s`, ratio: `${fmt(n / (again.ms / 1000) / copyRate, 3)} of COPY` });

    await raw.end();
    await envoi.http.close();
    printTable(`Grid benchmark, ${fmt(n, 0)} contacts, PostgreSQL (${new Date().toISOString()})`, rows);
    writeResults('grid', results);
  } finally {
    await database.close();
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin.end();
    try {
      unlinkSync(csv);
    } catch {}
  }
}

/**
 * What the database alone takes to write the file's rows into `contacts` (its indexes, foreign keys
 * and statement triggers): COPY into a staging table, then one INSERT ... SELECT in email order with
 * rising ids, as the importer writes them. The floor of any importer on this schema, where COPY into
 * a bare table is not one. In a scratch database, so that these rows take no part in what follows.
 */
async function contactsFloor(adminUrl: string, csv: string, n: number): Promise<number> {
  const name = `envoi_bench_floor_${Date.now()}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const url = adminUrl.replace(/\/[^/?]*(\?|$)/, `/${name}$1`);
  const database = await openPostgres(url, 2);
  try {
    await migrate(database);
    const ctx = createContext({ ...loadConfig({}), databaseUrl: url }, database);
    const org = await orgs.createOrganisation(ctx, { name: 'Floor', ownerEmail: 'floor@example.com', ownerPassword: 'floor floor floor' });
    const key = await orgs.createApiKey(ctx, org.organisation.id, { name: 'floor', role: 'owner' });
    const aud = await audience.createAudience(ctx, (await orgs.authenticate(ctx, key.key))!, 'Floor');
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    const t = await time(async () => {
      await c.query('CREATE TEMP TABLE stage (email text, first_name text, last_name text, company text, job_title text, diet text, score int, birthday date)');
      await c.query(`COPY stage FROM '${csv}' WITH (FORMAT csv, HEADER true)`);
      const r = await c.query(
        `INSERT INTO contacts (id, org_id, audience_id, email, email_lower, first_name, last_name, company, job_title, fields)
         SELECT uuid(lpad(to_hex(row_number() OVER (ORDER BY lower(email))), 32, '0')), $1, $2, email, lower(email), first_name, last_name, company, job_title,
           jsonb_build_object('diet', diet, 'score', score, 'birthday', birthday)
         FROM stage ORDER BY lower(email)`,
        [org.organisation.id, aud.id],
      );
      if (r.rowCount !== n) throw new Error(`floor wrote ${r.rowCount} of ${n} rows`);
    });
    await c.end();
    return t.ms;
  } finally {
    await database.close();
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }
}

const cpuSeconds = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1e6;

/**
 * CPU time of the server backends with this application_name, read from /proc while they run (the
 * backends of an import end with it). Only when the server runs on this machine; null otherwise.
 * Sampled every 200 ms, so each backend's last fraction of a second is missed: a floor.
 */
function watchBackendCpu(url: string, applicationName: string) {
  const seen = new Map<number, number>();
  const client = new pg.Client({ connectionString: url });
  let local = true;
  const ticksPerSecond = 100; // USER_HZ on Linux
  const sample = async () => {
    try {
      const r = await client.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE application_name = $1', [applicationName]);
      for (const { pid } of r.rows) {
        const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
        seen.set(pid, (Number(fields[11]) + Number(fields[12])) / ticksPerSecond);
      }
    } catch {
      local = false;
    }
  };
  const started = client.connect().then(sample);
  const timer = setInterval(() => void started.then(sample), 200);
  return {
    async stop(): Promise<number | null> {
      clearInterval(timer);
      await started.catch(() => {});
      await client.end().catch(() => {});
      return local && seen.size ? [...seen.values()].reduce((a, b) => a + b, 0) : null;
    },
  };
}
