import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  defaultFieldFor,
  detectDelimiter,
  isBlankRecord,
  lineBreaks,
  mappingProblems,
  mergeLater,
  normaliseHeader,
  resolveColumns,
  rowValues,
  unquoteFormula,
  type MappableField,
} from './import-rules.ts';
import { neutraliseFormula } from './csv-export.ts';

const builtin = (key: string, label: string): MappableField => ({ key, label, type: 'text', options: null, central: true });
const FIELDS: MappableField[] = [
  builtin('email', 'Email'),
  builtin('first_name', 'First name'),
  builtin('last_name', 'Last name'),
  builtin('company', 'Company'),
  builtin('job_title', 'Job title'),
  { key: 'diet', label: 'Régime', type: 'choice', options: ['none', 'vegetarian', 'vegan'], central: true },
  { key: 'guests', label: 'Guests', type: 'number', options: null, central: true },
  { key: 't_shirt', label: 'T-shirt size', type: 'text', options: null, central: true },
];
const CUSTOM = FIELDS.filter((f) => !['email', 'first_name', 'last_name', 'company', 'job_title'].includes(f.key));

describe('default mapping', () => {
  it.each([
    ['email', 'email'],
    ['EMAIL', 'email'],
    [' Email ', 'email'],
    ['E-mail', 'email'],
    ['e_mail', 'email'],
    ['Courriel', 'email'],
    ['Adresse e-mail', 'email'],
    ['Prénom', 'first_name'],
    ['PRENOM', 'first_name'],
    ['First Name', 'first_name'],
    ['first_name', 'first_name'],
    ['Nom', 'last_name'],
    ['Nom de famille', 'last_name'],
    ['Surname', 'last_name'],
    ['Société', 'company'],
    ['Entreprise', 'company'],
    ['Poste', 'job_title'],
    ['Fonction', 'job_title'],
    ['Job title', 'job_title'],
    ['diet', 'diet'],
    ['DIET', 'diet'],
    ['Régime', 'diet'],
    ['regime', 'diet'],
    ['t-shirt', 't_shirt'],
    ['T-shirt size', 't_shirt'],
  ])('reads %j as %s', (header, key) => {
    expect(defaultFieldFor(header, FIELDS)).toBe(key);
  });

  it.each([['Name'], ['Notes'], [''], ['   '], ['id'], ['Created']])('leaves %j unmapped', (header) => {
    expect(defaultFieldFor(header, FIELDS)).toBeNull();
  });

  it('folds accents, case and punctuation', () => {
    expect(normaliseHeader('  Prénom / Given-Name ')).toBe('prenomgivenname');
  });

  it('maps every recognised header and lists the rest as ignored', () => {
    const r = resolveColumns(['E-mail', 'Prénom', 'Nom', 'Notes', 'Diet'], FIELDS, null);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.columns.map((c) => [c.index, c.key, c.builtin])).toEqual([
      [0, 'email', true],
      [1, 'first_name', true],
      [2, 'last_name', true],
      [4, 'diet', false],
    ]);
    expect(r.value.ignored).toEqual(['Notes']);
  });

  it('refuses a file without an email column, naming its columns', () => {
    const r = resolveColumns(['Prénom', 'Nom'], FIELDS, null);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(/no column holds the email.*"Prénom", "Nom"/);
  });

  it('refuses two columns feeding one field rather than picking one silently', () => {
    const r = resolveColumns(['Email', 'Courriel'], FIELDS, null);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(/"Email" and "Courriel" both map to email/);
  });
});

describe('explicit mapping', () => {
  it('reads only the mapped columns, matching headers exactly then case-insensitively', () => {
    const r = resolveColumns(['Mail pro', 'Prénom', 'Nom', 'Diet'], FIELDS, { 'mail pro': 'email', Prénom: 'first_name', Nom: null });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.columns.map((c) => [c.header, c.key])).toEqual([
      ['Mail pro', 'email'],
      ['Prénom', 'first_name'],
    ]);
    expect(r.value.ignored).toEqual(['Nom', 'Diet']);
  });

  it('accepts field keys in any case', () => {
    const r = resolveColumns(['E'], FIELDS, { E: 'EMAIL' });
    expect(r.ok && r.value.columns[0]!.key).toBe('email');
  });

  it('names unknown fields, a missing email and double targets before the file is read', () => {
    expect(mappingProblems({ 'E-mail': 'email', Shoe: 'shoe_size' }, FIELDS)).toEqual([expect.stringMatching(/"Shoe" -> "shoe_size": no such field/)]);
    expect(mappingProblems({ Prénom: 'first_name' }, FIELDS)).toEqual([expect.stringMatching(/no column for email/)]);
    expect(mappingProblems({ A: 'email', B: 'email' }, FIELDS)).toEqual(['"A" and "B" both map to email']);
    expect(mappingProblems({ A: 42 }, FIELDS)[0]).toMatch(/must be a field key/);
    expect(mappingProblems(['email'], FIELDS)[0]).toMatch(/JSON object/);
  });

  it('refuses a mapping naming a column the file does not have, or one it has twice', () => {
    const missing = resolveColumns(['Email'], FIELDS, { Email: 'email', Prenom: 'first_name' });
    expect(!missing.ok && missing.reason).toMatch(/column "Prenom" that the file does not have/);
    const twice = resolveColumns(['Email', 'Email'], FIELDS, { Email: 'email' });
    expect(!twice.ok && twice.reason).toMatch(/2 columns named "Email"/);
  });
});

describe('delimiter detection', () => {
  it.each([
    ['email,first_name,last_name', ','],
    ['email;first_name;last_name', ';'],
    ['email\tfirst_name\tlast_name', '\t'],
    ['"Nom, prénom";email;société', ';'],
    ['"a;b;c",email', ','],
    ['email', ','],
    ['', ','],
    ['a,b;c', ','],
    ['email;first_name\n1,2,3,4,5', ';'],
    ['email;first_name\r\nx,y,z', ';'],
  ])('%j -> %j', (line, d) => {
    expect(detectDelimiter(line)).toBe(d);
  });

  it('finds the delimiter of any header written with it', () => {
    fc.assert(
      fc.property(fc.constantFrom(',', ';', '\t'), fc.array(fc.stringMatching(/^[A-Za-zé _-]{1,12}$/), { minLength: 2, maxLength: 8 }), (d, names) => {
        expect(detectDelimiter(names.join(d))).toBe(d);
      }),
    );
  });
});

describe('line numbers', () => {
  it('counts LF, CRLF and lone CR once each', () => {
    expect(lineBreaks('a,b\n')).toBe(1);
    expect(lineBreaks('a,b\r\n')).toBe(1);
    expect(lineBreaks('"x\r\ny",b\r\n')).toBe(2);
    expect(lineBreaks('"x\ny\nz",b\r')).toBe(3);
    expect(lineBreaks('last')).toBe(0);
  });

  it('treats lines holding only delimiters or spaces as blank', () => {
    expect(isBlankRecord(['', ' ', ''])).toBe(true);
    expect(isBlankRecord([''])).toBe(true);
    expect(isBlankRecord(['', 'x'])).toBe(false);
  });
});

describe('row values', () => {
  const plan = (headers: string[]) => {
    const r = resolveColumns(headers, FIELDS, null);
    if (!r.ok) throw new Error(r.reason);
    return r.value.columns;
  };
  const headers = ['Email', 'Prénom', 'Diet', 'Guests'];
  const cols = plan(headers);
  const keep = { emptyClears: false };

  it('validates and coerces a good row', () => {
    const r = rowValues(['  Ada@Example.COM ', 'Ada', 'vegan', '2,5'], 4, cols, CUSTOM, keep);
    expect(r).toEqual({ ok: true, value: { builtins: { email: 'Ada@example.com', first_name: 'Ada' }, custom: { diet: 'vegan', guests: 2.5 }, emailLower: 'ada@example.com' } });
  });

  it.each([
    [['', 'Ada', 'vegan', '1'], /email is missing/],
    [['not-an-email', 'Ada', 'vegan', '1'], /^email: /],
    [['ada@example.com', 'Ada', 'carnivore', '1'], /diet: expected one of/],
    [['ada@example.com', 'Ada', 'vegan', 'many'], /guests: expected a number/],
    [['ada@example.com', 'Ada', 'vegan'], /expected 4 columns, found 3/],
    [['ada@example.com', 'Ada', 'vegan', '1', 'extra'], /expected 4 columns, found 5/],
  ])('refuses %j', (record, reason) => {
    const r = rowValues(record, 4, cols, CUSTOM, keep);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(reason);
  });

  it('refuses text that was not UTF-8 rather than store replacement characters', () => {
    const r = rowValues(['ada@example.com', 'H\uFFFDl\uFFFDne', 'vegan', '1'], 4, cols, CUSTOM, keep);
    expect(!r.ok && r.reason).toMatch(/first_name: not UTF-8/);
  });

  it('accepts trailing empty cells that spreadsheets append', () => {
    expect(rowValues(['ada@example.com', 'Ada', 'vegan', '1', '', ''], 4, cols, CUSTOM, keep).ok).toBe(true);
  });

  it('drops empty cells unless they are to clear values', () => {
    const kept = rowValues(['ada@example.com', '', '', ''], 4, cols, CUSTOM, keep);
    expect(kept.ok && kept.value).toEqual({ builtins: { email: 'ada@example.com' }, custom: {}, emailLower: 'ada@example.com' });
    const cleared = rowValues(['ada@example.com', '', '', ''], 4, cols, CUSTOM, { emptyClears: true });
    expect(cleared.ok && cleared.value).toEqual({ builtins: { email: 'ada@example.com', first_name: null }, custom: { diet: null, guests: null }, emailLower: 'ada@example.com' });
  });

  it('merges a later row over an earlier one as two upserts would', () => {
    const a = rowValues(['ada@example.com', 'Ada', 'vegan', '1'], 4, cols, CUSTOM, keep);
    const b = rowValues(['ADA@example.com', '', 'none', ''], 4, cols, CUSTOM, keep);
    if (!a.ok || !b.ok) throw new Error('rows should be valid');
    expect(mergeLater(a.value, b.value)).toEqual({ builtins: { email: 'ADA@example.com', first_name: 'Ada' }, custom: { diet: 'none', guests: 1 }, emailLower: 'ada@example.com' });
  });

  it('undoes the export formula guard so an exported file imports back unchanged', () => {
    const r = rowValues(['ada@example.com', "'=Ada", 'vegan', "'-3"], 4, cols, CUSTOM, keep);
    expect(r.ok && r.value.builtins.first_name).toBe('=Ada');
    expect(r.ok && r.value.custom.guests).toBe(-3);
    expect(unquoteFormula("'plain")).toBe("'plain");
    // The one value that does not survive is a text that itself starts with a quote then a formula character.
    fc.assert(fc.property(fc.string().filter((s) => !/^'[=+\-@\t\r]/.test(s)), (s) => {
      expect(unquoteFormula(neutraliseFormula(s))).toBe(s);
    }));
  });
});
