/**
 * The parts most templates are made of, rendered without liquidjs' render loop: text, and outputs
 * of variable paths through string and number filters (`Hello {{ first_name | default: "there" }}`).
 *
 * Why: liquidjs renders through generators, a few microseconds per token, and a newsletter's
 * subject, preheader, HTML and text are some forty tokens: about half of the time the worker spent
 * building a message went there (BENCHMARKS.md, Campaign).
 *
 * The output is liquidjs' own, byte for byte (render-direct.test.ts compares them on random data):
 * values are read the way liquidjs' Context reads them (its scopes, then the render scope, then the
 * globals; own properties only), the filters are liquidjs' built-in handlers called as liquidjs
 * calls them (with a real Context, so its memory limit applies), and the result is written as its
 * emitter writes it. Whatever is outside that is given back to liquidjs: a tag, a computed key,
 * `size`/`first`/`last`, a filter not listed below or with named arguments, a value that is not a
 * string, number, boolean or null (an array, an object, a Drop), a filter that throws, and, in strict
 * (preview) mode, a missing variable, so that liquidjs reports it.
 */
import { Context, Liquid, Output, TokenKind, type Template } from 'liquidjs';

/** Built-in filters of plain values that return a plain value (no generator, no array). */
const DIRECT_FILTERS = [
  'default', 'raw', 'escape', 'xml_escape', 'escape_once', 'newline_to_br', 'strip_html',
  'abs', 'at_least', 'at_most', 'ceil', 'divided_by', 'floor', 'minus', 'plus', 'modulo', 'times', 'round',
  'url_decode', 'url_encode', 'cgi_escape', 'uri_escape', 'slugify',
  'append', 'prepend', 'lstrip', 'rstrip', 'strip', 'strip_newlines', 'squish', 'downcase', 'upcase', 'capitalize',
  'remove', 'remove_first', 'remove_last', 'replace', 'replace_first', 'replace_last', 'truncate', 'truncatewords',
  'normalize_whitespace', 'number_of_words',
];
type Handler = (this: unknown, ...args: unknown[]) => unknown;
/**
 * Their handlers as liquidjs ships them, known by identity: a filter registered over one of them is
 * not one of these, and the escape that `outputEscape` appends has its source text for a name.
 */
const BUILTIN = new Set<unknown>();
{
  const reference = new Liquid();
  for (const name of DIRECT_FILTERS) {
    const f = (reference.filters as Record<string, unknown>)[name];
    const handler = typeof f === 'function' ? f : (f as { handler?: unknown } | undefined)?.handler;
    if (typeof handler === 'function') BUILTIN.add(handler);
  }
}
/** Keys liquidjs reads its own way whatever the object holds. */
const SPECIAL_KEYS = new Set(['size', 'first', 'last']);

interface DirectFilter {
  handler: Handler;
  args: unknown[];
  token: unknown;
  liquid: unknown;
}
type Step = string | { path: string[]; filters: DirectFilter[] };
export type DirectPlan = readonly Step[];

interface FilterLike {
  handler: unknown;
  args: unknown[];
  token: unknown;
  liquid: unknown;
}

/**
 * The variable an output reads when it is a literal path (`a.b`, `a["b c"]`), with none of its keys
 * in `refused`; null for anything else (a literal, a computed key, an expression).
 */
export function literalPathOf(t: Output, refused: ReadonlySet<string>): string[] | null {
  const postfix = (t.value.initial as unknown as { postfix?: unknown[] }).postfix;
  if (!Array.isArray(postfix) || postfix.length !== 1) return null;
  const token = postfix[0] as { kind?: number; variable?: unknown; props?: { kind?: number; content?: unknown }[] };
  if (token.kind !== TokenKind.PropertyAccess || token.variable || !Array.isArray(token.props) || token.props.length === 0) return null;
  const path: string[] = [];
  for (const prop of token.props) {
    if ((prop.kind !== TokenKind.Word && prop.kind !== TokenKind.Quoted) || typeof prop.content !== 'string' || refused.has(prop.content)) return null;
    path.push(prop.content);
  }
  return path;
}

function outputStep(t: Output): Step | null {
  const path = literalPathOf(t, SPECIAL_KEYS);
  if (!path) return null;
  const filters: DirectFilter[] = [];
  for (const f of t.value.filters as unknown as FilterLike[]) {
    if (!BUILTIN.has(f.handler)) return null;
    const args: unknown[] = [];
    for (const a of f.args) {
      // evalToken takes a literal's `content`; named arguments ([key, value]) are left to liquidjs
      const arg = a as { kind?: number; content?: unknown };
      if (Array.isArray(a) || (arg.kind !== TokenKind.Quoted && arg.kind !== TokenKind.Number)) return null;
      args.push(arg.content);
    }
    filters.push({ handler: f.handler as Handler, args, token: f.token, liquid: f.liquid });
  }
  return { path, filters };
}

const plans = new WeakMap<readonly Template[], DirectPlan | null>();

/** The plan of a parsed part, or null when it has anything but text and such outputs. */
export function directPlan(templates: readonly Template[]): DirectPlan | null {
  let plan = plans.get(templates);
  if (plan === undefined) {
    let steps: Step[] | null = [];
    for (const t of templates) {
      const kind = (t as unknown as { token?: { kind?: number } }).token?.kind;
      let step: Step | null = null;
      if (t instanceof Output) step = outputStep(t);
      else if (kind === TokenKind.HTML) {
        const str = (t as unknown as { str?: unknown }).str;
        step = typeof str === 'string' ? str : null;
      }
      if (step === null) {
        steps = null;
        break;
      }
      steps.push(step);
    }
    plan = steps;
    plans.set(templates, plan);
  }
  return plan;
}

const isPlainObject = (v: object) => {
  if (Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return (proto === Object.prototype || proto === null) && typeof (v as { toLiquid?: unknown }).toLiquid !== 'function';
};
const isPlainValue = (v: unknown) => v === null || v === undefined || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';

/**
 * The part rendered from its plan, as `engine.renderSync(templates, scope, options)` would render
 * it; null when liquidjs must render it (see above).
 */
export function renderDirect(plan: DirectPlan, engine: Liquid, scope: Record<string, unknown>, options: { strictVariables: boolean; globals: Record<string, unknown> }): string | null {
  let context: Context | null = null;
  let out = '';
  for (const step of plan) {
    if (typeof step === 'string') {
      out += step;
      continue;
    }
    // Context.findScope: its own (empty) scope, then the render scope, then the globals
    let value: unknown = step.path[0]! in scope ? scope : options.globals;
    for (const key of step.path) {
      if (value === null || value === undefined) break;
      if (typeof value !== 'object' || !isPlainObject(value)) return null;
      value = Object.hasOwn(value, key) ? (value as Record<string, unknown>)[key] : undefined;
    }
    if (value === undefined && options.strictVariables) return null;
    if (!isPlainValue(value)) return null;
    if (step.filters.length) {
      context ??= new Context(scope, engine.options, options, { liquid: engine });
      try {
        for (const f of step.filters) {
          value = f.handler.apply({ context, token: f.token, liquid: f.liquid }, [value, ...f.args]);
          if (!isPlainValue(value)) return null;
        }
      } catch {
        return null;
      }
    }
    // SimpleEmitter.write(stringify(value))
    if (typeof value === 'string') out += value;
    else if (value !== null && value !== undefined) out += String(value);
  }
  return out;
}
