import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Liquid } from 'liquidjs';
import { directPlan, renderDirect } from './render-direct.ts';

// The options of render.ts's engines that change how an output reads or writes a value.
const engines = {
  html: new Liquid({ ownPropertyOnly: true, lenientIf: true, strictFilters: true, outputEscape: 'escape', timezoneOffset: 'UTC' }),
  plain: new Liquid({ ownPropertyOnly: true, lenientIf: true, strictFilters: true, timezoneOffset: 'UTC' }),
};

const KEYS = ['first_name', 'company', 'score', 'vip', 'note', 'contact', 'vars', 'unsubscribe_url', 'tags', 'missing', 'toString', 'constructor', 'size'];
const FILTERS = [
  'default: "there"', 'default: 0', 'raw', 'escape', 'escape_once', 'upcase', 'downcase', 'capitalize', 'strip', 'url_encode', 'append: " & co"',
  'prepend: "<b>"', 'replace: "a", "o"', 'truncate: 5', 'truncate: 8, "…"', 'plus: 2', 'times: 1.5', 'divided_by: 4', 'round: 1', 'at_least: 3', 'size', 'join: ", "',
  'newline_to_br', 'strip_html', 'slugify', 'remove: " "', 'default: "x", allow_false: true', 'date: "%Y"',
];
const TEXTS = ['Hello ', ', ', '<p class="x">', '</p>\n', ' & ', 'é ü 😀', '', '{', '"'];

const value = fc.oneof(
  fc.constantFrom('Ada', '', ' spaced ', '<script>&"\'', 'Zoë 😀', 'a\nb', 'true', '0'),
  fc.string({ maxLength: 12 }),
  fc.integer({ min: -1000, max: 1000 }),
  fc.double({ noNaN: false }),
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
  fc.array(fc.string({ maxLength: 3 }), { maxLength: 3 }),
  fc.dictionary(fc.constantFrom('first_name', 'name', 'size'), fc.string({ maxLength: 5 })),
);
const data = fc.record({
  first_name: value,
  company: value,
  score: value,
  vip: value,
  note: value,
  tags: value,
  contact: fc.oneof(fc.record({ first_name: value, email: value }), value),
  vars: fc.oneof(fc.record({ note: value, nested: fc.record({ deep: value }) }), value),
}, { requiredKeys: [] });

const output = fc.record({
  path: fc.oneof(
    fc.constantFrom(...KEYS).map((k) => k),
    fc.tuple(fc.constantFrom('contact', 'vars'), fc.constantFrom('first_name', 'email', 'note', 'nested', 'missing')).map(([a, b]) => `${a}.${b}`),
    fc.constant('vars.nested.deep'),
    fc.constant('contact["first_name"]'),
    fc.constant('vars["nested"].deep'),
  ),
  filters: fc.array(fc.constantFrom(...FILTERS), { maxLength: 3 }),
}).map(({ path, filters }) => `{{ ${[path, ...filters].join(' | ')} }}`);
const source = fc.array(fc.oneof(fc.constantFrom(...TEXTS), output), { minLength: 1, maxLength: 8 }).map((parts) => parts.join(''));

describe('rendering text and plain outputs without the liquidjs render loop', () => {
  it('gives what liquidjs gives, byte for byte, or leaves the part to liquidjs', () => {
    let direct = 0;
    let runs = 0;
    fc.assert(
      fc.property(source, data, fc.constantFrom('html', 'plain') as fc.Arbitrary<'html' | 'plain'>, fc.boolean(), (src, scope, kind, strict) => {
        runs++;
        const engine = engines[kind];
        let templates;
        try {
          templates = engine.parse(src);
        } catch {
          return; // not Liquid (a stray brace before an output)
        }
        const plan = directPlan(templates);
        if (!plan) return;
        const globals = { unsubscribe_url: 'https://envoi.example/u/abc?x=1&y=2', score: 'global' };
        const options = { strictVariables: strict, globals };
        const got = renderDirect(plan, engine, scope as Record<string, unknown>, options);
        if (got === null) return;
        direct++;
        expect(got).toBe(String(engine.renderSync(templates, scope, options)));
      }),
      { numRuns: 3000 },
    );
    // Most random parts are ones this renders itself: the comparison above is not vacuous.
    expect(direct).toBeGreaterThan(runs / 4);
  });

  it('leaves tags, computed keys, size/first/last and filters it does not know to liquidjs', () => {
    for (const src of ['{% if a %}x{% endif %}', '{{ a[b] }}', '{{ tags.size }}', '{{ tags.first }}', '{{ a | join: ", " }}', '{{ a | date: "%Y" }}', '{{ a | default: "x", allow_false: true }}', '{{ "literal" }}', '{{ a | append: b }}']) {
      expect(directPlan(engines.html.parse(src))).toBeNull();
    }
    expect(directPlan(engines.html.parse('Hi {{ contact.first_name | default: "there" | upcase }}!'))).not.toBeNull();
  });

  it('gives a missing variable back to liquidjs in strict mode (preview names it), and renders it empty otherwise', () => {
    const templates = engines.html.parse('Hi {{ nobody }}!');
    const plan = directPlan(templates)!;
    expect(renderDirect(plan, engines.html, {}, { strictVariables: true, globals: {} })).toBeNull();
    expect(renderDirect(plan, engines.html, {}, { strictVariables: false, globals: {} })).toBe('Hi !');
  });

  it('takes values only as liquidjs reads them: own properties of plain objects', () => {
    const templates = engines.plain.parse('{{ a.b }}|{{ c }}');
    const plan = directPlan(templates)!;
    const inherited = Object.create({ b: 'from the prototype' }) as Record<string, unknown>;
    class Thing {
      b = 'an instance';
    }
    expect(renderDirect(plan, engines.plain, { a: inherited, c: 1 }, { strictVariables: false, globals: {} })).toBeNull();
    expect(renderDirect(plan, engines.plain, { a: new Thing(), c: 1 }, { strictVariables: false, globals: {} })).toBeNull();
    expect(renderDirect(plan, engines.plain, { a: { b: 'own' }, c: 1 }, { strictVariables: false, globals: {} })).toBe('own|1');
  });
});
