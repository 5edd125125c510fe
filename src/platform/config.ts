import { readFileSync, existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { isIP } from 'node:net';

export interface Config {
  /** PostgreSQL server URL; absent means the embedded PGlite database in `dataDir`. */
  databaseUrl: string | null;
  dataDir: string;
  host: string;
  port: number;
  /** Public base URL used in links sent by email (tracking, unsubscribe, confirmation). */
  publicUrl: string;
  /** Secret for signed links; generated and kept in the data dir when not given. */
  secret: string | null;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  lockout: { maxFailedAttempts: number; lockMinutes: number };
  resetTokenMinutes: number;
  /** Lets anyone create an organisation through the API (a shared server); otherwise only the first. */
  allowSignup: boolean;
  /**
   * Which peers' X-Forwarded-For / -Proto / -Host headers are believed (fastify's trustProxy): false (none,
   * the default: the socket's address is the client's), true (any peer), or a list of addresses and CIDR
   * ranges. The client address goes into consent proofs, so a forged header must not. No hop count: it
   * cannot tell a proxy from a client that sends the header itself (fastify refuses it too).
   */
  trustProxy: boolean | string;
  /** Whether webhooks may go to private, loopback and reserved addresses (a receiver beside envoi); otherwise public addresses only. */
  webhookPrivateNetworks: boolean;
  /**
   * Origins (https://site.example) whose pages may take account tokens: the `page_url` of the account
   * API must be on one of them, or a holder of an editor key could have reset links sent to a server
   * of theirs. Empty: the account emails link to envoi's own pages only.
   */
  accountPageOrigins: string[];
  /** Bearer token GET /metrics requires; null: /metrics is open to whoever reaches the server. */
  metricsToken: string | null;
  /** SMTP relay (`smtp://user:pass@host:port`, `smtps://...`); null: the development outbox keeps every message in the database. */
  smtpUrl: string | null;
  /** Domain of the VERP return path (`bounce+<delivery>.<mark>@domain`) and of Message-IDs. */
  bounceDomain: string;
  /** Port of the inbound SMTP listener taking bounce and complaint reports for the bounce domain; null: not started. */
  bounceSmtpPort: number | null;
  bounceSmtpHost: string;
  /** Default From address of outgoing mail (a template may set its own). */
  mailFrom: string;
  /** Messages a worker sends at once (SMTP connections of the bulk lane). */
  workerConcurrency: number;
  /** Sends in flight to one recipient domain, per worker. */
  domainConcurrency: number;
  /** How long a worker holds the deliveries it claimed before another worker may take them over. */
  workerLeaseSeconds: number;
  /** DKIM signing of outgoing mail; null when not configured. */
  dkim: { domainName: string; keySelector: string; privateKey: string } | null;
}

const PROXY_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);

function parseTrustProxy(raw: string | undefined, problems: string[]): Config['trustProxy'] {
  if (raw === undefined || /^(0|false|no|off)$/i.test(raw.trim())) return false;
  const s = raw.trim();
  if (/^(true|yes|on)$/i.test(s)) return true;
  const bad = s.split(',').map((x) => x.trim()).filter((x) => {
    if (PROXY_NAMES.has(x)) return false;
    const [address, prefix, ...rest] = x.split('/');
    const family = isIP(address ?? '');
    if (!family || rest.length) return true;
    return prefix !== undefined && !(/^\d+$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128));
  });
  if (bad.length) {
    problems.push(`ENVOI_TRUST_PROXY must be true, false, or a comma-separated list of addresses, CIDR ranges, loopback, linklocal, uniquelocal; not ${bad.map((b) => JSON.stringify(b)).join(', ')}`);
    return false;
  }
  return s;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

type Source = Record<string, string | undefined>;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/**
 * Reads configuration from an optional JSON file (`ENVOI_CONFIG`, or `envoi.config.json` in the working
 * directory) overlaid by environment variables, and reports every problem at once so a operator fixes
 * them in one go rather than one restart per mistake.
 */
export function loadConfig(env: Source = process.env, cwd = process.cwd()): Config {
  const problems: string[] = [];
  const file = readConfigFile(env, cwd, problems);
  const pick = (envName: string, fileKey: string): string | undefined => {
    const fromEnv = env[envName];
    if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
    const fromFile = file[fileKey];
    return fromFile === undefined || fromFile === null ? undefined : String(fromFile);
  };
  const int = (envName: string, fileKey: string, fallback: number, min: number, max: number): number => {
    const raw = pick(envName, fileKey);
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) {
      problems.push(`${envName} (or "${fileKey}") must be an integer between ${min} and ${max}, got "${raw}"`);
      return fallback;
    }
    return n;
  };

  const bool = (envName: string, fileKey: string, fallback: boolean): boolean => {
    const raw = pick(envName, fileKey);
    if (raw === undefined) return fallback;
    if (/^(1|true|yes|on)$/i.test(raw)) return true;
    if (/^(0|false|no|off)$/i.test(raw)) return false;
    problems.push(`${envName} (or "${fileKey}") must be true or false, got "${raw}"`);
    return fallback;
  };

  const databaseUrl = pick('DATABASE_URL', 'databaseUrl') ?? null;
  if (databaseUrl !== null && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    problems.push(`DATABASE_URL must start with postgres:// or postgresql://, got "${redactUrl(databaseUrl)}"`);
  }
  const port = int('PORT', 'port', 8080, 0, 65535);
  const host = pick('HOST', 'host') ?? '127.0.0.1';
  const publicUrlRaw = pick('ENVOI_PUBLIC_URL', 'publicUrl') ?? `http://${host === '0.0.0.0' ? 'localhost' : host}:${port}`;
  let publicUrl = publicUrlRaw.replace(/\/+$/, '');
  try {
    const u = new URL(publicUrlRaw);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') problems.push(`ENVOI_PUBLIC_URL must be http(s), got "${publicUrlRaw}"`);
  } catch {
    problems.push(`ENVOI_PUBLIC_URL is not a valid URL: "${publicUrlRaw}"`);
    publicUrl = 'http://localhost:8080';
  }
  const secret = pick('ENVOI_SECRET', 'secret') ?? null;
  if (secret !== null && secret.length < 32) problems.push('ENVOI_SECRET must be at least 32 characters long');
  const metricsToken = pick('ENVOI_METRICS_TOKEN', 'metricsToken') ?? null;
  if (metricsToken !== null && (metricsToken.length < 16 || /\s/.test(metricsToken))) problems.push('ENVOI_METRICS_TOKEN must be at least 16 characters long, without spaces');
  const trustProxy = parseTrustProxy(pick('ENVOI_TRUST_PROXY', 'trustProxy'), problems);
  const privateNetworks = pick('ENVOI_WEBHOOK_PRIVATE_NETWORKS', 'webhookPrivateNetworks') ?? 'deny';
  if (privateNetworks !== 'allow' && privateNetworks !== 'deny') problems.push(`ENVOI_WEBHOOK_PRIVATE_NETWORKS must be allow or deny, got "${privateNetworks}"`);
  const accountPageOrigins: string[] = [];
  for (const raw of (pick('ENVOI_ACCOUNT_PAGE_ORIGINS', 'accountPageOrigins') ?? '').split(',').map((x) => x.trim()).filter(Boolean)) {
    let u: URL | null = null;
    try {
      u = new URL(raw);
    } catch {
      /* reported below */
    }
    if (!u || (u.protocol !== 'https:' && u.protocol !== 'http:') || u.origin !== raw.replace(/\/+$/, '')) {
      problems.push(`ENVOI_ACCOUNT_PAGE_ORIGINS must list origins like https://site.example (scheme and host, no path), not "${raw}"`);
    } else accountPageOrigins.push(u.origin);
  }
  const logLevel = (pick('LOG_LEVEL', 'logLevel') ?? 'info') as Config['logLevel'];
  if (!LOG_LEVELS.includes(logLevel)) problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`);

  const config: Config = {
    databaseUrl,
    dataDir: resolve(cwd, pick('ENVOI_DATA_DIR', 'dataDir') ?? './data'),
    host,
    port,
    publicUrl,
    secret,
    logLevel,
    lockout: {
      maxFailedAttempts: int('ENVOI_LOCKOUT_ATTEMPTS', 'lockoutAttempts', 5, 1, 100),
      lockMinutes: int('ENVOI_LOCKOUT_MINUTES', 'lockoutMinutes', 15, 1, 60 * 24 * 30),
    },
    resetTokenMinutes: int('ENVOI_RESET_TOKEN_MINUTES', 'resetTokenMinutes', 60, 5, 60 * 24 * 7),
    allowSignup: bool('ENVOI_ALLOW_SIGNUP', 'allowSignup', false),
    trustProxy,
    webhookPrivateNetworks: privateNetworks === 'allow',
    metricsToken,
    accountPageOrigins,
    ...mailConfig(pick, int, publicUrl, host, cwd, problems),
  };
  if (problems.length) throw new ConfigError(problems);
  return config;
}

type MailConfig = Pick<Config, 'smtpUrl' | 'bounceDomain' | 'bounceSmtpPort' | 'bounceSmtpHost' | 'mailFrom' | 'workerConcurrency' | 'domainConcurrency' | 'workerLeaseSeconds' | 'dkim'>;

function mailConfig(
  pick: (envName: string, fileKey: string) => string | undefined,
  int: (envName: string, fileKey: string, fallback: number, min: number, max: number) => number,
  publicUrl: string,
  host: string,
  cwd: string,
  problems: string[],
): MailConfig {
  const smtpUrl = pick('SMTP_URL', 'smtpUrl') ?? null;
  if (smtpUrl !== null) {
    let ok = false;
    try {
      const u = new URL(smtpUrl);
      ok = (u.protocol === 'smtp:' || u.protocol === 'smtps:') && u.hostname !== '';
    } catch {
      /* reported below */
    }
    if (!ok) problems.push(`SMTP_URL must look like smtp://host:port or smtps://user:pass@host:port, got "${redactUrl(smtpUrl)}"`);
  }
  // An IP address or a dotless host cannot be the domain of an address: fall back to localhost.
  const publicHost = (() => {
    try {
      return new URL(publicUrl).hostname;
    } catch {
      return 'localhost';
    }
  })();
  const defaultDomain = /\.[a-z]{2,}$/i.test(publicHost) && !/^[\d.]+$/.test(publicHost) ? publicHost : 'localhost';
  const bounceDomain = (pick('ENVOI_BOUNCE_DOMAIN', 'bounceDomain') ?? defaultDomain).toLowerCase();
  if (!/^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/.test(bounceDomain)) {
    problems.push(`ENVOI_BOUNCE_DOMAIN must be a domain name, got "${bounceDomain}"`);
  }
  const mailFrom = pick('ENVOI_MAIL_FROM', 'mailFrom') ?? `no-reply@${bounceDomain}`;
  if (/[\r\n]/.test(mailFrom) || !/^[^@\s<>]+@[^@\s<>]+$/.test(mailFrom)) problems.push(`ENVOI_MAIL_FROM must be a bare address (name@domain), got "${mailFrom}"`);

  const dkimDomain = pick('ENVOI_DKIM_DOMAIN', 'dkimDomain');
  const dkimSelector = pick('ENVOI_DKIM_SELECTOR', 'dkimSelector');
  const dkimKeyRaw = pick('ENVOI_DKIM_PRIVATE_KEY', 'dkimPrivateKey');
  let dkim: MailConfig['dkim'] = null;
  const given = [dkimDomain, dkimSelector, dkimKeyRaw].filter((x) => x !== undefined).length;
  if (given > 0 && given < 3) {
    problems.push('DKIM needs all of ENVOI_DKIM_DOMAIN, ENVOI_DKIM_SELECTOR and ENVOI_DKIM_PRIVATE_KEY (the PEM key or a path to it)');
  } else if (given === 3) {
    let privateKey = dkimKeyRaw!.replace(/\\n/g, '\n');
    if (!privateKey.includes('-----BEGIN')) {
      const path = resolve(cwd, privateKey);
      if (existsSync(path)) privateKey = readFileSync(path, 'utf8');
      else problems.push(`ENVOI_DKIM_PRIVATE_KEY is neither a PEM key nor an existing file ("${path}")`);
    }
    dkim = { domainName: dkimDomain!.toLowerCase(), keySelector: dkimSelector!, privateKey };
  }
  return {
    smtpUrl,
    bounceDomain,
    // Off unless asked for: port 25 needs privileges, and most set-ups receive mail elsewhere first.
    bounceSmtpPort: pick('ENVOI_BOUNCE_SMTP_PORT', 'bounceSmtpPort') === undefined ? null : int('ENVOI_BOUNCE_SMTP_PORT', 'bounceSmtpPort', 0, 0, 65535),
    bounceSmtpHost: pick('ENVOI_BOUNCE_SMTP_HOST', 'bounceSmtpHost') ?? host,
    mailFrom,
    workerConcurrency: int('ENVOI_WORKER_CONCURRENCY', 'workerConcurrency', 20, 1, 200),
    domainConcurrency: int('ENVOI_DOMAIN_CONCURRENCY', 'domainConcurrency', 8, 1, 200),
    workerLeaseSeconds: int('ENVOI_WORKER_LEASE_SECONDS', 'workerLeaseSeconds', 120, 2, 3600),
    dkim,
  };
}

function readConfigFile(env: Source, cwd: string, problems: string[]): Record<string, unknown> {
  const explicit = env.ENVOI_CONFIG;
  const path = resolve(cwd, explicit ?? 'envoi.config.json');
  if (!existsSync(path)) {
    if (explicit) problems.push(`ENVOI_CONFIG points to "${path}", which does not exist`);
    return {};
  }
  try {
    const parsed: unknown = JSON.parse(readFileSync(path, 'utf8'));
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      problems.push(`${path} must hold a JSON object`);
      return {};
    }
    return parsed as Record<string, unknown>;
  } catch (e) {
    problems.push(`${path} is not valid JSON: ${(e as Error).message}`);
    return {};
  }
}

export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
}
