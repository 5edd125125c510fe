import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { LookupAddress } from 'node:dns';
import { Agent, fetch } from 'undici';
import { describe, expect, it } from 'vitest';
import { ipLiteralOf, isPublicAddress, publicOnlyLookup } from './address-policy.ts';

describe('webhook address policy', () => {
  it('tells public unicast addresses from private, loopback and reserved ones', () => {
    for (const ip of ['8.8.8.8', '1.1.1.1', '172.15.255.255', '172.32.0.1', '100.63.255.255', '2606:4700::1111', '2a00:1450:4007::200e', '::ffff:8.8.8.8']) expect(isPublicAddress(ip), ip).toBe(true);
    for (const ip of ['127.0.0.1', '127.9.9.9', '10.0.0.1', '172.16.0.1', '172.31.255.255', '192.168.0.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '224.0.0.1', '255.255.255.255', '198.18.0.1', '::1', '::', 'fe80::1', 'fd12:3456::1', 'fc00::1', 'ff02::1', '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:a00:1', '64:ff9b::10.0.0.1', '2001:db8::1']) {
      expect(isPublicAddress(ip), ip).toBe(false);
    }
    expect(isPublicAddress('example.com')).toBe(false);
    expect(ipLiteralOf('[::1]')).toBe('::1');
    expect(ipLiteralOf('10.0.0.1')).toBe('10.0.0.1');
    expect(ipLiteralOf('crm.example.com')).toBeNull();
  });

  const resolver = (table: Record<string, LookupAddress[]>) => (host: string, _o: unknown, cb: (e: NodeJS.ErrnoException | null, a: LookupAddress[]) => void) =>
    table[host] ? cb(null, table[host]!) : cb(Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' }), []);

  it('refuses a name when any of its addresses is not public, and passes the others through', async () => {
    const lookup = publicOnlyLookup(
      resolver({
        'crm.example.com': [{ address: '93.184.216.34', family: 4 }],
        'rebound.example.com': [{ address: '93.184.216.34', family: 4 }, { address: '10.0.0.5', family: 4 }],
      }),
    );
    const ask = (host: string, all: boolean) => new Promise<{ err: NodeJS.ErrnoException | null; address: unknown; family?: number }>((r) => lookup(host, { all } as never, (err, address, family) => r({ err, address, family })));
    expect(await ask('crm.example.com', false)).toEqual({ err: null, address: '93.184.216.34', family: 4 });
    expect(await ask('crm.example.com', true)).toMatchObject({ err: null, address: [{ address: '93.184.216.34', family: 4 }] });
    const refused = await ask('rebound.example.com', true);
    expect(refused.err).toMatchObject({ code: 'ENVOI_PRIVATE_ADDRESS' });
    expect(refused.err!.message).toContain('rebound.example.com resolves to 10.0.0.5');
    expect((await ask('missing.example.com', false)).err).toMatchObject({ code: 'ENOTFOUND' });
  });

  it('stops a real connection to a name that resolves to this machine', async () => {
    const server = createServer((_req, res) => res.end('reached'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const guarded = new Agent({ connect: { lookup: publicOnlyLookup() } });
    const open = new Agent();
    try {
      const err = await fetch(`http://localhost:${port}/`, { dispatcher: guarded }).then(
        () => null,
        (e: { cause?: { code?: string } }) => e,
      );
      expect(err?.cause).toMatchObject({ code: 'ENVOI_PRIVATE_ADDRESS' });
      // the same request without the policy gets through: the refusal is the policy's, not the network's
      expect(await (await fetch(`http://localhost:${port}/`, { dispatcher: open })).text()).toBe('reached');
    } finally {
      await guarded.close();
      await open.close();
      server.close();
    }
  });
});
