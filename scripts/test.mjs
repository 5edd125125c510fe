// `npm test`: the unit tests, the integration suite on PGlite and on PostgreSQL, and the browser tests.
// Without a reachable PostgreSQL the PostgreSQL half is skipped and said so; under CI=true that is a failure.
import { spawnSync } from 'node:child_process';
import pg from 'pg';

const adminUrl = process.env.ENVOI_TEST_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const inCI = /^(1|true)$/i.test(process.env.CI ?? '');

async function postgresReachable() {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } catch (e) {
    return e.message;
  } finally {
    await client.end().catch(() => {});
  }
}

const reachable = await postgresReachable();
const projects = ['--project', 'unit', '--project', 'pglite'];
if (reachable === true) projects.push('--project', 'postgres');
else if (inCI) {
  console.error(`\nPostgreSQL is not reachable at ${adminUrl} (${reachable}); CI requires both databases.\n`);
  console.log('0 passed, 1 failed');
  process.exit(1);
} else {
  console.warn(`\n*** PostgreSQL not reachable at ${adminUrl} (${reachable}): the PostgreSQL half of the suite is SKIPPED. ***\n`);
}
projects.push('--project', 'browser');

const args = ['vitest', 'run', ...projects, ...process.argv.slice(2)];
const r = spawnSync('npx', args, { stdio: 'inherit', env: process.env });
if (reachable !== true) console.warn('\n*** Reminder: the PostgreSQL half was skipped (no PostgreSQL reachable). ***');
process.exit(r.status ?? 1);
