import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'csv-parse/sync';
import { sql } from 'kysely';
import { dbKind, expectStatus, startTestApp, type TestApp, type TestOrg } from './support/harness.ts';
import * as orgs from '../src/organisations/service.ts';
import { importContacts } from '../src/audience/import-service.ts';
import { cliPrincipal } from '../src/cli/import-export.ts';

let t: TestApp;
let org: TestOrg;
let other: TestOrg;
let viewerKey: string;

beforeAll(async () => {
  t = await startTestApp();
  org = await t.createOrg('Importers');
  other = await t.createOrg('Someone else');
  viewerKey = (await orgs.createApiKey(t.envoi.ctx, org.orgId, { name: 'read only', role: 'viewer' })).key;
});
afterAll(async () => t?.close());

async function newAudience(name = 'Audience') {
  const a = await t.request('POST', '/v1/audiences', { token: org.apiKey, body: { name } });
  expectStatus(a, 201);
  const diet = await t.request('POST', `/v1/audiences/${a.body.id}/fields`, { token: org.apiKey, body: { key: 'diet', label: 'Diet', type: 'choice', options: ['none', 'vegetarian', 'vegan'] } });
  expectStatus(diet, 201);
  const guests = await t.request('POST', `/v1/audiences/${a.body.id}/fields`, { token: org.apiKey, body: { key: 'guests', label: 'Guests', type: 'number' } });
  expectStatus(guests, 201);
  return a.body.id as string;
}

function importCsv(audienceId: string, csv: string, query: Record<string, string> = {}, token = org.apiKey) {
  const qs = new URLSearchParams(query).toString();
  return t.request('POST', `/v1/audiences/${audienceId}/imports${qs ? `?${qs}` : ''}`, { token, body: csv, headers: { 'content-type': 'text/csv; charset=utf-8' } });
}

function contacts(audienceId: string) {
  return t.envoi.ctx.db
    .selectFrom('contacts')
    .select(['email', 'email_lower', 'first_name', 'last_name', 'company', 'job_title', 'fields'])
    .where('audience_id', '=', audienceId)
    .orderBy('email_lower')
    .execute();
}

describe('CSV import', () => {
  it('imports with an explicit mapping, reading only the mapped columns', async () => {
    const aud = await newAudience();
    const csv = ['Mail pro,Prénom,Famille,Diet,Notes', 'ada@example.com,Ada,Lovelace,vegan,secret', 'grace@example.com,Grace,Hopper,none,'].join('\n');
    const mapping = { 'Mail pro': 'email', Prénom: 'first_name', Famille: 'last_name', Diet: 'diet', Notes: null };
    const r = await importCsv(aud, csv, { mapping: JSON.stringify(mapping) });
    expectStatus(r, 200);
    expect(r.body).toMatchObject({ status: 'completed', rows: 2, created: 2, updated: 0, skipped: 0, duplicates: 0, error_count: 0, errors: [], delimiter: ',', ignored_columns: ['Notes'] });
    expect(r.body.columns).toEqual([
      { header: 'Mail pro', field: 'email' },
      { header: 'Prénom', field: 'first_name' },
      { header: 'Famille', field: 'last_name' },
      { header: 'Diet', field: 'diet' },
    ]);
    expect(await contacts(aud)).toEqual([
      { email: 'ada@example.com', email_lower: 'ada@example.com', first_name: 'Ada', last_name: 'Lovelace', company: null, job_title: null, fields: { diet: 'vegan' } },
      { email: 'grace@example.com', email_lower: 'grace@example.com', first_name: 'Grace', last_name: 'Hopper', company: null, job_title: null, fields: { diet: 'none' } },
    ]);
    const report = await t.request('GET', `/v1/audiences/${aud}/imports/${r.body.id}`, { token: viewerKey });
    expectStatus(report, 200);
    expect(report.body).toMatchObject({ id: r.body.id, created: 2, status: 'completed' });
    const list = await t.request('GET', `/v1/audiences/${aud}/imports`, { token: org.apiKey });
    expect(list.body.imports.map((i: any) => i.id)).toEqual([r.body.id]);
  });

  it('reads a French Excel file: semicolons, BOM, CRLF, usual headers, decimal commas', async () => {
    const aud = await newAudience();
    const csv = '\uFEFFE-mail;Prénom;Nom;Société;Poste;Guests\r\njose@exemple.fr;José;Núñez;Société Générale;Directeur, Europe;2,5\r\n"lea@exemple.fr";Léa;"Dupont; fils";;;\r\n';
    const r = await importCsv(aud, csv);
    expectStatus(r, 200);
    expect(r.body).toMatchObject({ delimiter: ';', rows: 2, created: 2, skipped: 0, ignored_columns: [] });
    expect(r.body.columns.map((c: any) => c.field)).toEqual(['email', 'first_name', 'last_name', 'company', 'job_title', 'guests']);
    expect(await contacts(aud)).toEqual([
      { email: 'jose@exemple.fr', email_lower: 'jose@exemple.fr', first_name: 'José', last_name: 'Núñez', company: 'Société Générale', job_title: 'Directeur, Europe', fields: { guests: 2.5 } },
      { email: 'lea@exemple.fr', email_lower: 'lea@exemple.fr', first_name: 'Léa', last_name: 'Dupont; fils', company: null, job_title: null, fields: {} },
    ]);
  });

  it('updates existing contacts by email without blanking them, unless asked to', async () => {
    const aud = await newAudience();
    const existing = await t.request('POST', `/v1/audiences/${aud}/contacts`, {
      token: org.apiKey,
      body: { email: 'ada@example.com', first_name: 'Ada', last_name: 'Lovelace', company: 'Analytical Engines', fields: { diet: 'vegan', guests: 1 } },
    });
    expectStatus(existing, 201);
    const csv = 'email,first_name,company,job_title,diet\nADA@Example.com,,,Countess,\nnew@example.com,Newt,,,none\n';
    const r = await importCsv(aud, csv);
    expectStatus(r, 200);
    expect(r.body).toMatchObject({ rows: 2, created: 1, updated: 1, skipped: 0 });
    let [ada, newt] = await contacts(aud);
    // Empty cells left the stored values; unmapped columns (last_name, guests) were not touched.
    expect(ada).toMatchObject({ email_lower: 'ada@example.com', first_name: 'Ada', last_name: 'Lovelace', company: 'Analytical Engines', job_title: 'Countess', fields: { diet: 'vegan', guests: 1 } });
    expect(newt).toMatchObject({ email: 'new@example.com', first_name: 'Newt', company: null, fields: { diet: 'none' } });
    const ids = await t.envoi.ctx.db.selectFrom('contacts').select('id').where('audience_id', '=', aud).where('email_lower', '=', 'ada@example.com').execute();
    expect(ids.map((x) => x.id)).toEqual([existing.body.id]);

    const clear = await importCsv(aud, 'email,first_name,company,diet\nada@example.com,,,\n', { empty_cells: 'clear' });
    expectStatus(clear, 200);
    expect(clear.body).toMatchObject({ created: 0, updated: 1 });
    [ada] = await contacts(aud);
    expect(ada).toMatchObject({ first_name: null, company: null, last_name: 'Lovelace', job_title: 'Countess', fields: { diet: null, guests: 1 } });
  });

  it('lets the later row win when an email repeats, and counts it', async () => {
    const aud = await newAudience();
    const csv = ['email,first_name,last_name,diet', 'ada@example.com,Ada,Byron,vegan', 'bob@example.com,Bob,,', 'ADA@example.com,Augusta,,none', 'ada@example.com,,Lovelace,'].join('\n');
    const r = await importCsv(aud, csv);
    expectStatus(r, 200);
    expect(r.body).toMatchObject({ rows: 4, created: 2, updated: 2, skipped: 0, duplicates: 2 });
    const [ada] = await contacts(aud);
    expect(ada).toMatchObject({ email: 'ada@example.com', first_name: 'Augusta', last_name: 'Lovelace', fields: { diet: 'none' } });
  });

  it('tells repeats from updates across batches too', async () => {
    const aud = await newAudience();
    await t.request('POST', `/v1/audiences/${aud}/contacts`, { token: org.apiKey, body: { email: 'old@example.com', first_name: 'Old' } });
    const csv = ['email,first_name', 'a@example.com,A1', 'b@example.com,B1', 'old@example.com,Older', 'c@example.com,C1', 'a@example.com,A2', 'old@example.com,Oldest', 'c@example.com,C2', 'd@example.com,D1'].join('\n');
    const report = await importContacts(t.envoi.ctx, cliPrincipal(org.orgId), { audienceId: aud, source: 'cli', batchSize: 2 }, Readable.from([csv]));
    // 5 distinct emails, 1 of them existing: 4 created; the other 4 rows are updates, 3 of them repeats.
    expect(report).toMatchObject({ rows: 8, created: 4, updated: 4, duplicates: 3, skipped: 0 });
    const rows = await contacts(aud);
    expect(rows.map((c) => [c.email, c.first_name])).toEqual([
      ['a@example.com', 'A2'],
      ['b@example.com', 'B1'],
      ['c@example.com', 'C2'],
      ['d@example.com', 'D1'],
      ['old@example.com', 'Oldest'],
    ]);
  });

  it('reads the upload as a stream and stops at the size limit, keeping a failed report', async () => {
    const aud = await newAudience();
    async function* chunks(n: number) {
      yield 'email,first_name\n';
      for (let i = 0; i < n; i++) yield `s${i}@example.com,S${i}\n`;
    }
    const streamed = await t.envoi.http.inject({
      method: 'POST',
      url: `/v1/audiences/${aud}/imports`,
      payload: Readable.from(chunks(3000)),
      headers: { authorization: `Bearer ${org.apiKey}`, 'content-type': 'text/csv' },
    });
    expect(streamed.statusCode).toBe(200);
    expect(streamed.json()).toMatchObject({ rows: 3000, created: 3000 });

    const limited = importContacts(t.envoi.ctx, cliPrincipal(org.orgId), { audienceId: aud, source: 'cli', maxBytes: 50_000, batchSize: 500 }, Readable.from(chunks(5000)));
    await expect(limited).rejects.toMatchObject({ status: 413, code: 'file_too_large' });
    const failed = await t.envoi.ctx.db.selectFrom('imports').selectAll().where('audience_id', '=', aud).where('status', '=', 'failed').execute();
    expect(failed).toHaveLength(1);
    expect(failed[0]!.failure).toMatch(/larger than/);
    expect(failed[0]!.rows).toBeGreaterThan(0);
    expect(failed[0]!.rows).toBeLessThan(5000);
  });

  it('reports bad rows with their physical line and reason, and keeps the good ones', async () => {
    const aud = await newAudience();
    const csv = [
      'email,first_name,diet,guests', // 1
      'good1@example.com,"Multi', // 2
      'line name",vegan,1', // 3
      'not-an-email,X,none,1', // 4
      ',Nobody,none,1', // 5
      '', // 6 (blank: skipped silently)
      'good2@example.com,Two,none,2', // 7
      'bad-choice@example.com,Y,carnivore,1', // 8
      'bad-number@example.com,Z,none,many', // 9
      'short@example.com,S', // 10
      ';;;', // 11 (one odd column, not blank)
      'good3@example.com,Three,,', // 12
    ].join('\r\n');
    const r = await importCsv(aud, csv);
    expectStatus(r, 200);
    expect(r.body).toMatchObject({ rows: 9, created: 3, updated: 0, skipped: 6, error_count: 6 });
    expect(r.body.errors).toEqual([
      { line: 4, reason: expect.stringMatching(/^email: /) },
      { line: 5, reason: 'email is missing' },
      { line: 8, reason: expect.stringMatching(/diet: expected one of "none", "vegetarian", "vegan"/) },
      { line: 9, reason: expect.stringMatching(/guests: expected a number/) },
      { line: 10, reason: 'expected 4 columns, found 2' },
      { line: 11, reason: 'expected 4 columns, found 1' },
    ]);
    expect((await contacts(aud)).map((c) => [c.email, c.first_name])).toEqual([
      ['good1@example.com', 'Multi\r\nline name'],
      ['good2@example.com', 'Two'],
      ['good3@example.com', 'Three'],
    ]);
  });

  it('keeps the rows before a quote that never closes, and says where the file broke', async () => {
    const aud = await newAudience();
    const csv = 'email,first_name\nok@example.com,Ok\nbroken@example.com,"Never closed\nlost@example.com,Lost\n';
    const r = await importCsv(aud, csv);
    expectStatus(r, 200);
    expect(r.body).toMatchObject({ created: 1, skipped: 1 });
    expect(r.body.errors).toEqual([{ line: 3, reason: expect.stringMatching(/quote .* never closed.*to its end/) }]);
    expect((await contacts(aud)).map((c) => c.email)).toEqual(['ok@example.com']);
  });

  it('refuses text that is not UTF-8 instead of storing garbled names', async () => {
    const aud = await newAudience();
    const send = (bytes: Buffer) =>
      t.envoi.http.inject({ method: 'POST', url: `/v1/audiences/${aud}/imports`, payload: bytes, headers: { authorization: `Bearer ${org.apiKey}`, 'content-type': 'text/csv' } });
    const rows = await send(Buffer.from('email;first_name\nok@example.com;Ok\nlatin@example.com;H\xe9l\xe8ne\n', 'latin1'));
    expect(rows.statusCode).toBe(200);
    expect(rows.json()).toMatchObject({ created: 1, skipped: 1, errors: [{ line: 3, reason: expect.stringMatching(/first_name: not UTF-8/) }] });
    const header = await send(Buffer.from('email;Pr\xe9nom\nx@example.com;X\n', 'latin1'));
    expect(header.statusCode).toBe(400);
    expect(header.json().error.code).toBe('not_utf8');
    expect((await contacts(aud)).map((c) => c.email)).toEqual(['ok@example.com']);
  });

  it('reads a UTF-16 file with its byte order mark (Excel\'s "Unicode text"), little- or big-endian, whatever the chunks', async () => {
    const text = 'email\tfirst_name\tlast_name\r\nhelene@example.com\tHélène\tDurand 😀\r\nzoe@example.com\tZoë\tÅberg\r\n';
    const le = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]);
    const be = Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from(text, 'utf16le').swap16()]);
    const expected = [
      ['helene@example.com', 'Hélène', 'Durand 😀'],
      ['zoe@example.com', 'Zoë', 'Åberg'],
    ];
    for (const bytes of [le, be]) {
      const aud = await newAudience();
      const r = await t.envoi.http.inject({ method: 'POST', url: `/v1/audiences/${aud}/imports`, payload: bytes, headers: { authorization: `Bearer ${org.apiKey}`, 'content-type': 'text/csv' } });
      expect(r.statusCode, r.body).toBe(200);
      expect(r.json()).toMatchObject({ rows: 2, created: 2, skipped: 0, delimiter: '\t' });
      expect((await contacts(aud)).map((c) => [c.email, c.first_name, c.last_name])).toEqual(expected);
    }
    // Chunks of odd sizes cut the byte order mark and the two-byte units (and the emoji's pair) in half.
    const aud = await newAudience();
    const pieces = (b: Buffer) => Array.from({ length: Math.ceil(b.length / 3) }, (_, i) => b.subarray(i * 3, i * 3 + 3));
    const report = await importContacts(t.envoi.ctx, cliPrincipal(org.orgId), { audienceId: aud, source: 'cli', batchSize: 1 }, Readable.from([le.subarray(0, 1), ...pieces(le.subarray(1))]));
    expect(report).toMatchObject({ rows: 2, created: 2, skipped: 0 });
    expect((await contacts(aud)).map((c) => [c.email, c.first_name, c.last_name])).toEqual(expected);
  });

  it('registers every row as a participant of an event, creating or updating the contacts', async () => {
    const aud = await newAudience();
    const ev = await t.request('POST', `/v1/audiences/${aud}/events`, {
      token: org.apiKey,
      body: { name: 'Summit', starts_at: '2026-12-01T09:00:00Z', ends_at: '2026-12-01T18:00:00Z', time_zone: 'Europe/Paris' },
    });
    expectStatus(ev, 201);
    const tshirt = await t.request('POST', `/v1/events/${ev.body.id}/fields`, { token: org.apiKey, body: { key: 'tshirt', type: 'choice', options: ['S', 'M', 'L'] } });
    expectStatus(tshirt, 201);
    await t.request('POST', `/v1/audiences/${aud}/contacts`, { token: org.apiKey, body: { email: 'known@example.com', first_name: 'Known', company: 'Kept' } });

    const csv = 'email,first_name,tshirt,diet\nknown@example.com,Knowna,M,vegan\nfresh@example.com,Fresh,L,\nwrong@example.com,W,XXL,\n';
    const r = await importCsv(aud, csv, { event_id: ev.body.id });
    expectStatus(r, 200);
    expect(r.body).toMatchObject({ rows: 3, created: 1, updated: 1, skipped: 1, records: { kind: 'participant', created: 2, updated: 0 }, event_id: ev.body.id });
    expect(r.body.errors).toEqual([{ line: 4, reason: expect.stringMatching(/tshirt: expected one of/) }]);

    const people = await contacts(aud);
    expect(people.map((c) => [c.email, c.first_name, c.company, c.fields])).toEqual([
      ['fresh@example.com', 'Fresh', null, {}],
      // The local field (tshirt) stays on the participant record; built-ins and central fields flow up.
      ['known@example.com', 'Knowna', 'Kept', { diet: 'vegan' }],
    ]);
    const participants = await t.request('GET', `/v1/events/${ev.body.id}/participants`, { token: org.apiKey });
    expect(participants.body.total).toBe(2);
    const known = participants.body.items.find((x: any) => x.data.email === 'known@example.com');
    expect(known.data).toMatchObject({ first_name: 'Knowna', tshirt: 'M', diet: 'vegan' });
    const contact = await t.request('GET', `/v1/audiences/${aud}/contacts/${known.contact_id}`, { token: org.apiKey });
    expect(contact.body.events.map((e: any) => e.id)).toEqual([ev.body.id]);

    const again = await importCsv(aud, 'email,tshirt\nknown@example.com,L\n', { event_id: ev.body.id });
    expect(again.body).toMatchObject({ records: { kind: 'participant', created: 0, updated: 1 } });
    const after = await t.request('GET', `/v1/events/${ev.body.id}/participants/${known.id}`, { token: org.apiKey });
    expect(after.body.data).toMatchObject({ first_name: 'Knowna', tshirt: 'L' });
  });

  it('registers members of a community', async () => {
    const aud = await newAudience();
    const c = await t.request('POST', `/v1/audiences/${aud}/communities`, { token: org.apiKey, body: { name: 'Alumni' } });
    const r = await importCsv(aud, 'email\nm1@example.com\nm2@example.com\n', { community_id: c.body.id });
    expectStatus(r, 200);
    expect(r.body).toMatchObject({ created: 2, records: { kind: 'member', created: 2, updated: 0 } });
    const members = await t.request('GET', `/v1/communities/${c.body.id}/members`, { token: org.apiKey });
    expect(members.body.total).toBe(2);
  });

  it('refuses a bad mapping or header with a 400 before writing anything', async () => {
    const aud = await newAudience();
    const unknownField = await importCsv(aud, 'email\nx@example.com\n', { mapping: JSON.stringify({ email: 'email', Shoe: 'shoe_size' }) });
    expectStatus(unknownField, 400);
    expect(unknownField.body.error.code).toBe('invalid_mapping');
    expect(unknownField.body.error.message).toMatch(/shoe_size/);
    const notJson = await importCsv(aud, 'email\nx@example.com\n', { mapping: '{email' });
    expectStatus(notJson, 400);
    const missingColumn = await importCsv(aud, 'email\nx@example.com\n', { mapping: JSON.stringify({ email: 'email', Prénom: 'first_name' }) });
    expectStatus(missingColumn, 400);
    expect(missingColumn.body.error.message).toMatch(/"Prénom" that the file does not have/);
    const noEmail = await importCsv(aud, 'first_name\nAda\n');
    expectStatus(noEmail, 400);
    const empty = await importCsv(aud, '');
    expectStatus(empty, 400);
    const json = await t.request('POST', `/v1/audiences/${aud}/imports`, { token: org.apiKey, body: { email: 'x@example.com' } });
    expectStatus(json, 415);
    const both = await importCsv(aud, 'email\nx@example.com\n', { event_id: crypto.randomUUID(), community_id: crypto.randomUUID() });
    expect(both.status).toBeGreaterThanOrEqual(400);
    expect(both.status).toBeLessThan(500);
    expect(await contacts(aud)).toEqual([]);
    const list = await t.request('GET', `/v1/audiences/${aud}/imports`, { token: org.apiKey });
    expect(list.body.imports).toEqual([]);
  });

  it('needs the editor role to import', async () => {
    const aud = await newAudience();
    const r = await importCsv(aud, 'email\nx@example.com\n', {}, viewerKey);
    expectStatus(r, 403);
    const anonymous = await t.request('POST', `/v1/audiences/${aud}/imports`, { body: 'email\nx@example.com\n', headers: { 'content-type': 'text/csv' } });
    expectStatus(anonymous, 401);
    expect(await contacts(aud)).toEqual([]);
  });

  it("gives another organisation's key a 404 for the audience, its event, imports and export", async () => {
    const aud = await newAudience();
    const done = await importCsv(aud, 'email\nx@example.com\n');
    expectStatus(done, 200);
    expectStatus(await importCsv(aud, 'email\ny@example.com\n', {}, other.apiKey), 404);
    expectStatus(await t.request('GET', `/v1/audiences/${aud}/imports`, { token: other.apiKey }), 404);
    expectStatus(await t.request('GET', `/v1/audiences/${aud}/imports/${done.body.id}`, { token: other.apiKey }), 404);
    expectStatus(await t.request('GET', `/v1/audiences/${aud}/contacts/export.csv`, { token: other.apiKey }), 404);
    // Their own audience with our event: the event is not found for them either.
    const theirs = await t.request('POST', '/v1/audiences', { token: other.apiKey, body: { name: 'Theirs' } });
    const ev = await t.request('POST', `/v1/audiences/${aud}/events`, {
      token: org.apiKey,
      body: { name: 'Ours', starts_at: '2026-12-01T09:00:00Z', ends_at: '2026-12-01T18:00:00Z', time_zone: 'UTC' },
    });
    expectStatus(await importCsv(theirs.body.id, 'email\ny@example.com\n', { event_id: ev.body.id }, other.apiKey), 404);
    expect((await contacts(aud)).map((c) => c.email)).toEqual(['x@example.com']);
    expect(await contacts(theirs.body.id)).toEqual([]);
  });
});

describe('large CSV import (chunks, lanes)', () => {
  /** A 20,000-contact file with bad rows, a multi-line cell, repeats in later chunks and in the same chunk, and known contacts. */
  function bigFile() {
    const lines = ['email,first_name,diet,guests'];
    for (let i = 0; i < 20_000; i++) {
      let row = `person${i}@example.com,P${i},${['none', 'vegetarian', 'vegan'][i % 3]},${i % 7}`;
      if (i === 17) row = 'person17@@example.com,P17,none,1';
      if (i === 4_999) row = 'person4999@example.com,P4999,carnivore,1';
      if (i === 12_345) row = 'person12345@example.com,P12345,none,lots';
      if (i === 19_998) row = ',P19998,none,1';
      // A quoted cell over two physical lines: every line number after it moves by one.
      if (i === 100) row = 'person100@example.com,"P100\nsecond line",none,1';
      lines.push(row);
    }
    // Repeats of the first 500 addresses, far from them (in later chunks), and one right after its first row.
    for (let i = 0; i < 500; i++) lines.push(`PERSON${i}@example.com,Again${i},,`);
    lines.push('person19999@example.com,Last,vegan,');
    return lines.join('\n') + '\n';
  }

  it('imports 20,000 rows in several chunks with exact counts, bad lines by number, and the later row winning', async () => {
    const aud = await newAudience();
    for (const email of ['person5@example.com', 'person10000@example.com', 'Person19000@Example.com']) {
      expectStatus(await t.request('POST', `/v1/audiences/${aud}/contacts`, { token: org.apiKey, body: { email, first_name: 'Known', fields: { guests: 99 } } }), 201);
    }
    const before = await t.envoi.ctx.db.selectFrom('contacts').select(['id', 'email_lower']).where('audience_id', '=', aud).execute();
    const progress: number[] = [];
    const csv = bigFile();
    const report = await importContacts(
      t.envoi.ctx,
      cliPrincipal(org.orgId),
      { audienceId: aud, source: 'cli', batchSize: 3_000, onProgress: (c) => progress.push(c.created + c.updated) },
      Readable.from([csv.slice(0, 100_000), csv.slice(100_000, 500_000), csv.slice(500_000)]),
    );
    // 20,000 + 500 + 1 data rows, 4 of them bad; 3 addresses were known; 500 rows repeat an address
    // imported earlier in the file (PERSON17 is no repeat: its first row was refused).
    expect(report).toMatchObject({ status: 'completed', rows: 20_501, skipped: 4, error_count: 4, created: 19_994, updated: 503, duplicates: 500 });
    expect(report.errors).toEqual([
      { line: 19, reason: expect.stringMatching(/^email: /) },
      { line: 5_002, reason: expect.stringMatching(/^diet: expected one of "none", "vegetarian", "vegan"/) },
      { line: 12_348, reason: 'guests: expected a number, got "lots"' },
      { line: 20_001, reason: 'email is missing' },
    ]);
    expect(progress.length).toBeGreaterThan(5);
    expect(progress.every((n, i) => i === 0 || n >= progress[i - 1]!)).toBe(true);

    const rows = await t.envoi.ctx.db.selectFrom('contacts').select(['id', 'email', 'email_lower', 'first_name', 'fields']).where('audience_id', '=', aud).execute();
    expect(rows).toHaveLength(19_997);
    const by = new Map(rows.map((r) => [r.email_lower, r]));
    // The later row won, and its empty cells left the earlier values in place.
    expect(by.get('person3@example.com')).toMatchObject({ email: 'PERSON3@example.com', first_name: 'Again3', fields: { diet: 'none', guests: 3 } });
    expect(by.get('person100@example.com')).toMatchObject({ first_name: 'Again100' });
    expect(by.get('person19999@example.com')).toMatchObject({ first_name: 'Last', fields: { diet: 'vegan', guests: 19_999 % 7 } });
    expect(by.get('person777@example.com')).toMatchObject({ first_name: 'P777', fields: { diet: 'none', guests: 0 } });
    // Known contacts kept their ids, took the file's values, and kept what the file did not set.
    expect(by.get('person5@example.com')).toMatchObject({ id: before.find((b) => b.email_lower === 'person5@example.com')!.id, first_name: 'Again5', fields: { guests: 5, diet: 'vegan' } });
    expect(by.get('person19000@example.com')).toMatchObject({ email: 'person19000@example.com', first_name: 'P19000', fields: { guests: 19_000 % 7, diet: 'vegetarian' } });
    expect(by.get('person17@example.com')).toMatchObject({ email: 'PERSON17@example.com', first_name: 'Again17', fields: {} });
    for (const missing of ['person4999@example.com', 'person12345@example.com']) expect(by.has(missing)).toBe(false);
    const stored = await t.request('GET', `/v1/audiences/${aud}/imports/${report.id}`, { token: org.apiKey });
    expect(stored.body).toMatchObject({ rows: 20_501, created: 19_994, updated: 503, duplicates: 500, error_count: 4 });

    // The same file again: every row an update, and a repeat only when it repeats within this file.
    const again = await importContacts(t.envoi.ctx, cliPrincipal(org.orgId), { audienceId: aud, source: 'cli', batchSize: 3_000 }, Readable.from([csv]));
    expect(again).toMatchObject({ rows: 20_501, skipped: 4, created: 0, updated: 20_497, duplicates: 500 });
    const after = await t.envoi.ctx.db.selectFrom('contacts').select((eb) => eb.fn.countAll<number>().as('n')).where('audience_id', '=', aud).executeTakeFirstOrThrow();
    expect(Number(after.n)).toBe(19_997);
  });

  it('registers thousands of participants over several chunks, and updates them on the next import', async () => {
    const aud = await newAudience();
    const ev = await t.request('POST', `/v1/audiences/${aud}/events`, {
      token: org.apiKey,
      body: { name: 'Big summit', starts_at: '2026-12-01T09:00:00Z', ends_at: '2026-12-01T18:00:00Z', time_zone: 'UTC' },
    });
    expectStatus(ev, 201);
    expectStatus(await t.request('POST', `/v1/events/${ev.body.id}/fields`, { token: org.apiKey, body: { key: 'badge', type: 'text' } }), 201);
    const lines = ['email,first_name,diet,badge'];
    for (let i = 0; i < 7_000; i++) lines.push(`guest${i}@example.com,G${i},vegan,B${i}`);
    const first = await importContacts(t.envoi.ctx, cliPrincipal(org.orgId), { audienceId: aud, eventId: ev.body.id, source: 'cli', batchSize: 1_000 }, Readable.from([lines.join('\n')]));
    expect(first).toMatchObject({ rows: 7_000, created: 7_000, updated: 0, records: { kind: 'participant', created: 7_000, updated: 0 } });
    const second = await importContacts(
      t.envoi.ctx,
      cliPrincipal(org.orgId),
      { audienceId: aud, eventId: ev.body.id, source: 'cli', batchSize: 1_000 },
      Readable.from(['email,badge\n', ...Array.from({ length: 2_000 }, (_, i) => `guest${i * 3}@example.com,VIP${i}\n`), 'newcomer@example.com,NEW\n']),
    );
    expect(second).toMatchObject({ rows: 2_001, created: 1, updated: 2_000, records: { kind: 'participant', created: 1, updated: 2_000 } });
    const p = await sql<{ n: number; vip: number; local: number }>`
      select count(*)::int as n, count(*) filter (where data->>'badge' like 'VIP%')::int as vip,
        count(*) filter (where data->>'first_name' is not null and data->>'diet' = 'vegan')::int as local
      from participants where event_id = ${ev.body.id}`.execute(t.envoi.ctx.db);
    expect(p.rows[0]).toEqual({ n: 7_001, vip: 2_000, local: 7_000 });
    // The local field stayed on the participant records; the central one reached the contacts.
    const c = await sql<{ badge: number; diet: number }>`
      select count(*) filter (where fields ? 'badge')::int as badge, count(*) filter (where fields->>'diet' = 'vegan')::int as diet
      from contacts where audience_id = ${aud}`.execute(t.envoi.ctx.db);
    expect(c.rows[0]).toEqual({ badge: 0, diet: 7_000 });
  });

  it('fills the webhook outbox as any other write to contacts does', async () => {
    const hooked = await t.createOrg('Hooked importers');
    const hook = await t.request('POST', '/v1/webhooks', { token: hooked.apiKey, body: { url: 'https://crm.example.com/hook', events: ['contact.created', 'contact.updated'] } });
    expectStatus(hook, 201);
    const a = await t.request('POST', '/v1/audiences', { token: hooked.apiKey, body: { name: 'Hooked' } });
    expectStatus(await t.request('POST', `/v1/audiences/${a.body.id}/contacts`, { token: hooked.apiKey, body: { email: 'same@example.com', first_name: 'Same' } }), 201);
    expectStatus(await t.request('POST', `/v1/audiences/${a.body.id}/contacts`, { token: hooked.apiKey, body: { email: 'moved@example.com', first_name: 'Before' } }), 201);
    const r = await importCsv(a.body.id, 'email,first_name\nnew1@example.com,N1\nnew2@example.com,N2\nsame@example.com,Same\nmoved@example.com,After\n', {}, hooked.apiKey);
    expectStatus(r, 200);
    expect(r.body).toMatchObject({ created: 2, updated: 2 });
    const events = await t.envoi.ctx.db
      .selectFrom('webhook_events')
      .select(['type', 'payload'])
      .where('org_id', '=', hooked.orgId)
      .where('type', 'in', ['contact.created', 'contact.updated'])
      .execute();
    const seen = events.map((e) => [e.type, (e.payload as any).email, (e.payload as any).changed ?? null]).sort((x, y) => String(x).localeCompare(String(y)));
    // Two API creations, two imported; the unchanged contact is no contact.updated.
    expect(seen).toEqual([
      ['contact.created', 'moved@example.com', null],
      ['contact.created', 'new1@example.com', null],
      ['contact.created', 'new2@example.com', null],
      ['contact.created', 'same@example.com', null],
      ['contact.updated', 'moved@example.com', ['first_name']],
    ]);
    const deliveries = await t.envoi.ctx.db.selectFrom('webhook_deliveries').select((eb) => eb.fn.countAll<number>().as('n')).where('org_id', '=', hooked.orgId).executeTakeFirstOrThrow();
    expect(Number(deliveries.n)).toBe(5);
  });

  it('fails an import whose upload breaks, keeping the chunks already written and closing its connections', async () => {
    const aud = await newAudience();
    async function* broken() {
      yield 'email\n';
      for (let i = 0; i < 5_000; i++) yield `cut${i}@example.com\n`;
      throw new Error('connection reset by peer');
    }
    await expect(importContacts(t.envoi.ctx, cliPrincipal(org.orgId), { audienceId: aud, source: 'cli', batchSize: 1_000 }, broken())).rejects.toThrow(/connection reset/);
    const run = await t.envoi.ctx.db.selectFrom('imports').selectAll().where('audience_id', '=', aud).executeTakeFirstOrThrow();
    expect(run).toMatchObject({ status: 'failed', failure: 'connection reset by peer' });
    const written = await t.envoi.ctx.db.selectFrom('contacts').select((eb) => eb.fn.countAll<number>().as('n')).where('audience_id', '=', aud).executeTakeFirstOrThrow();
    // What the report counts is what is in the table: whole chunks, nothing half-written.
    expect(Number(written.n)).toBe(run.created);
    expect(run.created % 1_000 === 0 || run.created === 5_000).toBe(true);
    if (dbKind === 'postgres') {
      const open = await sql<{ n: number }>`select count(*)::int as n from pg_stat_activity where application_name = 'envoi import' and datname = current_database()`.execute(t.envoi.ctx.db);
      expect(open.rows[0]!.n).toBe(0);
    }
  });
});

describe('CSV export', () => {
  it('streams every contact with labelled columns and neutralised formulas', async () => {
    const aud = await newAudience('Export «test»');
    const csv = ['email,first_name,last_name,diet,guests', 'ada@example.com,=cmd|\' /C calc\'!A0,Lovelace,vegan,-2', 'bob@example.com,"Bob, ""B""",@SUM(A1),,'].join('\n');
    expectStatus(await importCsv(aud, csv), 200);
    const r = await t.request('GET', `/v1/audiences/${aud}/contacts/export.csv`, { token: viewerKey });
    expectStatus(r, 200);
    expect(r.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(r.headers['content-disposition']).toBe('attachment; filename="export-test-contacts.csv"');
    const rows: string[][] = parse(r.text);
    expect(rows[0]).toEqual(['Email', 'First name', 'Last name', 'Company', 'Job title', 'Diet', 'Guests', 'Created', 'Updated', 'Contact id']);
    // One import batch: same created_at, so the order between them is the id's; compare by email.
    const body = rows.slice(1).map((row) => row.slice(0, 7)).sort((a, b) => a[0]!.localeCompare(b[0]!));
    expect(body).toEqual([
      ['ada@example.com', "'=cmd|' /C calc'!A0", 'Lovelace', '', '', 'vegan', "'-2"],
      ['bob@example.com', 'Bob, "B"', "'@SUM(A1)", '', '', '', ''],
    ]);
    expect(rows.every((row) => row.every((cell) => !/^[=+\-@\t\r]/.test(cell)))).toBe(true);

    // What was exported imports back unchanged.
    const back = await newAudience();
    const re = await importCsv(back, r.text);
    expectStatus(re, 200);
    expect(re.body).toMatchObject({ created: 2, skipped: 0 });
    expect(re.body.ignored_columns).toEqual(['Created', 'Updated', 'Contact id']);
    expect((await contacts(back)).map((c) => [c.first_name, c.last_name, c.fields])).toEqual([
      ["=cmd|' /C calc'!A0", 'Lovelace', { diet: 'vegan', guests: -2 }],
      ['Bob, "B"', '@SUM(A1)', {}],
    ]);
  });

  it('pages through more contacts than one batch, each exactly once', async () => {
    const aud = await newAudience();
    const lines = ['email'];
    for (let i = 0; i < 2500; i++) lines.push(`p${i}@example.com`);
    expectStatus(await importCsv(aud, lines.join('\n')), 200);
    const r = await t.request('GET', `/v1/audiences/${aud}/contacts/export.csv?delimiter=semicolon&bom=true`, { token: org.apiKey });
    expectStatus(r, 200);
    expect(r.text.startsWith('\uFEFFEmail;')).toBe(true);
    const emails = (parse(r.text, { bom: true, delimiter: ';' }) as string[][]).slice(1).map((row) => row[0]);
    expect(emails.length).toBe(2500);
    expect(new Set(emails).size).toBe(2500);
  });

  it("exports a saved view's rows and columns through the grid", async () => {
    const aud = await newAudience();
    const ev = await t.request('POST', `/v1/audiences/${aud}/events`, {
      token: org.apiKey,
      body: { name: 'Summit', starts_at: '2026-12-01T09:00:00Z', ends_at: '2026-12-01T18:00:00Z', time_zone: 'UTC' },
    });
    const csv = ['email,first_name,diet', 'v1@example.com,+Vera,vegan', 'v2@example.com,Vic,vegan', 'm@example.com,Meat,none'].join('\n');
    expectStatus(await importCsv(aud, csv, { event_id: ev.body.id }), 200);
    const view = await t.request('POST', `/v1/audiences/${aud}/views`, {
      token: org.apiKey,
      body: { name: 'Vegans', filter: { field: 'diet', op: 'equals', value: 'vegan' }, columns: ['email', 'first_name', 'diet', 'events'], sort: 'email' },
    });
    expectStatus(view, 201);
    const r = await t.request('GET', `/v1/audiences/${aud}/contacts/export.csv?view_id=${view.body.id}`, { token: viewerKey });
    expectStatus(r, 200);
    expect(parse(r.text)).toEqual([
      ['Email', 'First name', 'Diet', 'Event list'],
      ['v1@example.com', "'+Vera", 'vegan', 'Summit'],
      ['v2@example.com', 'Vic', 'vegan', 'Summit'],
    ]);
    const missing = await t.request('GET', `/v1/audiences/${aud}/contacts/export.csv?view_id=${crypto.randomUUID()}`, { token: org.apiKey });
    expectStatus(missing, 404);
    const otherOrg = await t.request('GET', `/v1/audiences/${aud}/contacts/export.csv?view_id=${view.body.id}`, { token: other.apiKey });
    expectStatus(otherOrg, 404);
  });

  it('exports the grid on screen (a filter, a sort and columns not saved as a view), and refuses a bad one before the first byte', async () => {
    const aud = await newAudience();
    const csv = ['email,first_name', 'a@example.com,Ann', 'b@example.com,Bea', 'c@example.com,Cid', 'd@example.com,Dan'].join('\n');
    expectStatus(await importCsv(aud, csv), 200);
    // Each grid part JSON-encoded, as the UI's link has it; q and view_id are plain; Raw is sent as it is.
    class Raw { constructor(readonly text: string) {} }
    const url = (q: Record<string, unknown>) =>
      `/v1/audiences/${aud}/contacts/export.csv?${new URLSearchParams(Object.entries(q).map(([k, v]): [string, string] => [k, v instanceof Raw ? v.text : k === 'q' || k === 'view_id' ? String(v) : JSON.stringify(v)])).toString()}`;
    const filtered = await t.request('GET', url({ filter: { field: 'first_name', op: 'not_equals', value: 'Bea' }, sort: '-first_name', columns: ['email', 'first_name'] }), { token: viewerKey });
    expectStatus(filtered, 200);
    expect(parse(filtered.text)).toEqual([
      ['Email', 'First name'],
      ['d@example.com', 'Dan'],
      ['c@example.com', 'Cid'],
      ['a@example.com', 'Ann'],
    ]);
    const searched = await t.request('GET', url({ q: 'cid', columns: ['email'] }), { token: viewerKey });
    expect(parse(searched.text)).toEqual([['Email'], ['c@example.com']]);
    for (const [bad, code] of [
      [{ filter: new Raw('{"field":') }, 'invalid_query'],
      [{ filter: 5 }, null],
      [{ filter: { field: 'nope', op: 'equals', value: 1 } }, null],
      [{ sort: { field: 'email', dir: 'sideways' } }, null],
      [{ columns: ['email', 'nope'] }, null],
      [{ filter: { and: [] }, view_id: crypto.randomUUID() }, 'view_or_filter'],
    ] as const) {
      const r = await t.request('GET', url(bad), { token: org.apiKey });
      expectStatus(r, 400);
      expect(r.headers['content-type']).toMatch(/^application\/json/);
      if (code) expect(r.body.error.code).toBe(code);
    }
    expectStatus(await t.request('GET', url({ filter: { and: [] } }), { token: other.apiKey }), 404);
  });
});
