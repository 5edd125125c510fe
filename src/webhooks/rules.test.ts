import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  afterFailure,
  checkEndpointUrl,
  classify,
  normaliseSubscription,
  requestBody,
  requestHeaders,
  retryDelayMs,
  RETRY_WINDOW_MS,
  signatureHeader,
  verifySignature,
} from './rules.ts';

describe('endpoint URLs', () => {
  it('accepts https anywhere and, where the instance allows private networks, http on this machine only', () => {
    expect(checkEndpointUrl('https://crm.example.com/hooks/envoi?x=1')).toEqual({ ok: true, url: 'https://crm.example.com/hooks/envoi?x=1' });
    expect(checkEndpointUrl('  https://EXAMPLE.com  ')).toEqual({ ok: true, url: 'https://example.com/' });
    expect(checkEndpointUrl('https://example.com:8443/a')).toMatchObject({ ok: true });
    for (const u of ['http://localhost:3000/h', 'http://127.0.0.1:49152/', 'http://[::1]:8080/x', 'http://LOCALHOST/', 'http://localhost.:3000/h']) expect(checkEndpointUrl(u, true)).toMatchObject({ ok: true });
    expect(checkEndpointUrl('https://crm.example.com./hooks')).toEqual({ ok: true, url: 'https://crm.example.com./hooks' });
  });

  it('refuses private, loopback and reserved hosts by default', () => {
    for (const u of ['http://localhost:3000/h', 'http://127.0.0.1:49152/', 'http://[::1]:8080/x', 'https://10.1.2.3/', 'https://172.20.0.1/', 'https://192.168.1.1/', 'https://169.254.169.254/', 'https://100.64.0.1/', 'https://0.0.0.0/', 'https://[fe80::1]/', 'https://[::ffff:10.0.0.1]/', 'https://[::ffff:a00:1]/', 'https://2130706433/', 'https://0x7f.1/', 'https://app.localhost/', 'https://localhost./x', 'https://LOCALHOST../x', 'https://app.localhost./', 'https://127.0.0.1./', 'http://localhost.:3000/h']) {
      const r = checkEndpointUrl(u);
      expect(r, u).toMatchObject({ ok: false });
      expect(!r.ok && r.reason, u).toContain('ENVOI_WEBHOOK_PRIVATE_NETWORKS=allow');
    }
    for (const u of ['https://8.8.8.8/h', 'https://[2606:4700::1111]/h', 'https://crm.example.com/']) expect(checkEndpointUrl(u), u).toMatchObject({ ok: true });
  });

  it('refuses what is not https, carries credentials, or cannot be reached', () => {
    const reason = (u: string) => {
      const r = checkEndpointUrl(u, true);
      if (r.ok) throw new Error(`${u} was accepted`);
      return r.reason;
    };
    expect(reason('http://example.com/hook')).toMatch(/https/);
    expect(reason('http://127.0.0.2/hook')).toMatch(/https/);
    expect(reason('http://localhost.example.com/')).toMatch(/https/);
    expect(reason('ftp://example.com/')).toMatch(/not ftp/);
    expect(reason('javascript:alert(1)')).toMatch(/https/);
    expect(reason('file:///etc/passwd')).toMatch(/https/);
    expect(reason('https://user:pass@example.com/')).toMatch(/password/);
    expect(reason('https://token@example.com/')).toMatch(/user name/);
    expect(reason('https://example.com/#frag')).toMatch(/fragment/);
    expect(reason('/relative/path')).toMatch(/absolute/);
    expect(reason('')).toMatch(/empty/);
    expect(reason(`https://example.com/${'a'.repeat(2100)}`)).toMatch(/longer/);
  });
});

describe('subscriptions', () => {
  it('keeps known types once, in a stable order, and "*" alone', () => {
    expect(normaliseSubscription(['message.opened', 'contact.created', 'message.opened'])).toEqual({ ok: true, types: ['contact.created', 'message.opened'] });
    expect(normaliseSubscription(['contact.created', '*'])).toEqual({ ok: true, types: ['*'] });
    expect(normaliseSubscription(['contact.exploded'])).toMatchObject({ ok: false, reason: expect.stringContaining('contact.exploded') });
    expect(normaliseSubscription(['ping'])).toMatchObject({ ok: false });
    expect(normaliseSubscription([])).toMatchObject({ ok: false });
  });
});

describe('signatures', () => {
  const secret = 'whsec_test';
  const body = '{"id":"e1","type":"ping"}';

  it('is the hex HMAC-SHA256 of "<timestamp>.<body>", as a receiver recomputes it', () => {
    const expected = createHmac('sha256', secret).update(`1700000000.${body}`).digest('hex');
    expect(signatureHeader(secret, 1_700_000_000, body)).toBe(`v1=${expected}`);
    const h = requestHeaders({ secret, type: 'ping', deliveryId: 'd1', body, now: new Date(1_700_000_000_500) });
    expect(h).toMatchObject({ 'content-type': 'application/json', 'x-envoi-event': 'ping', 'x-envoi-delivery': 'd1', 'x-envoi-timestamp': '1700000000', 'x-envoi-signature': `v1=${expected}` });
  });

  it('verifies a genuine request and refuses altered, stale or foreign ones', () => {
    const sig = signatureHeader(secret, 1_700_000_000, body);
    const ok = (s: string | undefined, ts: string | undefined, b = body, now = 1_700_000_010, key = secret) => verifySignature(key, { signature: s, timestamp: ts }, b, now).ok;
    expect(ok(sig, '1700000000')).toBe(true);
    expect(ok(`v1=${'0'.repeat(64)}, ${sig}`, '1700000000')).toBe(true);
    expect(ok(sig, '1700000000', body.replace('ping', 'pong'))).toBe(false);
    expect(ok(sig, '1700000001')).toBe(false);
    expect(ok(sig, '1700000000', body, 1_700_000_000 + 301)).toBe(false);
    expect(ok(sig, '1700000000', body, 1_700_000_010, 'whsec_other')).toBe(false);
    expect(ok(undefined, '1700000000')).toBe(false);
    expect(ok(sig, 'soon')).toBe(false);
    expect(ok('v1=zz', '1700000000')).toBe(false);
  });

  it('sends the same body bytes on every attempt', () => {
    const e = { id: 'e1', type: 'contact.created', occurred_at: new Date('2026-01-02T03:04:05Z'), org_id: 'o1', payload: { contact_id: 'c1' } };
    expect(requestBody(e)).toBe(requestBody({ ...e }));
    expect(JSON.parse(requestBody(e))).toEqual({ id: 'e1', type: 'contact.created', occurred_at: '2026-01-02T03:04:05.000Z', organisation_id: 'o1', data: { contact_id: 'c1' } });
  });
});

describe('retries', () => {
  it('backs off exponentially from 30 s to a 2 h ceiling, with ±20% jitter', () => {
    expect(retryDelayMs(1, 0.5)).toBe(30_000);
    expect(retryDelayMs(2, 0.5)).toBe(60_000);
    expect(retryDelayMs(3, 0.5)).toBe(120_000);
    expect(retryDelayMs(9, 0.5)).toBe(7_200_000);
    expect(retryDelayMs(500, 0.5)).toBe(7_200_000);
    expect(retryDelayMs(1, 0)).toBe(24_000);
    expect(retryDelayMs(1, 0.999999)).toBeCloseTo(36_000, -1);
    expect(retryDelayMs(0, 0.5)).toBe(30_000);
  });

  it('never waits less than the previous base nor more than the ceiling plus jitter', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1000 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (n, r) => {
        const d = retryDelayMs(n, r);
        const base = Math.min(7_200_000, 30_000 * 2 ** Math.min(n - 1, 30));
        return d >= base * 0.8 - 1 && d <= base * 1.2 + 1 && d <= 8_640_000;
      }),
    );
  });

  it('retries within 24 hours, makes a last attempt at the end, then gives up', () => {
    const start = new Date('2026-03-01T00:00:00Z');
    const until = new Date(start.getTime() + RETRY_WINDOW_MS);
    const first = afterFailure({ attempt: 1, now: start, retryUntil: until, random: 0.5 });
    expect(first).toEqual({ retry: true, at: new Date(start.getTime() + 30_000) });
    const late = new Date(until.getTime() - 60_000);
    expect(afterFailure({ attempt: 20, now: late, retryUntil: until, random: 0.5 })).toEqual({ retry: true, at: until });
    expect(afterFailure({ attempt: 21, now: until, retryUntil: until, random: 0.5 })).toMatchObject({ retry: false, why: expect.stringContaining('21 attempts') });
  });

  it('a whole series stays within the window and takes a sensible number of attempts', () => {
    const start = new Date('2026-03-01T00:00:00Z');
    const until = new Date(start.getTime() + RETRY_WINDOW_MS);
    let now = start;
    let attempts = 1;
    for (;;) {
      const next = afterFailure({ attempt: attempts, now, retryUntil: until, random: 0.5 });
      if (!next.retry) break;
      expect(next.at.getTime()).toBeGreaterThan(now.getTime());
      expect(next.at.getTime()).toBeLessThanOrEqual(until.getTime());
      now = next.at;
      attempts++;
    }
    expect(now).toEqual(until);
    expect(attempts).toBeGreaterThan(15);
    expect(attempts).toBeLessThan(30);
  });
});

describe('outcomes', () => {
  it('counts 2xx as delivered and everything else as a failure, redirects included', () => {
    expect(classify({ kind: 'response', status: 200 })).toEqual({ delivered: true });
    expect(classify({ kind: 'response', status: 204 })).toEqual({ delivered: true });
    expect(classify({ kind: 'response', status: 500 })).toEqual({ delivered: false, error: 'HTTP 500' });
    expect(classify({ kind: 'response', status: 410 })).toEqual({ delivered: false, error: 'HTTP 410' });
    expect(classify({ kind: 'response', status: 301, location: 'https://elsewhere.example/' })).toMatchObject({ delivered: false, error: expect.stringMatching(/redirect to https:\/\/elsewhere.example\/ not followed/) });
    expect(classify({ kind: 'error', error: 'timed out after 10 s' })).toEqual({ delivered: false, error: 'timed out after 10 s' });
  });
});
