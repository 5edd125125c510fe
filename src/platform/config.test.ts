import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.ts';

describe('configuration', () => {
  it('believes no proxy header unless told which peers are proxies', () => {
    expect(loadConfig({}).trustProxy).toBe(false);
    expect(loadConfig({ ENVOI_TRUST_PROXY: 'false' }).trustProxy).toBe(false);
    expect(loadConfig({ ENVOI_TRUST_PROXY: 'true' }).trustProxy).toBe(true);
    expect(loadConfig({ ENVOI_TRUST_PROXY: '10.0.0.0/8, 127.0.0.1,::1, fd00::/8,loopback' }).trustProxy).toBe('10.0.0.0/8, 127.0.0.1,::1, fd00::/8,loopback');
    for (const bad of ['10.0.0.0/33', 'proxy.example.com', '10.0.0.1/8/1', '::1/129', 'yes please', '2']) {
      expect(() => loadConfig({ ENVOI_TRUST_PROXY: bad }), bad).toThrow(ConfigError);
    }
    expect(() => loadConfig({ ENVOI_TRUST_PROXY: '127.0.0.1,nope' })).toThrow(/ENVOI_TRUST_PROXY .*"nope"/);
  });

  it('sends webhooks to public addresses only unless allowed', () => {
    expect(loadConfig({}).webhookPrivateNetworks).toBe(false);
    expect(loadConfig({ ENVOI_WEBHOOK_PRIVATE_NETWORKS: 'allow' }).webhookPrivateNetworks).toBe(true);
    expect(loadConfig({ ENVOI_WEBHOOK_PRIVATE_NETWORKS: 'deny' }).webhookPrivateNetworks).toBe(false);
    expect(() => loadConfig({ ENVOI_WEBHOOK_PRIVATE_NETWORKS: 'sometimes' })).toThrow(/allow or deny/);
  });

  it('lets account tokens go only to the listed origins', () => {
    expect(loadConfig({}).accountPageOrigins).toEqual([]);
    expect(loadConfig({ ENVOI_ACCOUNT_PAGE_ORIGINS: 'https://site.example, https://shop.example:8443/' }).accountPageOrigins).toEqual(['https://site.example', 'https://shop.example:8443']);
    for (const bad of ['site.example', 'https://site.example/account', 'ftp://site.example', 'https://']) {
      expect(() => loadConfig({ ENVOI_ACCOUNT_PAGE_ORIGINS: bad }), bad).toThrow(/ENVOI_ACCOUNT_PAGE_ORIGINS/);
    }
  });
});
