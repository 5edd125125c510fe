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
