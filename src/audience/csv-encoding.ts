/*
 * The text encoding of an uploaded CSV file. UTF-8 is what every import expects; a UTF-16 file (with
 * its byte order mark, as Excel's "Unicode text" saves it) is decoded to text; anything else that is
 * not UTF-8 is refused with one message, the same for every import.
 */
import { badRequest } from '../platform/errors.ts';

export type Utf16 = 'utf-16le' | 'utf-16be';

export const NOT_UTF8_MESSAGE = 'the file is not UTF-8: save it as "CSV UTF-8" and try again';

/** UTF-16 as its byte order mark says (FF FE little-endian, FE FF big-endian), or null. */
export function utf16Of(head: Uint8Array): Utf16 | null {
  if (head.length < 2) return null;
  if (head[0] === 0xff && head[1] === 0xfe) return 'utf-16le';
  if (head[0] === 0xfe && head[1] === 0xff) return 'utf-16be';
  return null;
}

/**
 * A streaming decoder for UTF-16 chunks, the byte order mark dropped; a unit cut between two chunks is
 * joined, and a broken one (a lone surrogate, an odd last byte) becomes U+FFFD, which the imports refuse
 * as they refuse bad UTF-8.
 */
export function utf16Decoder(encoding: Utf16): { write(chunk: Uint8Array): string; end(): string } {
  const decoder = new TextDecoder(encoding);
  return { write: (chunk) => decoder.decode(chunk, { stream: true }), end: () => decoder.decode() };
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** A whole file as text: UTF-8 (a leading byte order mark dropped) or UTF-16 with its mark; otherwise a 400 `not_utf8`. */
export function csvText(file: Uint8Array): string {
  const utf16 = utf16Of(file);
  try {
    return (utf16 ? new TextDecoder(utf16, { fatal: true }) : UTF8).decode(file);
  } catch {
    throw badRequest('not_utf8', utf16 ? 'the file says it is UTF-16 but is not valid UTF-16: save it as "CSV UTF-8" and try again' : NOT_UTF8_MESSAGE);
  }
}
