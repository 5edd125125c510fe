import { Type } from 'typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { App } from '../platform/http.ts';
import type { AppContext } from '../platform/context.ts';
import * as svc from './tracking-service.ts';
import { redirectLocation } from '../mail/tracking.ts';
import { answerDonePage, answerInvalidPage, answerPage, answerWording, confirmPage, donePage, invalidPage, pageLanguage } from './unsubscribe-page.ts';

// The smallest transparent GIF.
const PIXEL = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');
const Token = Type.Object({ token: Type.String({ minLength: 1, maxLength: 8000 }) });
// The pixel answers whatever its path: the router reads `/o/.` as an empty token, which is just one more invalid one.
const PixelToken = Type.Object({ token: Type.String({ maxLength: 8000 }) });
const Lang = Type.Object({ lang: Type.Optional(Type.String({ maxLength: 10 })) });

/** An unsubscribe token is a delivery id and at most its MAC: with more parts it is not a link that was sent. */
const unsubscribeShape = (token: string) => token.split('.').length <= 2;

const visitor = (req: FastifyRequest): svc.Visitor => ({ ip: req.ip ?? null, userAgent: typeof req.headers['user-agent'] === 'string' ? req.headers['user-agent'] : null });

function html(reply: FastifyReply, status: number, body: string) {
  return reply
    .status(status)
    .header('content-type', 'text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'")
    .header('x-frame-options', 'DENY')
    .header('referrer-policy', 'no-referrer')
    .send(body);
}

/** The public endpoints behind the links of sent mail: no credentials, a signed token each. */
export async function trackingRoutes(app: App, ctx: AppContext) {
  await app.register(async (scope: App) => {
    // RFC 8058 one-click POSTs come as a form, urlencoded (parsed for the whole app) or multipart; the token alone authorises.
    scope.addContentTypeParser('multipart/form-data', { parseAs: 'string', bodyLimit: 16 * 1024 }, (_req, body, done) => done(null, { multipart: String(body) }));

    scope.get('/o/:token', { schema: { hide: true, params: PixelToken } }, async (req, reply) => {
      // The pixel is answered whatever happens: a broken image in someone's mail helps nobody.
      await svc.recordOpen(ctx, req.params.token, visitor(req)).catch((e) => req.log.warn({ err: e }, 'open not recorded'));
      return reply.header('content-type', 'image/gif').header('cache-control', 'no-store, max-age=0').send(PIXEL);
    });

    scope.get('/c/:token', { schema: { hide: true, params: Token } }, async (req, reply) => {
      const signed = await svc.recordClick(ctx, req.params.token, visitor(req));
      // A header cannot carry a line break or a raw non-ASCII character: redirect to the URL as a browser reads it.
      const url = signed === null ? null : redirectLocation(signed);
      if (!url) return html(reply, 404, invalidPage(pageLanguage(undefined, req.headers['accept-language']), 'link'));
      return reply.header('cache-control', 'no-store').header('referrer-policy', 'no-referrer').redirect(url, 302);
    });

    scope.get('/u/:token', { schema: { hide: true, params: Token, querystring: Lang } }, async (req, reply) => {
      const lang = pageLanguage(req.query.lang, req.headers['accept-language']);
      const t = unsubscribeShape(req.params.token) ? await svc.unsubscribeTarget(ctx, req.params.token) : null;
      if (!t) return html(reply, 404, invalidPage(lang));
      return html(reply, 200, confirmPage(lang, t, `${ctx.config.publicUrl.replace(/\/+$/, '')}/u/${encodeURIComponent(req.params.token)}`));
    });

    scope.get('/r/:token', { schema: { hide: true, params: Token, querystring: Lang } }, async (req, reply) => {
      const lang = pageLanguage(req.query.lang, req.headers['accept-language']);
      const t = await svc.answerTarget(ctx, req.params.token);
      if (!t) return html(reply, 404, answerInvalidPage(lang));
      return html(reply, 200, answerPage(lang, t.answer, t, `${ctx.config.publicUrl.replace(/\/+$/, '')}/r/${encodeURIComponent(req.params.token)}`));
    });

    scope.post('/r/:token', { schema: { hide: true, params: Token, querystring: Lang } }, async (req, reply) => {
      const body = (req.body ?? {}) as Record<string, unknown>;
      const lang = pageLanguage(body.lang ?? req.query.lang, req.headers['accept-language']);
      const r = await svc.recordAnswer(ctx, req.params.token, { wording: (t, answer) => answerWording(lang, answer, t), ...visitor(req) });
      if (!r) return html(reply, 404, answerInvalidPage(lang));
      return html(reply, 200, answerDonePage(lang, r.answer));
    });

    scope.post('/u/:token', { schema: { hide: true, params: Token, querystring: Lang } }, async (req, reply) => {
      const body = (req.body ?? {}) as Record<string, unknown>;
      const oneClick = body['List-Unsubscribe'] === 'One-Click' || (typeof body.multipart === 'string' && body.multipart.includes('One-Click'));
      const lang = pageLanguage(body.lang ?? req.query.lang, req.headers['accept-language']);
      const everything = body.scope === 'organisation';
      const r = unsubscribeShape(req.params.token) ? await svc.unsubscribe(ctx, req.params.token, { method: oneClick ? 'one_click' : 'unsubscribe_page', everything, ...visitor(req) }) : null;
      if (!r) return html(reply, 404, invalidPage(lang));
      if (oneClick) return reply.status(200).header('content-type', 'text/plain; charset=utf-8').send('unsubscribed\n');
      return html(reply, 200, donePage(lang, { organisation: r.organisation, audience: r.audience, everything: r.excluded || everything }));
    });
  });
}
