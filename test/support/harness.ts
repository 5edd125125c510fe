import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { loadConfig } from '../../src/platform/config.ts';
import { openPGlite, openPostgres, type Database } from '../../src/platform/database.ts';
import { createEnvoi, type Envoi } from '../../src/app.ts';
import * as orgs from '../../src/organisations/service.ts';

export const ADMIN_URL = process.env.ENVOI_TEST_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const dbKind = (process.env.ENVOI_TEST_DB ?? 'pglite') as 'pglite' | 'postgres';

/** A fresh, empty database of the kind this test project runs on. */
export async function freshDatabase(): Promise<{ database: Database; url: string | null; drop(): Promise<void> }> {
  if (dbKind === 'pglite') {
    const database = await openPGlite('memory://');
    return { database, url: null, drop: async () => {} };
  }
  const name = `envoi_test_${Date.now()}_${randomBytes(3).toString('hex')}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = ADMIN_URL.replace(/\/[^/]*$/, `/${name}`);
  const database = await openPostgres(url, 5);
  return {
    database,
    url,
    async drop() {
      const a = new pg.Client({ connectionString: ADMIN_URL });
      await a.connect();
      await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await a.end();
    },
  };
}

export interface TestOrg {
  orgId: string;
  ownerToken: string;
  apiKey: string;
  ownerEmail: string;
}

export interface TestApp {
  envoi: Envoi;
  /** a mutable clock: tests move `clock.now` to cross lockout and expiry times */
  clock: { now: Date };
  request(method: string, url: string, opts?: { token?: string; body?: unknown; headers?: Record<string, string> }): Promise<{ status: number; body: any; headers: Record<string, any>; text: string }>;
  createOrg(name?: string): Promise<TestOrg>;
  close(): Promise<void>;
}

// The webhook tests' receivers listen on 127.0.0.1: private networks are allowed here (webhooks.test.ts checks the default).
export async function startTestApp(): Promise<TestApp> {
  const fresh = await freshDatabase();
  // TEST_CLOCK_START (an ISO date) replays a run that failed at one hour of the day.
  const clock = { now: new Date(process.env.TEST_CLOCK_START ?? Date.now()) };
  const config = { ...loadConfig({ ENVOI_ALLOW_SIGNUP: 'true', ENVOI_SECRET: 'test-secret-test-secret-test-secret!', ENVOI_WEBHOOK_PRIVATE_NETWORKS: 'allow' }), databaseUrl: fresh.url };
  const envoi = await createEnvoi({ config, database: fresh.database, ctx: { now: () => clock.now, exposeTokensForTests: true } });
  let n = 0;
  const app: TestApp = {
    envoi,
    clock,
    async request(method, url, opts = {}) {
      const res = await envoi.http.inject({
        method: method as any,
        url,
        payload: opts.body === undefined ? undefined : typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body),
        headers: {
          ...(opts.body !== undefined && typeof opts.body !== 'string' ? { 'content-type': 'application/json' } : {}),
          ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
          ...opts.headers,
        },
      });
      let body: any = res.body;
      try {
        body = res.body ? JSON.parse(res.body) : null;
      } catch {
        /* not JSON */
      }
      return { status: res.statusCode, body, headers: res.headers, text: res.body };
    },
    async createOrg(name = `Org ${++n}`) {
      const ownerEmail = `owner${n}-${randomBytes(3).toString('hex')}@example.com`;
      const created = await orgs.createOrganisation(envoi.ctx, { name, ownerEmail, ownerPassword: 'correct horse battery staple' });
      const session = await orgs.login(envoi.ctx, ownerEmail, 'correct horse battery staple');
      const key = await orgs.createApiKey(envoi.ctx, created.organisation.id, { name: 'test key', role: 'owner' });
      return { orgId: created.organisation.id, ownerToken: session.token, apiKey: key.key, ownerEmail };
    },
    async close() {
      await envoi.close();
      await fresh.drop();
    },
  };
  return app;
}

/** Asserts an HTTP status, showing the body when it differs (the error message says why). */
export function expectStatus(res: { status: number; body: unknown }, status: number) {
  if (res.status !== status) throw new Error(`expected HTTP ${status}, got ${res.status}: ${JSON.stringify(res.body)}`);
}

/** Polls `check` until it holds, failing with `what` after `ms`: for state other processes or loops reach. */
export async function until(check: () => Promise<boolean> | boolean, what: string, ms = 15_000) {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * An audience with one event a month ahead (Europe/Paris), created through the API with `token`,
 * and a maker of templates in it (language en unless given): the common start of a sending test.
 */
export async function audienceWithEvent(t: TestApp, token: string, eventName: string) {
  const call = (url: string, body: Record<string, unknown>) => t.request('POST', url, { token, body });
  const a = await call('/v1/audiences', { name: 'People' });
  expectStatus(a, 201);
  const day = 86_400_000;
  const e = await call(`/v1/audiences/${a.body.id}/events`, {
    name: eventName,
    starts_at: new Date(t.clock.now.getTime() + 30 * day).toISOString(),
    ends_at: new Date(t.clock.now.getTime() + 31 * day).toISOString(),
    time_zone: 'Europe/Paris',
  });
  expectStatus(e, 201);
  const audienceId = a.body.id as string;
  return {
    audienceId,
    eventId: e.body.id as string,
    async template(body: Record<string, unknown>): Promise<string> {
      const r = await call(`/v1/audiences/${audienceId}/templates`, { language: 'en', ...body });
      expectStatus(r, 201);
      return r.body.id as string;
    },
  };
}
