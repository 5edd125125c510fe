import type { Kysely } from 'kysely';
import type { Config } from './config.ts';
import type { Database } from './database.ts';
import type { DB } from './schema.ts';

/** What every service function receives: configuration, the database, and the clock (tests move it). */
export interface AppContext {
  config: Config;
  database: Database;
  db: Kysely<DB>;
  now: () => Date;
  /** Exposes secrets that are otherwise only emailed (account tokens) — set only by the test harness. */
  exposeTokensForTests: boolean;
}

export function createContext(config: Config, database: Database, opts: Partial<Pick<AppContext, 'now' | 'exposeTokensForTests'>> = {}): AppContext {
  return { config, database, db: database.db, now: opts.now ?? (() => new Date()), exposeTokensForTests: opts.exposeTokensForTests ?? false };
}
