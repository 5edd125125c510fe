/**
 * The pages envoi hosts for the links of the account emails, for organisers whose site has none of
 * its own (the API's `page_url` names theirs instead): confirm the address, choose a new password.
 * The token in the link is the only credential; the pages act for the audience it belongs to.
 */
import { Type } from 'typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { App } from '../platform/http.ts';
import type { AppContext } from '../platform/context.ts';
import { AppError, notFound } from '../platform/errors.ts';
import { pageLanguage, type PageLanguage } from '../platform/public-page.ts';
import type { Principal } from '../organisations/service.ts';
import type { TokenKind, TokenProblem } from './rules.ts';
import * as svc from './service.ts';
import { confirmPage, donePage, mismatchProblem, resetPage, tokenProblemPage } from './pages.ts';

const PATH: Record<TokenKind, string> = { confirm: 'confirm', reset: 'reset' };

/** The link of an account email when the caller named no page of its own. */
export function hostedAccountPage(ctx: AppContext, audienceId: string, kind: TokenKind, language?: string): string {
  const url = new URL(`${ctx.config.publicUrl.replace(/\/+$/, '')}/a/${audienceId}/${PATH[kind]}`);
  if (language === 'fr' || language === 'en') url.searchParams.set('lang', language);
  return url.toString();
}

const html = (reply: FastifyReply, status: number, body: string) =>
  reply
    .status(status)
    .header('content-type', 'text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    // The token is in the address: no other site learns it from a Referer.
    .header('referrer-policy', 'no-referrer')
    .header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'")
    .send(body);

const TOKEN_PROBLEMS: readonly string[] = ['invalid_token', 'token_used', 'token_expired'] satisfies TokenProblem[];
const isTokenProblem = (e: unknown): e is AppError & { code: TokenProblem } => e instanceof AppError && TOKEN_PROBLEMS.includes(e.code);
const problemStatus = (p: TokenProblem) => (p === 'token_expired' ? 410 : 400);

const Params = Type.Object({ audienceId: Type.String({ format: 'uuid' }) });
const Query = Type.Object({ token: Type.Optional(Type.String({ maxLength: 200 })), lang: Type.Optional(Type.String({ maxLength: 10 })) });
const ConfirmForm = Type.Object({ token: Type.String({ maxLength: 200 }), lang: Type.Optional(Type.String({ maxLength: 10 })) });
const ResetForm = Type.Object({
  token: Type.String({ maxLength: 200 }),
  lang: Type.Optional(Type.String({ maxLength: 10 })),
  password: Type.String({ maxLength: 4096 }),
  password_again: Type.String({ maxLength: 4096 }),
});

export async function accountPageRoutes(app: App, ctx: AppContext) {
  /** The audience's organisation, acting on that audience only; unknown audience: 404. */
  async function audiencePrincipal(audienceId: string): Promise<Principal> {
    const a = await ctx.db.selectFrom('audiences').select(['id', 'org_id']).where('id', '=', audienceId).executeTakeFirst();
    if (!a) throw notFound('page');
    return { orgId: a.org_id, role: 'editor', kind: 'key', id: `account-page:${a.id}`, audienceIds: [a.id], rateLimitPerMinute: null };
  }
  const langOf = (req: FastifyRequest, given: string | undefined): PageLanguage => pageLanguage(given, req.headers['accept-language']);
  // Where the page's form posts: under the public URL, as the links are (it may carry a path prefix).
  const action = (audienceId: string, kind: TokenKind) => `${ctx.config.publicUrl.replace(/\/+$/, '')}/a/${audienceId}/${PATH[kind]}`;
  const noToken = (lang: PageLanguage, kind: TokenKind) => tokenProblemPage(lang, kind, 'invalid_token');

  await app.register(async (scope: App) => {
    // Opening a link shows the page; only its button or form changes anything.
    const pages: Record<TokenKind, (lang: PageLanguage, action: string, token: string) => string> = { confirm: confirmPage, reset: resetPage };
    for (const kind of ['confirm', 'reset'] as const) {
      scope.get(`/a/:audienceId/${PATH[kind]}`, { schema: { hide: true, params: Params, querystring: Query } }, async (req, reply) => {
        await audiencePrincipal(req.params.audienceId);
        const lang = langOf(req, req.query.lang);
        if (!req.query.token) return html(reply, 400, noToken(lang, kind));
        return html(reply, 200, pages[kind](lang, action(req.params.audienceId, kind), req.query.token));
      });
    }
    scope.post('/a/:audienceId/confirm', { schema: { hide: true, params: Params, body: ConfirmForm } }, async (req, reply) => {
      const p = await audiencePrincipal(req.params.audienceId);
      const lang = langOf(req, req.body.lang);
      try {
        await svc.confirm(ctx, p, req.params.audienceId, req.body.token);
      } catch (e) {
        if (isTokenProblem(e)) return html(reply, problemStatus(e.code), tokenProblemPage(lang, 'confirm', e.code));
        throw e;
      }
      return html(reply, 200, donePage(lang, 'confirmed'));
    });

    scope.post('/a/:audienceId/reset', { schema: { hide: true, params: Params, body: ResetForm } }, async (req, reply) => {
      const p = await audiencePrincipal(req.params.audienceId);
      const lang = langOf(req, req.body.lang);
      const again = (problem: string) => html(reply, 400, resetPage(lang, action(req.params.audienceId, 'reset'), req.body.token, [problem]));
      if (req.body.password !== req.body.password_again) return again(mismatchProblem(lang));
      try {
        await svc.resetPassword(ctx, p, req.params.audienceId, req.body.token, req.body.password);
      } catch (e) {
        if (isTokenProblem(e)) return html(reply, problemStatus(e.code), tokenProblemPage(lang, 'reset', e.code));
        // The password rule's own sentence (length): the person fixes it on the same page.
        if (e instanceof AppError && e.code === 'weak_password') return again(e.message);
        throw e;
      }
      return html(reply, 200, donePage(lang, 'reset'));
    });
  });
}
