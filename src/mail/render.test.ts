import { describe, expect, it } from 'vitest';
import { compileTemplate, render, TemplateError, type RenderData, type TemplateSource } from './render.ts';

const mjml = (inner: string) => `<mjml>
  <mj-body>
    <mj-section>
      <mj-column>
${inner}
      </mj-column>
    </mj-section>
  </mj-body>
</mjml>`;

const source = (over: Partial<TemplateSource>): TemplateSource => ({
  category: 'marketing',
  language: 'en',
  subject: 'Hello',
  format: 'html',
  body: '<html><body><p>Hello</p></body></html>',
  ...over,
});

const ada: RenderData = {
  contact: { email: 'ada@example.com', first_name: 'Ada', last_name: 'Lovelace', company: 'Acme & Co', job_title: null },
  event: { name: 'Summit', starts_at: '2026-06-03T07:30:00Z', ends_at: '2026-06-03T16:00:00Z', time_zone: 'Europe/Paris' },
  vars: { confirm_url: 'https://example.com/confirm?a=1&b=2' },
};

async function failure(p: Promise<unknown> | (() => unknown)): Promise<TemplateError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    expect(err).toBeInstanceOf(TemplateError);
    return err as TemplateError;
  }
  throw new Error('expected a TemplateError');
}

describe('compile and render', () => {
  it('compiles MJML once and renders it per recipient', async () => {
    const compiled = await compileTemplate(
      source({
        language: 'fr',
        subject: 'Bonjour {{ first_name }}',
        preheader: 'Votre place pour {{ event.name }}',
        format: 'mjml',
        body: mjml(`        <mj-text>Bonjour {{ contact.first_name }} de {{ company }}</mj-text>
        <mj-button href="{{ confirm_url }}">Confirmer</mj-button>`),
      }),
    );
    expect(compiled.format).toBe('mjml');
    expect(compiled.html).toContain('{{ confirm_url }}'); // MJML done, Liquid left for each recipient
    const a = render(compiled, ada, 'send');
    expect(a.subject).toBe('Bonjour Ada');
    expect(a.preheader).toBe('Votre place pour Summit');
    expect(a.html).toMatch(/^<!doctype html>/i);
    expect(a.html).toContain('<html lang="fr"');
    expect(a.html).toContain('Bonjour Ada de Acme &amp; Co');
    expect(a.html).toContain('href="https://example.com/confirm?a=1&amp;b=2"');
    const b = render(compiled, { ...ada, contact: { email: 'g@example.com', first_name: 'Grace', company: 'Navy' } }, 'send');
    expect(b.html).toContain('Bonjour Grace de Navy');
  });

  it('renders HTML bodies as written', async () => {
    const compiled = await compileTemplate(
      source({ body: '<!doctype html><html><body style="margin:0"><h1>Hi {{ first_name }}</h1><p>{{ event.name }}</p></body></html>' }),
    );
    const out = render(compiled, ada, 'send');
    expect(out.html).toContain('<h1>Hi Ada</h1><p>Summit</p>');
    expect(out.html.startsWith('<!doctype html><html><body style="margin:0">')).toBe(true);
  });

  it('puts the preheader as hidden text right after <body>, and not in the text part', async () => {
    const compiled = await compileTemplate(
      source({ preheader: 'Doors open at 9, {{ first_name }}', body: '<html><body class="x"><p>Main</p></body></html>' }),
    );
    const out = render(compiled, ada, 'send');
    expect(out.html).toMatch(/^<html><body class="x"><div class="envoi-preheader" style="display:none;[^"]*">Doors open at 9, Ada/);
    expect(out.preheader).toBe('Doors open at 9, Ada');
    expect(out.text).toBe('Main');
  });

  it('reports MJML errors with their line numbers', async () => {
    const err = await failure(
      compileTemplate(source({ format: 'mjml', body: '<mjml>\n<mj-body>\n  <mj-section>\n    <mj-text>x</mj-text>\n  </mj-section>\n</mj-body>\n</mjml>' })),
    );
    expect(err.code).toBe('template_mjml');
    expect(err.line).toBe(4);
    expect(err.message).toMatch(/line 4: <mj-text>: mj-text cannot be used inside mj-section/);
    expect(err.problems[0]).toMatchObject({ part: 'html', line: 4, tag: 'mj-text' });
    expect(err.message).not.toContain(process.cwd()); // mjml's own message names the server's folders

    const notMjml = await failure(compileTemplate(source({ format: 'mjml', body: 'just some text' })));
    expect(notMjml.code).toBe('template_mjml');
  });

  it('reports Liquid syntax errors with the part and the line of the source', async () => {
    const html = await failure(compileTemplate(source({ body: '<p>a</p>\n<p>{% if x %}b</p>\n' })));
    expect(html.code).toBe('template_syntax');
    expect(html.part).toBe('html');
    expect(html.line).toBe(2);
    const subject = await failure(compileTemplate(source({ subject: 'Hi {{ first_name ' })));
    expect(subject.part).toBe('subject');
    const filter = await failure(compileTemplate(source({ body: '<p>{{ name | no_such_filter }}</p>' })));
    expect(filter.message).toMatch(/undefined filter: no_such_filter/);
    // In MJML, the line is that of the MJML the author wrote, not of the generated HTML.
    const inMjml = await failure(compileTemplate(source({ format: 'mjml', body: mjml('        <mj-text>{% for %}</mj-text>') })));
    expect(inMjml.line).toBe(5);
  });

  it('refuses invalid sources clearly', async () => {
    const err = await failure(compileTemplate(source({ category: 'spam' as never, language: 'not a language', subject: ' ' })));
    expect(err.code).toBe('template_invalid');
    expect(err.status).toBe(422);
    expect(err.message).toMatch(/category.*language.*subject/);
  });

  it('only renders what compileTemplate returned', () => {
    expect(() => render({} as never, ada, 'send')).toThrow(TypeError);
  });
});

describe('preview and send modes', () => {
  const body = '<p>Hello</p>\n<p>{{ first_name | default: "there" }}</p>\n<p>Your seat: {{ seat }}</p>';

  it('preview fails on a missing variable, naming it and its line', async () => {
    const compiled = await compileTemplate(source({ body }));
    const err = await failure(() => render(compiled, ada, 'preview'));
    expect(err.code).toBe('template_missing_variable');
    expect(err.variable).toBe('seat');
    expect(err.part).toBe('html');
    expect(err.line).toBe(3);
    expect(err.message).toBe('Missing variable "seat" in the HTML body at line 3, column 18');
  });

  it('preview names nested variables and points at the MJML source line', async () => {
    const compiled = await compileTemplate(
      source({ format: 'mjml', body: mjml('        <mj-text>Hi</mj-text>\n        <mj-text>{{ event.room }}</mj-text>') }),
    );
    const err = await failure(() => render(compiled, ada, 'preview'));
    expect(err.variable).toBe('event.room');
    expect(err.line).toBe(6);
  });

  it('send renders a missing variable as empty, and default gives the fallback', async () => {
    const compiled = await compileTemplate(source({ subject: 'Hi {{ first_name | default: "there" }}{{ nickname }}', body }));
    const out = render(compiled, { contact: { email: 'x@example.com' } }, 'send');
    expect(out.subject).toBe('Hi there');
    expect(out.html).toContain('<p>there</p>');
    expect(out.html).toContain('<p>Your seat: </p>');
  });

  it('preview accepts a missing variable that has a default or sits in an if', async () => {
    const compiled = await compileTemplate(
      source({ body: '<p>{{ first_name | default: "there" }}{% if company %} from {{ company }}{% endif %}</p>' }),
    );
    expect(render(compiled, { contact: { email: 'x@example.com' } }, 'preview').html).toBe('<p>there</p>');
  });

  it('gives contact fields at top level and under contact, and caller variables under vars too', async () => {
    const compiled = await compileTemplate(
      source({ body: '{{ first_name }}|{{ contact.last_name }}|{{ diet }}|{{ contact.diet }}|{{ confirm_url }}|{{ vars.confirm_url }}' }),
    );
    const out = render(compiled, { ...ada, contact: { ...ada.contact!, diet: 'vegan' }, vars: { confirm_url: 'u' } }, 'preview');
    expect(out.html).toBe('Ada|Lovelace|vegan|vegan|u|u');
  });

  it('does not let a custom field shadow contact, event or the unsubscribe link', async () => {
    const compiled = await compileTemplate(source({ body: '{{ event.name }}|{{ unsubscribe_url }}|{{ contact.email }}' }));
    const out = render(
      compiled,
      { ...ada, contact: { email: 'a@example.com', event: 'x', contact: 'y', unsubscribe_url: 'https://evil.example' }, unsubscribe: 'https://u.example/1' },
      'send',
    );
    expect(out.html).toBe('Summit|https://u.example/1|a@example.com');
  });

  it('does not expose object prototypes', async () => {
    const compiled = await compileTemplate(source({ body: '[{{ contact.constructor }}{{ contact.toString }}{{ contact.hasOwnProperty }}{{ contact.__proto__ }}{{ vars.constructor.name }}]' }));
    expect(render(compiled, ada, 'send').html).toBe('[]');
  });

  it('shows dates in the event zone, or the given zone, by default', async () => {
    const compiled = await compileTemplate(
      source({ language: 'fr', body: '{{ event.starts_at | date: "%A %-d %B %H:%M" }}|{{ event.starts_at | date: "%H:%M", "America/New_York" }}' }),
    );
    expect(render(compiled, ada, 'send').html).toBe('mercredi 3 juin 09:30|03:30');
    expect(render(compiled, { ...ada, timeZone: 'Asia/Tokyo' }, 'send').html).toBe('mercredi 3 juin 16:30|03:30');
    expect(render(compiled, { ...ada, event: { ...ada.event!, time_zone: 'Not/AZone' } }, 'send').html).toBe('mercredi 3 juin 07:30|03:30');
  });

  it('writes a bare event date as the wall clock of the zone, and the date filter still takes it', async () => {
    const compiled = await compileTemplate(source({ body: '{{ event.starts_at }} to {{ event.ends_at }}|{{ event.starts_at | date: "%H:%M" }}|{% if event.starts_at %}set{% endif %}' }));
    expect(render(compiled, ada, 'send').html).toBe('2026-06-03 09:30 to 2026-06-03 18:00|09:30|set');
    expect(render(compiled, { ...ada, event: { ...ada.event!, starts_at: new Date('2026-06-03T07:30:00Z') } }, 'send').html).toMatch(/^2026-06-03 09:30 to/);
    expect(render(compiled, { ...ada, timeZone: 'Asia/Tokyo' }, 'send').html).toBe('2026-06-03 16:30 to 2026-06-04 01:00|16:30|set');
    expect(render(compiled, { ...ada, event: { ...ada.event!, time_zone: 'Not/AZone' } }, 'send').html).toBe('2026-06-03 07:30 to 2026-06-03 16:00|07:30|set');
    // Not a date: written as it was given.
    expect(render(compiled, { ...ada, event: { ...ada.event!, starts_at: 'soon', ends_at: null } }, 'send').html).toBe('soon to |soon|set');
  });
});

describe('safety', () => {
  const evil = '<img src=x onerror=alert(1)>';

  it('escapes variables in HTML bodies, not in the subject or text', async () => {
    const compiled = await compileTemplate(
      source({ subject: 'Hi {{ first_name }}', preheader: '{{ first_name }}', body: '<p title="{{ first_name }}">Hi {{ first_name }}</p>' }),
    );
    const out = render(compiled, { contact: { email: 'x@example.com', first_name: evil } }, 'send');
    expect(out.html).not.toContain('<img');
    expect(out.html).toContain('<p title="&lt;img src=x onerror=alert(1)&gt;">Hi &lt;img src=x onerror=alert(1)&gt;</p>');
    expect(out.html).toContain('>&lt;img src=x onerror=alert(1)&gt;&#847;'); // the preheader too
    expect(out.subject).toBe(`Hi ${evil}`);
    expect(out.text).toBe(`Hi ${evil}`);
  });

  it('escapes in MJML bodies too, and quotes in attributes', async () => {
    const compiled = await compileTemplate(source({ format: 'mjml', body: mjml('        <mj-text><a href="https://x.example/?n={{ first_name }}">{{ first_name }}</a></mj-text>') }));
    const out = render(compiled, { contact: { email: 'x@example.com', first_name: `"><script>alert(1)</script>` } }, 'send');
    expect(out.html).not.toContain('<script>');
    expect(out.html).toContain('href="https://x.example/?n=&#34;&gt;&lt;script&gt;');
  });

  it('strips CR and LF from the subject', async () => {
    const compiled = await compileTemplate(source({ subject: 'Hello {{ first_name }}\r\n{{ company }}' }));
    const out = render(compiled, { contact: { email: 'x@example.com', first_name: 'Ada\r\nBcc: victim@example.com', company: 'A\u2028B\u0000' } }, 'send');
    expect(out.subject).toBe('Hello Ada Bcc: victim@example.com A B');
    expect(out.subject).not.toMatch(/[\r\n\u0000-\u001f]/);
  });

  it('stops runaway loops with an error instead of hanging', async () => {
    for (const body of [
      '{% for i in (1..100000000) %}x{% endfor %}',
      '{% for i in (1..100000) %}{% for j in (1..100000) %}{% endfor %}{% endfor %}',
      '{% assign s = "xxxxxxxxxx" %}{% for i in (1..40) %}{% assign s = s | append: s %}{% endfor %}{{ s }}',
    ]) {
      const compiled = await compileTemplate(source({ body }));
      for (const mode of ['send', 'preview'] as const) {
        const err = await failure(() => render(compiled, ada, mode));
        expect(err.code).toBe('template_limit');
      }
    }
  });

  it('cannot include files from disk, only partials given with the template', async () => {
    const packageJson = new URL('../../package.json', import.meta.url).pathname;
    for (const body of [`{% include '${packageJson}' %}`, "{% render '../../package.json' %}", "{% layout '/etc/hosts' %}", "{% include 'constructor' %}"]) {
      const err = await failure(compileTemplate(source({ body })));
      expect(err.message).toMatch(/No partial named/);
    }
    // A name only known at render time is looked up in the same in-memory set, never on disk.
    const dynamic = await compileTemplate(source({ body: '{% include file %}' }));
    for (const file of [packageJson, '/etc/hosts', '../../package.json', 'toString', '__proto__']) {
      const err = await failure(() => render(dynamic, { vars: { file } }, 'send'));
      expect(err.message).toMatch(/no partial named/);
    }
  });

  it('ignores mj-include: MJML reads no file either', async () => {
    const packageJson = new URL('../../package.json', import.meta.url).pathname;
    const compiled = await compileTemplate(
      source({ format: 'mjml', body: mjml(`        <mj-text>hi</mj-text>\n        <mj-include path="${packageJson}" type="html" />`) }),
    );
    expect(compiled.html).not.toContain('"private"');
  });

  it('renders partials from the template set, escaped like their host', async () => {
    const compiled = await compileTemplate(
      source({
        body: '<p>{% include "greeting" %}</p>{% render "footer", who: first_name %}',
        text: '{% include "greeting" %}',
        partials: { greeting: 'Hi {{ first_name }}', footer: '<small>[UNSUBLINK] {{ who }}</small>' },
      }),
    );
    const out = render(compiled, { contact: { email: 'x@example.com', first_name: 'A&B' }, unsubscribe: 'https://u.example/1' }, 'send');
    expect(out.html).toBe('<p>Hi A&amp;B</p><small>https://u.example/1 A&amp;B</small>');
    expect(out.text).toBe('Hi A&B');
    const recursive = await compileTemplate(source({ body: '{% include "a" %}', partials: { a: 'a{% include "a" %}' } }));
    expect((await failure(() => render(recursive, ada, 'send'))).code).toBe('template_limit');
  });
});

describe('unsubscribe placeholders', () => {
  const body =
    '<a href="{{ unsubscribe_url }}">1</a><a href="[UNSUBLINK]">2</a><a href="[UNSUBLINK_FR]">3</a>' +
    '<a href="[UNSUBLINK_EN]">4</a><a href="%5BUNSUBLINK%5D">5</a><p>{{ first_name }}</p>';

  it('fills every form from one URL, with lang for the localised pages', async () => {
    const compiled = await compileTemplate(source({ subject: 'x [UNSUBLINK_EN]', body, text: 'Stop: [UNSUBLINK] / [unsublink_fr]' }));
    expect(compiled.hasUnsubscribeLink).toBe(true);
    const out = render(compiled, { contact: { email: 'x@example.com', first_name: 'Ada' }, unsubscribe: 'https://u.example/u/t0k?a=1' }, 'preview');
    expect(out.html).toBe(
      '<a href="https://u.example/u/t0k?a=1">1</a><a href="https://u.example/u/t0k?a=1">2</a>' +
        '<a href="https://u.example/u/t0k?a=1&amp;lang=fr">3</a><a href="https://u.example/u/t0k?a=1&amp;lang=en">4</a>' +
        '<a href="https://u.example/u/t0k?a=1">5</a><p>Ada</p>',
    );
    expect(out.text).toBe('Stop: https://u.example/u/t0k?a=1 / https://u.example/u/t0k?a=1&lang=fr');
    expect(out.subject).toBe('x https://u.example/u/t0k?a=1&lang=en');
    expect(out.unsubscribeUrls).toEqual([
      'https://u.example/u/t0k?a=1',
      'https://u.example/u/t0k?a=1&lang=fr',
      'https://u.example/u/t0k?a=1&lang=en',
    ]);
  });

  it('uses a link builder when given one', async () => {
    const compiled = await compileTemplate(source({ body: '[UNSUBLINK] [UNSUBLINK_FR] [UNSUBLINK_EN]' }));
    const out = render(compiled, { unsubscribe: (lang) => `https://u.example/${lang ?? 'any'}/t0k` }, 'send');
    expect(out.html).toBe('https://u.example/any/t0k https://u.example/fr/t0k https://u.example/en/t0k');
  });

  it('does not substitute a placeholder inside a contact value', async () => {
    const compiled = await compileTemplate(source({ subject: '{{ first_name }}', body: '<p>{{ first_name }} {{ company }}</p>' }));
    const out = render(
      compiled,
      { contact: { email: 'x@example.com', first_name: '[UNSUBLINK]', company: '{{ unsubscribe_url }}' }, unsubscribe: 'https://u.example/1' },
      'send',
    );
    expect(out.html).toBe('<p>[UNSUBLINK] {{ unsubscribe_url }}</p>');
    expect(out.subject).toBe('[UNSUBLINK]');
    expect(out.html).not.toContain('u.example');
  });

  it('is a missing variable in preview when no link is given', async () => {
    const compiled = await compileTemplate(source({ body: '<a href="[UNSUBLINK_FR]">x</a>' }));
    expect((await failure(() => render(compiled, {}, 'preview'))).variable).toBe('unsubscribe_url_fr');
  });
});

describe('text part', () => {
  it('is generated from the HTML once, as a Liquid text template, with values unescaped', async () => {
    const compiled = await compileTemplate(
      source({
        body:
          '<html><head><title>{{ event.name }}</title></head><body><h1>Hello {{ first_name }}</h1>' +
          '<p>From {{ company }}.</p>{% if vars.confirm_url %}<p><a href="{{ confirm_url }}">Confirm</a></p>{% endif %}' +
          '<p><a href="{{ confirm_url }}">{{ confirm_url }}</a></p><img src="logo.png" alt="Logo"></body></html>',
      }),
    );
    expect(compiled.textMode).toBe('derived');
    const out = render(compiled, ada, 'send');
    expect(out.text).toBe(
      'Hello Ada\n\nFrom Acme & Co.\n\nConfirm [https://example.com/confirm?a=1&b=2]\n\nhttps://example.com/confirm?a=1&b=2',
    );
    const none = render(compiled, { ...ada, vars: {} }, 'send');
    expect(none.text).toBe('Hello Ada\n\nFrom Acme & Co.');
  });

  it('is converted per recipient when the Liquid logic cannot be kept through the conversion', async () => {
    const compiled = await compileTemplate(
      source({
        body: '<table>{% for s in vars.sessions %}<tr><td>{{ s }}</td></tr>{% endfor %}</table><p class="{% if vip %}vip{% endif %}">Hi {{ first_name }}</p>',
      }),
    );
    expect(compiled.textMode).toBe('converted');
    const out = render(compiled, { contact: { email: 'x@example.com', first_name: 'A<B' }, vars: { sessions: ['Keynote', 'Lunch & talks'] } }, 'send');
    expect(out.text).toBe('Keynote\nLunch & talks\n\nHi A<B');
  });

  it('uses the authored text when there is one, unescaped', async () => {
    const compiled = await compileTemplate(source({ body: '<p>html</p>', text: 'Hi {{ first_name }} of {{ company }}\n\nBye' }));
    expect(compiled.textMode).toBe('authored');
    expect(render(compiled, ada, 'send').text).toBe('Hi Ada of Acme & Co\n\nBye');
  });

  it('gives the same text from MJML whether derived once or converted per recipient', async () => {
    const body = mjml('        <mj-text><h2>Hi {{ first_name }}</h2><p>See you at {{ event.name }}.</p></mj-text>\n        <mj-button href="{{ confirm_url }}">Confirm</mj-button>');
    const compiled = await compileTemplate(source({ format: 'mjml', body }));
    expect(compiled.textMode).toBe('derived');
    const derived = render(compiled, ada, 'send').text;
    expect(derived).toBe('Hi Ada\n\nSee you at Summit.\n\nConfirm [https://example.com/confirm?a=1&b=2]');
    // Forcing the per-recipient path (a tag in an attribute) gives the same text.
    const converted = await compileTemplate(source({ format: 'mjml', body: body.replace('<h2>', '<h2 class="{% if x %}x{% endif %}">') }));
    expect(converted.textMode).toBe('converted');
    expect(render(converted, ada, 'send').text).toBe(derived);
  });
});

describe('tracking through render', () => {
  const body =
    '<html><body><a href="{{ confirm_url }}">c</a><a href="[UNSUBLINK]">u</a><a href="mailto:{{ contact.email }}">m</a></body></html>';
  const tracking = { wrap: (url: string, i: number) => `https://t.example/c/${i}?u=${encodeURIComponent(url)}`, openPixelUrl: 'https://t.example/o/1' };

  it('wraps the links, never the unsubscribe link, and adds the pixel', async () => {
    const compiled = await compileTemplate(source({ body }));
    const out = render(compiled, { ...ada, unsubscribe: 'https://u.example/1' }, 'send', { tracking });
    expect(out.links).toEqual([{ index: 0, url: 'https://example.com/confirm?a=1&b=2' }]);
    expect(out.html).toContain('<a href="https://t.example/c/0?u=https%3A%2F%2Fexample.com%2Fconfirm%3Fa%3D1%26b%3D2">c</a>');
    expect(out.html).toContain('<a href="https://u.example/1">u</a><a href="mailto:ada@example.com">m</a><img src="https://t.example/o/1"');
    expect(out.text).toContain('c [https://example.com/confirm?a=1&b=2]'); // the text keeps the real links
  });

  it('does nothing when the template has tracking off', async () => {
    const compiled = await compileTemplate(source({ body, tracking: false }));
    const out = render(compiled, { ...ada, unsubscribe: 'https://u.example/1' }, 'send', { tracking });
    expect(out.links).toEqual([]);
    expect(out.html).not.toContain('t.example');
  });
});
