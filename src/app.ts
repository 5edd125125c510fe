import { loadConfig, type Config } from './platform/config.ts';
import { openDatabase, type Database } from './platform/database.ts';
import { migrate } from './platform/migrate.ts';
import { withSigningSecret } from './platform/instance-secret.ts';
import { createContext, type AppContext } from './platform/context.ts';
import { buildHttpApp, type App, type RouteModule } from './platform/http.ts';
import { organisationRoutes } from './organisations/routes.ts';
import { audienceRoutes } from './audience/routes.ts';
import { gridRoutes } from './audience/grid-routes.ts';
import { importRoutes } from './audience/import-routes.ts';
import { accountRoutes } from './accounts/routes.ts';
import { accountPageRoutes } from './accounts/page-routes.ts';
import { templateRoutes } from './mail/template-routes.ts';
import { sendingRoutes } from './sending/routes.ts';
import { consentRoutes } from './consent/routes.ts';
import { trackingRoutes } from './sending/tracking-routes.ts';
import { campaignRoutes } from './campaigns/routes.ts';
import { signupRoutes } from './consent/signup-routes.ts';
import { bounceRoutes } from './sending/bounce-routes.ts';
import { reportRoutes } from './reports/routes.ts';
import { metricsRoutes } from './platform/metrics.ts';
import { webhookRoutes } from './webhooks/routes.ts';
import { programRoutes } from './programs/routes.ts';
import { rateCounterFor } from './sending/accept-rate.ts';

/** Every capability's HTTP surface, in one list: the route table the isolation tests walk. */
export const ROUTES: RouteModule[] = [organisationRoutes, audienceRoutes, gridRoutes, accountRoutes, accountPageRoutes, importRoutes, templateRoutes, sendingRoutes, consentRoutes, trackingRoutes, campaignRoutes, signupRoutes, bounceRoutes, reportRoutes, webhookRoutes, programRoutes, metricsRoutes];

export interface Envoi {
  config: Config;
  database: Database;
  ctx: AppContext;
  http: App;
  close(): Promise<void>;
}

/** Opens the database, applies migrations and builds the HTTP app (not yet listening). */
export async function createEnvoi(opts: { config?: Config; database?: Database; logger?: boolean | object; ctx?: Partial<Pick<AppContext, 'now' | 'exposeTokensForTests'>> } = {}): Promise<Envoi> {
  const given = opts.config ?? loadConfig();
  const database = opts.database ?? (await openDatabase(given));
  await migrate(database);
  const config = await withSigningSecret(database.db, given);
  const ctx = createContext(config, database, opts.ctx);
  const http = await buildHttpApp(ctx, { logger: opts.logger, routes: ROUTES });
  return {
    config,
    database,
    ctx,
    http,
    async close() {
      await http.close();
      // Counts are batched in memory for a fraction of a second; keep them on a clean shutdown.
      await rateCounterFor(database.db).flush().catch(() => {});
      await database.close();
    },
  };
}
