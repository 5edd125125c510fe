/**
 * Quoted-printable (RFC 2045 §6.7) in pieces that can be encoded apart and joined as bytes.
 *
 * nodemailer's encoder works on a whole body; a message spliced from a skeleton needs its static
 * parts encoded once per template version and only the personalised parts per recipient. That
 * works when every piece ends on a line boundary: each piece here ends with a soft line break
 * (`=` CRLF, which decodes to nothing) unless it ends with a line break of its own, so the
 * concatenation of encoded pieces decodes to the concatenation of their texts, whatever cut them.
 *
 * Also, so that the result can go into SMTP DATA as it is: lines are at most 76 characters, only
 * CRLF ends a line (bare CR and LF in the text become line breaks), and a line never starts with
 * `.` (written `=2E`), so no dot-stuffing is needed.
 */

const MAX_LINE = 76;
const HEX = '0123456789ABCDEF';
const CR = 13;
const LF = 10;
const DOT = 46;
const EQ = 61;
const SPACE = 32;
const TAB = 9;

// One scratch buffer, grown as needed: the encoder runs per recipient for every personalised piece.
let scratch = Buffer.allocUnsafe(64 * 1024);
const HEX_CODES = Uint8Array.from(HEX, (c) => c.charCodeAt(0));
/** The first character that is not printable ASCII (other than `=`) or a space. */
const LITERAL_RUN = /[^\x20-\x3c\x3e-\x7e]/g;

/** Encoded pieces are ASCII: written into one Buffer as latin1. */
export function encodeQpPiece(text: string): Buffer {
  return Buffer.from(encodeQpView(text));
}

/**
 * The same bytes as encodeQpPiece, as a view of the encoder's scratch buffer: valid only until the
 * next call. For a caller that copies them at once into a larger buffer (the message), which saves
 * allocating and copying a body-sized Buffer per message.
 */
export function encodeQpView(text: string): Buffer {
  const n = text.length;
  // Worst case per UTF-16 unit: 3 bytes of UTF-8 as =XX (9 characters), plus soft breaks.
  if (scratch.length < n * 10 + 8) scratch = Buffer.allocUnsafe(n * 10 + 8);
  const out = scratch;
  let pos = 0;
  let col = 0; // characters on the current output line
  const long = n >= 128;
  // The inner steps are inlined: a closure per call costs more than the loop for short pieces.
  for (let i = 0; i < n; i++) {
    // Most of a body is runs of printable ASCII and spaces, written as they are: found by a regular
    // expression and copied natively a line's room at a time (a loop per character costs ~3x more).
    // What the run leaves (a space before a line end, a dot starting a line) takes the general path
    // below, which gives the same bytes for the rest.
    // Short pieces (the values spliced per recipient) are cheaper one character at a time.
    let end = i;
    if (long) {
      LITERAL_RUN.lastIndex = i;
      const stop = LITERAL_RUN.exec(text);
      end = stop ? stop.index : n;
    }
    if (end > i && text.charCodeAt(end - 1) === SPACE) {
      const next = text.charCodeAt(end);
      if (next === CR || next === LF) end--;
    }
    while (i < end) {
      if (col >= MAX_LINE - 1) {
        out[pos++] = EQ;
        out[pos++] = CR;
        out[pos++] = LF;
        col = 0;
      }
      if (col === 0 && text.charCodeAt(i) === DOT) break;
      const take = Math.min(end - i, MAX_LINE - 1 - col);
      pos += out.write(text.slice(i, i + take), pos, 'latin1');
      col += take;
      i += take;
    }
    if (i >= n) break;
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
  return out.subarray(0, pos);
}
