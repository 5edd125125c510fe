import { createEnvoi, type Envoi } from '../app.ts';
import type { Config } from './config.ts';
import { countOrganisations } from '../organisations/service.ts';
import { redactUrl } from './config.ts';

/** Starts the HTTP server and prints where things are; resolves once it is listening. */
export async function serve(config: Config, opts: { banner?: boolean } = {}): Promise<Envoi> {
  const envoi = await createEnvoi({
    config,
    logger: { level: config.logLevel, redact: ['req.headers.authorization', 'req.headers.cookie', 'res.headers["set-cookie"]'] },
  });
  await envoi.http.listen({ port: config.port, host: config.host });
  const addr = envoi.http.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.port;
  const base = `http://${config.host === '0.0.0.0' ? 'localhost' : config.host}:${port}`;
  if (opts.banner !== false) {
    const orgs = await countOrganisations(envoi.ctx);
    const db = config.databaseUrl ? `PostgreSQL ${redactUrl(config.databaseUrl)}` : `embedded PGlite in ${config.dataDir}`;
    const lines = [
      '',
      `envoi is running (${db})`,
      `  back office    ${base}/   (the web UI: log in, or create your organisation there)`,
      `  API            ${base}/v1`,
      `  API docs       ${base}/v1/docs   (OpenAPI: ${base}/v1/openapi.json)`,
      `  health         ${base}/healthz`,
    ];
    if (orgs === 0) {
      lines.push(
        '',
        `First time? Open ${base}/ and create your organisation, or with the API (use the token it returns):`,
        `  curl -s -X POST ${base}/v1/organisations -H 'content-type: application/json' \\`,
        `    -d '{"name":"My organisation","owner_email":"you@example.com","owner_password":"at least 10 chars"}'`,
        '  or: npx envoi user create --org "My organisation" --email you@example.com --role owner',
      );
    } else {
      lines.push('', `Log in: curl -s -X POST ${base}/v1/auth/login -H 'content-type: application/json' -d '{"email":"...","password":"..."}'`);
    }
    process.stdout.write(lines.join('\n') + '\n\n');
  }
  const stop = async () => {
    await envoi.close();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return envoi;
}
