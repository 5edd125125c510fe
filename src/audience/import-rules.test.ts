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
  copyText,
  laneOf,
  rowReader,
  rowValues,
  unquoteFormula,
  type ColumnPlan,
  type MappableField,
} from './import-rules.ts';
import { neutraliseFormula } from './csv-export.ts';
import { validateValues, type FieldDef, type Result, type ValidatedValues } from './rules.ts';

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

/** What rowValues decided before it was compiled per file: the cells handed to validateValues as they are. */
function generic(record: string[], headerCount: number, columns: ColumnPlan[], fields: FieldDef[], emptyClears: boolean): Result<ValidatedValues> {
  if (record.length < headerCount || (record.length > headerCount && record.slice(headerCount).some((v) => v.trim() !== ''))) {
    return { ok: false, reason: `expected ${headerCount} columns, found ${record.length}` };
  }
  const builtins: Record<string, unknown> = {};
  const custom: Record<string, unknown> = {};
  for (const c of columns) {
    const cell = unquoteFormula(record[c.index] ?? '');
    if (cell.includes('\uFFFD')) return { ok: false, reason: `${c.key}: not UTF-8 text; save the file as "CSV UTF-8"` };
    if (c.builtin) builtins[c.key] = c.key === 'email' ? cell.trim() : cell;
    else custom[c.key] = cell;
  }
  if (typeof builtins.email !== 'string' || builtins.email === '') return { ok: false, reason: 'email is missing' };
  const r = validateValues({ builtins, custom }, fields);
  if (!r.ok) return { ok: false, reason: r.reason };
  if (emptyClears) return { ok: true, value: r.value };
  const strip = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([, x]) => x !== null));
  return { ok: true, value: { builtins: strip(r.value.builtins), custom: strip(r.value.custom), ...(r.value.emailLower !== undefined ? { emailLower: r.value.emailLower } : {}) } };
}

describe('row reader', () => {
  const fields: FieldDef[] = [
    { key: 'diet', type: 'choice', options: ['none', 'vegan', 've gan'], central: true },
    { key: 'guests', type: 'number', options: null, central: true },
    { key: 'born', type: 'date', options: null, central: true },
    { key: 'notes', type: 'text', options: null, central: true },
    { key: 'vip', type: 'boolean', options: null, central: true },
    { key: 'tags', type: 'multi_choice', options: ['a', 'b'], central: false },
  ];
  const mappable: MappableField[] = [...FIELDS.slice(0, 5), ...fields];
  const headerSets = [
    ['email', 'first_name', 'diet', 'guests', 'born', 'notes', 'vip', 'tags'],
    ['last_name', 'guests', 'email', 'company', 'born'],
    ['diet', 'job_title', 'notes', 'email'],
  ];
  // Cells near every edge the validation knows: spaces, commas, signs, exponents, huge numbers,
  // impossible days, European dates, quotes from the export guard, NUL, over-long text, odd emails.
  const cell = fc.oneof(
    fc.constantFrom('', ' ', 'vegan', ' none ', 've gan', 'carnivore', 'Ada', "'=Ada", "'-3", '=1+1', '1', '2,5', '-.5', '+7', '1.', '1e3', '0x10', ' 12 ', 'Infinity',
      '9'.repeat(400), '2026-02-28', '2026-02-30', '31/12/1999', '2026-02-28T10:00', 'yes', 'non', 'a;b', 'a|c', 'x\0y', 'y'.repeat(501), 'z'.repeat(10_001),
      'ada@example.com', ' ADA@Example.COM ', 'not-an-email', 'a@b', 'é@exämple.fr', '"quoted local"@example.com', 'H\uFFFDlène'),
    fc.string({ maxLength: 12 }),
  );

  it('decides every row as validateValues does, reasons word for word', () => {
    fc.assert(
      fc.property(fc.constantFrom(...headerSets), fc.array(cell, { minLength: 3, maxLength: 10 }), fc.boolean(), (headers, record, emptyClears) => {
        const r = resolveColumns(headers, mappable, null);
        if (!r.ok) throw new Error(r.reason);
        const cols = r.value.columns;
        expect(rowReader(headers.length, cols, fields, { emptyClears })(record)).toEqual(generic(record, headers.length, cols, fields, emptyClears));
      }),
      { numRuns: 3000 },
    );
  });

  it('reports the problems of one row together, built-in fields first, in column order', () => {
    const r = resolveColumns(['guests', 'first_name', 'email', 'diet'], mappable, null);
    if (!r.ok) throw new Error(r.reason);
    const read = rowReader(4, r.value.columns, fields, { emptyClears: false });
    expect(read(['many', 'y'.repeat(501), 'nobody', 'carnivore'])).toEqual({
      ok: false,
      reason: 'first_name: longer than 500 characters; email: email must look like name@domain.tld; guests: expected a number, got "many"; diet: expected one of "none", "vegan", "ve gan"',
    });
  });
});

describe('COPY text values', () => {
  // As the writer lays out a staging row: values separated by tabs, one line per row.
  const copyTextRow = (values: (string | null)[]) => values.map(copyText).join('\t') + '\n';

  it('escapes what the format gives a meaning to, and writes null as \\N', () => {
    expect(copyTextRow(['a', null, 'b\tc', 'd\ne', 'f\r\ng', 'back\\slash', '', '{"k":"v\\"x"}'])).toBe(
      'a\t\\N\tb\\tc\td\\ne\tf\\r\\ng\tback\\\\slash\t\t{"k":"v\\\\"x"}\n',
    );
  });

  it('reads back as written (the decoding PostgreSQL applies)', () => {
    const decode = (line: string) =>
      line
        .replace(/\n$/, '')
        .split('\t')
        .map((f) => (f === '\\N' ? null : f.replace(/\\(.)/g, (_, c: string) => ({ n: '\n', r: '\r', t: '\t' })[c] ?? c)));
    fc.assert(
      fc.property(fc.array(fc.option(fc.string({ unit: 'binary' }).map((s) => s.replace(/\0/g, '')), { nil: null }), { minLength: 1, maxLength: 6 }), (values) => {
        const line = copyTextRow(values);
        expect(line.endsWith('\n') && !line.slice(0, -1).includes('\n')).toBe(true);
        expect(decode(line)).toEqual(values);
      }),
    );
  });
});

describe('import lanes', () => {
  it('sends an address to the same lane every time, and spreads addresses evenly', () => {
    expect(laneOf('ada@example.com', 2)).toBe(laneOf('ada@example.com', 2));
    const per = [0, 0];
    for (let i = 0; i < 10_000; i++) per[laneOf(`person${i}@example${i % 97}.com`, 2)]!++;
    expect(Math.min(...per)).toBeGreaterThan(4_500);
    fc.assert(fc.property(fc.string(), fc.integer({ min: 1, max: 8 }), (s, n) => {
      const lane = laneOf(s, n);
      expect(Number.isInteger(lane) && lane >= 0 && lane < n).toBe(true);
    }));
  });
});
