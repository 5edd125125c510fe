import { describe, expect, it } from 'vitest';
import { csvText, utf16Decoder, utf16Of } from './csv-encoding.ts';

const le = (s: string) => Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(s, 'utf16le')]);
const be = (s: string) => Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from(s, 'utf16le').swap16()]);

describe('csv encoding', () => {
  it('tells UTF-16 by its byte order mark', () => {
    expect(utf16Of(le('email'))).toBe('utf-16le');
    expect(utf16Of(be('email'))).toBe('utf-16be');
    expect(utf16Of(Buffer.from('\uFEFFemail'))).toBeNull();
    expect(utf16Of(Buffer.from('email'))).toBeNull();
    expect(utf16Of(Buffer.from([0xff]))).toBeNull();
  });

  it('decodes UTF-16 chunk by chunk, a unit cut in two joined, the mark dropped', () => {
    const bytes = le('email\tPrénom\r\nx@example.com\tZoë 😀\r\n');
    const d = utf16Decoder('utf-16le');
    let text = '';
    for (let i = 0; i < bytes.length; i += 3) text += d.write(bytes.subarray(i, i + 3));
    expect(text + d.end()).toBe('email\tPrénom\r\nx@example.com\tZoë 😀\r\n');
  });

  it('reads a whole file as UTF-8 or UTF-16, and refuses anything else', () => {
    expect(csvText(Buffer.from('email\nhélène@example.com\n'))).toBe('email\nhélène@example.com\n');
    expect(csvText(be('email\nzoë@example.com\n'))).toBe('email\nzoë@example.com\n');
    expect(() => csvText(Buffer.from('email\nd\xe9j\xe0\n', 'latin1'))).toThrow('the file is not UTF-8: save it as "CSV UTF-8" and try again');
    expect(() => csvText(Buffer.concat([le('email\n'), Buffer.from([0x00, 0xd8])]))).toThrow(/not valid UTF-16/);
  });
});
