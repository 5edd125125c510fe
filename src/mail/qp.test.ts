import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { simpleParser } from 'mailparser';
import { encodeQpPiece } from './qp.ts';

/** A one-part message around encoded pieces, read back by mailparser (the decoder is not ours). */
async function decoded(pieces: Buffer[]): Promise<string> {
  const head = 'From: a@example.org\r\nTo: b@example.org\r\nSubject: qp\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n';
  const parsed = await simpleParser(Buffer.concat([Buffer.from(head), ...pieces]));
  return parsed.text ?? '';
}

/** What a text part can carry: line ends are CRLF in MIME, whatever they were. */
const canonical = (s: string) => s.replace(/\r\n|\r|\n/g, '\n').replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');

const lines = (b: Buffer) => b.toString('latin1').split('\r\n');

describe('quoted-printable pieces', () => {
  it('decode to their text, joined in any cut, with mailparser', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.string({ unit: 'binary', maxLength: 120 }), { minLength: 1, maxLength: 5 }), async (parts) => {
        const text = parts.join('');
        // mailparser may drop one final line end of a text part: compared without it
        expect(canonical(await decoded(parts.map(encodeQpPiece))).replace(/\n$/, '')).toBe(canonical(text).replace(/\n$/, ''));
      }),
      { numRuns: 60 },
    );
  }, 60_000);

  it('keeps lines within 76 characters, ends them with CRLF only, never starts one with a dot, never ends one with a space', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 600 }), (text) => {
        const out = encodeQpPiece(text);
        const s = out.toString('latin1');
        expect(/\r(?!\n)|(?<!\r)\n/.test(s)).toBe(false);
        expect(/[^\x20-\x7e\r\n\t]/.test(s)).toBe(false);
        for (const line of lines(out)) {
          expect(line.length).toBeLessThanOrEqual(76);
          expect(line.startsWith('.')).toBe(false);
          expect(/[ \t]$/.test(line)).toBe(false);
        }
        // a piece ends on a line end, so that the next one starts a line
        expect(s === '' || s.endsWith('\r\n')).toBe(true);
      }),
      { numRuns: 300 },
    );
  }, 60_000);

  it('keeps the bytes of one character on one line, and writes ASCII as it is', () => {
    const out = encodeQpPiece(`${'x'.repeat(70)}é😀 plain words. = end`).toString('latin1');
    expect(out).toBe(`${'x'.repeat(70)}=\r\n=C3=A9=F0=9F=98=80 plain words. =3D end=\r\n`);
    expect(encodeQpPiece('line one  \n.dot first\r\nlast\n').toString('latin1')).toBe('line one =20\r\n=2Edot first\r\nlast\r\n');
  });
});

// The encoder as it was, one character at a time: the faster one must give the same bytes.
const MAX_LINE = 76;
const CR = 13;
const LF = 10;
const DOT = 46;
const EQ = 61;
const SPACE = 32;
const TAB = 9;
const HEX_CODES = Uint8Array.from('0123456789ABCDEF', (c) => c.charCodeAt(0));

function referenceQp(text: string): Buffer {
  const n = text.length;
  // Worst case per UTF-16 unit: 3 bytes of UTF-8 as =XX (9 characters), plus soft breaks.
  const out = Buffer.alloc(n * 10 + 8);
  let pos = 0;
  let col = 0; // characters on the current output line
  // The inner steps are inlined: a closure per call costs more than the loop for short pieces.
  for (let i = 0; i < n; i++) {
    let c = text.charCodeAt(i);
    if (c === CR || c === LF) {
      if (c === CR && text.charCodeAt(i + 1) === LF) i++;
      out[pos++] = CR;
      out[pos++] = LF;
      col = 0;
      continue;
    }
    if (c < 128) {
      let literal = (c >= 33 && c <= 126 && c !== EQ) || c === SPACE || c === TAB;
      // Whitespace that would end a line is encoded: transports may strip it.
      if (literal && (c === SPACE || c === TAB)) {
        const next = text.charCodeAt(i + 1);
        if (next === CR || next === LF) literal = false;
      }
      const width = literal ? 1 : 3;
      // keep room for a soft break's `=`
      if (col + width > MAX_LINE - 1) {
        out[pos++] = EQ;
        out[pos++] = CR;
        out[pos++] = LF;
        col = 0;
      }
      if (literal && !(c === DOT && col === 0)) {
        out[pos++] = c;
        col++;
      } else {
        if (col + 3 > MAX_LINE - 1) {
          out[pos++] = EQ;
          out[pos++] = CR;
          out[pos++] = LF;
          col = 0;
        }
        out[pos++] = EQ;
        out[pos++] = HEX_CODES[c >> 4]!;
        out[pos++] = HEX_CODES[c & 15]!;
        col += 3;
      }
      continue;
    }
    // UTF-8 bytes of one character stay on one line (some readers decode line by line).
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < n) {
      const low = text.charCodeAt(i + 1);
      if (low >= 0xdc00 && low <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (low - 0xdc00);
        i++;
      } else c = 0xfffd;
    } else if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd; // a lone surrogate is not text
    const bytes = c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
    if (col + 3 * bytes > MAX_LINE - 1) {
      out[pos++] = EQ;
      out[pos++] = CR;
      out[pos++] = LF;
      col = 0;
    }
    for (let b = bytes - 1; b >= 0; b--) {
      const byte = b === bytes - 1 ? (bytes === 2 ? 0xc0 : bytes === 3 ? 0xe0 : 0xf0) | (c >> (6 * b)) : 0x80 | ((c >> (6 * b)) & 63);
      out[pos++] = EQ;
      out[pos++] = HEX_CODES[byte >> 4]!;
      out[pos++] = HEX_CODES[byte & 15]!;
    }
    col += 3 * bytes;
  }
  if (col > 0) {
    out[pos++] = EQ;
    out[pos++] = CR;
    out[pos++] = LF;
  }
  return Buffer.from(out.subarray(0, pos));
}

describe('encodeQpPiece, the fast path for plain runs', () => {
  it('gives the bytes of the character-by-character encoder', () => {
    const piece = fc.oneof(
      fc.string(),
      fc.string({ unit: 'binary' }),
      fc.stringMatching(/^[ .a-z=\t\r\n]{0,300}$/),
      fc.constantFrom(' \r\n', '.', '. ', ' ', '\r', '\n.', 'x'.repeat(74) + '.', 'x'.repeat(75) + ' \n', 'é'.repeat(40)),
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 12 }), (parts) => {
        const text = parts.join('');
        // short pieces go one character at a time; from 128 characters on, plain runs are copied
        for (const t of [text, `${text}${' '.repeat(128)}${text}`, text.padStart(128, 'x')]) expect(encodeQpPiece(t).toString('latin1')).toBe(referenceQp(t).toString('latin1'));
      }),
      { numRuns: 2000 },
    );
  });
});
