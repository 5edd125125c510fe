import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectStatus, startTestApp, type TestApp, type TestOrg } from './support/harness.ts';

let t: TestApp;
let org: TestOrg;
let audienceId: string;
let eventId: string;
let event2Id: string;
let communityId: string;

beforeAll(async () => {
  t = await startTestApp();
  org = await t.createOrg('Acme Events');
  const a = await t.request('POST', '/v1/audiences', { token: org.apiKey, body: { name: 'Main audience' } });
  expectStatus(a, 201);
  audienceId = a.body.id;
  const e = await t.request('POST', `/v1/audiences/${audienceId}/events`, {
    token: org.apiKey,
    body: { name: 'Summit 2026', starts_at: '2026-12-01T09:00:00+01:00', ends_at: '2026-12-02T18:00:00+01:00', time_zone: 'Europe/Paris' },
  });
  expectStatus(e, 201);
  eventId = e.body.id;
  const e2 = await t.request('POST', `/v1/audiences/${audienceId}/events`, {
    token: org.apiKey,
    body: { name: 'Meetup', starts_at: '2027-01-10T18:00:00Z', ends_at: '2027-01-10T21:00:00Z', time_zone: 'UTC' },
  });
  event2Id = e2.body.id;
  const c = await t.request('POST', `/v1/audiences/${audienceId}/communities`, { token: org.apiKey, body: { name: 'Alumni' } });
  expectStatus(c, 201);
  communityId = c.body.id;
});
afterAll(async () => t?.close());

describe('audience model', () => {
  it('serves health and the OpenAPI document', async () => {
    expect((await t.request('GET', '/healthz')).status).toBe(200);
    const doc = await t.request('GET', '/v1/openapi.json');
    expect(doc.status).toBe(200);
    expect(doc.body.paths['/v1/audiences/{audienceId}/contacts']).toBeTruthy();
  });

  it('rejects bad input with a clear 400', async () => {
    const r = await t.request('POST', `/v1/audiences/${audienceId}/events`, {
      token: org.apiKey,
      body: { name: 'Bad', starts_at: '2026-12-02T00:00:00Z', ends_at: '2026-12-01T00:00:00Z', time_zone: 'Mars/Olympus' },
    });
    expectStatus(r, 400);
    expect(r.body.error.code).toBe('invalid_dates');
    const tz = await t.request('POST', `/v1/audiences/${audienceId}/events`, {
      token: org.apiKey,
      body: { name: 'Bad', starts_at: '2026-12-01T00:00:00Z', ends_at: '2026-12-02T00:00:00Z', time_zone: 'Mars/Olympus' },
    });
    expect(tz.body.error.message).toMatch(/IANA/);
    const garbage = await t.request('POST', `/v1/audiences/${audienceId}/contacts`, { token: org.apiKey, body: { email: 'not-an-email' } });
    expectStatus(garbage, 400);
    expect(garbage.body.error.code).toBe('invalid_values');
    const notJson = await t.request('POST', `/v1/audiences/${audienceId}/contacts`, { token: org.apiKey, body: '{"email":', headers: { 'content-type': 'application/json' } });
    expectStatus(notJson, 400);
    const unknownProp = await t.request('POST', `/v1/audiences/${audienceId}/contacts`, { token: org.apiKey, body: { email: 'x@example.com', shoe_size: 42 } });
    expectStatus(unknownProp, 400);
    const badId = await t.request('GET', `/v1/audiences/not-a-uuid`, { token: org.apiKey });
    expectStatus(badId, 400);
  });

  it('bounds the limit and offset of the participant and member lists as the contacts list does, with a clear 400', async () => {
    for (const list of [`/v1/events/${eventId}/participants`, `/v1/communities/${communityId}/members`, `/v1/audiences/${audienceId}/contacts`]) {
      for (const [query, message] of [
        ['offset=99999999999999999999', /offset: must be <= 100000000/],
        ['offset=100000001', /offset: must be <= 100000000/],
        ['offset=-1', /offset: must be >= 0/],
        ['limit=0', /limit: must be >= 1/],
        ['limit=abc', /limit: must be integer/],
      ] as const) {
        const r = await t.request('GET', `${list}?${query}`, { token: org.apiKey });
        expectStatus(r, 400);
        expect(r.body.error.code, `${list}?${query}`).toBe('invalid_request');
        expect(r.body.error.message, `${list}?${query}`).toMatch(message);
        expect(r.body.error.message).not.toMatch(/bigint|out of range/);
      }
      expectStatus(await t.request('GET', `${list}?offset=100000000&limit=1`, { token: org.apiKey }), 200);
    }
    // The other lists paged by offset take the same bound.
    for (const list of ['/v1/exclusions', '/v1/suppressions', '/v1/outbox', `/v1/audiences/${audienceId}/contacts/00000000-0000-7000-8000-000000000000/messages`]) {
      const r = await t.request('GET', `${list}?offset=99999999999999999999`, { token: org.apiKey });
      expectStatus(r, 400);
      expect(r.body.error.message, list).toMatch(/offset: must be <= 100000000/);
    }
  });

  it('makes a participant a contact once the email is known, case-insensitively unique', async () => {
    const p = await t.request('POST', `/v1/events/${eventId}/participants`, {
      token: org.apiKey,
      body: { email: 'Ada@Example.com', first_name: 'Ada', last_name: 'Lovelace', company: 'Analytical', job_title: 'Engineer' },
    });
    expectStatus(p, 201);
    expect(p.body.contact_created).toBe(true);
    const again = await t.request('POST', `/v1/events/${event2Id}/participants`, { token: org.apiKey, body: { email: 'ada@example.COM', first_name: 'Ada' } });
    expectStatus(again, 201);
    expect(again.body.contact_created).toBe(false);
    expect(again.body.contact_id).toBe(p.body.contact_id);
    const dup = await t.request('POST', `/v1/events/${eventId}/participants`, { token: org.apiKey, body: { email: 'ADA@example.com' } });
    expectStatus(dup, 409);
    const direct = await t.request('POST', `/v1/audiences/${audienceId}/contacts`, { token: org.apiKey, body: { email: 'ada@EXAMPLE.com' } });
    expectStatus(direct, 409);

    const noEmail = await t.request('POST', `/v1/events/${eventId}/participants`, { token: org.apiKey, body: { first_name: 'Anonymous' } });
    expectStatus(noEmail, 201);
    expect(noEmail.body.contact_id).toBeNull();
    const later = await t.request('PATCH', `/v1/events/${eventId}/participants/${noEmail.body.id}`, { token: org.apiKey, body: { email: 'anon@example.org' } });
    expectStatus(later, 200);
    expect(later.body.contact_id).toBeTruthy();
    const contact = await t.request('GET', `/v1/audiences/${audienceId}/contacts/${later.body.contact_id}`, { token: org.apiKey });
    expect(contact.body.first_name).toBe('Anonymous');
    expect(contact.body.email).toBe('anon@example.org');
  });

  it('propagates participant and member edits up to the contact, never down', async () => {
    const p = await t.request('POST', `/v1/events/${eventId}/participants`, { token: org.apiKey, body: { email: 'grace@example.com', first_name: 'Grace', job_title: 'Admiral' } });
    const contactId = p.body.contact_id;
    const edit = await t.request('PATCH', `/v1/events/${eventId}/participants/${p.body.id}`, { token: org.apiKey, body: { job_title: 'Rear Admiral' } });
    expectStatus(edit, 200);
    let c = await t.request('GET', `/v1/audiences/${audienceId}/contacts/${contactId}`, { token: org.apiKey });
    expect(c.body.job_title).toBe('Rear Admiral');

    const m = await t.request('POST', `/v1/communities/${communityId}/members`, { token: org.apiKey, body: { email: 'GRACE@example.com', company: 'US Navy' } });
    expectStatus(m, 201);
    expect(m.body.contact_id).toBe(contactId);
    c = await t.request('GET', `/v1/audiences/${audienceId}/contacts/${contactId}`, { token: org.apiKey });
    expect(c.body.company).toBe('US Navy');
    expect(c.body.events.map((e: any) => e.id)).toEqual([eventId]);
    expect(c.body.communities.map((x: any) => x.id)).toEqual([communityId]);

    const contactEdit = await t.request('PATCH', `/v1/audiences/${audienceId}/contacts/${contactId}`, { token: org.apiKey, body: { job_title: 'Computer scientist' } });
    expectStatus(contactEdit, 200);
    expect(contactEdit.body.job_title).toBe('Computer scientist');
    const rec = await t.request('GET', `/v1/events/${eventId}/participants/${p.body.id}`, { token: org.apiKey });
    expect(rec.body.data.job_title).toBe('Rear Admiral');
  });

  it('shows central fields everywhere and keeps event fields local', async () => {
    const central = await t.request('POST', `/v1/audiences/${audienceId}/fields`, { token: org.apiKey, body: { key: 'diet', label: 'Diet', type: 'choice', options: ['none', 'vegetarian', 'vegan'] } });
    expectStatus(central, 201);
    const local = await t.request('POST', `/v1/events/${eventId}/fields`, { token: org.apiKey, body: { key: 'tshirt', type: 'choice', options: ['S', 'M', 'L'] } });
    expectStatus(local, 201);
    const shadow = await t.request('POST', `/v1/events/${event2Id}/fields`, { token: org.apiKey, body: { key: 'diet', type: 'text' } });
    expectStatus(shadow, 409);
    const reserved = await t.request('POST', `/v1/audiences/${audienceId}/fields`, { token: org.apiKey, body: { key: 'email', type: 'text' } });
    expectStatus(reserved, 400);

    const keys = async (url: string) => (await t.request('GET', url, { token: org.apiKey })).body.fields.map((f: any) => f.key);
    expect(await keys(`/v1/audiences/${audienceId}/fields`)).toContain('diet');
    expect(await keys(`/v1/audiences/${audienceId}/fields`)).not.toContain('tshirt');
    expect(await keys(`/v1/events/${eventId}/fields`)).toEqual(expect.arrayContaining(['diet', 'tshirt', 'email']));
    expect(await keys(`/v1/events/${event2Id}/fields`)).toContain('diet');
    expect(await keys(`/v1/events/${event2Id}/fields`)).not.toContain('tshirt');
    expect(await keys(`/v1/communities/${communityId}/fields`)).toContain('diet');

    const p = await t.request('POST', `/v1/events/${eventId}/participants`, { token: org.apiKey, body: { email: 'linus@example.com', fields: { diet: 'vegan', tshirt: 'L' } } });
    expectStatus(p, 201);
    const c = await t.request('GET', `/v1/audiences/${audienceId}/contacts/${p.body.contact_id}`, { token: org.apiKey });
    expect(c.body.fields).toEqual({ diet: 'vegan' });
    const badChoice = await t.request('POST', `/v1/events/${event2Id}/participants`, { token: org.apiKey, body: { email: 'x1@example.com', fields: { diet: 'carnivore' } } });
    expectStatus(badChoice, 400);
    const notHere = await t.request('POST', `/v1/events/${event2Id}/participants`, { token: org.apiKey, body: { email: 'x2@example.com', fields: { tshirt: 'M' } } });
    expectStatus(notHere, 400);
    expect(notHere.body.error.message).toMatch(/tshirt/);
  });

  it('attaches a contact to a company', async () => {
    const co = await t.request('POST', `/v1/audiences/${audienceId}/companies`, { token: org.apiKey, body: { name: 'Initech' } });
    expectStatus(co, 201);
    const c = await t.request('POST', `/v1/audiences/${audienceId}/contacts`, { token: org.apiKey, body: { email: 'peter@initech.com', company_id: co.body.id } });
    expectStatus(c, 201);
    const got = await t.request('GET', `/v1/audiences/${audienceId}/contacts/${c.body.id}`, { token: org.apiKey });
    expect(got.body.company_entity).toEqual({ id: co.body.id, name: 'Initech' });
    expect(got.body.marketing_authorized_at).toBeNull();
    expect(got.body.created_at).toBeTruthy();
  });

  it('erases a contact everywhere in the audience in one go', async () => {
    const p = await t.request('POST', `/v1/events/${eventId}/participants`, { token: org.apiKey, body: { email: 'erase-me@example.com' } });
    const contactId = p.body.contact_id;
    await t.request('POST', `/v1/events/${event2Id}/participants`, { token: org.apiKey, body: { email: 'erase-me@example.com' } });
    await t.request('POST', `/v1/communities/${communityId}/members`, { token: org.apiKey, body: { email: 'erase-me@example.com' } });
    const del = await t.request('DELETE', `/v1/audiences/${audienceId}/contacts/${contactId}`, { token: org.apiKey });
    expectStatus(del, 200);
    expect(del.body).toMatchObject({ deleted: true, participant_records: 2, member_records: 1 });
    expectStatus(await t.request('GET', `/v1/audiences/${audienceId}/contacts/${contactId}`, { token: org.apiKey }), 404);
    expectStatus(await t.request('GET', `/v1/events/${eventId}/participants/${p.body.id}`, { token: org.apiKey }), 404);
    const list = await t.request('GET', `/v1/events/${event2Id}/participants?limit=1000`, { token: org.apiKey });
    expect(list.body.items.some((r: any) => r.contact_id === contactId)).toBe(false);
  });
});

describe('tenant isolation and roles', () => {
  it('never lets another organisation see or touch the data', async () => {
    const other = await t.createOrg('Other Org');
    const contact = await t.request('POST', `/v1/audiences/${audienceId}/contacts`, { token: org.apiKey, body: { email: 'secret@example.com' } });
    for (const [method, url, body] of [
      ['GET', `/v1/audiences/${audienceId}`],
      ['PATCH', `/v1/audiences/${audienceId}`, { name: 'pwned' }],
      ['GET', `/v1/audiences/${audienceId}/events`],
      ['POST', `/v1/audiences/${audienceId}/events`, { name: 'x', starts_at: '2026-01-01T00:00:00Z', ends_at: '2026-01-02T00:00:00Z', time_zone: 'UTC' }],
      ['GET', `/v1/events/${eventId}`],
      ['GET', `/v1/events/${eventId}/participants`],
      ['POST', `/v1/events/${eventId}/participants`, { email: 'intruder@example.com' }],
      ['GET', `/v1/communities/${communityId}/members`],
      ['GET', `/v1/audiences/${audienceId}/fields`],
      ['POST', `/v1/audiences/${audienceId}/fields`, { key: 'evil', type: 'text' }],
      ['GET', `/v1/audiences/${audienceId}/contacts/${contact.body.id}`],
      ['PATCH', `/v1/audiences/${audienceId}/contacts/${contact.body.id}`, { first_name: 'pwned' }],
      ['DELETE', `/v1/audiences/${audienceId}/contacts/${contact.body.id}`],
    ] as const) {
      for (const token of [other.apiKey, other.ownerToken]) {
        const r = await t.request(method, url, { token, body });
        expect(r.status, `${method} ${url}`).toBe(404);
      }
    }
    const mine = await t.request('GET', '/v1/audiences', { token: other.apiKey });
    expect(mine.body.audiences).toEqual([]);
    const still = await t.request('GET', `/v1/audiences/${audienceId}/contacts/${contact.body.id}`, { token: org.apiKey });
    expect(still.body.first_name).toBeNull();
  });

  it('limits a key scoped to some audiences, and a viewer cannot write', async () => {
    const second = await t.request('POST', '/v1/audiences', { token: org.apiKey, body: { name: 'Second' } });
    const scoped = await t.request('POST', '/v1/api-keys', { token: org.ownerToken, body: { name: 'scoped', audience_ids: [second.body.id], role: 'editor' } });
    expectStatus(scoped, 201);
    expect(scoped.body.key).toMatch(/^ek_/);
    expectStatus(await t.request('GET', `/v1/audiences/${audienceId}`, { token: scoped.body.key }), 404);
    expectStatus(await t.request('GET', `/v1/audiences/${second.body.id}`, { token: scoped.body.key }), 200);
    const listed = await t.request('GET', '/v1/audiences', { token: scoped.body.key });
    expect(listed.body.audiences.map((a: any) => a.id)).toEqual([second.body.id]);

    const viewer = await t.request('POST', '/v1/api-keys', { token: org.ownerToken, body: { name: 'viewer', role: 'viewer' } });
    expectStatus(await t.request('GET', `/v1/audiences/${audienceId}/events`, { token: viewer.body.key }), 200);
    expectStatus(await t.request('POST', `/v1/audiences/${audienceId}/contacts`, { token: viewer.body.key, body: { email: 'v@example.com' } }), 403);

    const keys = await t.request('GET', '/v1/api-keys', { token: org.ownerToken });
    expect(JSON.stringify(keys.body)).not.toContain(scoped.body.key);
    expectStatus(await t.request('DELETE', `/v1/api-keys/${scoped.body.id}`, { token: org.ownerToken }), 204);
    expectStatus(await t.request('GET', `/v1/audiences/${second.body.id}`, { token: scoped.body.key }), 401);
    expectStatus(await t.request('GET', '/v1/audiences'), 401);
  });

  it('logs users in and refuses wrong passwords', async () => {
    const ok = await t.request('POST', '/v1/auth/login', { body: { email: org.ownerEmail.toUpperCase(), password: 'correct horse battery staple' } });
    expectStatus(ok, 200);
    expect(ok.headers['set-cookie']).toMatch(/HttpOnly/);
    const me = await t.request('GET', '/v1/me', { token: ok.body.token });
    expect(me.body.organisation.id).toBe(org.orgId);
    expectStatus(await t.request('POST', '/v1/auth/login', { body: { email: org.ownerEmail, password: 'wrong password!!' } }), 401);
  });
});
