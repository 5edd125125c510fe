import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import formbody from '@fastify/formbody';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { AppContext } from './context.ts';
import { AppError, forbidden, unauthorized } from './errors.ts';
import type { Role } from './schema.ts';
import { authenticate, type Principal } from '../organisations/service.ts';
import { roleAllows } from '../organisations/rules.ts';
import { safeEqual, sign } from './secrets.ts';
import { isUiNavigation, webUi } from './web-ui.ts';

export type App = FastifyInstance<any, any, any, any, TypeBoxTypeProvider>;
export type RouteModule = (app: App, ctx: AppContext) => void | Promise<void>;

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
    /** the CSRF token bound to the caller's session (cookie or bearer session token); null for API keys and anonymous calls */
    csrfToken: string | null;
    /** false when the session cookie authenticated an unsafe request without the matching CSRF header */
    csrfOk: boolean;
  }
}

export const SESSION_COOKIE = 'envoi_session';
export const CSRF_HEADER = 'x-envoi-csrf';
/**
 * The largest `offset` a list takes (the contacts grid's bound): beyond it a page is refused with a 400
 * saying so, rather than handed to the database (whose bigint overflows past 2^63).
 */
export const MAX_LIST_OFFSET = 100_000_000;
const UNSAFE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Bound to one session and derivable only with the instance secret, so another site cannot forge it and no table is needed. */
export function csrfTokenFor(secret: string, sessionToken: string): string {
  return sign(secret, `csrf:${sessionToken}`);
}

export interface HttpOptions {
  logger?: boolean | object;
  routes: RouteModule[];
  /** the built web UI to serve at / (default web/dist) */
  webDist?: string;
}

export async function buildHttpApp(ctx: AppContext, opts: HttpOptions): Promise<App> {
  const ui = webUi(opts.webDist);
  const app = Fastify({
    logger: opts.logger ?? false,
    bodyLimit: 2 * 1024 * 1024,
    // Only the proxies the operator names may say who the client is: the address goes into consent proofs.
    trustProxy: ctx.config.trustProxy,
    // Click tokens carry their signed destination in the path.
    routerOptions: { maxParamLength: 8192 },
    // Never log credentials: the default serializers log the URL and method only, and we redact headers.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: true, useDefaults: true } },
    // A URL the router cannot decode (`/r/%ff`) gets the same error shape as every other 4xx.
    frameworkErrors: (err, _req, reply) => {
      void (reply as unknown as FastifyReply).status(err.statusCode ?? 400).send({ error: { code: String(err.code ?? 'bad_request').toLowerCase(), message: err.message } });
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.decorateRequest('principal', null);
  app.decorateRequest('csrfToken', null);
  app.decorateRequest('csrfOk', true);
  // HTML forms of the public pages (unsubscribe, signup) post urlencoded bodies.
  await app.register(formbody, { bodyLimit: 64 * 1024 });
  strictJsonBodies(app);

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
      // No body at all (none sent, or an empty one under content-type: application/json) on a route that needs one.
      if (err.validationContext === 'body' && req.body === undefined) {
        return reply.status(400).send({ error: { code: 'invalid_request', message: 'the request body is required: send a JSON object (content-type: application/json)', details: [{ path: 'body', message: 'is required' }] } });
      }
      const details = err.validation.map((v: any) => ({ path: `${err.validationContext ?? ''}${v.instancePath || ''}`, message: v.message, params: v.params }));
      const first = details[0];
      return reply.status(400).send({ error: { code: 'invalid_request', message: `${first.path || err.validationContext}: ${first.message}`, details } });
    }
    if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
      return reply.status(err.statusCode).send({ error: { code: String(err.code ?? 'bad_request').toLowerCase(), message: err.message } });
    }
    // A unique key hit by two requests writing the same record at once (each checked first and saw
    // nothing): the request itself is fine, and a retry finds the record the other one wrote.
    if (err.code === '23505') {
      return reply.status(409).send({ error: { code: 'concurrent_write', message: `another request wrote the same record at the same moment${err.constraint ? ` (${err.constraint})` : ''}; retry` } });
    }
    // Postgres input errors that slipped past validation are still the caller's mistake, not ours.
    if (typeof err.code === 'string' && /^22/.test(err.code)) {
      return reply.status(400).send({ error: { code: 'invalid_value', message: err.message } });
    }
    req.log.error({ err }, 'unhandled error');
    return reply.status(500).send({ error: { code: 'internal', message: 'internal error' } });
  });

  app.setNotFoundHandler((req, reply) => {
    if (isUiNavigation(req)) return ui.fallback(reply);
    reply.status(404).send({ error: { code: 'not_found', message: `no route ${req.method} ${req.url.split('?')[0]}` } });
  });

  app.addHook('onRequest', async (req) => {
    const found = callerToken(req);
    if (!found) return;
    req.principal = await authenticate(ctx, found.token);
    if (!req.principal || req.principal.kind !== 'user') return;
    req.csrfToken = csrfTokenFor(ctx.config.secret!, found.token);
    // A browser sends the cookie on its own; only the page that read the token can send the header.
    // Bearer tokens are never sent implicitly, so they need no such proof.
    if (found.from === 'cookie' && UNSAFE_METHODS.has(req.method)) {
      const sent = req.headers[CSRF_HEADER];
      req.csrfOk = typeof sent === 'string' && safeEqual(sent, req.csrfToken);
    }
  });

  app.get('/healthz', { schema: { hide: true } }, async () => ({ ok: true }));
  app.get('/v1/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  for (const register of opts.routes) await register(app, ctx);
  await ui.register(app);
  return app;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });
const ESCAPED_SURROGATE = /\\u[dD][89a-fA-F]/;
const LONE_SURROGATE = /\p{Cs}/u;

function hasLoneSurrogate(value: unknown, depth = 0): boolean {
  if (typeof value === 'string') return LONE_SURROGATE.test(value);
  if (depth > 64 || value === null || typeof value !== 'object') return false;
  for (const [k, v] of Object.entries(value)) if (LONE_SURROGATE.test(k) || hasLoneSurrogate(v, depth + 1)) return true;
  return false;
}

/**
 * JSON bodies must be UTF-8 text: invalid bytes, or a `\ud800` escape standing alone, would otherwise
 * be stored as U+FFFD, changing what was sent without a word. Refused with a 400 instead; parsing is
 * otherwise Fastify's own (prototype-poisoning checks included). An empty body (or only whitespace) is
 * no body: clients that always send `content-type: application/json` (a DELETE, an action without
 * parameters) are not refused for it, and a route that needs a body still says it is required.
 */
function strictJsonBodies(app: App) {
  const parse = app.getDefaultJsonParser('error', 'error');
  const invalid = (message: string) => Object.assign(new Error(message), { statusCode: 400, code: 'invalid_body' });
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body, done) => {
    let text: string;
    try {
      text = UTF8.decode(body as Buffer);
    } catch {
      return done(invalid('the request body is not valid UTF-8'), undefined);
    }
    if (text.trim() === '') return done(null, undefined);
    parse(req, text, (err, value) => {
      if (err) return done(err, undefined);
      if (ESCAPED_SURROGATE.test(text) && hasLoneSurrogate(value)) return done(invalid('the request body holds a lone UTF-16 surrogate (\\ud800-\\udfff), which is no character'), undefined);
      done(null, value);
    });
  });
}

/** The caller's credential: an Authorization bearer token first, else the session cookie. */
export function callerToken(req: FastifyRequest): { token: string; from: 'bearer' | 'cookie' } | null {
  const h = req.headers.authorization;
  if (h && /^Bearer\s+/i.test(h)) return { token: h.replace(/^Bearer\s+/i, '').trim(), from: 'bearer' };
  const cookie = req.headers.cookie;
  if (cookie) {
    const m = cookie.split(/;\s*/).find((c) => c.startsWith(`${SESSION_COOKIE}=`));
    if (m) {
      try {
        return { token: decodeURIComponent(m.slice(SESSION_COOKIE.length + 1)), from: 'cookie' };
      } catch {
        return null;
      }
    }
  }
  return null;
}

/**
 * The idempotency key of a request: the Idempotency-Key header or `idempotency_key` in the body.
 * A header longer than the body's 255 characters is refused, not cut (two keys sharing their first
 * 255 characters would become one, and the second request a silent replay of the first), and so is
 * a header that contradicts the body.
 */
export function idempotencyKey(req: FastifyRequest, fromBody: string | undefined): string | undefined {
  const raw = req.headers['idempotency-key'];
  const header = typeof raw === 'string' ? raw.trim() : '';
  if (header === '') return fromBody;
  if (header.length > 255) throw new AppError(400, 'invalid_idempotency_key', 'the Idempotency-Key header is longer than 255 characters');
  if (fromBody !== undefined && fromBody !== header) throw new AppError(400, 'invalid_idempotency_key', 'the Idempotency-Key header and idempotency_key in the body differ; give one of them');
  return header;
}

/** The caller, who must hold at least `role`; 401 when anonymous, 403 when the role is too low. */
export function requireRole(req: FastifyRequest, role: Role = 'viewer'): Principal {
  const p = req.principal;
  if (!p) throw unauthorized();
  // Checked here rather than for every request so that public forms (unsubscribe, signup, login) keep working for a logged-in organiser.
  if (!req.csrfOk) throw new AppError(403, 'csrf_token_invalid', `this request uses the session cookie, so it must carry the ${CSRF_HEADER} header with the csrf_token given by /v1/auth/login or /v1/me; reload the page`);
  if (!roleAllows(p.role, role)) throw forbidden(`this action needs the ${role} role; you have ${p.role}`);
  return p;
}
