import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { appendOpenPixel, decodeAttribute, redirectLocation, trackLinks } from './tracking.ts';

const wrap = (url: string, index: number) => `https://t.example/c/${index}?u=${encodeURIComponent(url)}`;
const wrapped = (url: string, index: number) => wrap(url, index).replace(/&/g, '&amp;');

describe('trackLinks', () => {
  it('wraps http(s) links only, and lists them in document order', () => {
    const html =
      '<p><a href="https://a.example/x">a</a> <a href="mailto:me@example.com">m</a> <a href="tel:+33100">t</a>' +
      '<a href="/relative">r</a><a href="#top">h</a><a>no href</a><A HREF=\'HTTP://B.example/Y\' class=b>b</A>' +
      '<area href="https://area.example/"><abbr href="https://abbr.example/">x</abbr><a href="https://a.example/x">again</a></p>';
    const out = trackLinks(html, { wrap });
    expect(out.links).toEqual([
      { index: 0, url: 'https://a.example/x' },
      { index: 1, url: 'HTTP://B.example/Y' },
      { index: 2, url: 'https://a.example/x' },
    ]);
    expect(out.html).toBe(
      `<p><a href="${wrapped('https://a.example/x', 0)}">a</a> <a href="mailto:me@example.com">m</a> <a href="tel:+33100">t</a>` +
        `<a href="/relative">r</a><a href="#top">h</a><a>no href</a><A href="${wrapped('HTTP://B.example/Y', 1)}" class=b>b</A>` +
        `<area href="https://area.example/"><abbr href="https://abbr.example/">x</abbr><a href="${wrapped('https://a.example/x', 2)}">again</a></p>`,
    );
  });

  it('leaves notrack links and the unsubscribe links alone, and removes the marker', () => {
    const html =
      '<a data-envoi-notrack href="https://keep.example/">k</a><a href="https://keep2.example/"\n  data-envoi-notrack="">k2</a>' +
      '<a href="https://u.example/1?lang=fr&amp;x=1">u</a><a href="https://skip.example/">s</a><a href="https://go.example/">g</a>';
    const out = trackLinks(html, {
      wrap,
      unsubscribeUrls: ['https://u.example/1?lang=fr&x=1'],
      skip: (url) => url.startsWith('https://skip.'),
    });
    expect(out.links).toEqual([{ index: 0, url: 'https://go.example/' }]);
    expect(out.html).toBe(
      '<a href="https://keep.example/">k</a><a href="https://keep2.example/">k2</a>' +
        '<a href="https://u.example/1?lang=fr&amp;x=1">u</a><a href="https://skip.example/">s</a>' +
        `<a href="${wrapped('https://go.example/', 0)}">g</a>`,
    );
  });

  it('decodes entities and trims spaces in the URL it records, and escapes the one it writes', () => {
    const out = trackLinks('<a href="  https://a.example/?x=1&amp;y=&#34;2&#x22;\n">a</a>', { wrap: (url) => url + '&z' });
    expect(out.links).toEqual([{ index: 0, url: 'https://a.example/?x=1&y="2"' }]);
    expect(out.html).toBe('<a href="https://a.example/?x=1&amp;y=&quot;2&quot;&amp;z">a</a>');
  });

  it('drops tabs and line breaks inside a URL, as the URL parser does (a variable with a line break in an href)', () => {
    const out = trackLinks('<a href="https://a.example/o?id=x\r\nBcc: y&amp;t=1\t2">a</a>', { wrap });
    expect(out.links).toEqual([{ index: 0, url: 'https://a.example/o?id=xBcc: y&t=12' }]);
  });

  it('follows HTML rules: quoted ">", comments, conditional comments, script and style are not links', () => {
    const html =
      '<img alt="<a href=\'https://no1.example/\'>" src="i.png"><!-- <a href="https://no2.example/"> -->' +
      '<!--[if mso]><a href="https://no3.example/">o</a><![endif]--><style>a[href^="<a href=https://no4.example/>"]{}</style>' +
      '<script>"<a href=https://no5.example/>"</script><a title="a > b" href=https://yes.example/>y</a>';
    const out = trackLinks(html, { wrap });
    expect(out.links).toEqual([{ index: 0, url: 'https://yes.example/' }]);
    expect(out.html).toBe(html.replace('href=https://yes.example/', `href="${wrapped('https://yes.example/', 0)}"`));
  });

  it('leaves an unterminated tag or comment as it is', () => {
    for (const html of ['<a href="https://x.example/', '<p>x</p><!-- <a href="https://x.example/">', '<a href="https://x.example/">ok</a><a href="']) {
      const out = trackLinks(html, { wrap: (u) => u });
      expect(out.html).toBe(html); // the complete link is rewritten to itself by this wrap
    }
  });

  it('appends the open pixel before </body>, or at the end of a fragment', () => {
    expect(trackLinks('<html><body><p>x</p></BODY></html>', { wrap, openPixelUrl: 'https://t.example/o?a=1&b=2' }).html).toBe(
      '<html><body><p>x</p><img src="https://t.example/o?a=1&amp;b=2" width="1" height="1" alt="" ' +
        'style="display:block;width:1px;height:1px;border:0;margin:0;padding:0;" /></BODY></html>',
    );
    expect(appendOpenPixel('<p>x</p>', 'https://t.example/o')).toMatch(/^<p>x<\/p><img src="https:\/\/t\.example\/o"/);
  });

  it('never throws, and wraps exactly the http(s) links it reports, on any markup soup', () => {
    const chunk = fc.constantFrom(
      '<a href="https://a.example/">',
      '<a href=http://b.example/?q=1&amp;r=2>',
      "<a href='mailto:x@example.com'>",
      '<a data-envoi-notrack href="https://n.example/">',
      '</a>',
      '<!--',
      '-->',
      '<p>',
      '"',
      "'",
      '>',
      '<',
      ' ',
      'text',
      '<style>',
      '</style>',
      '<a title="x > y" href="https://c.example/">',
    );
    fc.assert(
      fc.property(fc.array(chunk, { maxLength: 30 }), (chunks) => {
        const html = chunks.join('');
        const out = trackLinks(html, { wrap: (_url, i) => `https://t.example/${i}` });
        for (const link of out.links) expect(link.url).toMatch(/^https?:\/\//i);
        const tracked = out.html.match(/https:\/\/t\.example\/\d+/g) ?? [];
        expect(tracked).toEqual(out.links.map((l) => `https://t.example/${l.index}`));
        expect(out.html).not.toContain('data-envoi-notrack href="https://t.example');
      }),
    );
  });
});

describe('decodeAttribute', () => {
  it('decodes numeric and basic named references, and leaves the rest', () => {
    expect(decodeAttribute('a&amp;b&lt;&gt;&quot;&apos;&#39;&#x41;&copy;&#0;&bogus')).toBe('a&b<>"\'\'A&copy;&#0;&bogus');
  });
});

describe('redirectLocation', () => {
  it('serialises the URL a click goes to into what a Location header can carry', () => {
    expect(redirectLocation('https://a.example/o?id=ab-12&x=1#frag')).toBe('https://a.example/o?id=ab-12&x=1#frag');
    expect(redirectLocation('https://a.example/o?id=x\r\nBcc: y')).toBe('https://a.example/o?id=xBcc:%20y');
    expect(redirectLocation('https://a.example/café/日本?q=é')).toBe('https://a.example/caf%C3%A9/%E6%97%A5%E6%9C%AC?q=%C3%A9');
    expect(redirectLocation('HTTPS://Bücher.example/')).toBe('https://xn--bcher-kva.example/');
    expect(redirectLocation('javascript:alert(1)')).toBeNull();
    expect(redirectLocation('https://exa mple.com/')).toBeNull();
  });
});
