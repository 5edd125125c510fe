import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parse } from 'csv-parse/sync';
import { cellOf, csvStream, formatCell, neutraliseFormula, type ExportRow } from './csv-export.ts';

describe('CSV injection guard', () => {
  it.each([
    ['=cmd|" /C calc"!A0', `'=cmd|" /C calc"!A0`],
    ['=HYPERLINK("http://evil.example","click")', `'=HYPERLINK("http://evil.example","click")`],
    ['+33 6 12 34 56 78', "'+33 6 12 34 56 78"],
    ['-2+3', "'-2+3"],
    ['@SUM(A1:A2)', "'@SUM(A1:A2)"],
    ['\t=1+1', "'\t=1+1"],
    ['\r=1+1', "'\r=1+1"],
  ])('neutralises %j', (input, output) => {
    expect(neutraliseFormula(input)).toBe(output);
  });

  it.each([['Ada'], ['ada@example.com'], [''], ['a=b'], ['1+1'], [' =1'], ["'already"]])('leaves %j alone', (input) => {
    expect(neutraliseFormula(input)).toBe(input);
  });

  it('never lets a cell start with a formula character', () => {
    fc.assert(fc.property(fc.string(), (s) => {
      expect(neutraliseFormula(s)).not.toMatch(/^[=+\-@\t\r]/);
    }));
  });
});

describe('cell formatting', () => {
  it('writes values the importer reads back', () => {
    expect(formatCell(null)).toBe('');
    expect(formatCell(undefined)).toBe('');
    expect(formatCell(new Date('2026-12-01T09:00:00Z'))).toBe('2026-12-01T09:00:00.000Z');
    expect(formatCell(['vegan', 'halal'])).toBe('vegan; halal');
    expect(formatCell([{ id: 'e1', name: 'Summit' }, { id: 'e2', name: 'Meetup' }])).toBe('Summit; Meetup');
    expect(formatCell(true)).toBe('true');
    expect(formatCell(2.5)).toBe('2.5');
    expect(formatCell({ a: 1 })).toBe('{"a":1}');
  });

  it('finds custom values flat or under fields', () => {
    expect(cellOf({ diet: 'vegan' }, 'diet')).toBe('vegan');
    expect(cellOf({ fields: { diet: 'vegan' } }, 'diet')).toBe('vegan');
    expect(cellOf({ fields: {} }, 'diet')).toBeUndefined();
  });
});

describe('csvStream', () => {
  async function text(stream: NodeJS.ReadableStream) {
    let out = '';
    for await (const chunk of stream) out += chunk.toString();
    return out;
  }
  async function* rows(list: ExportRow[]) {
    yield* list;
  }

  it('writes the labels, then one neutralised line per row, in any delimiter', async () => {
    const cols = [
      { key: 'email', label: 'Email' },
      { key: 'first_name', label: 'First name' },
      { key: 'diet', label: '=Diet' },
    ];
    const out = await text(csvStream(cols, rows([{ email: 'a@example.com', first_name: '=cmd|calc', fields: { diet: 'vegan; none' } }, { email: 'b@example.com', first_name: 'Bo, "B"' }]), { delimiter: ';', bom: true }));
    expect(out.startsWith('\uFEFF')).toBe(true);
    expect(parse(out, { bom: true, delimiter: ';' })).toEqual([
      ['Email', 'First name', "'=Diet"],
      ['a@example.com', "'=cmd|calc", 'vegan; none'],
      ['b@example.com', 'Bo, "B"', ''],
    ]);
  });

  it('quotes every cell holding a line break, so that a multi-line cell stays one cell for any CSV reader', async () => {
    const cols = [
      { key: 'email', label: 'Email' },
      { key: 'last_name', label: 'Last name' },
    ];
    const out = await text(csvStream(cols, rows([{ email: 'a@example.com', last_name: 'Multi\nLine' }, { email: 'b@example.com', last_name: 'Old\rMac' }, { email: 'c@example.com', last_name: 'Win\r\nDows' }])));
    expect(out).toBe('Email,Last name\r\na@example.com,"Multi\nLine"\r\nb@example.com,"Old\rMac"\r\nc@example.com,"Win\r\nDows"\r\n');
    // A reader that ends a row at a bare \n (Python's csv, spreadsheets) sees three rows of two cells.
    expect(parse(out, { record_delimiter: ['\n', '\r\n', '\r'] })).toEqual([
      ['Email', 'Last name'],
      ['a@example.com', 'Multi\nLine'],
      ['b@example.com', 'Old\rMac'],
      ['c@example.com', 'Win\r\nDows'],
    ]);
  });
});
