import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { simpleParser } from 'mailparser';
import { compileTemplate, render, type RenderData, type TemplateSource } from './render.ts';
import { trackLinks } from './tracking.ts';
import { trackingFor } from './tracking-tokens.ts';
import { composeMessage, deliveryTargets } from './compose.ts';
import { encodeHtml, skeletonOf } from './mime-skeleton.ts';
import { BUILTIN_KINDS, BUILTIN_LANGUAGES, builtinTemplate } from './builtin-templates.ts';

const SECRET = 's'.repeat(48);
const PUBLIC = 'https://envoi.example.org';
const DELIVERY = '0b8e4a4e-3f1c-4a8c-9d2c-1a2b3c4d5e6f';

const base = { category: 'marketing', language: 'en', subject: 'News for {{ first_name }}' } as const;
const PARA = 'Our programme brings together engineers, designers and researchers for two days of talks, workshops and demos.';

/** Templates that have a skeleton: each feature the skeleton must reproduce exactly. */
const SPLICED: Record<string, TemplateSource> = {
  'newsletter (MJML, 5 links, unsubscribe)': {
    ...base,
    format: 'mjml',
    preheader: 'Five things for {{ company | default: "you" }}',
    body:
      '<mjml><mj-head><mj-title>News for {{ first_name }}</mj-title></mj-head><mj-body><mj-section><mj-column>' +
      '<mj-text>Hello {{ first_name | default: "there" }} {{ last_name }},</mj-text>' +
      [1, 2, 3, 4, 5].map((i) => `<mj-text>${PARA}</mj-text><mj-button href="https://news.example.org/${i}?a=1&amp;b=2">Read more</mj-button>`).join('') +
      '<mj-text>You receive this as {{ contact.email }}. <a href="[UNSUBLINK]">Unsubscribe</a></mj-text></mj-column></mj-section></mj-body></mjml>',
  },
  'conditions, loops, dynamic links, notrack, mailto, comments, styles': {
    ...base,
    format: 'html',
    body:
      '<html><head><style>a { color: red; } /* <a href="https://not.a.link/"> */</style></head><body>\n' +
      '<!-- <a href="https://commented.example/"> {{ first_name }} -->\n' +
      '{% if vars.vip %}<p>VIP <a href="https://vip.example.org/lounge">lounge</a></p>{% else %}<p>Not VIP</p>{% endif %}\n' +
      '<ul>{% for s in vars.sessions %}<li><a href="https://agenda.example.org/{{ s | url_encode }}" title="{{ s }}">{{ s }}</a></li>{% endfor %}</ul>\n' +
      '<p><a href="https://example.org/ticket?e={{ contact.email | url_encode }}">My ticket</a> <a data-envoi-notrack href="https://private.example.org/">private</a>' +
      ' <a href="mailto:help@example.org">help</a> <A HREF="https://caps.example.org/">caps</A> <a href=https://unquoted.example.org/>unquoted</a></p>\n' +
      '{%- assign greeting = "Bye" -%}\n<p>{{ greeting }}, {{ first_name }}. {% increment n %}{% cycle "a", "b" %}</p>\n' +
      '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a> <a href="https://envoi.example.org/u/x">ours, not tracked</a></p>\n</body></html>',
  },
  'a fragment without </body>': { ...base, format: 'html', body: '<p>Hi {{ first_name }}</p><a href="https://example.org/x">x</a>' },
  'two </body>, one in a condition': {
    ...base,
    format: 'html',
    body: '<html><body><p>{{ first_name }}</p>{% if vars.vip %}<p>end</p></body>{% endif %}<p>tail</p></body></html>',
  },
};

/** Templates Liquid could re-shape: no skeleton, the whole document is tracked per recipient. */
const UNSPLICED: Record<string, string> = {
  capture: '{% capture x %}<a href="https://a.example/">a</a>{% endcapture %}{{ x }}',
  'tag inside an HTML tag': '<a {% if vars.vip %}href="https://vip.example/"{% endif %}>x</a>',
  'output as a tag name': '<{{ vars.tag }} href="https://a.example/">x</a>',
  'unquoted attribute value': '<img alt={{ first_name }} src="https://a.example/i.png">',
  'output in an end tag': '<p>x</p{{ first_name }}>',
  'unclosed tag': '<p>{{ first_name }}</p><a href="https://a.example/"',
  comment: '{% comment %}<a href="{% endcomment %}">',
};

const people: RenderData['contact'][] = [
  { email: 'ada@example.com', first_name: 'Ada', last_name: 'Lovelace', company: 'Acme & Co' },
  { email: 'zoe@exämple.com', first_name: 'Zoë "Z" <b>Ümlaut</b>', last_name: "O'Brien", company: null },
  { email: 'dot@example.com', first_name: '.\r\n.dot\nX-Injected: yes', last_name: '😀'.repeat(40), company: 'x'.repeat(300) },
  { email: 'raw@example.com', first_name: '', last_name: null },
];

const dataFor = (contact: RenderData['contact'], i: number): RenderData => ({
  contact,
  vars: { vip: i % 2 === 0, sessions: i === 3 ? [] : ['Keynote', 'Data & design', 'Ümlauts'], tag: 'a' },
  unsubscribe: deliveryTargets(PUBLIC, SECRET, DELIVERY, 'bounces.example.org').url,
});

/** What the worker sent before skeletons: render, then track the whole document. */
function expected(compiled: Awaited<ReturnType<typeof compileTemplate>>, data: RenderData, tracked: boolean) {
  const r = render(compiled, data, 'send');
  if (!tracked || !compiled.tracking) return { html: r.html, links: [] };
  const t = trackingFor(PUBLIC, SECRET, DELIVERY);
  return trackLinks(r.html, { ...t, unsubscribeUrls: r.unsubscribeUrls });
}

async function parsedHtml(pieces: Buffer[], contact: RenderData['contact']) {
  const c = composeMessage({
    deliveryId: DELIVERY,
    returnPath: deliveryTargets(PUBLIC, SECRET, DELIVERY, 'bounces.example.org').returnPath,
    from: { name: 'News', address: 'news@example.org' },
    to: { name: contact!.first_name, address: 'to@example.com' },
    subject: 'x',
    html: { pieces },
    text: 'text',
    date: new Date('2026-12-01T10:00:00Z'),
    bounceDomain: 'bounces.example.org',
  });
  return { parsed: await simpleParser(c.raw), raw: c.raw };
}

// Line ends are canonical (CRLF) in a text part: a bare CR or LF comes out as a line end.
const norm = (s: string) => s.replace(/\r\n|\r/g, '\n');

describe('HTML part spliced from a skeleton', () => {
  it.each(Object.entries(SPLICED))('%s: has a skeleton, and gives what render + trackLinks give, byte for byte', async (_name, source) => {
    const compiled = await compileTemplate(source);
    const skeleton = await skeletonOf(compiled);
    expect(skeleton).not.toBeNull();
    for (const [i, contact] of people.entries()) {
      for (const tracked of [true, false]) {
        const data = dataFor(contact, i);
        const rendered = render(compiled, data, 'send');
        const want = expected(compiled, data, tracked);
        const got = encodeHtml(compiled, skeleton, data, rendered, tracked ? trackingFor(PUBLIC, SECRET, DELIVERY) : undefined);
        expect(got.links).toEqual(want.links);
        const { parsed } = await parsedHtml(got.pieces, contact);
        expect(norm(parsed.html as string)).toBe(norm(want.html));
      }
    }
  });

  it('cuts a template without conditions or loops from the rendered HTML, and renders the skeleton of the others', async () => {
    const via = async (source: TemplateSource, contact: RenderData['contact']) => {
      const compiled = await compileTemplate(source);
      const data = dataFor(contact, 0);
      return encodeHtml(compiled, await skeletonOf(compiled), data, render(compiled, data, 'send'), trackingFor(PUBLIC, SECRET, DELIVERY)).via;
    };
    expect(await via(SPLICED['newsletter (MJML, 5 links, unsubscribe)']!, people[0])).toBe('html');
    expect(await via(SPLICED['a fragment without </body>']!, people[0])).toBe('html');
    expect(await via(SPLICED['conditions, loops, dynamic links, notrack, mailto, comments, styles']!, people[0])).toBe('skeleton');
    // a value that would need quoting where plain text is cut: the skeleton decides instead
    expect(await via({ ...base, format: 'html', body: '<p>{{ first_name }} "and" {{ last_name }}</p>' }, people[0])).toBe('skeleton');
  });

  it('splices, except for a recipient whose unescaped value holds markup', async () => {
    const compiled = await compileTemplate({ ...base, format: 'html', body: '<p>{{ vars.note | raw }}</p><a href="https://example.org/a">a</a></body>' });
    const skeleton = await skeletonOf(compiled);
    const t = () => trackingFor(PUBLIC, SECRET, DELIVERY);
    const plain: RenderData = { vars: { note: 'plain words' } };
    expect(encodeHtml(compiled, skeleton, plain, render(compiled, plain, 'send'), t()).spliced).toBe(true);
    const markup: RenderData = { vars: { note: '<a href="https://injected.example/">more</a>' } };
    const got = encodeHtml(compiled, skeleton, markup, render(compiled, markup, 'send'), t());
    expect(got.spliced).toBe(false);
    // the link in the value is tracked, as the whole-document tracker does
    expect(got.links.map((l) => l.url)).toEqual(['https://injected.example/', 'https://example.org/a']);
  });

  it.each(Object.entries(UNSPLICED))('%s: no skeleton, and the whole-document path still gives the same part', async (_name, body) => {
    const compiled = await compileTemplate({ ...base, format: 'html', body });
    const skeleton = await skeletonOf(compiled);
    expect(skeleton).toBeNull();
    const data = dataFor(people[0], 0);
    const want = expected(compiled, data, true);
    const got = encodeHtml(compiled, skeleton, data, render(compiled, data, 'send'), trackingFor(PUBLIC, SECRET, DELIVERY));
    expect(got.spliced).toBe(false);
    expect(norm((await parsedHtml(got.pieces, people[0])).parsed.html as string)).toBe(norm(want.html));
  });

  it.each(BUILTIN_KINDS.flatMap((k) => BUILTIN_LANGUAGES.map((l) => [k, l] as const)))('built-in %s (%s) has a skeleton that gives the same part', async (kind, lang) => {
    const template = builtinTemplate(kind, lang);
    const compiled = await compileTemplate(template);
    const skeleton = await skeletonOf(compiled);
    expect(skeleton).not.toBeNull();
    const data = { ...template.sample, unsubscribe: `${PUBLIC}/u/abc` };
    const want = expected(compiled, data, true);
    const got = encodeHtml(compiled, skeleton, data, render(compiled, data, 'send'), trackingFor(PUBLIC, SECRET, DELIVERY));
    expect(got.spliced).toBe(true);
    expect(got.links).toEqual(want.links);
    expect(norm((await parsedHtml(got.pieces, { email: 'x@example.com', first_name: 'Ada' })).parsed.html as string)).toBe(norm(want.html));
  });

  it.each(['conditions, loops, dynamic links, notrack, mailto, comments, styles', 'newsletter (MJML, 5 links, unsubscribe)'])(
    '%s: any recipient gives the same part, every line within 76 characters, CRLF-ended, none starting with a dot',
    async (name) => {
      const compiled = await compileTemplate(SPLICED[name]!);
      const skeleton = await skeletonOf(compiled);
      await fc.assert(
        fc.asyncProperty(fc.string({ unit: 'binary', maxLength: 200 }), fc.string({ maxLength: 100 }), async (first, last) => {
          const contact = { email: 'p@example.com', first_name: first, last_name: last };
          const data = dataFor(contact, 0);
          const got = encodeHtml(compiled, skeleton, data, render(compiled, data, 'send'), trackingFor(PUBLIC, SECRET, DELIVERY));
          const { raw, parsed } = await parsedHtml(got.pieces, contact);
          const body = raw.toString('latin1').split('\r\n\r\n').slice(1).join('\r\n\r\n');
          expect(/\r(?!\n)|(?<!\r)\n/.test(raw.toString('latin1'))).toBe(false);
          for (const line of body.split('\r\n')) {
            expect(line.length).toBeLessThanOrEqual(76);
            expect(line.startsWith('.')).toBe(false);
          }
          const want = expected(compiled, data, true);
          expect(got.links).toEqual(want.links);
          expect(norm(parsed.html as string)).toBe(norm(want.html));
        }),
        { numRuns: 40 },
      );
    },
    60_000,
  );
});
