import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'csv-parse/sync';
import { expectStatus, startTestApp, type TestApp, type TestOrg } from './support/harness.ts';
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
});
