import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { expectStatus, startTestApp, type TestApp, type TestOrg } from './support/harness.ts';
import { streamGridRows } from '../src/audience/grid-service.ts';
import type { Principal } from '../src/organisations/service.ts';

let t: TestApp;
let org: TestOrg;
// Audience A: seven hand-made contacts, one per situation the filters must tell apart.
let A: string;
const E: Record<string, string> = {};
const C: Record<string, string> = {};
const id: Record<string, string> = {};
let initech: string;
// Audience B: 150 generated contacts with ties and missing values, for sorting, paging and bulk edits.
let B: string;
const EB: Record<string, string> = {};

const api = (method: string, url: string, body?: unknown, token = org.apiKey) => t.request(method, url, { token, body });
const db = () => t.envoi.ctx.db;

async function ok(method: string, url: string, body?: unknown, status = 200) {
  const r = await api(method, url, body);
  expectStatus(r, status);
  return r.body;
}

const owner = (): Principal => ({ orgId: org.orgId, role: 'viewer', kind: 'key', id: 'test', audienceIds: null, rateLimitPerMinute: null });
const query = (body: Record<string, unknown>, audience = A) => ok('POST', `/v1/audiences/${audience}/contacts/query`, body);

/** Names (email local parts) of the contacts of A matching a filter, sorted. */
async function names(filter: unknown): Promise<string[]> {
  const r = await query({ filter, columns: ['email'], limit: 1000 });
  expect(r.total).toBe(r.items.length);
  return r.items.map((i: any) => i.email.split('@')[0]).sort();
}

const ALL = ['ada', 'alan', 'grace', 'linus', "o'brien", 'pct', 'solo'];
const except = (...out: string[]) => ALL.filter((n) => !out.includes(n));
const DROP = "O'Brien'; DROP TABLE contacts;--";

beforeAll(async () => {
  t = await startTestApp();
  org = await t.createOrg('Grid Org');
  A = (await ok('POST', '/v1/audiences', { name: 'Grid A' }, 201)).id;
  B = (await ok('POST', '/v1/audiences', { name: 'Grid B' }, 201)).id;

  for (const [key, type, options] of [
    ['diet', 'choice', ['none', 'vegetarian', 'vegan']],
    ['tags', 'multi_choice', ['a', 'b', 'c']],
    ['score', 'number'],
    ['birthday', 'date'],
    ['vip', 'boolean'],
    ['notes', 'text'],
  ] as const) {
    await ok('POST', `/v1/audiences/${A}/fields`, { key, type, options }, 201);
  }
  for (const [key, name, day] of [['E1', 'Summit', '2026-05-01'], ['E2', 'Meetup', '2026-06-01'], ['E3', 'Gala', '2026-07-01']] as const) {
    E[key] = (await ok('POST', `/v1/audiences/${A}/events`, { name, starts_at: `${day}T09:00:00Z`, ends_at: `${day}T18:00:00Z`, time_zone: 'UTC' }, 201)).id;
  }
  for (const [key, name] of [['C1', 'Alumni'], ['C2', 'Speakers']] as const) {
    C[key] = (await ok('POST', `/v1/audiences/${A}/communities`, { name }, 201)).id;
  }
  initech = (await ok('POST', `/v1/audiences/${A}/companies`, { name: 'Initech' }, 201)).id;

  const people: Array<[string, Record<string, unknown>]> = [
    ['ada@example.com', { first_name: 'Ada', last_name: 'Lovelace', company: 'Analytical Engines', job_title: 'Mathematician', company_id: initech,
      fields: { diet: 'vegan', tags: ['a', 'b'], score: 10, birthday: '1815-12-10', vip: true, notes: '100% sure_thing' } }],
    ['grace@example.com', { first_name: 'Grace', last_name: 'Hopper', company: 'US Navy', job_title: 'Admiral',
      fields: { diet: 'vegetarian', tags: ['c'], score: 7.5, birthday: '1906-12-09', vip: false, notes: 'navy' } }],
    ['linus@example.org', { first_name: 'Linus', last_name: 'Torvalds', fields: { diet: 'none', tags: [], score: -1 } }],
    ['alan@example.com', { first_name: 'Alan', last_name: 'Turing', company: 'Bletchley', job_title: 'Cryptanalyst', fields: { birthday: '1912-06-23', vip: true } }],
    ['solo@example.net', { first_name: 'Solo', fields: { tags: ['a'], score: 0 } }],
    ['pct@example.com', { first_name: 'Pat', last_name: '50%_off', company: 'ACME', fields: { notes: '50 percent' } }],
    ["o'brien@example.ie", { first_name: 'Seán', last_name: DROP }],
  ];
  for (const [i, [email, rest]] of people.entries()) {
    const c = await ok('POST', `/v1/audiences/${A}/contacts`, { email, ...rest }, 201);
    const name = email.split('@')[0]!;
    id[name] = c.id;
    await db().updateTable('contacts').set({ created_at: new Date(Date.UTC(2026, 0, i + 1, 12)) }).where('id', '=', c.id).execute();
  }
  for (const [name, events] of [['ada', ['E1', 'E2']], ['grace', ['E1']], ['alan', ['E2']], ["o'brien", ['E3']]] as const) {
    for (const e of events) await ok('POST', `/v1/events/${E[e]}/participants`, { email: people.find(([m]) => m.startsWith(name))![0] }, 201);
  }
  for (const [name, communities] of [['ada', ['C1']], ['linus', ['C2']], ['alan', ['C1', 'C2']]] as const) {
    for (const k of communities) await ok('POST', `/v1/communities/${C[k]}/members`, { email: people.find(([m]) => m.startsWith(name))![0] }, 201);
  }
  const now = t.clock.now.getTime();
  const account = (name: string, v: { confirmed?: boolean; failed?: number; lockedUntil?: Date }) =>
    db().insertInto('contact_accounts').values({
      contact_id: id[name]!, org_id: org.orgId, audience_id: A, password_hash: 'not-a-real-hash',
      confirmed_at: v.confirmed ? new Date(now - 86_400_000) : null, failed_attempts: v.failed ?? 0, locked_until: v.lockedUntil ?? null,
    }).execute();
  await account('ada', { confirmed: true });
  await account('grace', { failed: 5, lockedUntil: new Date(now + 3_600_000) });
  // a lock that has ended: not locked, and its failures no longer count
  await account('alan', { confirmed: true, failed: 2, lockedUntil: new Date(now - 3_600_000) });
  for (const [name, at] of [['ada', '2026-03-01T10:00:00Z'], ['linus', '2026-03-05T00:00:00Z'], ['alan', '2026-02-28T23:59:00Z']] as const) {
    await db().updateTable('contacts').set({ marketing_authorized_at: at }).where('id', '=', id[name]!).execute();
  }

  // Audience B, generated in one statement: last names with ties and gaps, a number field with
  // gaps, created_at tied by threes, participants of three events.
  await ok('POST', `/v1/audiences/${B}/fields`, { key: 'rank', type: 'number' }, 201);
  for (const [key, day] of [['EB1', '2026-05-01'], ['EB2', '2026-06-01'], ['EB3', '2026-07-01']] as const) {
    EB[key] = (await ok('POST', `/v1/audiences/${B}/events`, { name: key, starts_at: `${day}T09:00:00Z`, ends_at: `${day}T18:00:00Z`, time_zone: 'UTC' }, 201)).id;
  }
  await sql`INSERT INTO contacts (org_id, audience_id, email, email_lower, first_name, last_name, fields, created_at, marketing_authorized_at)
    SELECT ${org.orgId}::uuid, ${B}::uuid, 'p' || g || '@example.com', 'p' || g || '@example.com', 'First' || g,
      CASE WHEN g % 7 = 0 THEN NULL ELSE 'Name' || lpad((g % 23)::text, 2, '0') END,
      CASE WHEN g % 5 = 0 THEN '{}'::jsonb ELSE jsonb_build_object('rank', g % 11) END,
      timestamptz '2026-01-01T00:00:00Z' + make_interval(mins => g / 3),
      CASE WHEN g % 4 = 0 THEN NULL ELSE timestamptz '2026-02-01T00:00:00Z' + make_interval(hours => g % 17) END
    FROM generate_series(1, 150) AS g`.execute(db());
  for (const [key, mod] of [['EB1', 2], ['EB2', 3], ['EB3', 5]] as const) {
    await sql`INSERT INTO participants (org_id, audience_id, event_id, contact_id, data)
      SELECT c.org_id, c.audience_id, ${EB[key]}::uuid, c.id, jsonb_build_object('email', c.email)
      FROM contacts c WHERE c.audience_id = ${B}::uuid AND substring(c.email from '^p([0-9]+)@')::int % ${mod}::int = 0`.execute(db());
  }
});
afterAll(async () => t?.close());

describe('grid rows', () => {
  it('returns the default columns of a contact, related values included', async () => {
    const r = await query({ filter: { field: 'email', op: 'equals', value: 'ada@example.com' } });
    expect(r.total).toBe(1);
    expect(r.next_cursor).toBeNull();
    expect(r.items[0]).toEqual({
      id: id.ada,
      last_name: 'Lovelace', first_name: 'Ada', email: 'ada@example.com', company: 'Analytical Engines', job_title: 'Mathematician',
      diet: 'vegan', tags: ['a', 'b'], score: 10, birthday: '1815-12-10', vip: true, notes: '100% sure_thing',
      company_name: 'Initech',
      events_count: 2, events: [{ id: E.E1, name: 'Summit' }, { id: E.E2, name: 'Meetup' }],
      communities_count: 1, communities: [{ id: C.C1, name: 'Alumni' }],
      account_confirmed: true, account_locked: false, failed_attempts: 0, lock_end: null,
      created_at: '2026-01-01T12:00:00.000Z', marketing_authorized_at: '2026-03-01T10:00:00.000Z',
    });
  });

  it('shows account state as the accounts capability does', async () => {
    const r = await query({ filter: { field: 'has_account', op: 'is_true' }, columns: ['email', 'has_account', 'account_confirmed', 'account_locked', 'failed_attempts', 'lock_end'], sort: 'email' });
    const byName = Object.fromEntries(r.items.map((i: any) => [i.email.split('@')[0], i]));
    expect(Object.keys(byName).sort()).toEqual(['ada', 'alan', 'grace']);
    expect(byName.grace).toMatchObject({ has_account: true, account_confirmed: false, account_locked: true, failed_attempts: 5 });
    expect(new Date(byName.grace.lock_end).getTime()).toBeGreaterThan(t.clock.now.getTime());
    expect(byName.alan).toMatchObject({ account_confirmed: true, account_locked: false, failed_attempts: 0, lock_end: null });
    const none = await query({ filter: { field: 'email', op: 'equals', value: 'solo@example.net' }, columns: ['failed_attempts', 'account_locked', 'events', 'communities_count'] });
    expect(none.items[0]).toEqual({ id: id.solo, failed_attempts: null, account_locked: false, events: [], communities_count: 0 });
  });

  it('lists the columns and their operators', async () => {
    const r = await ok('GET', `/v1/audiences/${A}/contacts/columns`);
    const diet = r.columns.find((c: any) => c.key === 'diet');
    expect(diet).toMatchObject({ type: 'choice', options: ['none', 'vegetarian', 'vegan'], operators: ['equals', 'not_equals', 'in', 'empty', 'not_empty'], sortable: true });
    expect(r.columns.find((c: any) => c.key === 'events')).toMatchObject({ type: 'list', operators: [], sortable: false });
  });
});

describe('filters', () => {
  const cases: Array<[string, unknown, string[]]> = [
    // text (built-in, central, related)
    ['text equals', { field: 'last_name', op: 'equals', value: 'Lovelace' }, ['ada']],
    ['text not_equals keeps missing values', { field: 'last_name', op: 'not_equals', value: 'Lovelace' }, except('ada')],
    ['text contains, any case', { field: 'first_name', op: 'contains', value: 'A' }, ['ada', 'alan', 'grace', 'pct']],
    ['contains treats % and _ as characters', { field: 'last_name', op: 'contains', value: '%_' }, ['pct']],
    ['contains _', { field: 'last_name', op: 'contains', value: '_' }, ['pct']],
    ['text starts_with, any case', { field: 'last_name', op: 'starts_with', value: 'tur' }, ['alan']],
    ['text empty', { field: 'last_name', op: 'empty' }, ['solo']],
    ['text not_empty', { field: 'last_name', op: 'not_empty' }, except('solo')],
    ['text in', { field: 'last_name', op: 'in', value: ['Hopper', 'Turing', 'Nobody'] }, ['alan', 'grace']],
    ['email equals, any case', { field: 'email', op: 'equals', value: 'ADA@Example.COM' }, ['ada']],
    ['email starts_with', { field: 'email', op: 'starts_with', value: 'LINUS@' }, ['linus']],
    ['email contains', { field: 'email', op: 'contains', value: '.COM' }, ['ada', 'alan', 'grace', 'pct']],
    ['email in', { field: 'email', op: 'in', value: ['grace@example.com', 'nobody@example.io'] }, ['grace']],
    ['email not_equals', { field: 'email', op: 'not_equals', value: 'grace@example.com' }, except('grace')],
    ['central text contains %', { field: 'notes', op: 'contains', value: '100%' }, ['ada']],
    ['central text equals', { field: 'notes', op: 'equals', value: 'navy' }, ['grace']],
    ['central text empty', { field: 'notes', op: 'empty' }, ['alan', 'linus', "o'brien", 'solo']],
    ['company in', { field: 'company', op: 'in', value: ['ACME', 'US Navy'] }, ['grace', 'pct']],
    ['job_title starts_with', { field: 'job_title', op: 'starts_with', value: 'adm' }, ['grace']],
    ['company_name equals', { field: 'company_name', op: 'equals', value: 'Initech' }, ['ada']],
    ['company_name contains', { field: 'company_name', op: 'contains', value: 'NIT' }, ['ada']],
    ['company_name starts_with', { field: 'company_name', op: 'starts_with', value: 'ini' }, ['ada']],
    ['company_name in', { field: 'company_name', op: 'in', value: ['Initech'] }, ['ada']],
    ['company_name not_equals', { field: 'company_name', op: 'not_equals', value: 'Initech' }, except('ada')],
    ['company_name empty', { field: 'company_name', op: 'empty' }, except('ada')],
    ['company_name not_empty', { field: 'company_name', op: 'not_empty' }, ['ada']],
    // SQL in values is data
    ['a value full of SQL', { field: 'last_name', op: 'equals', value: DROP }, ["o'brien"]],
    ['contains a quote', { field: 'last_name', op: 'contains', value: "'; DROP" }, ["o'brien"]],
    ['accented text', { field: 'first_name', op: 'equals', value: 'Seán' }, ["o'brien"]],
    // numbers (central, counts, account)
    ['number equals', { field: 'score', op: 'equals', value: 10 }, ['ada']],
    ['number equals from text', { field: 'score', op: 'equals', value: '7.5' }, ['grace']],
    ['number not_equals keeps missing', { field: 'score', op: 'not_equals', value: 10 }, except('ada')],
    ['number lt', { field: 'score', op: 'lt', value: 0 }, ['linus']],
    ['number gt', { field: 'score', op: 'gt', value: 0 }, ['ada', 'grace']],
    ['number lte', { field: 'score', op: 'lte', value: 0 }, ['linus', 'solo']],
    ['number gte', { field: 'score', op: 'gte', value: 7.5 }, ['ada', 'grace']],
    ['number between', { field: 'score', op: 'between', value: [0, 8] }, ['grace', 'solo']],
    ['number empty', { field: 'score', op: 'empty' }, ['alan', "o'brien", 'pct']],
    ['number not_empty', { field: 'score', op: 'not_empty' }, ['ada', 'grace', 'linus', 'solo']],
    ['events_count gte', { field: 'events_count', op: 'gte', value: 2 }, ['ada']],
    ['events_count equals 0', { field: 'events_count', op: 'equals', value: 0 }, ['linus', 'pct', 'solo']],
    ['events_count between', { field: 'events_count', op: 'between', value: [1, 1] }, ['alan', 'grace', "o'brien"]],
    ['communities_count equals', { field: 'communities_count', op: 'equals', value: 2 }, ['alan']],
    ['communities_count gt', { field: 'communities_count', op: 'gt', value: 0 }, ['ada', 'alan', 'linus']],
    ['failed_attempts gte', { field: 'failed_attempts', op: 'gte', value: 1 }, ['grace']],
    ['failed_attempts equals 0', { field: 'failed_attempts', op: 'equals', value: 0 }, ['ada', 'alan']],
    ['failed_attempts not_equals', { field: 'failed_attempts', op: 'not_equals', value: 5 }, except('grace')],
    ['failed_attempts empty (no account)', { field: 'failed_attempts', op: 'empty' }, ['linus', "o'brien", 'pct', 'solo']],
    // calendar days (central date field)
    ['day equals', { field: 'birthday', op: 'equals', value: '1815-12-10' }, ['ada']],
    ['day equals, European form', { field: 'birthday', op: 'equals', value: '10/12/1815' }, ['ada']],
    ['day not_equals', { field: 'birthday', op: 'not_equals', value: '1815-12-10' }, except('ada')],
    ['day before', { field: 'birthday', op: 'before', value: '1900-01-01' }, ['ada']],
    ['day after', { field: 'birthday', op: 'after', value: '1910-01-01' }, ['alan']],
    ['day between', { field: 'birthday', op: 'between', value: ['1900-01-01', '1910-12-31'] }, ['grace']],
    ['day empty', { field: 'birthday', op: 'empty' }, ['linus', "o'brien", 'pct', 'solo']],
    ['day not_empty', { field: 'birthday', op: 'not_empty' }, ['ada', 'alan', 'grace']],
    // date-times
    ['created before a day', { field: 'created_at', op: 'before', value: '2026-01-03' }, ['ada', 'grace']],
    ['created after a day', { field: 'created_at', op: 'after', value: '2026-01-05' }, ["o'brien", 'pct']],
    ['created between days, inclusive', { field: 'created_at', op: 'between', value: ['2026-01-02', '2026-01-03'] }, ['grace', 'linus']],
    ['created before an instant', { field: 'created_at', op: 'before', value: '2026-01-02T12:00:00Z' }, ['ada']],
    ['created after an instant (strictly)', { field: 'created_at', op: 'after', value: '2026-01-06T12:00:00Z' }, ["o'brien"]],
    ['created between instants', { field: 'created_at', op: 'between', value: ['2026-01-02T12:00:00Z', '2026-01-03T13:00:00+01:00'] }, ['grace', 'linus']],
    ['marketing not_empty', { field: 'marketing_authorized_at', op: 'not_empty' }, ['ada', 'alan', 'linus']],
    ['marketing empty', { field: 'marketing_authorized_at', op: 'empty' }, ['grace', "o'brien", 'pct', 'solo']],
    ['marketing after a day', { field: 'marketing_authorized_at', op: 'after', value: '2026-02-28' }, ['ada', 'linus']],
    ['marketing between days', { field: 'marketing_authorized_at', op: 'between', value: ['2026-02-28', '2026-03-01'] }, ['ada', 'alan']],
    ['marketing before an instant', { field: 'marketing_authorized_at', op: 'before', value: '2026-03-01T10:00:00Z' }, ['alan']],
    ['lock_end not_empty', { field: 'lock_end', op: 'not_empty' }, ['grace']],
    ['lock_end empty (ended locks too)', { field: 'lock_end', op: 'empty' }, except('grace')],
    ['lock_end after', { field: 'lock_end', op: 'after', value: '2000-01-01' }, ['grace']],
    // booleans
    ['boolean is_true', { field: 'vip', op: 'is_true' }, ['ada', 'alan']],
    ['boolean is_false', { field: 'vip', op: 'is_false' }, ['grace']],
    ['boolean empty', { field: 'vip', op: 'empty' }, ['linus', "o'brien", 'pct', 'solo']],
    ['boolean not_empty', { field: 'vip', op: 'not_empty' }, ['ada', 'alan', 'grace']],
    ['account_confirmed is_true', { field: 'account_confirmed', op: 'is_true' }, ['ada', 'alan']],
    ['account_confirmed is_false', { field: 'account_confirmed', op: 'is_false' }, except('ada', 'alan')],
    ['account_locked is_true', { field: 'account_locked', op: 'is_true' }, ['grace']],
    ['account_locked is_false', { field: 'account_locked', op: 'is_false' }, except('grace')],
    ['has_account is_true', { field: 'has_account', op: 'is_true' }, ['ada', 'alan', 'grace']],
    // choices
    ['choice equals', { field: 'diet', op: 'equals', value: 'vegan' }, ['ada']],
    ['choice not_equals keeps missing', { field: 'diet', op: 'not_equals', value: 'vegan' }, except('ada')],
    ['choice in', { field: 'diet', op: 'in', value: ['vegan', 'vegetarian'] }, ['ada', 'grace']],
    ['choice empty', { field: 'diet', op: 'empty' }, ['alan', "o'brien", 'pct', 'solo']],
    ['choice not_empty', { field: 'diet', op: 'not_empty' }, ['ada', 'grace', 'linus']],
    ['multi_choice in (any chosen)', { field: 'tags', op: 'in', value: ['a'] }, ['ada', 'solo']],
    ['multi_choice in, several', { field: 'tags', op: 'in', value: ['b', 'c'] }, ['ada', 'grace']],
    ['multi_choice empty (an empty list too)', { field: 'tags', op: 'empty' }, ['alan', 'linus', "o'brien", 'pct']],
    ['multi_choice not_empty', { field: 'tags', op: 'not_empty' }, ['ada', 'grace', 'solo']],
    // ids
    ['company_id equals', { field: 'company_id', op: 'equals', value: 'INITECH' }, ['ada']],
    ['company_id in', { field: 'company_id', op: 'in', value: ['INITECH'] }, ['ada']],
    ['company_id not_equals', { field: 'company_id', op: 'not_equals', value: 'INITECH' }, except('ada')],
    ['company_id empty', { field: 'company_id', op: 'empty' }, except('ada')],
    // events and communities
    ['participant of X', { event: { in: ['E1'] } }, ['ada', 'grace']],
    ['participant of any of X, Y', { event: { in: ['E1', 'E2'] } }, ['ada', 'alan', 'grace']],
    ['participant of all of X, Y', { event: { all: ['E1', 'E2'] } }, ['ada']],
    ['not participant of X', { event: { not_in: ['E1'] } }, except('ada', 'grace')],
    ['not (participant of X)', { not: { event: { in: ['E2'] } } }, except('ada', 'alan')],
    ['member of X', { community: { in: ['C1'] } }, ['ada', 'alan']],
    ['member of any of X, Y', { community: { in: ['C1', 'C2'] } }, ['ada', 'alan', 'linus']],
    ['member of all of X, Y', { community: { all: ['C1', 'C2'] } }, ['alan']],
    ['not member of X', { community: { not_in: ['C1'] } }, except('ada', 'alan')],
    // combinations
    ['and', { and: [{ event: { in: ['E1'] } }, { field: 'diet', op: 'equals', value: 'vegan' }] }, ['ada']],
    ['or', { or: [{ field: 'last_name', op: 'equals', value: 'Turing' }, { community: { in: ['C2'] } }] }, ['alan', 'linus']],
    ['not over a missing value', { not: { field: 'score', op: 'gt', value: 0 } }, ['alan', 'linus', "o'brien", 'pct', 'solo']],
    ['nested', { and: [{ or: [{ event: { in: ['E1'] } }, { community: { in: ['C2'] } }] }, { not: { field: 'vip', op: 'is_true' } }] }, ['grace', 'linus']],
    ['empty and', { and: [] }, ALL],
  ];
  // Event and community keys (E1, C1, INITECH) are replaced by their ids once they exist.
  const resolve = (f: unknown): unknown =>
    JSON.parse(JSON.stringify(f), (_k, v) => (typeof v === 'string' ? (E[v] ?? C[v] ?? (v === 'INITECH' ? initech : v)) : v));

  it.each(cases)('%s', async (_label, filter, expected) => {
    expect(await names(resolve(filter))).toEqual(expected);
  });

  it('quick search (GET) matches every word in names and email', async () => {
    const q = async (s: string) => (await ok('GET', `/v1/audiences/${A}/contacts?q=${encodeURIComponent(s)}&limit=100`)).items.map((i: any) => i.email.split('@')[0]).sort();
    expect(await q('lovelace ada')).toEqual(['ada']);
    expect(await q('EXAMPLE.ORG')).toEqual(['linus']);
    expect(await q('%')).toEqual(['pct']);
    expect(await q("'; drop")).toEqual(["o'brien"]);
  });

  it('leaves the contacts table alone when values and names carry SQL', async () => {
    const r = await api('POST', `/v1/audiences/${A}/contacts/query`, { filter: { field: 'last_name; DROP TABLE contacts;--', op: 'equals', value: 'x' } });
    expectStatus(r, 400);
    expect(r.body.error.message).toMatch(/unknown column "last_name; DROP TABLE contacts;--"/);
    const sortInjection = await api('POST', `/v1/audiences/${A}/contacts/query`, { sort: { field: 'id); DROP TABLE contacts;--' } });
    expectStatus(sortInjection, 400);
    expect((await names(null)).length).toBe(7);
  });

  it.each<[string, unknown, string, RegExp]>([
    ['unknown field', { filter: { field: 'nope', op: 'equals', value: 1 } }, 'invalid_filter', /filter: unknown column "nope"/],
    ['operator of another type', { filter: { field: 'diet', op: 'contains', value: 'veg' } }, 'invalid_filter', /"diet" is a choice column; "contains" is not one of its operators/],
    ['bad number', { filter: { and: [{ field: 'score', op: 'gt', value: 'lots' }] } }, 'invalid_filter', /filter.and\[0\]: score gt: expected a number, got "lots"/],
    ['unknown choice', { filter: { field: 'diet', op: 'in', value: ['carnivore'] } }, 'invalid_filter', /"carnivore" is not an option of diet/],
    ['list column', { filter: { field: 'communities', op: 'in', value: ['x'] } }, 'invalid_filter', /"communities" is a list/],
    ['several problems', { filter: { or: [{ field: 'x', op: 'empty' }, { field: 'y', op: 'empty' }] } }, 'invalid_filter', /unknown column "x" \(not a built-in, computed or central field of this audience\) \(and 1 more problem\)/],
    ['not an id', { filter: { event: { in: ['Summit'] } } }, 'invalid_filter', /"Summit" is not an event id/],
    ['unknown sort', { sort: { field: 'shoe_size' } }, 'invalid_sort', /sort.field: unknown column "shoe_size"/],
    ['sort on a list', { sort: '-events' }, 'invalid_sort', /sort by "events_count"/],
    ['unknown column', { columns: ['email', 'password_hash'] }, 'invalid_columns', /columns\[1\]: unknown column "password_hash"/],
    ['bad cursor', { cursor: 'bm90IGEgY3Vyc29y' }, 'invalid_cursor', /not a cursor returned by this API/],
  ])('refuses %s with a clear 400', async (_label, body, code, message) => {
    const r = await api('POST', `/v1/audiences/${A}/contacts/query`, body);
    expectStatus(r, 400);
    expect(r.body.error.code).toBe(code);
    expect(r.body.error.message).toMatch(message);
  });

  it('refuses events and communities of another audience', async () => {
    const r = await api('POST', `/v1/audiences/${A}/contacts/query`, { filter: { or: [{ event: { in: [EB.EB1] } }, { community: { in: [E.E1] } }] } });
    expectStatus(r, 400);
    expect(r.body.error.details).toEqual([`filter: ${EB.EB1} is not an event of this audience`, `filter: ${E.E1} is not a community of this audience`]);
  });

  it('refuses a page above 1000, and a cursor together with an offset', async () => {
    expectStatus(await api('POST', `/v1/audiences/${A}/contacts/query`, { limit: 1001 }), 400);
    const first = await query({ limit: 2 });
    const both = await api('POST', `/v1/audiences/${A}/contacts/query`, { limit: 2, cursor: first.next_cursor, offset: 2 });
    expectStatus(both, 400);
    expect(both.body.error.code).toBe('invalid_paging');
    const otherSort = await api('POST', `/v1/audiences/${A}/contacts/query`, { limit: 2, cursor: first.next_cursor, sort: '-last_name' });
    expectStatus(otherSort, 400);
    expect(otherSort.body.error.message).toMatch(/made for the sort "last_name:asc"/);
  });
});

describe('sorting and paging', () => {
  async function walk(body: Record<string, unknown>, size: number) {
    const items: any[] = [];
    let cursor: string | null = null;
    for (let pages = 0; pages < 200; pages++) {
      const r: any = await query({ ...body, limit: size, cursor, count: false }, B);
      expect(r.total).toBeNull();
      expect(r.items.length).toBeLessThanOrEqual(size);
      items.push(...r.items);
      cursor = r.next_cursor;
      if (!cursor) break;
    }
    return items;
  }

  /** Expected order: values in the direction asked, missing values last, ties by id in the same direction. */
  function sortedLike(items: any[], key: string, dir: 'asc' | 'desc', value = (i: any) => i[key]) {
    const d = dir === 'asc' ? 1 : -1;
    return [...items].sort((a, b) => {
      const [x, y] = [value(a), value(b)];
      if (x === null && y !== null) return 1;
      if (y === null && x !== null) return -1;
      if (x !== null && x !== y) return (x < y ? -1 : 1) * d;
      return (a.id < b.id ? -1 : 1) * d;
    });
  }

  it.each<[string, 'asc' | 'desc', boolean]>([
    ['last_name', 'asc', false],
    ['last_name', 'desc', false],
    ['rank', 'asc', true],
    ['rank', 'desc', true],
    ['events_count', 'desc', true],
    ['events_count', 'asc', true],
    ['created_at', 'asc', true],
    ['created_at', 'desc', true],
    ['marketing_authorized_at', 'desc', true],
    ['email', 'asc', false],
  ])('keyset paging by %s %s walks every contact once, in order', async (key, dir, checkInJs) => {
    const all = await query({ sort: { field: key, dir }, columns: [key], limit: 1000 }, B);
    expect(all.total).toBe(150);
    expect(all.items).toHaveLength(150);
    for (const size of [7, 50]) {
      const walked = await walk({ sort: { field: key, dir }, columns: [key] }, size);
      expect(new Set(walked.map((i) => i.id)).size).toBe(150);
      expect(walked.map((i) => i.id)).toEqual(all.items.map((i: any) => i.id));
    }
    if (checkInJs) expect(all.items.map((i: any) => i.id)).toEqual(sortedLike(all.items, key, dir).map((i) => i.id));
    // nulls last, whatever the direction
    const firstNull = all.items.findIndex((i: any) => i[key] === null);
    if (firstNull >= 0) expect(all.items.slice(firstNull).every((i: any) => i[key] === null)).toBe(true);
  });

  it('pages a filtered, sorted selection with keyset and with offset, with the total', async () => {
    const body = { filter: { event: { in: [EB.EB1] } }, sort: { field: 'rank', dir: 'desc' }, columns: ['email', 'rank'] };
    const all = await query({ ...body, limit: 1000 }, B);
    expect(all.total).toBe(75);
    const walked = await walk(body, 10);
    expect(walked.map((i) => i.id)).toEqual(all.items.map((i: any) => i.id));
    const pages: any[] = [];
    for (let offset = 0; offset < 75; offset += 20) {
      const r = await query({ ...body, limit: 20, offset }, B);
      expect(r.total).toBe(75);
      pages.push(...r.items);
      expect(r.next_cursor === null).toBe(offset + 20 >= 75);
    }
    expect(pages.map((i) => i.id)).toEqual(all.items.map((i: any) => i.id));
    const beyond = await query({ ...body, limit: 20, offset: 500 }, B);
    expect(beyond).toEqual({ items: [], total: 75, next_cursor: null });
  });

  it('walks the GET list with sort and cursor', async () => {
    const seen: string[] = [];
    let url = `/v1/audiences/${B}/contacts?limit=40&sort=-created_at`;
    for (let i = 0; i < 10; i++) {
      const r = await ok('GET', url);
      expect(r.total).toBe(150);
      seen.push(...r.items.map((x: any) => x.id));
      if (!r.next_cursor) break;
      url = `/v1/audiences/${B}/contacts?limit=40&sort=-created_at&cursor=${encodeURIComponent(r.next_cursor)}`;
    }
    expect(new Set(seen).size).toBe(150);
    expectStatus(await api('GET', `/v1/audiences/${B}/contacts?sort=nope`), 400);
    const uncounted = await ok('GET', `/v1/audiences/${B}/contacts?limit=5&count=false&sort=email`);
    expect(uncounted.total).toBeNull();
    const counted = await query({ sort: 'email', limit: 5, columns: ['email'] }, B);
    expect(uncounted.items.map((i: any) => i.email)).toEqual(counted.items.map((i: any) => i.email));
  });

  it('streams every row of a query in keyset batches (for exports)', async () => {
    const p = owner();
    const rows: any[] = [];
    for await (const row of streamGridRows(t.envoi.ctx, p, B, { sort: { field: 'rank', dir: 'asc' }, columns: ['email', 'rank', 'events'] }, 13)) rows.push(row);
    expect(rows).toHaveLength(150);
    expect(new Set(rows.map((r) => r.id)).size).toBe(150);
    expect(Object.keys(rows[0]).sort()).toEqual(['email', 'events', 'id', 'rank']);
    const other: Principal = { ...p, orgId: '00000000-0000-4000-8000-000000000000' };
    await expect(streamGridRows(t.envoi.ctx, other, B, {}).next()).rejects.toMatchObject({ status: 404 });
  });
});

describe('saved views', () => {
  it('creates, lists, renames, changes, runs and deletes a view', async () => {
    const v = await ok('POST', `/v1/audiences/${A}/views`, { name: 'Vegans', filter: { field: 'diet', op: 'equals', value: 'vegan' }, columns: ['email', 'diet'], sort: '-created_at' }, 201);
    expect(v).toMatchObject({ name: 'Vegans', filter: { field: 'diet', op: 'equals', value: 'vegan' }, columns: ['email', 'diet'], sort: { field: 'created_at', dir: 'desc' } });
    const dup = await api('POST', `/v1/audiences/${A}/views`, { name: ' VEGANS ' });
    expectStatus(dup, 409);
    expect(dup.body.error.code).toBe('view_exists');
    const other = await ok('POST', `/v1/audiences/${A}/views`, { name: 'Speakers' }, 201);
    expect(other).toMatchObject({ filter: null, columns: null, sort: null });

    expect((await ok('GET', `/v1/audiences/${A}/views`)).views.map((x: any) => x.name)).toEqual(['Speakers', 'Vegans']);
    expect(await ok('GET', `/v1/audiences/${A}/views/${v.id}`)).toEqual(v);

    const ran = await ok('POST', `/v1/audiences/${A}/views/${v.id}/query`, { limit: 10 });
    expect(ran).toEqual({ items: [{ id: id.ada, email: 'ada@example.com', diet: 'vegan' }], total: 1, next_cursor: null });

    const renamed = await ok('PATCH', `/v1/audiences/${A}/views/${v.id}`, { name: 'Plant based', filter: { field: 'diet', op: 'in', value: ['vegan', 'vegetarian'] } });
    expect(renamed).toMatchObject({ name: 'Plant based', columns: ['email', 'diet'], sort: { field: 'created_at', dir: 'desc' } });
    const page1 = await ok('POST', `/v1/audiences/${A}/views/${v.id}/query`, { limit: 1 });
    expect(page1.items.map((i: any) => i.email)).toEqual(['grace@example.com']);
    expect(page1.total).toBe(2);
    const page2 = await ok('POST', `/v1/audiences/${A}/views/${v.id}/query`, { limit: 1, cursor: page1.next_cursor });
    expect(page2.items.map((i: any) => i.email)).toEqual(['ada@example.com']);
    expect(page2.next_cursor).toBeNull();

    const clash = await api('PATCH', `/v1/audiences/${A}/views/${v.id}`, { name: 'speakers' });
    expectStatus(clash, 409);
    const bad = await api('PATCH', `/v1/audiences/${A}/views/${v.id}`, { filter: { field: 'diet', op: 'gt', value: 1 } });
    expectStatus(bad, 400);
    expect(bad.body.error.code).toBe('invalid_filter');
    const reset = await ok('PATCH', `/v1/audiences/${A}/views/${v.id}`, { columns: null, sort: null });
    expect(reset).toMatchObject({ name: 'Plant based', columns: null, sort: null });

    const bare = await api('POST', `/v1/audiences/${A}/views/${v.id}/query`);
    expectStatus(bare, 200);
    expect(bare.body.total).toBe(2);
    const streamed: any[] = [];
    for await (const row of streamGridRows(t.envoi.ctx, owner(), A, { view_id: v.id }, 1)) streamed.push(row);
    expect(streamed.map((r) => r.email)).toEqual(['grace@example.com', 'ada@example.com']);

    expectStatus(await api('DELETE', `/v1/audiences/${A}/views/${v.id}`), 204);
    expectStatus(await api('GET', `/v1/audiences/${A}/views/${v.id}`), 404);
    expectStatus(await api('POST', `/v1/audiences/${A}/views/${v.id}/query`, {}), 404);
    expectStatus(await api('DELETE', `/v1/audiences/${A}/views/${other.id}`), 204);
  });

  it('checks a view when it is saved', async () => {
    const r = await api('POST', `/v1/audiences/${A}/views`, { name: 'Broken', filter: { event: { in: [EB.EB1] } }, sort: 'nope' });
    expectStatus(r, 400);
    expect(r.body.error.details).toEqual(['sort.field: unknown column "nope"']);
    const r2 = await api('POST', `/v1/audiences/${A}/views`, { name: 'Broken', filter: { event: { in: [EB.EB1] } } });
    expectStatus(r2, 400);
    expect(r2.body.error.message).toMatch(/is not an event of this audience/);
  });

  it('gives a clear 400 when a saved view uses a field that was removed since', async () => {
    await ok('POST', `/v1/audiences/${A}/fields`, { key: 'legacy', type: 'text' }, 201);
    const v = await ok('POST', `/v1/audiences/${A}/views`, { name: 'Legacy', filter: { field: 'legacy', op: 'not_empty' }, columns: ['email', 'legacy'] }, 201);
    await db().deleteFrom('fields').where('audience_id', '=', A).where('key', '=', 'legacy').execute();
    const r = await api('POST', `/v1/audiences/${A}/views/${v.id}/query`, {});
    expectStatus(r, 400);
    expect(r.body.error.code).toBe('view_invalid');
    expect(r.body.error.message).toMatch(/the saved view "Legacy" no longer fits this audience: filter: unknown column "legacy" .*\(and 1 more problem\); edit the view/);
    // ... and it can be repaired
    await ok('PATCH', `/v1/audiences/${A}/views/${v.id}`, { filter: null, columns: ['email'] });
    expect((await ok('POST', `/v1/audiences/${A}/views/${v.id}/query`, { count: false })).items).toHaveLength(7);
  });
});

describe('bulk edit', () => {
  const participantsOfB = async () =>
    (await db().selectFrom('participants').select(['id', 'contact_id', 'event_id', 'data', 'updated_at']).where('audience_id', '=', B).orderBy('id').execute());

  it('sets values on every contact of a view in one go, and on them only', async () => {
    const view = await ok('POST', `/v1/audiences/${B}/views`, { name: 'EB1 people', filter: { event: { in: [EB.EB1] } } }, 201);
    const before = await participantsOfB();
    const r = await ok('POST', `/v1/audiences/${B}/contacts/bulk-update`, { target: { view_id: view.id }, set: { job_title: 'Speaker', fields: { rank: '99' } } });
    expect(r).toEqual({ updated: 75 });
    const changed = await query({ filter: { and: [{ field: 'job_title', op: 'equals', value: 'Speaker' }, { field: 'rank', op: 'equals', value: 99 }] }, count: true, limit: 1 }, B);
    expect(changed.total).toBe(75);
    const outside = await query({ filter: { or: [{ field: 'job_title', op: 'not_empty' }, { field: 'rank', op: 'equals', value: 99 }] }, limit: 1 }, B);
    expect(outside.total).toBe(75);
    const notInView = await query({ filter: { and: [{ event: { not_in: [EB.EB1] } }, { field: 'job_title', op: 'not_empty' }] } }, B);
    expect(notInView.total).toBe(0);
    // other values of the contacts stay, participant records are untouched
    const sample = await query({ filter: { field: 'email', op: 'equals', value: 'p2@example.com' }, columns: ['first_name', 'last_name', 'job_title', 'rank'] }, B);
    expect(sample.items[0]).toMatchObject({ first_name: 'First2', last_name: 'Name02', job_title: 'Speaker', rank: 99 });
    expect(await participantsOfB()).toEqual(before);
  });

  it('sets values on a filter and on a selection of ids, ignoring ids of other audiences', async () => {
    const r = await ok('POST', `/v1/audiences/${B}/contacts/bulk-update`, { target: { filter: { field: 'rank', op: 'empty' } }, set: { company: 'No Rank Ltd', last_name: null } });
    expect(r.updated).toBe(15); // rank missing on g % 5 = 0, minus the even ones given 99 above
    expect((await query({ filter: { and: [{ field: 'company', op: 'equals', value: 'No Rank Ltd' }, { field: 'last_name', op: 'empty' }] }, limit: 1 }, B)).total).toBe(15);

    const three = (await query({ sort: 'email', columns: ['email'], limit: 3 }, B)).items.map((i: any) => i.id);
    const company = await ok('POST', `/v1/audiences/${B}/companies`, { name: 'Globex' }, 201);
    const sel = await ok('POST', `/v1/audiences/${B}/contacts/bulk-update`, {
      target: { contact_ids: [...three, id.ada, '00000000-0000-4000-8000-000000000001'] },
      set: { first_name: 'Bulk', company_id: company.id },
    });
    expect(sel).toEqual({ updated: 3 });
    const got = await query({ filter: { field: 'first_name', op: 'equals', value: 'Bulk' }, columns: ['company_name'] }, B);
    expect(got.items.map((i: any) => i.id).sort()).toEqual([...three].sort());
    expect(got.items.every((i: any) => i.company_name === 'Globex')).toBe(true);
    const ada = await ok('GET', `/v1/audiences/${A}/contacts/${id.ada}`);
    expect(ada.first_name).toBe('Ada');
    expect(ada.company_id).toBe(initech);
  });

  it.each<[string, unknown, string, RegExp]>([
    ['email', { target: { filter: { and: [] } }, set: { email: 'same@example.com' } }, 'email_not_bulk', /email cannot be bulk-set/],
    ['a bad value', { target: { filter: { and: [] } }, set: { fields: { rank: 'lots' } } }, 'invalid_values', /rank: expected a number/],
    ['an unknown field', { target: { filter: { and: [] } }, set: { fields: { shoe_size: 42 } } }, 'invalid_values', /shoe_size: no such field/],
    ['nothing to set', { target: { filter: { and: [] } }, set: {} }, 'invalid_set', /nothing to change/],
    ['two targets', { target: { filter: { and: [] }, contact_ids: [] }, set: { company: 'x' } }, 'invalid_request', /contact_ids/],
    ['two targets', { target: { filter: { and: [] }, view_id: '00000000-0000-4000-8000-000000000001' }, set: { company: 'x' } }, 'invalid_target', /exactly one of/],
    ['a bad id', { target: { contact_ids: ["1' OR '1'='1"] }, set: { company: 'x' } }, 'invalid_target', /is not a contact id/],
    ['a bad filter', { target: { filter: { field: 'rank', op: 'contains', value: 1 } }, set: { company: 'x' } }, 'invalid_filter', /"rank" is a number column/],
    ['a company of another audience', { target: { filter: { and: [] } }, set: { company_id: '00000000-0000-4000-8000-000000000001' } }, 'unknown_company', /no company of this audience/],
  ])('refuses %s', async (_label, body, code, message) => {
    const before = await query({ filter: { field: 'company', op: 'equals', value: 'x' }, limit: 1 }, B);
    const r = await api('POST', `/v1/audiences/${B}/contacts/bulk-update`, body);
    expectStatus(r, 400);
    expect(r.body.error.code).toBe(code);
    expect(r.body.error.message).toMatch(message);
    expect((await query({ filter: { field: 'company', op: 'equals', value: 'x' }, limit: 1 }, B)).total).toBe(before.total);
  });

  it('needs the editor role', async () => {
    const viewer = await ok('POST', '/v1/api-keys', { name: 'viewer', role: 'viewer' }, 201);
    const r = await api('POST', `/v1/audiences/${B}/contacts/bulk-update`, { target: { filter: { and: [] } }, set: { company: 'x' } }, viewer.key);
    expectStatus(r, 403);
    expectStatus(await api('POST', `/v1/audiences/${B}/views`, { name: 'mine' }, viewer.key), 403);
    expectStatus(await api('POST', `/v1/audiences/${B}/contacts/query`, { limit: 1 }, viewer.key), 200);
  });
});

describe('another organisation', () => {
  it('gets 404 on every grid route', async () => {
    const view = await ok('POST', `/v1/audiences/${A}/views`, { name: 'Private' }, 201);
    const other = await t.createOrg('Other Grid Org');
    for (const [method, url, body] of [
      ['POST', `/v1/audiences/${A}/contacts/query`, {}],
      ['GET', `/v1/audiences/${A}/contacts`],
      ['GET', `/v1/audiences/${A}/contacts/columns`],
      ['POST', `/v1/audiences/${A}/contacts/bulk-update`, { target: { contact_ids: [id.ada] }, set: { first_name: 'pwned' } }],
      ['POST', `/v1/audiences/${A}/contacts/bulk-update`, { target: { filter: { and: [] } }, set: { first_name: 'pwned' } }],
      ['GET', `/v1/audiences/${A}/views`],
      ['POST', `/v1/audiences/${A}/views`, { name: 'x' }],
      ['GET', `/v1/audiences/${A}/views/${view.id}`],
      ['PATCH', `/v1/audiences/${A}/views/${view.id}`, { name: 'pwned' }],
      ['DELETE', `/v1/audiences/${A}/views/${view.id}`],
      ['POST', `/v1/audiences/${A}/views/${view.id}/query`, {}],
    ] as const) {
      for (const token of [other.apiKey, other.ownerToken]) {
        const r = await t.request(method, url, { token, body });
        expect(r.status, `${method} ${url}`).toBe(404);
      }
    }
    // their own audience cannot reach A's view or contacts either
    const theirs = (await t.request('POST', '/v1/audiences', { token: other.apiKey, body: { name: 'Theirs' } })).body.id;
    expect((await t.request('GET', `/v1/audiences/${theirs}/views/${view.id}`, { token: other.apiKey })).status).toBe(404);
    const sel = await t.request('POST', `/v1/audiences/${theirs}/contacts/bulk-update`, { token: other.apiKey, body: { target: { contact_ids: [id.ada] }, set: { first_name: 'pwned' } } });
    expect(sel.body).toEqual({ updated: 0 });
    expect((await ok('GET', `/v1/audiences/${A}/contacts/${id.ada}`)).first_name).toBe('Ada');
    expect((await ok('GET', `/v1/audiences/${A}/views/${view.id}`)).name).toBe('Private');
  });
});
