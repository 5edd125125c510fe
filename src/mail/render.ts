/**
 * Template compilation and per-recipient rendering. No I/O: the database and HTTP layers give
 * sources and data and get strings back.
 *
 * Compile once per template version (MJML costs milliseconds, Liquid parsing tens of
 * microseconds), then `render` per recipient using the already parsed Liquid templates.
 *
 * Safety: Liquid cannot execute code; here it also cannot read files (partials come only from an
 * in-memory map), cannot reach object prototypes, and each render is bounded in time and memory,
 * so a template like `{% for i in (1..100000000) %}` fails with a clear error instead of hanging.
 */
import { Liquid, Output, Tokenizer, TokenKind, filters, type FilterImplOptions, type FS, type Template } from 'liquidjs';
import mjml2html from 'mjml';
import { compile as compileHtmlToText, type HtmlToTextOptions } from 'html-to-text';
import { AppError } from '../platform/errors.ts';
import { trackLinks, type TrackedLink, type TrackingOptions } from './tracking.ts';
import { directPlan, literalPathOf, renderDirect } from './render-direct.ts';
import {
  replaceUnsubscribePlaceholders,
  unsubscribeVariables,
  usesUnsubscribePlaceholder,
  type UnsubscribeLinks,
  type UnsubscribeVariables,
} from './unsubscribe-placeholders.ts';

export const TEMPLATE_CATEGORIES = ['transactional', 'participation', 'marketing'] as const;
export type TemplateCategory = (typeof TEMPLATE_CATEGORIES)[number];
export type BodyFormat = 'html' | 'mjml';
export type RenderMode = 'preview' | 'send';
export type TemplatePart = 'subject' | 'preheader' | 'html' | 'text';

/** What an organisation authors: one template version in one language. */
export interface TemplateSource {
  category: TemplateCategory;
  /** BCP 47 tag (`fr`, `en`, `fr-CA`...): `<html lang>` and month/day names of the `date` filter. */
  language: string;
  subject: string;
  preheader?: string | null;
  format: BodyFormat;
  body: string;
  /** Plain-text part; generated from the HTML when absent or blank. */
  text?: string | null;
  /** Click and open tracking; default true. */
  tracking?: boolean;
  /** Templates for `{% include 'name' %}` / `{% render 'name' %}`, HTML (also in MJML templates: they are included after MJML). */
  partials?: Readonly<Record<string, string>>;
}

/** How the text part of a compiled template is produced. */
export type TextMode =
  | 'authored' // the template has its own text body
  | 'derived' // converted from the HTML once, at compile time, into a Liquid text template
  | 'converted'; // converted from each recipient's rendered HTML (when the compile-time conversion could not keep the Liquid logic intact)

export interface CompiledTemplate {
  readonly category: TemplateCategory;
  readonly language: string;
  readonly format: BodyFormat;
  readonly tracking: boolean;
  /** The Liquid source rendered per recipient: MJML compiled, preheader inserted, placeholders rewritten. */
  readonly html: string;
  readonly textMode: TextMode;
  /** Whether any part links to the unsubscribe page (bracket or Liquid form). */
  readonly hasUnsubscribeLink: boolean;
}

export interface ContactData {
  email: string;
  first_name?: string | null;
  last_name?: string | null;
  company?: string | null;
  job_title?: string | null;
  /** Custom fields, by name. */
  [field: string]: unknown;
}

export interface EventData {
  name: string;
  starts_at?: string | Date | null;
  ends_at?: string | Date | null;
  time_zone?: string | null;
  [field: string]: unknown;
}

export interface RenderData {
  contact?: ContactData | null;
  event?: EventData | null;
  /** The caller's variables (`confirm_url`, `reset_url`...): `{{ vars.x }}`, and `{{ x }}` too. */
  vars?: Record<string, unknown>;
  /** This recipient's unsubscribe link(s): fills `{{ unsubscribe_url }}` and the `[UNSUBLINK...]` forms. */
  unsubscribe?: UnsubscribeLinks;
  /** Zone of `date` filters written without one; default: the event's zone, else UTC. */
  timeZone?: string | null;
}

export interface RenderOptions {
  /** Wrap links and add the open pixel; ignored when the template has tracking off. */
  tracking?: TrackingOptions;
}

export interface RenderedMessage {
  /** One line: CR, LF and other control characters removed. */
  subject: string;
  preheader: string;
  html: string;
  text: string;
  /** The links wrapped for click tracking, in document order (empty without tracking). */
  links: TrackedLink[];
  /** The unsubscribe URLs given to this recipient (never tracked). */
  unsubscribeUrls: string[];
}

/** Bounds on one template and one render; generous for real mail, fatal for runaway templates. */
export const TEMPLATE_LIMITS = {
  /** Characters of each part's source (and of each partial). */
  sourceChars: 1_000_000,
  /** Milliseconds for rendering one part for one recipient. */
  renderMs: 250,
  /** liquidjs memory units (characters and array items allocated) for one part's render. */
  memory: 20_000_000,
  /** Characters of a rendered HTML or text part. */
  outputChars: 2_000_000,
} as const;

export type TemplateErrorCode =
  | 'template_invalid'
  | 'template_syntax'
  | 'template_mjml'
  | 'template_missing_variable'
  | 'template_limit'
  | 'template_render';

export interface TemplateProblem {
  part: TemplatePart;
  message: string;
  line?: number;
  column?: number;
  /** MJML tag, for MJML problems. */
  tag?: string;
  /** Partial the problem is in, when not the template itself. */
  partial?: string;
}

/** A template problem for its author: an AppError (422) whose details say where it is. */
export class TemplateError extends AppError {
  readonly part: TemplatePart | undefined;
  readonly line: number | undefined;
  readonly column: number | undefined;
  readonly variable: string | undefined;
  readonly problems: TemplateProblem[];

  constructor(
    code: TemplateErrorCode,
    message: string,
    where: { part?: TemplatePart; line?: number; column?: number; variable?: string; problems?: TemplateProblem[] } = {},
  ) {
    const problems = where.problems ?? (where.part ? [{ part: where.part, message, line: where.line, column: where.column }] : []);
    super(422, code, message, { part: where.part, line: where.line, column: where.column, variable: where.variable, problems });
    this.name = 'TemplateError';
    this.part = where.part;
    this.line = where.line;
    this.column = where.column;
    this.variable = where.variable;
    this.problems = problems;
  }
}

const PART_LABEL: Record<TemplatePart, string> = {
  subject: 'subject',
  preheader: 'preheader',
  html: 'HTML body',
  text: 'text body',
};

// ---------------------------------------------------------------------------------------------
// Liquid engines

const TIME_ZONE_GLOBAL = '__envoi_time_zone';

/** Partials by name only: no paths, no disk, nothing outside the map. */
function partialsFs(partials: ReadonlyMap<string, string>): FS {
  const read = (name: string) => {
    const source = partials.get(name);
    if (source === undefined) throw new Error(`ENOENT: no partial named "${name}"`);
    return source;
  };
  return {
    exists: async (name) => partials.has(name),
    existsSync: (name) => partials.has(name),
    readFile: async (name) => read(name),
    readFileSync: read,
    resolve: (_dir, name, ext) => name + ext,
    contains: async () => true,
    containsSync: () => true,
    dirname: () => '',
    sep: '/',
  };
}

const knownZones = new Map<string, boolean>();
function isTimeZone(zone: string): boolean {
  let known = knownZones.get(zone);
  if (known === undefined) {
    try {
      new Intl.DateTimeFormat('en', { timeZone: zone });
      known = true;
    } catch {
      known = false;
    }
    if (knownZones.size < 1000) knownZones.set(zone, known);
  }
  return known;
}

type FilterHandler = Extract<FilterImplOptions, (...args: never[]) => unknown>;
type FilterThis = ThisParameterType<FilterHandler>;
const builtinDate = filters.date as (this: FilterThis, value: unknown, format?: string, zone?: string | number) => unknown;

/**
 * The standard `date` filter, but a date written without a zone is shown in the recipient's
 * context zone (event or organisation), not the server's; an unknown zone falls back to UTC
 * rather than failing a whole send.
 */
function dateInZone(this: FilterThis, value: unknown, format?: string, zone?: unknown): unknown {
  let wanted: string | number | undefined;
  if (typeof zone === 'number') wanted = zone;
  else if (typeof zone === 'string' && zone !== '' && isTimeZone(zone)) wanted = zone;
  else {
    const fallback = (this.context.globals as Record<string, unknown>)[TIME_ZONE_GLOBAL];
    wanted = typeof fallback === 'string' && isTimeZone(fallback) ? fallback : 'UTC';
  }
  return builtinDate.call(this, value, format, wanted);
}

function makeEngine(escapeHtml: boolean, language: string, partials: ReadonlyMap<string, string>): Liquid {
  const engine = new Liquid({
    fs: partialsFs(partials),
    root: ['.'],
    partials: ['.'],
    layouts: ['.'],
    relativeReference: false,
    extname: '',
    // Partials are parsed on first use; the cache makes that once per engine, i.e. per compiled template.
    cache: partials.size > 0,
    strictFilters: true,
    // `{% if x %}` and `x | default: ...` are how authors handle a missing value: not an error in preview.
    lenientIf: true,
    ownPropertyOnly: true,
    outputEscape: escapeHtml ? 'escape' : undefined,
    locale: language,
    timezoneOffset: 'UTC',
    parseLimit: TEMPLATE_LIMITS.sourceChars,
    renderLimit: TEMPLATE_LIMITS.renderMs,
    memoryLimit: TEMPLATE_LIMITS.memory,
  });
  engine.registerFilter('date', dateInZone);
  return engine;
}

interface Engines {
  html: Liquid;
  plain: Liquid;
}

const NO_PARTIALS: ReadonlyMap<string, string> = new Map();
const sharedEngines = new Map<string, Engines>();

function enginesFor(language: string, partials: ReadonlyMap<string, string>): Engines {
  if (partials.size > 0) return { html: makeEngine(true, language, partials), plain: makeEngine(false, language, partials) };
  let engines = sharedEngines.get(language);
  if (!engines) {
    engines = { html: makeEngine(true, language, NO_PARTIALS), plain: makeEngine(false, language, NO_PARTIALS) };
    if (sharedEngines.size < 100) sharedEngines.set(language, engines);
  }
  return engines;
}

// ---------------------------------------------------------------------------------------------
// Errors

interface LiquidErrorLike {
  name?: string;
  message?: string;
  token?: { getPosition?: () => [number, number]; file?: string };
}

function toTemplateError(err: unknown, part: TemplatePart): TemplateError {
  if (err instanceof TemplateError) return err;
  const e = (err ?? {}) as LiquidErrorLike;
  const raw = String(e.message ?? err)
    .replace(/(, (?:line|col|file):[^,]*)+$/, '')
    .replace(/^ENOENT: Failed to lookup "(.*)" in .*$/, 'there is no partial named "$1"');
  const [line, column] = e.token?.getPosition?.() ?? [undefined, undefined];
  const partial = e.token?.file || undefined;
  const at =
    (partial ? ` (partial "${partial}")` : '') + (line !== undefined ? ` at line ${line}, column ${column}` : '');
  const where = { part, line, column };
  const problem = (message: string): TemplateProblem[] => [{ part, message, line, column, ...(partial ? { partial } : {}) }];
  if (e.name === 'UndefinedVariableError') {
    const variable = raw.replace(/^undefined variable:\s*/, '');
    const message = `Missing variable "${variable}" in the ${PART_LABEL[part]}${at}`;
    return new TemplateError('template_missing_variable', message, { ...where, variable, problems: problem(message) });
  }
  if (/limit exceeded|Maximum call stack/i.test(raw)) {
    const message = `The ${PART_LABEL[part]} is too expensive to render${at}: ${raw} (a loop or text too large?)`;
    return new TemplateError('template_limit', message, { ...where, problems: problem(message) });
  }
  if (e.name === 'ParseError' || e.name === 'TokenizationError') {
    const message = `Liquid syntax error in the ${PART_LABEL[part]}${at}: ${raw}`;
    return new TemplateError('template_syntax', message, { ...where, problems: problem(message) });
  }
  const message = `The ${PART_LABEL[part]} could not be rendered${at}: ${raw}`;
  return new TemplateError('template_render', message, { ...where, problems: problem(message) });
}

function parse(engine: Liquid, source: string, part: TemplatePart, partials: ReadonlyMap<string, string>): Template[] {
  let parsed: Template[];
  try {
    parsed = engine.parse(source);
  } catch (err) {
    throw toTemplateError(err, part);
  }
  // A partial that does not exist would fail every recipient at send time: say so now.
  for (const m of source.matchAll(/\{%-?\s*(?:include|render|layout)\s+(["'])(.*?)\1/g)) {
    if (!partials.has(m[2]!)) {
      const line = source.slice(0, m.index).split('\n').length;
      const message = `No partial named "${m[2]}" in the ${PART_LABEL[part]} at line ${line}: partials come only from the template's own set`;
      throw new TemplateError('template_syntax', message, { part, line });
    }
  }
  return parsed;
}

// ---------------------------------------------------------------------------------------------
// MJML, preheader, text

interface MjmlProblem {
  line?: number;
  message?: string;
  tagName?: string;
}

async function compileMjml(body: string): Promise<string> {
  try {
    const result = await mjml2html(body, {
      validationLevel: 'strict',
      ignoreIncludes: true, // mj-include reads files: never
      keepComments: false,
      fonts: {}, // no automatic Google Fonts links: they leak every reader's IP address to a third party
      minify: false,
      beautify: false,
    });
    return result.html;
  } catch (err) {
    // mjml's own message names the server's working directory: build ours from its problem list.
    const found = (err as { errors?: MjmlProblem[] }).errors;
    if (Array.isArray(found) && found.length > 0) {
      const problems: TemplateProblem[] = found.map((p) => ({
        part: 'html',
        message: `${p.tagName ? `<${p.tagName}>: ` : ''}${p.message ?? 'invalid'}`,
        line: p.line,
        tag: p.tagName,
      }));
      const listed = problems.map((p) => `line ${p.line ?? '?'}: ${p.message}`).join('; ');
      const message = `The MJML body has ${problems.length === 1 ? 'an error' : `${problems.length} errors`}: ${listed}`;
      throw new TemplateError('template_mjml', message, { part: 'html', line: problems[0]!.line, problems });
    }
    const why = err instanceof Error ? err.message : String(err);
    throw new TemplateError('template_mjml', `The MJML body could not be parsed (${why}); it must be an <mjml> document`, {
      part: 'html',
    });
  }
}

export const PREHEADER_CLASS = 'envoi-preheader';
// Invisible characters after the preheader keep mail clients from padding the preview line with
// the first words of the body.
const PREHEADER_FILLER = '&#847;&zwnj;&nbsp;'.repeat(40);

// No-break spaces are kept: they are typography (French "\u00a0:"), not layout.
const oneLine = (s: string) => s.replace(/[^\S\u00a0]+/g, ' ').trim();

/**
 * Puts the preheader (Liquid source) as hidden text right after `<body>`, on the same line so that
 * line numbers of the body stay those of its source.
 */
function withPreheader(html: string, preheaderSource: string): string {
  if (preheaderSource === '') return html;
  const block =
    `<div class="${PREHEADER_CLASS}" style="display:none;font-size:1px;line-height:1px;max-height:0;` +
    `max-width:0;opacity:0;overflow:hidden;mso-hide:all;">${preheaderSource}${PREHEADER_FILLER}</div>`;
  const body = /<body\b[^>]*>/i.exec(html);
  if (!body) return block + html;
  const at = body.index + body[0].length;
  return html.slice(0, at) + block + html.slice(at);
}

const TEXT_OPTIONS: HtmlToTextOptions = {
  wordwrap: false,
  selectors: [
    { selector: `div.${PREHEADER_CLASS}`, format: 'skip' },
    { selector: 'img', format: 'skip' },
    { selector: 'a', options: { hideLinkHrefIfSameAsText: true } },
    // Mail HTML makes paragraphs of divs (MJML's mj-text is one): keep them apart in the text.
    { selector: 'div', options: { leadingLineBreaks: 2, trailingLineBreaks: 2 } },
    // Uppercasing would change personalised values (and Liquid code in the derived text template).
    ...['h1', 'h2', 'h3', 'h4', 'h5', 'h6'].map((selector) => ({ selector, options: { uppercase: false } })),
    // Mail tables are layout: each cell is a block of its own, not a column of a text grid.
    ...['table', 'tbody', 'thead', 'tfoot', 'tr', 'td', 'th'].map((selector) => ({
      selector,
      format: 'block',
      options: { leadingLineBreaks: 1, trailingLineBreaks: 1 },
    })),
  ],
};
const htmlToText = compileHtmlToText(TEXT_OPTIONS);

/** Trailing spaces off, at most one blank line in a row (split/join: regexes over the whole text cost more per message). */
function tidyText(text: string): string {
  const lines = text.split('\n');
  const out: string[] = [];
  let blank = 0;
  for (const line of lines) {
    const trimmed = line.trimEnd();
    if (trimmed === '') {
      if (++blank > 1) continue;
    } else blank = 0;
    out.push(trimmed);
  }
  return out.join('\n').trim();
}

/**
 * Converts the HTML Liquid source to a Liquid text template once, instead of converting every
 * recipient's HTML (html-to-text costs milliseconds per message). Liquid tags and outputs are
 * swapped for inert markers during the conversion and put back after. The result is kept only if
 * the template's logic survives: every tag still there, once and in order, and every output
 * between the same two tags as in the HTML (so under the same conditions and loops). Otherwise
 * (a tag inside an attribute, between table rows...) it returns null and the text is converted
 * per recipient.
 */
function deriveTextSource(html: string, engine: Liquid): string | null {
  if (/[\uE000\uE001]/.test(html)) return null;
  const tokens = new Tokenizer(html, engine.options.operators).readTopLevelTokens(engine.options);
  // A marker per tag, and per distinct output within one stretch between tags: the same output
  // twice (a link whose text is its URL) must look the same to html-to-text, as it will once rendered.
  const markers: { source: string; isTag: boolean; region: number }[] = [];
  const outputMarkers = new Map<string, number>();
  let region = 0;
  let marked = '';
  let covered = 0;
  for (const token of tokens) {
    if (token.begin !== covered) return null; // not a contiguous cover of the source: do not guess
    covered = token.end;
    const source = html.slice(token.begin, token.end);
    if (token.kind === TokenKind.HTML) {
      marked += source;
      continue;
    }
    const isTag = token.kind === TokenKind.Tag;
    let id = isTag ? undefined : outputMarkers.get(`${region}\u0000${source}`);
    if (id === undefined) {
      id = markers.length;
      markers.push({ source, isTag, region });
      if (!isTag) outputMarkers.set(`${region}\u0000${source}`, id);
    }
    marked += `\uE000${id}\uE001`;
    if (isTag) region++;
  }
  if (covered !== html.length) return null;
  const text = tidyText(htmlToText(marked));
  // Text decoded from entities (`&#123;&#123;`) must not become Liquid code.
  if (/\{\{|\{%/.test(text.replace(/\uE000\d+\uE001/g, ''))) return null;
  let tagsSeen = 0;
  let intact = true;
  const restored = text.replace(/\uE000(\d+)\uE001/g, (_m, n: string) => {
    const marker = markers[Number(n)];
    if (!marker) {
      intact = false;
      return '';
    }
    if (marker.isTag) {
      if (marker.region !== tagsSeen) intact = false;
      tagsSeen++;
    } else if (marker.region !== tagsSeen) {
      intact = false;
    }
    return marker.source;
  });
  const tagCount = markers.filter((m) => m.isTag).length;
  return intact && tagsSeen === tagCount ? restored : null;
}

// ---------------------------------------------------------------------------------------------
// Compile

interface Parsed {
  engines: Engines;
  subject: Template[];
  preheader: Template[];
  html: Template[];
  /** MJML templates: the Liquid of the MJML source, rendered in preview so errors point at source lines. */
  sourceCheck: Template[] | null;
  text: Template[] | null;
}

const parsedTemplates = new WeakMap<CompiledTemplate, Parsed>();

function checkSource(source: TemplateSource): void {
  const problems: string[] = [];
  if (!TEMPLATE_CATEGORIES.includes(source.category)) problems.push(`category must be one of ${TEMPLATE_CATEGORIES.join(', ')}`);
  if (source.format !== 'html' && source.format !== 'mjml') problems.push('format must be html or mjml');
  if (typeof source.language !== 'string' || !/^[a-zA-Z]{2,3}(-[a-zA-Z0-9]{2,8})*$/.test(source.language)) {
    problems.push('language must be a language tag such as fr or en');
  }
  if (typeof source.subject !== 'string' || source.subject.trim() === '') problems.push('subject is required');
  if (typeof source.body !== 'string' || source.body.trim() === '') problems.push('body is required');
  const sizes: [string, string | null | undefined][] = [
    ['subject', source.subject],
    ['preheader', source.preheader],
    ['body', source.body],
    ['text', source.text],
    ...Object.entries(source.partials ?? {}).map(([name, s]): [string, string] => [`partial "${name}"`, s]),
  ];
  for (const [name, s] of sizes) {
    if (typeof s === 'string' && s.length > TEMPLATE_LIMITS.sourceChars) {
      problems.push(`${name} is longer than ${TEMPLATE_LIMITS.sourceChars} characters`);
    }
  }
  if (problems.length > 0) throw new TemplateError('template_invalid', `Invalid template: ${problems.join('; ')}`);
}

/** Compiles one template version: MJML to HTML, Liquid parsed, text part prepared. */
export async function compileTemplate(source: TemplateSource): Promise<CompiledTemplate> {
  checkSource(source);
  const partials = new Map(
    Object.entries(source.partials ?? {}).map(([name, s]) => [name, replaceUnsubscribePlaceholders(s)] as const),
  );
  const engines = enginesFor(source.language, partials);

  const subjectSource = replaceUnsubscribePlaceholders(source.subject);
  const preheaderSource = oneLine(replaceUnsubscribePlaceholders(source.preheader ?? ''));
  const bodySource = replaceUnsubscribePlaceholders(source.body);
  const textSource = source.text && source.text.trim() !== '' ? replaceUnsubscribePlaceholders(source.text) : null;

  const subject = parse(engines.plain, subjectSource, 'subject', partials);
  const preheader = parse(engines.plain, preheaderSource, 'preheader', partials);
  const text = textSource === null ? null : parse(engines.plain, textSource, 'text', partials);

  let bodyHtml: string;
  let sourceCheck: Template[] | null = null;
  if (source.format === 'mjml') {
    // Liquid errors are reported against the lines the author wrote, before MJML reshapes them.
    sourceCheck = parse(engines.html, bodySource, 'html', partials);
    bodyHtml = (await compileMjml(bodySource)).replace(/(<html\b[^>]*\blang=")und(")/i, `$1${source.language}$2`);
  } else {
    bodyHtml = bodySource;
  }

  const fullHtml = withPreheader(bodyHtml, preheaderSource);
  if (source.format === 'html') parse(engines.html, bodySource, 'html', partials); // line numbers of the source, before the preheader
  let html: Template[];
  try {
    html = engines.html.parse(fullHtml);
  } catch (err) {
    const problem = toTemplateError(err, 'html');
    if (source.format !== 'mjml') throw problem;
    throw new TemplateError(
      'template_syntax',
      `MJML moved or dropped Liquid code (${problem.message}). Liquid tags between MJML sections or columns ` +
        'must be inside <mj-raw>, and Liquid in attributes must use single quotes',
      { part: 'html' },
    );
  }

  let textMode: TextMode = 'authored';
  let textTemplate = text;
  if (textTemplate === null) {
    const derived = deriveTextSource(bodyHtml, engines.plain);
    if (derived !== null) {
      try {
        textTemplate = engines.plain.parse(derived);
        textMode = 'derived';
      } catch {
        textMode = 'converted';
      }
    } else {
      textMode = 'converted';
    }
  }

  const compiled: CompiledTemplate = Object.freeze({
    category: source.category,
    language: source.language,
    format: source.format,
    tracking: source.tracking ?? true,
    html: fullHtml,
    textMode,
    hasUnsubscribeLink: [source.subject, source.body, source.text ?? '', ...partials.values()].some(usesUnsubscribePlaceholder),
  });
  parsedTemplates.set(compiled, { engines, subject, preheader, html, sourceCheck, text: textTemplate });
  return compiled;
}

// ---------------------------------------------------------------------------------------------
// Render

/**
 * The Liquid scope: contact fields, then caller variables, at top level for convenience; the named
 * objects and the unsubscribe links last, so that no custom field can shadow them.
 */
const wallClocks = new Map<string, Intl.DateTimeFormat>();

/**
 * An event's date as a template sees it: a Date for the `date` filter, which already formats it in
 * the event's zone, and written out bare (`{{ event.starts_at }}`) as that zone's wall clock,
 * "2027-07-01 18:00", not as JavaScript's "Thu Jul 01 2027 16:00:00 GMT+0000 (Coordinated...)".
 */
class EventDate extends Date {
  constructor(
    value: string | Date,
    private readonly zone: string,
  ) {
    super(value);
  }
  override toString(): string {
    // An unknown zone: UTC, as the date filter does.
    const zone = isTimeZone(this.zone) ? this.zone : 'UTC';
    let f = wallClocks.get(zone);
    if (!f) {
      f = new Intl.DateTimeFormat('en-CA', { year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23', timeZone: zone });
      // Known IANA zones only: a few hundred at most.
      wallClocks.set(zone, f);
    }
    return f.format(this).replace(', ', ' ');
  }
}

const eventDate = (v: string | Date | null | undefined, zone: string) => {
  if (v === null || v === undefined || v === '') return v;
  const d = new EventDate(v, zone);
  return Number.isNaN(d.getTime()) ? v : d;
};

function scopeOf(data: RenderData, unsubscribe: UnsubscribeVariables | null, timeZone: string): Record<string, unknown> {
  const scope: Record<string, unknown> = { ...(data.contact ?? {}), ...(data.vars ?? {}) };
  if (data.contact) scope.contact = data.contact;
  if (data.event) {
    const event: Record<string, unknown> = { ...data.event };
    for (const key of ['starts_at', 'ends_at'] as const) if (Object.hasOwn(event, key)) event[key] = eventDate(data.event[key], timeZone);
    scope.event = event;
  }
  scope.vars = data.vars ?? {};
  if (unsubscribe) Object.assign(scope, unsubscribe);
  return scope;
}

/** Header-safe subject: no CR/LF (header injection) nor other control characters, one line. */
export function cleanSubject(subject: string): string {
  return subject
    .replace(/[\u0000-\u001f\u007f\u0085\u2028\u2029]/g, ' ')
    .replace(/[^\S\u00a0]+/g, ' ')
    .trim();
}

/**
 * Renders one compiled template for one recipient. 'preview' fails on any missing variable,
 * naming it and its line; 'send' renders a missing variable as empty (use `| default: "..."`).
 * Both fail on syntax-free but runaway templates (time, memory, output size).
 */
export function render(compiled: CompiledTemplate, data: RenderData, mode: RenderMode, options: RenderOptions = {}): RenderedMessage {
  const parsed = parsedTemplates.get(compiled);
  if (!parsed) throw new TypeError('render() needs a template returned by compileTemplate()');
  const unsubscribe = data.unsubscribe === undefined ? null : unsubscribeVariables(data.unsubscribe);
  const timeZone = data.timeZone ?? data.event?.time_zone ?? 'UTC';
  const scope = scopeOf(data, unsubscribe, timeZone);
  // Globals reach `{% render %}` partials, whose scope is otherwise isolated.
  const liquidOptions = { strictVariables: mode === 'preview', globals: { ...unsubscribe, [TIME_ZONE_GLOBAL]: timeZone } };
  const run = (engine: Liquid, template: Template[], part: TemplatePart): string => {
    const viaLiquid = (): string => {
      try {
        return String(engine.renderSync(template, scope, liquidOptions));
      } catch (err) {
        // The time limit is wall-clock: a process descheduled for a moment on a busy machine trips it
        // on a template that takes a millisecond. Once more, then: a runaway template trips it again.
        if (!/template render limit exceeded/.test(String((err as Error)?.message))) throw toTemplateError(err, part);
        try {
          return String(engine.renderSync(template, scope, liquidOptions));
        } catch (again) {
          throw toTemplateError(again, part);
        }
      }
    };
    // Text and plain outputs are rendered without liquidjs' render loop, to the same bytes (render-direct.ts).
    const plan = directPlan(template);
    const out = (plan && renderDirect(plan, engine, scope, liquidOptions)) ?? viaLiquid();
    if (out.length > TEMPLATE_LIMITS.outputChars) {
      throw new TemplateError(
        'template_limit',
        `The rendered ${PART_LABEL[part]} is longer than ${TEMPLATE_LIMITS.outputChars} characters`,
        { part },
      );
    }
    return out;
  };

  const subject = cleanSubject(run(parsed.engines.plain, parsed.subject, 'subject'));
  const preheader = oneLine(run(parsed.engines.plain, parsed.preheader, 'preheader'));
  if (mode === 'preview' && parsed.sourceCheck) run(parsed.engines.html, parsed.sourceCheck, 'html');
  let html = run(parsed.engines.html, parsed.html, 'html');
  let text: string;
  if (parsed.text === null) text = tidyText(htmlToText(html));
  else if (compiled.textMode === 'derived') text = tidyText(run(parsed.engines.plain, parsed.text, 'text'));
  else text = run(parsed.engines.plain, parsed.text, 'text');

  const unsubscribeUrls = unsubscribe ? [...new Set(Object.values(unsubscribe))] : [];
  let links: TrackedLink[] = [];
  if (options.tracking && compiled.tracking) {
    const tracked = trackLinks(html, {
      ...options.tracking,
      unsubscribeUrls: [...(options.tracking.unsubscribeUrls ?? []), ...unsubscribeUrls],
    });
    html = tracked.html;
    links = tracked.links;
  }
  return { subject, preheader, html, text, links, unsubscribeUrls };
}

// ---------------------------------------------------------------------------------------------
// Check: the answer of a preview render without rendering, when the template allows it

/**
 * A part made only of text and outputs of literal variable paths (`{{ a.b }}`, `{{ a["b c"] }}`)
 * with no filter but escaping: its strict render can fail only on a variable it cannot read or on its
 * size, both of which can be told from the data without rendering it.
 */
interface PlainPart {
  paths: string[][];
  staticChars: number;
  /** escaping filters on the heaviest output: each can make a character up to 6 */
  escapes: number;
}

/** null: some part has tags, filters or computed keys, so only a render can tell. */
const plainParts = new WeakMap<CompiledTemplate, PlainPart[] | null>();

const UNSAFE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
const ENUMERABLE = Object.prototype.propertyIsEnumerable;

function plainPart(templates: Template[], engine: Liquid): PlainPart | null {
  const part: PlainPart = { paths: [], staticChars: 0, escapes: 0 };
  for (const t of templates) {
    const kind = (t as unknown as { token?: { kind?: number } }).token?.kind;
    if (kind === TokenKind.HTML && !(t instanceof Output)) {
      const str = (t as unknown as { str?: unknown }).str;
      if (typeof str !== 'string') return null;
      part.staticChars += str.length;
      continue;
    }
    if (!(t instanceof Output)) return null;
    const { filters: applied } = t.value;
    if (applied.length > 2) return null;
    let escapes = 0;
    for (const f of applied) {
      if (f.args.length > 0) return null;
      if ((f as unknown as { handler: unknown }).handler === engine.filters.escape) escapes++;
      else if (!f.raw) return null;
    }
    part.escapes = Math.max(part.escapes, escapes);
    const path = literalPathOf(t, UNSAFE_KEYS);
    if (!path) return null;
    part.paths.push(path);
  }
  return part;
}

function plainPartsOf(compiled: CompiledTemplate, parsed: Parsed): PlainPart[] | null {
  let parts = plainParts.get(compiled);
  if (parts === undefined) {
    const all: [Template[] | null, Liquid][] = [
      [parsed.subject, parsed.engines.plain],
      [parsed.preheader, parsed.engines.plain],
      [parsed.sourceCheck, parsed.engines.html],
      [parsed.html, parsed.engines.html],
      [parsed.text, parsed.engines.plain],
    ];
    const found: PlainPart[] = [];
    for (const [templates, engine] of all) {
      if (templates === null) continue;
      const part = plainPart(templates, engine);
      if (!part) break;
      found.push(part);
    }
    parts = found.length === all.filter(([t]) => t !== null).length ? found : null;
    plainParts.set(compiled, parts);
  }
  return parts;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return (proto === Object.prototype || proto === null) && typeof (v as { toLiquid?: unknown }).toLiquid !== 'function';
};

/**
 * The value Liquid reads for `path` in the scope of `data` (see scopeOf), when it can be told for
 * sure: a string, number, boolean or null reached through own properties of plain objects. undefined
 * when it cannot (missing, or anything else): then a render decides.
 */
function plainValue(data: RenderData, unsubscribe: () => UnsubscribeVariables | null, path: string[]): string | number | boolean | null | undefined {
  const root = path[0]!;
  const vars = data.vars ?? {};
  if (!isPlainObject(vars) || (data.contact && !isPlainObject(data.contact)) || (data.event && !isPlainObject(data.event))) return undefined;
  let value: unknown;
  const links = root.startsWith('unsubscribe_url') ? unsubscribe() : null;
  if (links && Object.hasOwn(links, root)) value = links[root as keyof UnsubscribeVariables];
  else if (root === 'vars') value = vars;
  else if (root === 'event' && data.event) value = data.event;
  else if (root === 'contact' && data.contact) value = data.contact;
  // The scope spreads the caller's variables over the contact's fields: own enumerable keys only.
  else if (ENUMERABLE.call(vars, root)) value = vars[root];
  else if (data.contact && ENUMERABLE.call(data.contact, root)) value = data.contact[root];
  else return undefined;
  for (let i = 1; i < path.length; i++) {
    if (!isPlainObject(value) || !Object.hasOwn(value, path[i]!)) return undefined;
    value = value[path[i]!];
  }
  if (value === null || typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value))) return value;
  return undefined;
}

/**
 * Throws what `render(compiled, data, 'preview')` would throw, and nothing when it would not: for a
 * template of plain outputs whose variables are all there, by reading them (no render); otherwise by
 * rendering (the answer says which). For the accept path of the triggered API, which only needs the verdict.
 */
export function checkPreview(compiled: CompiledTemplate, data: RenderData): 'read' | 'rendered' {
  const parsed = parsedTemplates.get(compiled);
  if (!parsed) throw new TypeError('checkPreview() needs a template returned by compileTemplate()');
  const parts = plainPartsOf(compiled, parsed);
  if (parts && plainPartsHold(parts, data)) return 'read';
  render(compiled, data, 'preview');
  return 'rendered';
}

function plainPartsHold(parts: PlainPart[], data: RenderData): boolean {
  let links: UnsubscribeVariables | null | undefined;
  const unsubscribe = () => (links === undefined ? (links = data.unsubscribe === undefined ? null : unsubscribeVariables(data.unsubscribe)) : links);
  for (const part of parts) {
    let chars = part.staticChars;
    for (const path of part.paths) {
      const value = plainValue(data, unsubscribe, path);
      if (value === undefined) return false;
      chars += (value === null ? 0 : String(value).length) * 6 ** part.escapes;
    }
    // Far from the size limits, the render cannot trip them either.
    if (chars > TEMPLATE_LIMITS.outputChars) return false;
  }
  return true;
}
