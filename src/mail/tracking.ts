/**
 * Click and open tracking on a rendered HTML body.
 *
 * Links are found by a small HTML tokenizer rather than a regular expression over the whole
 * document: it follows the HTML rules for tags and attributes (quoted values may contain `>` or
 * `<a href=`; comments, including Outlook conditional comments, and script/style contents are not
 * markup), runs in one linear pass (this is done once per recipient) and rewrites only the `href`
 * value of the links it tracks, leaving the rest of the document byte for byte as it was.
 */

/** Put this attribute on an `<a>` to leave that link untracked; it is removed from the sent mail. */
export const NOTRACK_ATTRIBUTE = 'data-envoi-notrack';

export interface TrackedLink {
  /** Position among the tracked links of this message, in document order, from 0. */
  index: number;
  /** The link as written (HTML entities decoded, surrounding spaces trimmed, tabs and line breaks dropped as the URL parser does). */
  url: string;
}

export interface TrackingOptions {
  /** Returns the tracking URL that redirects to `url`; `index` identifies the link in the message. */
  wrap: (url: string, index: number) => string;
  /** URL of the open pixel appended at the end of the body; none when absent. */
  openPixelUrl?: string | null;
  /** Links never wrapped: the recipient's unsubscribe URLs (exact match). */
  unsubscribeUrls?: readonly string[];
  /** Any other link to leave alone. */
  skip?: (url: string) => boolean;
}

export interface TrackingResult {
  html: string;
  links: TrackedLink[];
}

interface Attribute {
  name: string;
  value: string;
  /** Span of the whole attribute (name and value) in the document. */
  start: number;
  end: number;
}

const isSpace = (c: string) => c === ' ' || c === '\n' || c === '\t' || c === '\r' || c === '\f';
const isAsciiLetter = (c: string) => (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');

/** Reads the attributes of a start tag from just after its name; null if the tag never closes. */
function readAttributes(html: string, from: number): { attributes: Attribute[]; end: number } | null {
  const attributes: Attribute[] = [];
  const n = html.length;
  let i = from;
  for (;;) {
    while (i < n && (isSpace(html[i]!) || html[i] === '/')) i++;
    if (i >= n) return null;
    if (html[i] === '>') return { attributes, end: i + 1 };
    const start = i;
    i++; // the first character belongs to the name even if it is '='
    while (i < n && !isSpace(html[i]!) && html[i] !== '/' && html[i] !== '>' && html[i] !== '=') i++;
    const name = html.slice(start, i).toLowerCase();
    let j = i;
    while (j < n && isSpace(html[j]!)) j++;
    let value = '';
    if (html[j] === '=') {
      j++;
      while (j < n && isSpace(html[j]!)) j++;
      const quote = html[j];
      if (quote === '"' || quote === "'") {
        const close = html.indexOf(quote, j + 1);
        if (close === -1) return null;
        value = html.slice(j + 1, close);
        i = close + 1;
      } else {
        const valueStart = j;
        while (j < n && !isSpace(html[j]!) && html[j] !== '>') j++;
        value = html.slice(valueStart, j);
        i = j;
      }
    }
    attributes.push({ name, value, start, end: i });
  }
}

const NAMED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

/** Decodes the character references that can appear in a URL attribute. */
export function decodeAttribute(value: string): string {
  if (!value.includes('&')) return value;
  return value.replace(/&(?:#(\d+)|#[xX]([0-9a-fA-F]+)|([a-zA-Z]+));/g, (whole, dec, hex, name) => {
    if (dec || hex) {
      const code = dec ? Number.parseInt(dec, 10) : Number.parseInt(hex, 16);
      return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
    }
    return NAMED[name.toLowerCase()] ?? whole;
  });
}

export function escapeAttribute(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

const TRACKABLE = /^https?:\/\//i;
// Spaces and control characters that browsers strip around a URL attribute.
const URL_PADDING = /^[\u0000-\u0020]+|[\u0000-\u0020]+$/g;
// Tabs and line breaks, which the URL parser drops wherever they are (a variable with a line break put in an href).
const URL_TAB_OR_NEWLINE = /[\t\n\r]/g;

/**
 * The Location a click on `url` redirects to: the URL as a browser would have followed it, serialised
 * (non-ASCII and spaces percent-encoded), which is also what an HTTP header can carry; null when it is
 * not an http(s) URL.
 */
export function redirectLocation(url: string): string | null {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return null;
  }
  return parsed.protocol === 'http:' || parsed.protocol === 'https:' ? parsed.href : null;
}

/**
 * Wraps every http(s) `<a href>` of `html` (except mailto: and other schemes, the unsubscribe URLs,
 * links marked with `data-envoi-notrack` and those `skip` refuses) and appends the open pixel.
 */
export function trackLinks(html: string, options: TrackingOptions): TrackingResult {
  const unsubscribe = new Set(options.unsubscribeUrls ?? []);
  const links: TrackedLink[] = [];
  let out = '';
  let copied = 0; // html[copied..] is not yet in `out`
  const n = html.length;
  let lower: string | undefined;
  let i = html.indexOf('<');
  while (i !== -1 && i < n) {
    if (html.startsWith('<!--', i)) {
      const close = html.indexOf('-->', i + 4);
      if (close === -1) break;
      i = html.indexOf('<', close + 3);
      continue;
    }
    const next = html[i + 1] ?? '';
    if (next === '!' || next === '?' || next === '/') {
      const close = html.indexOf('>', i + 2);
      if (close === -1) break;
      i = html.indexOf('<', close + 1);
      continue;
    }
    if (!isAsciiLetter(next)) {
      i = html.indexOf('<', i + 1);
      continue;
    }
    let nameEnd = i + 1;
    while (nameEnd < n && !isSpace(html[nameEnd]!) && html[nameEnd] !== '/' && html[nameEnd] !== '>') nameEnd++;
    const tagName = html.slice(i + 1, nameEnd).toLowerCase();
    const tag = readAttributes(html, nameEnd);
    if (!tag) break;
    if (tagName === 'script' || tagName === 'style') {
      // Raw text: its contents are not markup, whatever they look like.
      lower ??= html.toLowerCase();
      const close = lower.indexOf(`</${tagName}`, tag.end);
      if (close === -1) break;
      i = close;
      continue;
    }
    if (tagName === 'a') {
      const href = tag.attributes.find((a) => a.name === 'href');
      const notrack = tag.attributes.filter((a) => a.name === NOTRACK_ATTRIBUTE);
      const url = href ? decodeAttribute(href.value).replace(URL_PADDING, '').replace(URL_TAB_OR_NEWLINE, '') : '';
      const wrap =
        href !== undefined &&
        notrack.length === 0 &&
        TRACKABLE.test(url) &&
        !unsubscribe.has(url) &&
        !(options.skip?.(url) ?? false);
      if (wrap) {
        const index = links.length;
        links.push({ index, url });
        out += html.slice(copied, href.start) + `href="${escapeAttribute(options.wrap(url, index))}"`;
        copied = href.end;
      }
      for (const marker of notrack) {
        // Drop the marker with the whitespace before it: recipients have no use for it.
        let start = marker.start;
        while (start > copied && isSpace(html[start - 1]!)) start--;
        out += html.slice(copied, start);
        copied = marker.end;
      }
    }
    i = html.indexOf('<', tag.end);
  }
  out += html.slice(copied);
  if (options.openPixelUrl) out = appendOpenPixel(out, options.openPixelUrl);
  return { html: out, links };
}

/** Adds the 1x1 open pixel just before `</body>`, or at the end of a fragment without one. */
export function appendOpenPixel(html: string, pixelUrl: string): string {
  const pixel =
    `<img src="${escapeAttribute(pixelUrl)}" width="1" height="1" alt="" ` +
    `style="display:block;width:1px;height:1px;border:0;margin:0;padding:0;" />`;
  const close = html.toLowerCase().lastIndexOf('</body');
  return close === -1 ? html + pixel : html.slice(0, close) + pixel + html.slice(close);
}
