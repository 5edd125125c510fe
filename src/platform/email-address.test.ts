import { describe, expect, it } from 'vitest';
import { checkEmail } from './email-address.ts';

describe('checkEmail', () => {
  it.each([
    ['ada@example.com', 'ada@example.com', 'ada@example.com'],
    ['  Ada.Lovelace@Example.COM ', 'Ada.Lovelace@example.com', 'ada.lovelace@example.com'],
    ['first+tag@sub.example.co.uk', 'first+tag@sub.example.co.uk', 'first+tag@sub.example.co.uk'],
    ['"john doe"@example.org', '"john doe"@example.org', '"john doe"@example.org'],
    ['josé@exemple.fr', 'josé@exemple.fr', 'josé@exemple.fr'],
    ['user@bücher.de', 'user@bücher.de', 'user@xn--bcher-kva.de'],
    ["o'brien@example.ie", "o'brien@example.ie", "o'brien@example.ie"],
  ])('accepts %s', (input, email, lower) => {
    expect(checkEmail(input)).toEqual({ ok: true, email, lower });
  });

  it.each([
    [''],
    ['plainaddress'],
    ['@example.com'],
    ['user@'],
    ['user@localhost'],
    ['user@@example.com'],
    ['user name@example.com'],
    ['user..dots@example.com'],
    ['.user@example.com'],
    ['user@-example.com'],
    ['user@example..com'],
    ['user@example.c'],
    ['user@example.123'],
    ['user@[127.0.0.1]'],
    ['user@example.com\r\nBcc: victim@example.com'],
    ['a'.repeat(65) + '@example.com'],
    ['user@' + 'a'.repeat(250) + '.com'],
  ])('refuses %j with a reason', (input) => {
    const r = checkEmail(input);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason.length).toBeGreaterThan(5);
  });

  it('refuses non-strings', () => {
    expect(checkEmail(42).ok).toBe(false);
    expect(checkEmail(null).ok).toBe(false);
  });

  it('compares case-insensitively through the lower key', () => {
    const a = checkEmail('ADA@EXAMPLE.COM');
    const b = checkEmail('ada@example.com');
    expect(a.ok && b.ok && a.lower === b.lower).toBe(true);
  });
});
