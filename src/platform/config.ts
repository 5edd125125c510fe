import { readFileSync, existsSync } from 'node:fs';
import { resolve } from 'node:path';

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
  };
  if (problems.length) throw new ConfigError(problems);
  return config;
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
