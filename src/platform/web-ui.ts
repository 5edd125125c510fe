/**
 * The back-office web UI: the Vite build in web/dist served at `/`, with an SPA fallback so that a
 * reload on /audiences/... gets index.html and the client router takes over.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { FastifyReply, FastifyRequest } from 'fastify';
import fastifyStatic from '@fastify/static';
import type { App } from './http.ts';

export const WEB_DIST = fileURLToPath(new URL('../../web/dist/', import.meta.url));

/**
 * Scripts only from our own origin (no inline script, no eval), so that injected markup cannot run;
 * styles likewise. Frames: email previews are loaded from same-origin URLs that send their own sandboxing CSP (a srcdoc or blob frame would inherit this policy and lose the email's inline styles).
 */
const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "font-src 'self'",
  "connect-src 'self'",
  "frame-src 'self' blob:",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

export function setUiSecurityHeaders(reply: FastifyReply) {
  reply.header('content-security-policy', CSP);
  reply.header('x-content-type-options', 'nosniff');
  reply.header('x-frame-options', 'DENY');
  reply.header('referrer-policy', 'same-origin');
}

const MISSING_BUILD = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>envoi: web UI not built</title></head>
<body><main><h1>The envoi web UI is not built</h1>
<p>Run <code>npm run build:web</code> (or <code>npm install</code>, which builds it) in the envoi folder, then reload this page.</p>
<p>The API is at <a href="/v1/docs">/v1/docs</a>.</p></main></body></html>`;

/** The UI of one server: `dist` is the Vite build (web/dist unless told otherwise, for tests). */
export function webUi(dist: string = WEB_DIST) {
  const root = dist.endsWith('/') ? dist : `${dist}/`;
  const index = `${root}index.html`;

  async function sendIndex(reply: FastifyReply) {
    setUiSecurityHeaders(reply);
    reply.header('cache-control', 'no-cache').type('text/html; charset=utf-8');
    if (!existsSync(index)) return reply.status(503).send(MISSING_BUILD);
    return reply.send(await readFile(index));
  }

  return {
    async register(app: App) {
      if (existsSync(root)) {
        await app.register(fastifyStatic, {
          root,
          prefix: '/',
          wildcard: true,
          index: 'index.html',
          schemaHide: true,
          setHeaders(reply, path) {
            setUiSecurityHeaders(reply);
            // Vite names the files under assets/ by their content hash; index.html must always be fresh.
            reply.header('cache-control', /[\\/]assets[\\/]/.test(path) ? 'public, max-age=31536000, immutable' : 'no-cache');
          },
        });
      } else {
        app.get('/', { schema: { hide: true } }, async (_req, reply) => sendIndex(reply));
      }
    },
    /** index.html for a browser navigation to a client-side route; see isUiNavigation. */
    fallback: sendIndex,
  };
}

/** A browser navigation to a client-side route (not the API, not a file): answer with the app's index.html. */
export function isUiNavigation(req: FastifyRequest): boolean {
  if (req.method !== 'GET') return false;
  const path = req.url.split('?')[0];
  if (path === '/v1' || path.startsWith('/v1/')) return false;
  // A missing asset must stay a 404, not turn into an HTML page the browser would try to run.
  if (/\.[a-z0-9]{1,8}$/i.test(path)) return false;
  return String(req.headers.accept ?? '').includes('text/html');
}
