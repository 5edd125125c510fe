import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectStatus, startTestApp, type TestApp, type TestOrg } from './support/harness.ts';

/*
 * The session cookie is sent by the browser on its own, so a write it authenticates must also carry
 * the x-envoi-csrf header, which only a page that read /v1/auth/login or /v1/me can know.
 * Bearer credentials (API keys, session tokens in the Authorization header) are never sent
 * implicitly and need no such header.
 */

let t: TestApp;
let org: TestOrg;
const PASSWORD = 'correct horse battery staple';

async function browserLogin() {
  const r = await t.request('POST', '/v1/auth/login', { body: { email: org.ownerEmail, password: PASSWORD } });
  expectStatus(r, 200);
  const cookie = String(r.headers['set-cookie']).split(';')[0]!;
  return { cookie, csrf: r.body.csrf_token as string, token: r.body.token as string };
}

beforeAll(async () => {
  t = await startTestApp();
  org = await t.createOrg('CSRF org');
});
afterAll(async () => {
  await t?.close();
});

describe('CSRF protection of the session cookie', () => {
  it('gives the same token at login and in /v1/me, bound to the session', async () => {
    const a = await browserLogin();
    const b = await browserLogin();
    expect(a.csrf).toMatch(/^[A-Za-z0-9_-]{40,}$/);
    expect(a.csrf).not.toBe(b.csrf);
    const me = await t.request('GET', '/v1/me', { headers: { cookie: a.cookie } });
    expectStatus(me, 200);
    expect(me.body.csrf_token).toBe(a.csrf);
    // An API key has no session, so no CSRF token.
    const key = await t.request('GET', '/v1/me', { token: org.apiKey });
    expect(key.body.csrf_token).toBeNull();
  });

  it('refuses a cookie-authenticated write without the header, or with a wrong one or another session’s, with a clear 403', async () => {
    const a = await browserLogin();
    const b = await browserLogin();
    const attempts: Record<string, string>[] = [{ cookie: a.cookie }, { cookie: a.cookie, 'x-envoi-csrf': 'forged' }, { cookie: a.cookie, 'x-envoi-csrf': b.csrf }, { cookie: a.cookie, 'x-envoi-csrf': '' }];
    for (const headers of attempts) {
      const r = await t.request('POST', '/v1/audiences', { body: { name: 'Should not exist' }, headers });
      expectStatus(r, 403);
      expect(r.body.error.code).toBe('csrf_token_invalid');
      expect(r.body.error.message).toContain('x-envoi-csrf');
    }
    const list = await t.request('GET', '/v1/audiences', { token: org.apiKey });
    expect(list.body.audiences.map((x: { name: string }) => x.name)).not.toContain('Should not exist');
  });

  it('accepts the write with the right header, for POST, PATCH and DELETE; reads need no header', async () => {
    const a = await browserLogin();
    const headers = { cookie: a.cookie, 'x-envoi-csrf': a.csrf };
    const created = await t.request('POST', '/v1/audiences', { body: { name: 'Made in the browser' }, headers });
    expectStatus(created, 201);
    const renamed = await t.request('PATCH', `/v1/audiences/${created.body.id}`, { body: { name: 'Renamed in the browser' }, headers });
    expectStatus(renamed, 200);
    expectStatus(await t.request('PATCH', `/v1/audiences/${created.body.id}`, { body: { name: 'No header' }, headers: { cookie: a.cookie } }), 403);
    const view = await t.request('POST', `/v1/audiences/${created.body.id}/views`, { body: { name: 'v' }, headers });
    expectStatus(view, 201);
    expectStatus(await t.request('DELETE', `/v1/audiences/${created.body.id}/views/${view.body.id}`, { headers: { cookie: a.cookie } }), 403);
    expectStatus(await t.request('DELETE', `/v1/audiences/${created.body.id}/views/${view.body.id}`, { headers }), 204);
    const read = await t.request('GET', `/v1/audiences/${created.body.id}`, { headers: { cookie: a.cookie } });
    expectStatus(read, 200);
    expect(read.body.name).toBe('Renamed in the browser');
  });

  it('leaves bearer credentials alone: API keys and session tokens in the Authorization header', async () => {
    const a = await browserLogin();
    expectStatus(await t.request('POST', '/v1/audiences', { body: { name: 'By key' }, token: org.apiKey }), 201);
    expectStatus(await t.request('POST', '/v1/audiences', { body: { name: 'By bearer session' }, token: a.token }), 201);
    // The Authorization header wins over a cookie sent with it.
    expectStatus(await t.request('POST', '/v1/audiences', { body: { name: 'Key and cookie' }, token: org.apiKey, headers: { cookie: a.cookie } }), 201);
  });

  it('does not stand in the way of public forms for a logged-in browser (a new login with an old cookie)', async () => {
    const a = await browserLogin();
    const again = await t.request('POST', '/v1/auth/login', { body: { email: org.ownerEmail, password: PASSWORD }, headers: { cookie: a.cookie } });
    expectStatus(again, 200);
  });

  it('logs the cookie session out only with the header, and then the cookie opens nothing', async () => {
    const a = await browserLogin();
    expectStatus(await t.request('POST', '/v1/auth/logout', { headers: { cookie: a.cookie } }), 403);
    expectStatus(await t.request('GET', '/v1/me', { headers: { cookie: a.cookie } }), 200);
    const out = await t.request('POST', '/v1/auth/logout', { headers: { cookie: a.cookie, 'x-envoi-csrf': a.csrf } });
    expectStatus(out, 200);
    expect(String(out.headers['set-cookie'])).toContain('Max-Age=0');
    expectStatus(await t.request('GET', '/v1/me', { headers: { cookie: a.cookie } }), 401);
  });

  it('answers 401, not 500, to a cookie that is not valid percent-encoding', async () => {
    expectStatus(await t.request('GET', '/v1/me', { headers: { cookie: 'envoi_session=%E0%A4%A' } }), 401);
  });
});
