import { checkEmail } from '../platform/email-address.ts';
import { BUILTIN_FIELDS, coerceValue, isBuiltin, parseDay, type BuiltinKey, type FieldDef, type Result, type ValidatedValues } from './rules.ts';

/**
 * Pure decisions of the CSV import: which column feeds which field, which delimiter a file uses,
 * which physical line a record sits on, and what one row means for the contact. No I/O here.
 */

/** A field as the mapping sees it: built-ins and custom fields (central, plus local ones in an event or community). */
export interface MappableField extends FieldDef {
  label?: string;
}

/** `{ "CSV header": "field_key" }`; null or "" ignores the column. */
export type Mapping = Record<string, string | null>;

export interface ColumnPlan {
  /** position in the CSV record */
  index: number;
  header: string;
  key: string;
  builtin: boolean;
}

export interface ColumnResolution {
  columns: ColumnPlan[];
  /** headers that feed no field */
  ignored: string[];
}

/** Folds case, accents and punctuation so "E-mail", "email" and "EMAIL " compare equal, and "Prénom" matches "prenom". */
export function normaliseHeader(header: string): string {
  return header
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '');
}

/**
 * Usual names for the built-in fields in French and English contact files (CRM exports, Excel sheets
 * typed by hand), in normalised form. "Name" alone is left out on purpose: it is as often a full name
 * as a last name, and a wrong guess would silently write first names into last_name.
 */
const ALIASES: Record<string, (typeof BUILTIN_FIELDS)[number]> = {
  email: 'email', mail: 'email', emailaddress: 'email', adresseemail: 'email', adressemail: 'email',
  courriel: 'email', adressecourriel: 'email', adresseelectronique: 'email',
  firstname: 'first_name', prenom: 'first_name', givenname: 'first_name', forename: 'first_name',
  lastname: 'last_name', nom: 'last_name', surname: 'last_name', familyname: 'last_name', nomdefamille: 'last_name',
  company: 'company', companyname: 'company', societe: 'company', entreprise: 'company', organisation: 'company',
  organization: 'company', raisonsociale: 'company',
  jobtitle: 'job_title', title: 'job_title', poste: 'job_title', fonction: 'job_title', position: 'job_title', intituledeposte: 'job_title',
};

/** The field a header names without an explicit mapping, or null: key, then label, then alias. */
export function defaultFieldFor(header: string, fields: MappableField[]): string | null {
  const h = header.trim().toLowerCase();
  if (h === '') return null;
  const byKey = fields.find((f) => f.key === h);
  if (byKey) return byKey.key;
  const byLabel = fields.find((f) => f.label !== undefined && f.label.trim().toLowerCase() === h);
  if (byLabel) return byLabel.key;
  const n = normaliseHeader(header);
  if (n === '') return null;
  const loose = fields.find((f) => normaliseHeader(f.key) === n || (f.label !== undefined && normaliseHeader(f.label) === n));
  if (loose) return loose.key;
  const alias = ALIASES[n];
  return alias ?? null;
}

/** Problems with the mapping's targets, checkable before the file is read (unknown fields, bad shape). */
export function mappingProblems(mapping: unknown, fields: MappableField[]): string[] {
  if (typeof mapping !== 'object' || mapping === null || Array.isArray(mapping)) return ['the mapping must be a JSON object of "CSV header": "field key"'];
  const known = new Set(fields.map((f) => f.key));
  const problems: string[] = [];
  const targets = new Map<string, string>();
  for (const [header, target] of Object.entries(mapping)) {
    if (target === null || target === '') continue;
    if (typeof target !== 'string') {
      problems.push(`"${header}": the target must be a field key, or null to ignore the column`);
      continue;
    }
    const key = target.trim().toLowerCase();
    if (!known.has(key)) {
      problems.push(`"${header}" -> "${target}": no such field here (known: ${[...known].join(', ')})`);
      continue;
    }
    const other = targets.get(key);
    if (other !== undefined) problems.push(`"${other}" and "${header}" both map to ${key}`);
    else targets.set(key, header);
  }
  if (problems.length === 0 && !targets.has('email')) problems.push('the mapping names no column for email: contacts are matched by email');
  return problems;
}

/**
 * Which column feeds which field, from the header row. With a mapping, only the columns it names are
 * read (a mapping is the whole plan, so a column the user left out is never imported by surprise);
 * without one, every header that names a field by key, label or usual alias is read.
 */
export function resolveColumns(headers: string[], fields: MappableField[], mapping: Mapping | null): Result<ColumnResolution> & { problems?: string[] } {
  const problems: string[] = [];
  const columns: ColumnPlan[] = [];
  const used = new Map<string, string>();
  const take = (index: number, key: string) => {
    const header = headers[index]!;
    const prior = used.get(key);
    if (prior !== undefined) {
      problems.push(`columns "${prior}" and "${header}" both map to ${key}${mapping ? '' : '; pass a mapping to choose one'}`);
      return;
    }
    used.set(key, header);
    columns.push({ index, header, key, builtin: isBuiltin(key) });
  };

  if (mapping) {
    const problemsFirst = mappingProblems(mapping, fields);
    if (problemsFirst.length) return { ok: false, reason: problemsFirst.join('; '), problems: problemsFirst };
    for (const [source, target] of Object.entries(mapping)) {
      let matches = headers.flatMap((h, i) => (h === source ? [i] : []));
      if (matches.length === 0) matches = headers.flatMap((h, i) => (h.trim().toLowerCase() === source.trim().toLowerCase() ? [i] : []));
      if (matches.length === 0) {
        problems.push(`the mapping names a column "${source}" that the file does not have (its columns: ${headers.map((h) => JSON.stringify(h)).join(', ')})`);
        continue;
      }
      if (matches.length > 1) {
        problems.push(`the file has ${matches.length} columns named "${source}"; rename one`);
        continue;
      }
      if (target === null || target === '') continue;
      take(matches[0]!, target.trim().toLowerCase());
    }
  } else {
    headers.forEach((h, i) => {
      const key = defaultFieldFor(h, fields);
      if (key) take(i, key);
    });
    if (!used.has('email') && problems.length === 0) {
      problems.push(`no column holds the email (columns: ${headers.map((h) => JSON.stringify(h)).join(', ')}); name one "email" or pass a mapping`);
    }
  }
  if (problems.length) return { ok: false, reason: problems.join('; '), problems };
  const read = new Set(columns.map((c) => c.index));
  const ignored = headers.filter((h, i) => !read.has(i) && h.trim() !== '');
  return { ok: true, value: { columns, ignored } };
}

export type Delimiter = ',' | ';' | '\t';

/**
 * The field delimiter of a file from its first line: the candidate found most often outside quotes.
 * French Excel writes semicolons (the comma is the decimal mark there); a tie or a one-column file is
 * read as comma-separated.
 */
export function detectDelimiter(firstLine: string): Delimiter {
  const counts: Record<Delimiter, number> = { ',': 0, ';': 0, '\t': 0 };
  let quoted = false;
  for (const ch of firstLine) {
    if (ch === '"') quoted = !quoted;
    else if (ch === '\n' || ch === '\r') {
      if (!quoted) break;
    } else if (!quoted && (ch === ',' || ch === ';' || ch === '\t')) counts[ch]++;
  }
  let best: Delimiter = ',';
  for (const d of [';', '\t'] as const) if (counts[d] > counts[best]) best = d;
  return best;
}

/** Line breaks in a raw record as written (CRLF counts once), to give physical line numbers. */
export function lineBreaks(raw: string): number {
  let n = 0;
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c === 10) n++;
    else if (c === 13) {
      n++;
      if (raw.charCodeAt(i + 1) === 10) i++;
    }
  }
  return n;
}

/** A line with no value at all (empty, or only delimiters as spreadsheets append): skipped, not an error. */
export function isBlankRecord(record: string[]): boolean {
  return record.every((v) => v.trim() === '');
}

/**
 * Undoes the export's formula guard ("'=x" -> "=x", see neutraliseFormula in csv-export.ts) so that an
 * exported file imports back unchanged: a negative number stays a number.
 */
export function unquoteFormula(cell: string): string {
  return cell.charCodeAt(0) === 39 && /^'[=+\-@\t\r]/.test(cell) ? cell.slice(1) : cell;
}

export interface RowOptions {
  /** true: an empty cell clears the stored value; false (default): it leaves it as it is */
  emptyClears: boolean;
}

/**
 * One CSV record as validated values for the contact (and the participant / member record), or the
 * reason it is refused. Empty cells are dropped unless they clear values, so that merging and upserting
 * never blank what the contact already holds.
 */
export function rowValues(record: string[], headerCount: number, columns: ColumnPlan[], fields: FieldDef[], opts: RowOptions): Result<ValidatedValues> {
  return rowReader(headerCount, columns, fields, opts)(record);
}

interface ReadColumn {
  index: number;
  key: string;
  field: FieldDef | null;
  /** for choice fields: the options, looked up once per cell */
  options: Set<string> | null;
}

const MAX_BUILTIN = 500;
const MAX_TEXT = 10_000;

/**
 * rowValues with the column plan resolved once per file: what validateValues (rules.ts) decides for
 * each cell, with the usual well-formed cells (text, numbers, choices, dates) checked inline and every
 * other case, errors included, handed to coerceValue so that the reasons are word for word the same.
 * The generic path was a third of the import's JavaScript time (import-rules.test.ts checks that both
 * agree on random rows).
 */
export function rowReader(headerCount: number, columns: ColumnPlan[], fields: FieldDef[], opts: RowOptions): (record: string[]) => Result<ValidatedValues> {
  const byKey = new Map(fields.map((f) => [f.key, f]));
  const plan = (c: ColumnPlan): ReadColumn => {
    const field = c.builtin ? null : (byKey.get(c.key) ?? null);
    return { index: c.index, key: c.key, field, options: field?.type === 'choice' ? new Set(field.options ?? []) : null };
  };
  const email = columns.find((c) => c.builtin && c.key === 'email');
  // validateValues reports the built-in problems first, then the custom ones, each in column order.
  const builtins = columns.filter((c) => c.builtin).map(plan);
  const custom = columns.filter((c) => !c.builtin).map(plan);
  const keepEmpty = opts.emptyClears;
  const wrongCount = `expected ${headerCount} columns, found `;

  return (record) => {
    if (record.length < headerCount || (record.length > headerCount && record.slice(headerCount).some((v) => v.trim() !== ''))) {
      return { ok: false, reason: wrongCount + record.length };
    }
    for (const c of columns) {
      // What a non-UTF-8 byte decodes to: storing it would garble "Hélène" for good.
      if (record[c.index]?.includes('\uFFFD')) return { ok: false, reason: `${c.key}: not UTF-8 text; save the file as "CSV UTF-8"` };
    }
    if (!email || unquoteFormula(record[email.index] ?? '').trim() === '') return { ok: false, reason: 'email is missing' };

    let problems: string[] | null = null;
    const out: ValidatedValues = { builtins: {}, custom: {} };
    for (const c of builtins) {
      const cell = unquoteFormula(record[c.index] ?? '');
      if (c.key === 'email') {
        const checked = checkEmail(cell);
        if (!checked.ok) (problems ??= []).push(`email: ${checked.reason}`);
        else {
          out.builtins.email = checked.email;
          out.emailLower = checked.lower;
        }
      } else if (cell.length > MAX_TEXT || cell.includes('\0')) {
        const r = coerceValue({ key: c.key, type: 'text', options: null }, cell);
        (problems ??= []).push(r.ok ? `${c.key}: longer than ${MAX_BUILTIN} characters` : r.reason);
      } else if (cell.length > MAX_BUILTIN) (problems ??= []).push(`${c.key}: longer than ${MAX_BUILTIN} characters`);
      else if (cell !== '') out.builtins[c.key as BuiltinKey] = cell;
      else if (keepEmpty) out.builtins[c.key as BuiltinKey] = null;
    }
    for (const c of custom) {
      const cell = unquoteFormula(record[c.index] ?? '');
      const r = c.field ? coerceCell(c, cell) : { ok: false as const, reason: `${c.key}: no such field here (create it first, on the audience for a central field)` };
      if (!r.ok) (problems ??= []).push(r.reason);
      else if (r.value !== null || keepEmpty) out.custom[c.key] = r.value;
    }
    if (problems) return { ok: false, reason: problems.join('; ') };
    return { ok: true, value: out };
  };
}

// Digits with an optional decimal point or comma; longer than 300 characters (Infinity) goes the generic way.
const PLAIN_NUMBER = /^[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)$/;
const ISO_DAY = /^\d{4}-\d{2}-\d{2}$/;

/** coerceValue for one CSV cell: the common well-formed cells decided here, the rest by coerceValue itself. */
function coerceCell(c: ReadColumn, cell: string): Result<unknown> {
  const field = c.field!;
  switch (field.type) {
    case 'text':
      if (cell.length <= MAX_TEXT && !cell.includes('\0')) return { ok: true, value: cell === '' ? null : cell };
      break;
    case 'choice': {
      const s = cell.trim();
      if (s === '') return { ok: true, value: null };
      if (c.options!.has(s)) return { ok: true, value: s };
      break;
    }
    case 'number': {
      const s = cell.trim();
      if (s === '') return { ok: true, value: null };
      if (s.length <= 300 && PLAIN_NUMBER.test(s)) return { ok: true, value: Number(s.replace(',', '.')) };
      break;
    }
    case 'date': {
      const s = cell.trim();
      if (s === '') return { ok: true, value: null };
      const day = ISO_DAY.test(s) ? parseDay(s) : null;
      if (day) return { ok: true, value: day };
      break;
    }
  }
  return coerceValue(field, cell);
}

/** A later row of the same email applied over an earlier one, as two upserts in a row would leave it. */
export function mergeLater(earlier: ValidatedValues, later: ValidatedValues): ValidatedValues {
  return {
    builtins: { ...earlier.builtins, ...later.builtins },
    custom: { ...earlier.custom, ...later.custom },
    emailLower: later.emailLower,
  };
}

export interface ImportError {
  line: number;
  reason: string;
}

export const MAX_REPORTED_ERRORS = 1000;

export interface ImportCounts {
  /** data rows read (header and blank lines excluded) */
  rows: number;
  created: number;
  updated: number;
  /** bad rows, left out; each is in `errors` (up to MAX_REPORTED_ERRORS) */
  skipped: number;
  /** rows whose email appeared earlier in the file: the later row's values won (counted in updated) */
  duplicates: number;
}

const COPY_SPECIAL = /[\\\n\r\t]/;
const COPY_ESCAPES: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * One value in PostgreSQL's COPY text format: `\N` for null, and the four characters the format gives
 * a meaning to (backslash, tab, line feed, carriage return) escaped. NUL cannot occur: validation
 * refuses it in every text value.
 */
export function copyText(v: string | null | undefined): string {
  if (v === null || v === undefined) return '\\N';
  return COPY_SPECIAL.test(v) ? v.replace(/[\\\n\r\t]/g, (c) => COPY_ESCAPES[c]!) : v;
}

/** Which of `n` import lanes writes this email (FNV-1a over its UTF-16 units): stable, and spread evenly. */
export function laneOf(emailLower: string, n: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < emailLower.length; i++) {
    h ^= emailLower.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % n;
}
