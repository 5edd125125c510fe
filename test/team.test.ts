import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectStatus, startTestApp, type TestApp, type TestOrg } from './support/harness.ts';

/* The team of an organisation, managed by its owners: roles, names, removal, and the last owner kept. */

let t: TestApp;
let org: TestOrg;
let other: TestOrg;
const PASSWORD = 'team password 123';

const api = (method: string, url: string, body?: unknown, token = org.ownerToken) => t.request(method, url, { token, body });
async function addUser(email: string, role: 'owner' | 'editor' | 'viewer', name = '') {
  const r = await api('POST', '/v1/users', { email, password: PASSWORD, role, name });
  expectStatus(r, 201);
  return r.body.id as string;
}
async function sessionOf(email: string) {
  const r = await t.request('POST', '/v1/auth/login', { body: { email, password: PASSWORD } });
  expectStatus(r, 200);
  return r.body.token as string;
}
const ownerId = async () => (await api('GET', '/v1/me')).body.id as string;

beforeAll(async () => {
  t = await startTestApp();
  org = await t.createOrg('Team Org');
  other = await t.createOrg('Other Org');
});
afterAll(async () => t?.close());

describe('team management', () => {
  it("changes a user's role and name; the new role applies to their open session at once", async () => {
    const id = await addUser('ed@example.com', 'editor', 'Ed');
    const session = await sessionOf('ed@example.com');
    expectStatus(await t.request('POST', '/v1/audiences', { token: session, body: { name: 'by Ed' } }), 201);

    const r = await api('PATCH', `/v1/users/${id}`, { role: 'viewer', name: '  Edward ' });
    expectStatus(r, 200);
    expect(r.body).toMatchObject({ id, email: 'ed@example.com', name: 'Edward', role: 'viewer' });
    expect((await t.request('GET', '/v1/me', { token: session })).body.role).toBe('viewer');
    expectStatus(await t.request('POST', '/v1/audiences', { token: session, body: { name: 'by Ed again' } }), 403);

    const list = (await api('GET', '/v1/users')).body.users;
    expect(list.find((u: { id: string }) => u.id === id)).toMatchObject({ name: 'Edward', role: 'viewer' });
    expect(JSON.stringify(list)).not.toContain('password');
    // Only the name: the role stays.
    expect((await api('PATCH', `/v1/users/${id}`, { name: 'Ed' })).body).toMatchObject({ name: 'Ed', role: 'viewer' });
    expectStatus(await api('PATCH', `/v1/users/${id}`, {}), 400);
    expectStatus(await api('PATCH', `/v1/users/${id}`, { role: 'admin' }), 400);
    expectStatus(await api('PATCH', `/v1/users/${id}`, { email: 'new@example.com' }), 400);
  });

  it('removes a user: their sessions end at once, and they can no longer log in', async () => {
    const id = await addUser('leaver@example.com', 'editor');
    const s1 = await sessionOf('leaver@example.com');
    const s2 = await sessionOf('leaver@example.com');
    expectStatus(await t.request('GET', '/v1/me', { token: s1 }), 200);

    expectStatus(await api('DELETE', `/v1/users/${id}`), 204);
    for (const s of [s1, s2]) expectStatus(await t.request('GET', '/v1/me', { token: s }), 401);
    expect(await t.envoi.ctx.db.selectFrom('user_sessions').select('id').where('user_id', '=', id).execute()).toEqual([]);
    expectStatus(await t.request('POST', '/v1/auth/login', { body: { email: 'leaver@example.com', password: PASSWORD } }), 401);
    expect((await api('GET', '/v1/users')).body.users.map((u: { email: string }) => u.email)).not.toContain('leaver@example.com');
    expectStatus(await api('DELETE', `/v1/users/${id}`), 404);
    // The address is free again.
    await addUser('leaver@example.com', 'viewer');
  });

  it('keeps at least one owner: the last owner can be neither demoted nor removed (409 last_owner)', async () => {
    const me = await ownerId();
    const demote = await api('PATCH', `/v1/users/${me}`, { role: 'editor' });
    expectStatus(demote, 409);
    expect(demote.body.error.code).toBe('last_owner');
    expect(demote.body.error.message).toContain('last owner');
    const remove = await api('DELETE', `/v1/users/${me}`);
    expectStatus(remove, 409);
    expect(remove.body.error.code).toBe('last_owner');
    // Renaming the last owner, or "changing" them to owner, is fine.
    expectStatus(await api('PATCH', `/v1/users/${me}`, { role: 'owner', name: 'The Owner' }), 200);

    // With a second owner, either may go; then the one left is the last again.
    const second = await addUser('second-owner@example.com', 'owner');
    expectStatus(await api('PATCH', `/v1/users/${second}`, { role: 'editor' }), 200);
    expectStatus(await api('PATCH', `/v1/users/${second}`, { role: 'owner' }), 200);
    const secondSession = await sessionOf('second-owner@example.com');
    expectStatus(await api('PATCH', `/v1/users/${me}`, { role: 'viewer' }, secondSession), 200);
    expectStatus(await api('DELETE', `/v1/users/${second}`, undefined, secondSession), 409);
    expectStatus(await api('PATCH', `/v1/users/${me}`, { role: 'owner' }, secondSession), 200);
    // An owner may remove themselves when another owner remains; their session ends.
    expectStatus(await api('DELETE', `/v1/users/${second}`, undefined, secondSession), 204);
    expectStatus(await t.request('GET', '/v1/me', { token: secondSession }), 401);
    const owners = (await api('GET', '/v1/users')).body.users.filter((u: { role: string }) => u.role === 'owner');
    expect(owners.map((u: { id: string }) => u.id)).toEqual([me]);
  });

  it('two owners demoting each other at the same time leave one owner', async () => {
    const a = await addUser('race-a@example.com', 'owner');
    const me = await ownerId();
    // Two owners, each demoting the other at once: one change goes through; the other finds the last
    // owner (409), or, when the first one's commit came before its role check, a caller no longer owner (403).
    const sa = await sessionOf('race-a@example.com');
    const results = await Promise.all([api('PATCH', `/v1/users/${a}`, { role: 'editor' }), api('PATCH', `/v1/users/${me}`, { role: 'editor' }, sa)]);
    const statuses = results.map((r) => r.status).sort();
    expect(statuses[0]).toBe(200);
    expect([403, 409]).toContain(statuses[1]);
    const owners = (await api('GET', '/v1/users', undefined, org.apiKey)).body.users.filter((u: { role: string }) => u.role === 'owner');
    expect(owners).toHaveLength(1);
    // Back to one known owner for what follows.
    if (owners[0].id !== me) {
      expectStatus(await api('PATCH', `/v1/users/${me}`, { role: 'owner' }, org.apiKey), 200);
      expectStatus(await api('DELETE', `/v1/users/${a}`, undefined, org.apiKey), 204);
    } else expectStatus(await api('DELETE', `/v1/users/${a}`), 204);
  });

  it("is the owners' alone, and another organisation's users are not found", async () => {
    const id = await addUser('target@example.com', 'editor', 'Target');
    const editor = await addUser('editor2@example.com', 'editor');
    const editorSession = await sessionOf('editor2@example.com');
    expectStatus(await api('PATCH', `/v1/users/${id}`, { role: 'owner' }, editorSession), 403);
    expectStatus(await api('PATCH', `/v1/users/${editor}`, { role: 'owner' }, editorSession), 403);
    expectStatus(await api('DELETE', `/v1/users/${id}`, undefined, editorSession), 403);

    for (const token of [other.ownerToken, other.apiKey]) {
      const p = await api('PATCH', `/v1/users/${id}`, { role: 'viewer', name: 'Hijacked' }, token);
      expectStatus(p, 404);
      expect(p.text).not.toContain('target@example.com');
      expectStatus(await api('DELETE', `/v1/users/${id}`, undefined, token), 404);
    }
    const target = (await api('GET', '/v1/users')).body.users.find((u: { id: string }) => u.id === id);
    expect(target).toMatchObject({ name: 'Target', role: 'editor' });
    expectStatus(await api('PATCH', '/v1/users/not-a-uuid', { role: 'viewer' }), 400);
    expectStatus(await api('DELETE', '/v1/users/00000000-0000-4000-8000-000000000000'), 404);
  });
});

describe('API keys', () => {
  it('records when a key was last used', async () => {
    const created = await api('POST', '/v1/api-keys', { name: 'crm', role: 'viewer' });
    expectStatus(created, 201);
    const lastUsed = async () => ((await api('GET', '/v1/api-keys')).body.api_keys as Array<{ id: string; last_used_at: string | null }>).find((k) => k.id === created.body.id)!.last_used_at;
    expect(await lastUsed()).toBeNull();
    for (let i = 0; i < 5; i++) expectStatus(await t.request('GET', '/v1/me', { token: created.body.key }), 200);
    await expect.poll(lastUsed, { timeout: 5_000 }).not.toBeNull();
    expect(Math.abs(Date.now() - new Date((await lastUsed())!).getTime())).toBeLessThan(60_000);
  });
});
