import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import formbody from '@fastify/formbody';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { AppContext } from './context.ts';
import { AppError, forbidden, unauthorized } from './errors.ts';
import type { Role } from './schema.ts';
import { authenticate, type Principal } from '../organisations/service.ts';
import { roleAllows } from '../organisations/rules.ts';

export type App = FastifyInstance<any, any, any, any, TypeBoxTypeProvider>;
export type RouteModule = (app: App, ctx: AppContext) => void | Promise<void>;

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
}

export const SESSION_COOKIE = 'envoi_session';

export interface HttpOptions {
  logger?: boolean | object;
  routes: RouteModule[];
}

export async function buildHttpApp(ctx: AppContext, opts: HttpOptions): Promise<App> {
  const app = Fastify({
    logger: opts.logger ?? false,
    bodyLimit: 2 * 1024 * 1024,
    // Click tokens carry their signed destination in the path.
    routerOptions: { maxParamLength: 8192 },
    // Never log credentials: the default serializers log the URL and method only, and we redact headers.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: true, useDefaults: true } },
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.decorateRequest('principal', null);
  // HTML forms of the public pages (unsubscribe, signup) post urlencoded bodies.
  await app.register(formbody, { bodyLimit: 64 * 1024 });

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'envoi API', version: '1', description: 'Audiences, contacts, consent-aware email. Authenticate with `Authorization: Bearer <API key or session token>`.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/v1/docs' });

  app.setErrorHandler((err: any, req, reply) => {
    if (err instanceof AppError) {
      return reply.status(err.status).send({ error: { code: err.code, message: err.message, ...(err.details !== undefined ? { details: err.details } : {}) } });
    }
    if (err.validation) {
      const details = err.validation.map((v: any) => ({ path: `${err.validationContext ?? ''}${v.instancePath || ''}`, message: v.message, params: v.params }));
      const first = details[0];
      return reply.status(400).send({ error: { code: 'invalid_request', message: `${first.path || err.validationContext}: ${first.message}`, details } });
    }
    if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
      return reply.status(err.statusCode).send({ error: { code: String(err.code ?? 'bad_request').toLowerCase(), message: err.message } });
    }
    // Postgres input errors that slipped past validation are still the caller's mistake, not ours.
    if (typeof err.code === 'string' && /^22/.test(err.code)) {
      return reply.status(400).send({ error: { code: 'invalid_value', message: err.message } });
    }
    req.log.error({ err }, 'unhandled error');
    return reply.status(500).send({ error: { code: 'internal', message: 'internal error' } });
  });

  app.setNotFoundHandler((req, reply) => {
    reply.status(404).send({ error: { code: 'not_found', message: `no route ${req.method} ${req.url.split('?')[0]}` } });
  });

  app.addHook('onRequest', async (req) => {
    const token = bearerToken(req);
    if (token) req.principal = await authenticate(ctx, token);
  });

  app.get('/healthz', { schema: { hide: true } }, async () => ({ ok: true }));
  app.get('/v1/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  for (const register of opts.routes) await register(app, ctx);
  return app;
}

function bearerToken(req: FastifyRequest): string | null {
  const h = req.headers.authorization;
  if (h && /^Bearer\s+/i.test(h)) return h.replace(/^Bearer\s+/i, '').trim();
  const cookie = req.headers.cookie;
  if (cookie) {
    const m = cookie.split(/;\s*/).find((c) => c.startsWith(`${SESSION_COOKIE}=`));
    if (m) return decodeURIComponent(m.slice(SESSION_COOKIE.length + 1));
  }
  return null;
}

/** The caller, who must hold at least `role`; 401 when anonymous, 403 when the role is too low. */
export function requireRole(req: FastifyRequest, role: Role = 'viewer'): Principal {
  const p = req.principal;
  if (!p) throw unauthorized();
  if (!roleAllows(p.role, role)) throw forbidden(`this action needs the ${role} role; you have ${p.role}`);
  return p;
}
