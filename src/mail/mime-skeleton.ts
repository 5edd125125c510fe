/**
 * The HTML part of a campaign built once per template version: the static HTML is
 * quoted-printable encoded once, and each recipient only adds what is theirs (the Liquid outputs,
 * the signed click links, the open pixel), encoded on its own and spliced in between.
 *
 * Why: for a 26 KB newsletter, tracking the rendered HTML and encoding it cost about 0.4 ms per
 * recipient, more than everything else the worker does for a message (BENCHMARKS.md, Campaign).
 *
 * How, keeping the output byte for byte what `render` + `trackLinks` + quoted-printable give:
 *  - The Liquid source is cut into its static HTML and its Liquid tokens. For a template without
 *    conditions or loops (most newsletters), the stretches come out in source order and the
 *    recipient's rendered HTML is cut at them directly. Otherwise a second template, the
 *    "skeleton", has each static stretch replaced by a marker naming it; rendered per recipient it
 *    gives the order in which static stretches come out and the personalised text between them,
 *    and is a few hundred bytes instead of the whole document.
 *  - The static HTML is read once the way the link tracker reads a document. A link wholly static
 *    is tracked once (its URL known); a link with Liquid in it is tracked per recipient, on the
 *    few bytes of that one tag. The open pixel goes before the last `</body` that comes out.
 *  - This holds only where Liquid cannot change how the tracker reads the document: Liquid tags
 *    (if, for...) only between HTML tags, Liquid outputs only in text, comments, scripts, styles or
 *    quoted attribute values, and outputs that come out escaped (no `<`, `>` or quotes). A template
 *    outside those rules has no skeleton; a recipient whose values break them (a `| raw` output
 *    holding markup) gets the whole document tracked and encoded, as before.
 */
import { randomBytes } from 'node:crypto';
import { Tokenizer, TokenKind, type TagToken } from 'liquidjs';
import { compileTemplate, render, type CompiledTemplate, type RenderData, type RenderedMessage } from './render.ts';
import { escapeAttribute, trackLinks, type TrackedLink, type TrackingOptions } from './tracking.ts';
import { encodeQpPiece } from './qp.ts';

/** Tags that only choose, repeat or compute: they cannot capture or re-read static HTML. */
const SAFE_TAGS = new Set(['if', 'elsif', 'else', 'endif', 'unless', 'endunless', 'case', 'when', 'endcase', 'for', 'endfor', 'break', 'continue', 'assign', 'cycle', 'echo', 'increment', 'decrement', '#']);

/** Tags that choose or repeat: with any of them, which stretches come out depends on the recipient. */
const FLOW_TAGS = new Set(['if', 'elsif', 'else', 'endif', 'unless', 'endunless', 'case', 'when', 'endcase', 'for', 'endfor', 'break', 'continue']);

/** Characters of a Liquid token in the analysed document (private use: refused in the template itself). */
const OUTPUT = '\uE000';
const TAG = '\uE001';
const SLOT = '\uE002';
const PRIVATE = /[\uE000-\uE00F]/;
/** Values that could open or close markup, or end an attribute, if they came out unescaped. */
const UNSAFE_VALUE = /[<>"']/;

type Atom =
  | { kind: 'qp'; buf: Buffer }
  /** A static link the tracker wraps: `before` + href + `after`; `plain` when this recipient's copy is not wrapped, `off` without tracking. */
  | { kind: 'link'; url: string; before: Buffer; after: Buffer; plain: Buffer; off: Buffer }
  /** Static HTML that tracking changes (a `data-envoi-notrack` marker removed). */
  | { kind: 'alt'; on: Buffer; off: Buffer }
  /** A piece of a link with Liquid in it: gathered with the values between, tracked per recipient. */
  | { kind: 'tag'; text: string; open: boolean; close: boolean }
  /** Where the open pixel goes, if this is the last `</body` of the recipient's document. */
  | { kind: 'body' };

export interface HtmlSkeleton {
  readonly compiled: CompiledTemplate;
  readonly skeleton: CompiledTemplate;
  readonly marker: RegExp;
  /** The atoms of each static stretch, by stretch number. */
  readonly statics: readonly (readonly Atom[])[];
  /**
   * For a template without conditions or loops, its stretches and Liquid tokens in order (a
   * stretch number, or null for a token): the recipient's rendered HTML can then be cut at its
   * stretches directly, without rendering the skeleton.
   */
  readonly linear: readonly (number | null)[] | null;
  /** The text of each static stretch. */
  readonly texts: readonly string[];
}

export interface EncodedHtml {
  /** Quoted-printable pieces; their concatenation is the part's body. */
  pieces: Buffer[];
  links: TrackedLink[];
  /** Whether the skeleton made it (false: the whole document was tracked and encoded). */
  spliced: boolean;
  /** How the recipient's stretches were found: in their rendered HTML, or by rendering the skeleton. */
  via?: 'html' | 'skeleton';
}

// ---------------------------------------------------------------------------------------------
// The reading of the static HTML, as src/mail/tracking.ts reads a document

interface Construct {
  start: number;
  end: number;
}

interface Reading {
  /** `<a ...>` start tags, in order; `dynamic` when Liquid outputs are inside. */
  links: (Construct & { dynamic: boolean })[];
}

const isSpace = (c: string | undefined) => c === ' ' || c === '\n' || c === '\t' || c === '\r' || c === '\f';
const isAsciiLetter = (c: string | undefined) => c !== undefined && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'));

/** Returns true when a Liquid token occurs in [from, to): none may, there. */
const hasLiquid = (doc: string, from: number, to: number) => {
  for (let i = from; i < to; i++) if (doc[i] === OUTPUT || doc[i] === TAG) return true;
  return false;
};

/**
 * Reads `doc` (static HTML with one character per Liquid token) like trackLinks does, checking
 * that every Liquid token is where its value cannot change that reading. Null when one is not.
 */
function readDocument(doc: string): Reading | null {
  const links: Reading['links'] = [];
  const n = doc.length;
  const lower = doc.toLowerCase();
  if (lower.length !== n) return null; // positions in the lowercased text must be those of the text
  let i = doc.indexOf('<');
  while (i !== -1 && i < n) {
    if (doc.startsWith('<!--', i)) {
      const close = doc.indexOf('-->', i + 4);
      if (close === -1 || doc.slice(i, close).includes(TAG)) return null;
      i = doc.indexOf('<', close + 3);
      continue;
    }
    const next = doc[i + 1];
    if (next === '!' || next === '?' || next === '/') {
      const close = doc.indexOf('>', i + 2);
      if (close === -1 || hasLiquid(doc, i, close)) return null;
      i = doc.indexOf('<', close + 1);
      continue;
    }
    if (next === OUTPUT || next === TAG) return null; // a value could start a tag name
    if (!isAsciiLetter(next)) {
      i = doc.indexOf('<', i + 1);
      continue;
    }
    let nameEnd = i + 1;
    while (nameEnd < n && !isSpace(doc[nameEnd]) && doc[nameEnd] !== '/' && doc[nameEnd] !== '>') nameEnd++;
    if (hasLiquid(doc, i, nameEnd)) return null;
    const tagName = doc.slice(i + 1, nameEnd).toLowerCase();
    // Attributes, as readAttributes in tracking.ts; Liquid only inside quoted values.
    let j = nameEnd;
    let dynamic = false;
    let end = -1;
    for (;;) {
      while (j < n && (isSpace(doc[j]) || doc[j] === '/')) j++;
      if (j >= n) return null;
      if (doc[j] === '>') {
        end = j + 1;
        break;
      }
      if (doc[j] === OUTPUT || doc[j] === TAG) return null;
      const start = j;
      j++;
      while (j < n && !isSpace(doc[j]) && doc[j] !== '/' && doc[j] !== '>' && doc[j] !== '=') j++;
      if (hasLiquid(doc, start, j)) return null;
      let k = j;
      while (k < n && isSpace(doc[k])) k++;
      if (doc[k] === '=') {
        k++;
        while (k < n && isSpace(doc[k])) k++;
        const quote = doc[k];
        if (quote === '"' || quote === "'") {
          const close = doc.indexOf(quote, k + 1);
          if (close === -1) return null;
          const value = doc.slice(k + 1, close);
          if (value.includes(TAG)) return null;
          if (value.includes(OUTPUT)) dynamic = true;
          j = close + 1;
        } else {
          const valueStart = k;
          while (k < n && !isSpace(doc[k]) && doc[k] !== '>') k++;
          if (hasLiquid(doc, valueStart, k)) return null;
          j = k;
        }
      }
    }
    if (tagName === 'script' || tagName === 'style') {
      const close = lower.indexOf(`</${tagName}`, end);
      if (close === -1 || doc.slice(end, close).includes(TAG)) return null;
      i = close;
      continue;
    }
    if (tagName === 'a') links.push({ start: i, end, dynamic });
    i = doc.indexOf('<', end);
  }
  return { links };
}

// ---------------------------------------------------------------------------------------------
// Building the skeleton of a compiled template

function staticLink(text: string): Atom {
  const off = encodeQpPiece(text);
  const probe = trackLinks(text, { wrap: () => SLOT });
  if (probe.links.length === 1) {
    const [before, after] = probe.html.split(`href="${SLOT}"`) as [string, string];
    const plain = trackLinks(text, { wrap: (u) => u, skip: () => true }).html;
    return { kind: 'link', url: probe.links[0]!.url, before: encodeQpPiece(before), after: encodeQpPiece(after), plain: encodeQpPiece(plain), off };
  }
  return probe.html === text ? { kind: 'qp', buf: off } : { kind: 'alt', on: encodeQpPiece(probe.html), off };
}

async function buildSkeleton(compiled: CompiledTemplate): Promise<HtmlSkeleton | null> {
  const source = compiled.html;
  if (PRIVATE.test(source)) return null;
  let tokens;
  try {
    tokens = new Tokenizer(source).readTopLevelTokens();
  } catch {
    return null;
  }
  // The analysed document, and where each static stretch sits in it.
  let doc = '';
  const stretches: { token: number; from: number; to: number }[] = [];
  const texts: string[] = [];
  let linear: (number | null)[] | null = [];
  for (let t = 0; t < tokens.length; t++) {
    const token = tokens[t]!;
    if (token.kind === TokenKind.HTML) {
      const text = (token as unknown as { getContent(): string }).getContent(); // after whitespace control
      linear?.push(stretches.length);
      stretches.push({ token: t, from: doc.length, to: doc.length + text.length });
      texts.push(text);
      doc += text;
    } else if (token.kind === TokenKind.Tag) {
      const name = (token as TagToken).name;
      if (!SAFE_TAGS.has(name)) return null;
      if (FLOW_TAGS.has(name)) linear = null;
      linear?.push(null);
      doc += TAG;
    } else if (token.kind === TokenKind.Output) {
      linear?.push(null);
      doc += OUTPUT;
    } else return null;
  }
  const reading = readDocument(doc);
  if (!reading) return null;

  // Cuts inside the static stretches: links, pieces of links with Liquid in them, the last `</body` of each.
  const lowerDoc = doc.toLowerCase();
  if (lowerDoc.length !== doc.length) return null; // positions in the lowercased text must be those of the text
  const statics: Atom[][] = [];
  let first = 0; // the first link that does not end before the current stretch
  for (const s of stretches) {
    const atoms: Atom[] = [];
    let text = '';
    const flush = () => {
      if (text) atoms.push({ kind: 'qp', buf: encodeQpPiece(text) });
      text = '';
    };
    const at = lowerDoc.lastIndexOf('</body', s.to - 6);
    const body = at >= s.from && at + 6 <= s.to ? at : -1;
    const plain = (from: number, to: number) => {
      if (body >= from && body < to) {
        text += doc.slice(from, body);
        flush();
        atoms.push({ kind: 'body' });
        text += doc.slice(body, to);
      } else text += doc.slice(from, to);
    };
    while (first < reading.links.length && reading.links[first]!.end <= s.from) first++;
    let p = s.from;
    for (let l = first; l < reading.links.length && reading.links[l]!.start < s.to; l++) {
      const link = reading.links[l]!;
      if (body >= link.start && body < link.end) return null; // a `</body` inside a link tag
      const from = Math.max(link.start, s.from);
      const to = Math.min(link.end, s.to);
      plain(p, from);
      flush();
      if (link.dynamic) atoms.push({ kind: 'tag', text: doc.slice(from, to), open: from === link.start, close: to === link.end });
      else atoms.push(staticLink(doc.slice(link.start, link.end)));
      p = to;
    }
    plain(p, s.to);
    flush();
    statics.push(atoms);
  }

  const nonce = randomBytes(8).toString('hex');
  let skeletonSource = '';
  let k = 0;
  for (const token of tokens) skeletonSource += token.kind === TokenKind.HTML ? `${OUTPUT}${nonce}${k++}${TAG}` : source.slice(token.begin, token.end);
  let skeleton: CompiledTemplate;
  try {
    skeleton = await compileTemplate({ category: compiled.category, language: compiled.language, subject: '-', format: 'html', body: skeletonSource, text: '-', tracking: false });
  } catch {
    return null;
  }
  return { compiled, skeleton, marker: new RegExp(`${OUTPUT}${nonce}(\\d+)${TAG}`, 'g'), statics, linear, texts };
}

const skeletons = new WeakMap<CompiledTemplate, Promise<HtmlSkeleton | null>>();

/** The skeleton of a compiled template (built on first use, once per compiled version); null when it has none. */
export function skeletonOf(compiled: CompiledTemplate): Promise<HtmlSkeleton | null> {
  let s = skeletons.get(compiled);
  if (!s) {
    s = buildSkeleton(compiled).catch(() => null);
    skeletons.set(compiled, s);
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// Per recipient

const pixelHtml = (url: string) =>
  `<img src="${escapeAttribute(url)}" width="1" height="1" alt="" style="display:block;width:1px;height:1px;border:0;margin:0;padding:0;" />`;

/** Splits the skeleton's output into stretch numbers and the values between; null if a value is unsafe. */
function sequence(skel: HtmlSkeleton, out: string): (number | string)[] | null {
  const seq: (number | string)[] = [];
  let last = 0;
  skel.marker.lastIndex = 0;
  for (let m = skel.marker.exec(out); m; m = skel.marker.exec(out)) {
    if (m.index > last) {
      const value = out.slice(last, m.index);
      if (UNSAFE_VALUE.test(value)) return null;
      seq.push(value);
    }
    seq.push(Number(m[1]));
    last = m.index + m[0].length;
  }
  if (last < out.length) {
    const value = out.slice(last);
    if (UNSAFE_VALUE.test(value)) return null;
    seq.push(value);
  }
  return seq;
}

/**
 * The sequence of a template without conditions or loops, cut from the recipient's rendered HTML.
 * Its values hold no `<` (they come out escaped, or this gives up), so a stretch holding a `<` is
 * found at the first `<` after the value before it; a stretch without one is left inside the value
 * around it, which is then encoded per recipient (only when it is plain text, not part of a tag
 * being tracked). Null when the HTML does not cut so, or a value is unsafe: the skeleton decides.
 */
function sequenceFromHtml(skel: HtmlSkeleton, html: string): (number | string)[] | null {
  const items = skel.linear!;
  // slice + === compares with memcmp; startsWith(text, at) goes character by character (12x slower here)
  const isAt = (text: string, at: number) => html.slice(at, at + text.length) === text;
  const seq: (number | string)[] = [];
  let pos = 0;
  let valueFrom = -1; // where the value being read started, -1 when none
  const endValue = (to: number) => {
    if (valueFrom === -1) return true;
    const value = html.slice(valueFrom, to);
    valueFrom = -1;
    if (UNSAFE_VALUE.test(value)) return false;
    if (value) seq.push(value);
    return true;
  };
  for (const k of items) {
    if (k === null) {
      if (valueFrom === -1) valueFrom = pos;
      continue;
    }
    const text = skel.texts[k]!;
    const lt = text.indexOf('<');
    if (valueFrom === -1) {
      if (!isAt(text, pos)) return null;
    } else if (lt === -1) {
      if (!skel.statics[k]!.every((a) => a.kind === 'qp')) return null;
      continue; // part of the value around it
    } else {
      const at = html.indexOf('<', pos) - lt;
      if (at < pos || !isAt(text, at) || !endValue(at)) return null;
      pos = at;
    }
    seq.push(k);
    pos += text.length;
  }
  if (valueFrom !== -1) {
    if (!endValue(html.length)) return null;
  } else if (pos !== html.length) return null;
  return seq;
}

/**
 * The quoted-printable HTML part of one recipient. `rendered` is their `render()` without
 * tracking (its HTML is used when the skeleton cannot be); `data` the same render data.
 */
export function encodeHtml(compiled: CompiledTemplate, skel: HtmlSkeleton | null, data: RenderData, rendered: RenderedMessage, tracking?: TrackingOptions): EncodedHtml {
  const tracked = tracking !== undefined && compiled.tracking;
  const unsubscribe = new Set([...(tracking?.unsubscribeUrls ?? []), ...rendered.unsubscribeUrls]);
  const usable = skel !== null && skel.compiled === compiled;
  let via: EncodedHtml['via'] = 'html';
  let seq = usable && skel.linear ? sequenceFromHtml(skel, rendered.html) : null;
  if (usable && !seq) {
    via = 'skeleton';
    seq = sequence(skel, render(skel.skeleton, data, 'send').html);
  }
  if (!skel || !seq) {
    if (!tracked) return { pieces: [encodeQpPiece(rendered.html)], links: [], spliced: false };
    const t = trackLinks(rendered.html, { ...tracking!, unsubscribeUrls: [...unsubscribe] });
    return { pieces: [encodeQpPiece(t.html)], links: t.links, spliced: false };
  }
  const pixel = tracked && tracking!.openPixelUrl ? tracking!.openPixelUrl : null;
  let lastBody = -1;
  if (pixel) {
    for (let i = seq.length - 1; i >= 0 && lastBody === -1; i--) {
      const x = seq[i]!;
      if (typeof x === 'number' && skel.statics[x]!.some((a) => a.kind === 'body')) lastBody = i;
    }
  }
  const pieces: Buffer[] = [];
  const links: TrackedLink[] = [];
  let tag: string | null = null;
  const trackTag = (text: string) => {
    if (!tracked) return encodeQpPiece(text);
    const base = links.length;
    const t = trackLinks(text, { ...tracking!, openPixelUrl: null, unsubscribeUrls: [...unsubscribe], wrap: (url, i) => tracking!.wrap(url, base + i) });
    for (const l of t.links) links.push({ index: base + l.index, url: l.url });
    return encodeQpPiece(t.html);
  };
  for (let i = 0; i < seq.length; i++) {
    const x = seq[i]!;
    if (typeof x === 'string') {
      if (tag !== null) tag += x;
      else pieces.push(encodeQpPiece(x));
      continue;
    }
    for (const a of skel.statics[x]!) {
      switch (a.kind) {
        case 'qp':
          pieces.push(a.buf);
          break;
        case 'alt':
          pieces.push(tracked ? a.on : a.off);
          break;
        case 'link':
          if (!tracked) pieces.push(a.off);
          else if (unsubscribe.has(a.url) || (tracking!.skip?.(a.url) ?? false)) pieces.push(a.plain);
          else {
            const index = links.length;
            links.push({ index, url: a.url });
            pieces.push(a.before, encodeQpPiece(`href="${escapeAttribute(tracking!.wrap(a.url, index))}"`), a.after);
          }
          break;
        case 'tag':
          tag = a.open ? a.text : (tag ?? '') + a.text;
          if (a.close) {
            pieces.push(trackTag(tag));
            tag = null;
          }
          break;
        case 'body':
          if (i === lastBody) pieces.push(encodeQpPiece(pixelHtml(pixel!)));
          break;
      }
    }
  }
  if (tag !== null) pieces.push(trackTag(tag)); // cannot happen: a tag's pieces come out together
  if (pixel && lastBody === -1) pieces.push(encodeQpPiece(pixelHtml(pixel)));
  return { pieces, links, spliced: true, via };
}
