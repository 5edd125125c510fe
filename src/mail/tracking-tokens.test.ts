import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { clickToken, openToken, trackingFor, verifyClickToken, verifyOpenToken } from './tracking-tokens.ts';

const SECRET = 'a-secret-of-at-least-thirty-two-characters';
const ID = '2f0c9a52-6f3e-4a55-9d3c-1b2a3c4d5e6f';

describe('click tokens', () => {
  it('round-trips any http(s) destination', () => {
    fc.assert(
      fc.property(fc.webUrl({ withQueryParameters: true, withFragments: true }), fc.integer({ min: 0, max: 9999 }), (url, index) => {
        expect(verifyClickToken(SECRET, clickToken(SECRET, ID, index, url))).toEqual({ deliveryId: ID, index, url });
      }),
    );
  });

  it('refuses a token whose destination, position or delivery was changed', () => {
    const token = clickToken(SECRET, ID, 2, 'https://example.com/agenda');
    const [id, idx, , mac] = token.split('.');
    const evil = Buffer.from('https://evil.example/phish').toString('base64url');
    expect(verifyClickToken(SECRET, `${id}.${idx}.${evil}.${mac}`)).toBeNull();
    expect(verifyClickToken(SECRET, token.replace('.2.', '.3.'))).toBeNull();
    expect(verifyClickToken(SECRET, token.replace(ID, '2f0c9a52-6f3e-4a55-9d3c-1b2a3c4d5e60'))).toBeNull();
    expect(verifyClickToken('another-secret-of-thirty-two-characters!!', token)).toBeNull();
  });

  it('accepts only the spelling it wrote: no other index digits, no other base64url of the same destination', () => {
    // 26 bytes: the last base64url character carries 2 unused bits, so 4 characters decode alike.
    const url = 'https://example.com/agenda';
    const token = clickToken(SECRET, ID, 2, url);
    const [id, , encoded, mac] = token.split('.') as [string, string, string, string];
    const alike = encoded.slice(0, -1) + String.fromCharCode(encoded.charCodeAt(encoded.length - 1) + 1);
    expect(Buffer.from(alike, 'base64url').toString()).toBe(url);
    expect(verifyClickToken(SECRET, `${id}.2.${alike}.${mac}`)).toBeNull();
    expect(verifyClickToken(SECRET, `${id}.02.${encoded}.${mac}`)).toBeNull();
    // Every one-character change of the genuine token is refused.
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.';
    for (let i = 0; i < token.length; i++)
      for (const c of alphabet) {
        const forged = token.slice(0, i) + c + token.slice(i + 1);
        if (forged !== token) expect(verifyClickToken(SECRET, forged), forged).toBeNull();
      }
  });

  it('refuses garbage without throwing', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        expect(verifyClickToken(SECRET, s)).toBeNull();
      }),
    );
    expect(verifyClickToken(SECRET, '')).toBeNull();
    expect(verifyClickToken(SECRET, 'a.b.c.d')).toBeNull();
  });

  it('never redirects to a non-http scheme even when signed', () => {
    expect(verifyClickToken(SECRET, clickToken(SECRET, ID, 0, 'javascript:alert(1)'))).toBeNull();
  });
});

describe('open tokens', () => {
  it('round-trips, with or without the .gif suffix, and refuses forgeries', () => {
    const t = openToken(SECRET, ID);
    expect(verifyOpenToken(SECRET, t)).toBe(ID);
    expect(verifyOpenToken(SECRET, `${t}.gif`)).toBe(ID);
    expect(verifyOpenToken(SECRET, `${ID}.AAAAAAAAAAAAAAAAAAAAAA`)).toBeNull();
    expect(verifyOpenToken(SECRET, 'nonsense')).toBeNull();
  });
});

describe('trackingFor', () => {
  it('wraps through /c/ and leaves our own links and very long ones alone', () => {
    const t = trackingFor('https://mail.example.org/', SECRET, ID);
    expect(t.wrap('https://example.com', 0)).toMatch(/^https:\/\/mail\.example\.org\/c\//);
    expect(t.openPixelUrl).toMatch(/^https:\/\/mail\.example\.org\/o\/.+\.gif$/);
    expect(t.skip('https://mail.example.org/u/abc')).toBe(true);
    expect(t.skip(`https://example.com/${'x'.repeat(5000)}`)).toBe(true);
    expect(t.skip('https://example.com/agenda')).toBe(false);
  });
});

describe('signPayload', () => {
  it('is the HMAC of platform sign(), whichever secret came before', async () => {
    const { sign } = await import('../platform/secrets.ts');
    const { signPayload } = await import('./tracking-tokens.ts');
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom(SECRET, 'other-secret-ünï', ''), fc.string()), { minLength: 1, maxLength: 6 }), (calls) => {
        for (const [secret, payload] of calls) expect(signPayload(secret, payload)).toBe(sign(secret, payload));
      }),
    );
  });
});
