import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectStatus, startTestApp, type TestApp, type TestOrg } from './support/harness.ts';

/* Registration with a marketing checkbox, and the exports of the consent center. */

let t: TestApp;
let org: TestOrg;
let other: TestOrg;
let audienceId: string;
let eventId: string;
let mkt: string;
let part: string;
const WORDING = '=HYPERLINK("http://x") I want the newsletter of the Summit';

const api = (method: string, url: string, body?: unknown, token = org.apiKey) => t.request(method, url, { token, body });

beforeAll(async () => {
  t = await startTestApp();
  org = await t.createOrg('Org');
  other = await t.createOrg('Other');
  audienceId = (await api('POST', '/v1/audiences', { name: 'Summit' })).body.id;
  eventId = (await api('POST', `/v1/audiences/${audienceId}/events`, { name: 'Summit', starts_at: '2027-02-01T09:00:00Z', ends_at: '2027-02-02T18:00:00Z', time_zone: 'Europe/Paris' })).body.id;
  mkt = (await api('POST', `/v1/audiences/${audienceId}/templates`, { name: 'News', language: 'en', category: 'marketing', subject: 'News', body: '<p>News [UNSUBLINK]</p>' })).body.id;
  part = (await api('POST', `/v1/audiences/${audienceId}/templates`, { name: 'Info', language: 'en', category: 'participation', event_id: eventId, subject: 'Info', body: '<p>Info</p>' })).body.id;
});

afterAll(async () => {
  await t?.close();
});

const dry = async (templateId: string, contactId: string) => (await api('POST', `/v1/audiences/${audienceId}/campaigns/dry-run`, { template_id: templateId, target: { contact_ids: [contactId] } })).body;

describe('registration with a consent checkbox', () => {
  it('a ticked box is an opt-in with its wording; registering alone allows event mail only', async () => {
    const ticked = await api('POST', `/v1/events/${eventId}/registrations`, { participant: { email: 'ticked@example.com', first_name: 'T' }, marketing_consent: { given: true, wording: WORDING, wording_version: 'form-3' }, ip: '203.0.113.9' });
    expectStatus(ticked, 201);
    expect(ticked.body.marketing_consent).toMatchObject({ action: 'given', method: 'registration_checkbox', wording: WORDING, wording_version: 'form-3', ip: '203.0.113.9' });
    const c1 = ticked.body.participant.contact_id;
    expect((await dry(mkt, c1)).allowed).toBe(1);

    const unticked = await api('POST', `/v1/events/${eventId}/registrations`, { participant: { email: 'unticked@example.com' }, marketing_consent: { given: false, wording: WORDING, wording_version: 'form-3' } });
    expectStatus(unticked, 201);
    expect(unticked.body.marketing_consent).toBeNull();
    const c2 = unticked.body.participant.contact_id;
    expect((await dry(mkt, c2)).blocked).toEqual({ no_marketing_consent: 1 });
    expect((await dry(part, c2)).allowed).toBe(1);
    expect((await api('GET', `/v1/audiences/${audienceId}/contacts/${c2}/consents`)).body.records).toEqual([]);

    expectStatus(await api('POST', `/v1/events/${eventId}/registrations`, { participant: { first_name: 'No email' }, marketing_consent: { given: true, wording: WORDING, wording_version: '1' } }), 400);
    expectStatus(await api('POST', `/v1/events/${eventId}/registrations`, { participant: { email: 'x@example.com' } }, other.apiKey), 404);
  });
});

describe('exports', () => {
  it('exports the proofs as CSV (formulas neutralised) and JSON lines, for the audience or one contact', async () => {
    const csv = await api('GET', `/v1/audiences/${audienceId}/consent-ledger/export`);
    expect(csv.status).toBe(200);
    expect(csv.headers['content-type']).toMatch(/text\/csv/);
    const lines = csv.text.replace(/^\uFEFF/, '').trim().split(/\r?\n/);
    expect(lines[0]).toMatch(/^seq,at,action,method,email/);
    expect(lines).toHaveLength(2);
    expect(csv.text).toContain(`"'=HYPERLINK(""http://x"") I want the newsletter of the Summit"`);
    const json = await api('GET', `/v1/audiences/${audienceId}/consent-ledger/export?format=json`);
    const records = json.text.trim().split('\n').map((l) => JSON.parse(l));
    expect(records).toEqual([expect.objectContaining({ action: 'given', email: 'ticked@example.com', wording: WORDING })]);
    const mine = await api('GET', `/v1/audiences/${audienceId}/consent-ledger/export?format=json&contact_id=${records[0].contact_id}`);
    expect(mine.text.trim().split('\n')).toHaveLength(1);
    expectStatus(await api('GET', `/v1/audiences/${audienceId}/consent-ledger/export`, undefined, other.apiKey), 404);
  });

  it('imports an exclusion CSV, keeping good rows and naming the bad ones by line', async () => {
    const csv = 'Email,Reason\nimported1@example.com,asked at the desk\nnot-an-address,x\n\nIMPORTED2@example.com,\nimported1@example.com,again\n';
    const r = await t.request('POST', '/v1/exclusions/import', { token: org.apiKey, body: csv, headers: { 'content-type': 'text/csv' } });
    expectStatus(r, 201);
    expect(r.body).toMatchObject({ rows: 4, added: 2, already_listed: 1, errors: [{ line: 3, message: expect.stringContaining('email') }] });
    const listed = (await api('GET', '/v1/exclusions?q=imported')).body.items.map((x: any) => [x.email_lower, x.source]);
    expect(listed.sort()).toEqual([['imported1@example.com', 'import'], ['imported2@example.com', 'import']]);
    const noHeader = await t.request('POST', '/v1/exclusions/import', { token: org.apiKey, body: 'name\nx\n', headers: { 'content-type': 'text/csv' } });
    expectStatus(noHeader, 400);
    expectStatus(await t.request('POST', '/v1/exclusions/import', { token: org.apiKey, body: { email: 'x@example.com' } }), 415);
  });

  it('imports a UTF-16 exclusion file, and refuses one that is not UTF-8 with the contacts import\'s message, quoting no bytes', async () => {
    const send = (payload: Buffer) => t.envoi.http.inject({ method: 'POST', url: '/v1/exclusions/import', payload, headers: { authorization: `Bearer ${org.apiKey}`, 'content-type': 'text/csv' } });
    const utf16 = await send(Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('email,reason\r\nutf16-excluded@example.com,à sa demande\r\n', 'utf16le')]));
    expect(utf16.statusCode, utf16.body).toBe(201);
    expect(utf16.json()).toMatchObject({ rows: 1, added: 1, errors: [] });
    expect((await api('GET', '/v1/exclusions?q=utf16-excluded')).body.items).toEqual([expect.objectContaining({ email_lower: 'utf16-excluded@example.com', reason: 'à sa demande' })]);
    // A binary file (here a PNG's first bytes, then noise) and a Latin-1 one.
    const binary = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d]), Buffer.from('"email\n\u0000\u0001"x"\u00ff', 'latin1')]);
    for (const payload of [binary, Buffer.from('email,reason\nlatin@example.com,d\xe9j\xe0 vu\n', 'latin1')]) {
      const r = await send(payload);
      expect(r.statusCode, r.body).toBe(400);
      expect(r.json().error).toEqual({ code: 'not_utf8', message: 'the file is not UTF-8: save it as "CSV UTF-8" and try again' });
    }
    expect((await api('GET', '/v1/exclusions?q=latin')).body.items).toEqual([]);
  });

  it('names each address it refuses, with its place in the list counted from 1, and adds none of the list', async () => {
    const one = await api('POST', '/v1/exclusions', { items: [{ email: 'fine-one@example.com' }, { email: 'not-an-address' }] });
    expectStatus(one, 400);
    expect(one.body.error).toMatchObject({ code: 'invalid_email', message: '"not-an-address" (item 2 of 2): email must look like name@domain.tld' });
    const two = await api('POST', '/v1/exclusions', { items: [{ email: 'bad\tone@example.com' }, { email: 'fine-two@example.com' }, { email: '@nowhere' }] });
    expectStatus(two, 400);
    expect(two.body.error.message).toBe('"bad\\tone@example.com" (item 1 of 3): email contains a control character; and 1 more (details.problems)');
    expect(two.body.error.details.problems).toEqual(['"bad\\tone@example.com" (item 1 of 3): email contains a control character', '"@nowhere" (item 3 of 3): email must look like name@domain.tld']);
    expect((await api('GET', '/v1/exclusions?q=fine-')).body.items).toEqual([]);
  });

  it('exports the exclusion list as CSV', async () => {
    expectStatus(await api('POST', '/v1/exclusions', { items: [{ email: 'a@example.com', reason: '@boss said so' }, { email: 'b@example.com' }] }), 201);
    const csv = await api('GET', '/v1/exclusions/export');
    expect(csv.status).toBe(200);
    expect(csv.text).toMatch(/^\uFEFF?email,reason,source,created_by,created_at/);
    expect(csv.text).toContain("'@boss said so");
    expect(csv.text).toContain('b@example.com');
    expect((await api('GET', '/v1/exclusions/export', undefined, other.apiKey)).text).not.toContain('a@example.com');
  });
});

describe('consent dated in the past', () => {
  const consents = (contactId: string) => `/v1/audiences/${audienceId}/contacts/${contactId}/consents`;
  const contact = async (email: string) => (await api('POST', `/v1/audiences/${audienceId}/contacts`, { email })).body.id as string;
  const isoAgo = (days: number) => new Date(t.clock.now.getTime() - days * 86_400_000).toISOString();

  it('an older opt-in recorded after a withdrawal does not re-subscribe the person', async () => {
    const id = await contact('withdrew-then-old-proof@example.com');
    expectStatus(await api('POST', consents(id), { action: 'given', method: 'api', wording: WORDING, wording_version: '1', at: isoAgo(30) }), 201);
    expectStatus(await api('POST', consents(id), { action: 'withdrawn', method: 'back_office', at: isoAgo(10) }), 201);
    // A proof from a paper form of long ago, imported afterwards: kept in the ledger, but not the latest change.
    expectStatus(await api('POST', consents(id), { action: 'given', method: 'import', wording: WORDING, wording_version: 'paper', at: isoAgo(400) }), 201);
    const state = (await api('GET', consents(id))).body;
    expect(state.marketing_authorized_at).toBeNull();
    expect(new Date(state.marketing_withdrawn_at).toISOString()).toBe(isoAgo(10));
    expect(state.records).toHaveLength(3);
    expect((await dry(mkt, id)).blocked).toEqual({ unsubscribed: 1 });
  });

  it('an older withdrawal recorded after an opt-in does not end it; a newer one does', async () => {
    const id = await contact('old-withdrawal@example.com');
    expectStatus(await api('POST', consents(id), { action: 'given', method: 'api', wording: WORDING, wording_version: '1', at: isoAgo(5) }), 201);
    expectStatus(await api('POST', consents(id), { action: 'withdrawn', method: 'import', at: isoAgo(50) }), 201);
    expect((await dry(mkt, id)).allowed).toBe(1);
    expectStatus(await api('POST', consents(id), { action: 'withdrawn', method: 'api' }), 201);
    expect((await dry(mkt, id)).allowed).toBe(0);
  });
});
