import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEnvoi, type Envoi } from '../src/app.ts';
import { expectStatus, startTestApp, type TestApp, type TestOrg } from './support/harness.ts';

/*
 * The client address in a consent proof: the socket's, unless the instance names its reverse proxy
 * (ENVOI_TRUST_PROXY); then the address the proxy forwarded. A visitor reaching envoi directly cannot
 * put another address in the proof by sending X-Forwarded-For.
 */

let t: TestApp;
let org: TestOrg;
let behindProxy: Envoi;
let audienceId: string;
let formId: string;

const api = (method: string, url: string, body?: unknown) => t.request(method, url, { token: org.apiKey, body });

async function submit(app: Envoi, email: string, headers: Record<string, string>) {
  const res = await app.http.inject({
    method: 'POST',
    url: `/f/${formId}`,
    payload: new URLSearchParams({ email, consent: 'yes' }).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    remoteAddress: '127.0.0.1',
  });
  expect(res.statusCode).toBe(200);
  const contact = await t.envoi.ctx.db.selectFrom('contacts').select('id').where('audience_id', '=', audienceId).where('email_lower', '=', email).executeTakeFirstOrThrow();
  const history = await api('GET', `/v1/audiences/${audienceId}/contacts/${contact.id}/consents`);
  expectStatus(history, 200);
  return history.body.records[0].ip as string | null;
}

beforeAll(async () => {
  t = await startTestApp();
  org = await t.createOrg('Proxied');
  audienceId = (await api('POST', '/v1/audiences', { name: 'Lettre' })).body.id;
  const f = await api('POST', `/v1/audiences/${audienceId}/signup-forms`, { name: 'Lettre', language: 'fr', wording: 'Je veux la lettre.', wording_version: '1' });
  expectStatus(f, 201);
  formId = f.body.id;
  // A second server on the same database, configured as it would be behind a proxy on this machine.
  behindProxy = await createEnvoi({ config: { ...t.envoi.ctx.config, trustProxy: '127.0.0.1' }, database: t.envoi.ctx.database, ctx: { now: () => t.clock.now } });
});

afterAll(async () => {
  await behindProxy?.http.close();
  await t?.close();
});

describe('client address behind a reverse proxy', () => {
  it('ignores X-Forwarded-For by default: the proof holds the address that connected', async () => {
    expect(t.envoi.ctx.config.trustProxy).toBe(false);
    expect(await submit(t.envoi, 'direct@example.com', { 'x-forwarded-for': '203.0.113.9' })).toBe('127.0.0.1');
  });

  it('takes the forwarded address from a trusted proxy, and only as far as the proxies it trusts', async () => {
    expect(await submit(behindProxy, 'proxied@example.com', { 'x-forwarded-for': '203.0.113.9' })).toBe('203.0.113.9');
    // The visitor's own X-Forwarded-For comes first in the chain; the proxy appends the address it saw.
    expect(await submit(behindProxy, 'forger@example.com', { 'x-forwarded-for': '198.51.100.1, 203.0.113.10' })).toBe('203.0.113.10');
  });
});
