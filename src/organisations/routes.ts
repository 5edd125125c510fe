import { Type } from 'typebox';
import type { App } from '../platform/http.ts';
import { callerToken, csrfTokenFor, requireRole, SESSION_COOKIE } from '../platform/http.ts';
import type { AppContext } from '../platform/context.ts';
import { forbidden } from '../platform/errors.ts';
import * as svc from './service.ts';

const RoleSchema = Type.Union([Type.Literal('owner'), Type.Literal('editor'), Type.Literal('viewer')]);
const Id = Type.String({ format: 'uuid' });

export function organisationRoutes(app: App, ctx: AppContext) {
  app.post(
    '/v1/organisations',
    {
      schema: {
        tags: ['organisations'],
        summary: 'Create an organisation and its owner (first run, or when signup is enabled)',
        security: [],
        body: Type.Object(
          {
            name: Type.String({ minLength: 1, maxLength: 200 }),
            owner_email: Type.String({ minLength: 3, maxLength: 254 }),
            owner_password: Type.String({ minLength: 1, maxLength: 256 }),
            owner_name: Type.Optional(Type.String({ maxLength: 200 })),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (req, reply) => {
      const allowed = ctx.config.allowSignup || (await svc.countOrganisations(ctx)) === 0;
      if (!allowed) throw forbidden('organisation signup is closed on this server; ask its administrator (envoi user create)');
      const b = req.body;
      const created = await svc.createOrganisation(ctx, { name: b.name, ownerEmail: b.owner_email, ownerPassword: b.owner_password, ownerName: b.owner_name });
      const session = await svc.login(ctx, b.owner_email, b.owner_password);
      reply.status(201);
      return { organisation: created.organisation, owner: created.owner, token: session.token };
    },
  );

  app.post(
    '/v1/auth/login',
    {
      schema: {
        tags: ['auth'],
        summary: 'Log a back-office user in; returns a session token (also set as an HttpOnly cookie)',
        security: [],
        body: Type.Object({ email: Type.String({ maxLength: 254 }), password: Type.String({ maxLength: 256 }) }, { additionalProperties: false }),
      },
    },
    async (req, reply) => {
      const s = await svc.login(ctx, req.body.email, req.body.password);
      const secure = ctx.config.publicUrl.startsWith('https:') ? '; Secure' : '';
      reply.header('set-cookie', `${SESSION_COOKIE}=${encodeURIComponent(s.token)}; Path=/; HttpOnly; SameSite=Strict${secure}; Expires=${s.expiresAt.toUTCString()}`);
      return { token: s.token, expires_at: s.expiresAt, user: s.user, csrf_token: csrfTokenFor(ctx.config.secret!, s.token) };
    },
  );

  app.post('/v1/auth/logout', { schema: { tags: ['auth'], summary: 'End the current session' } }, async (req, reply) => {
    requireRole(req);
    const caller = callerToken(req);
    if (caller) await svc.logout(ctx, caller.token);
    reply.header('set-cookie', `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`);
    return { ok: true };
  });

  app.get('/v1/me', { schema: { tags: ['auth'], summary: 'Who is calling' } }, async (req) => {
    const p = requireRole(req);
    const org = await svc.getOrganisation(ctx, p.orgId);
    return { kind: p.kind, id: p.id, role: p.role, audience_ids: p.audienceIds, organisation: { id: org.id, name: org.name }, csrf_token: req.csrfToken };
  });

  app.get('/v1/users', { schema: { tags: ['organisations'], summary: 'Back-office users of the organisation' } }, async (req) => {
    const p = requireRole(req, 'owner');
    return { users: await svc.listUsers(ctx, p.orgId) };
  });

  app.post(
    '/v1/users',
    {
      schema: {
        tags: ['organisations'],
        summary: 'Add a back-office user',
        body: Type.Object(
          { email: Type.String({ maxLength: 254 }), password: Type.String({ maxLength: 256 }), role: RoleSchema, name: Type.Optional(Type.String({ maxLength: 200 })) },
          { additionalProperties: false },
        ),
      },
    },
    async (req, reply) => {
      const p = requireRole(req, 'owner');
      reply.status(201);
      return svc.createUser(ctx, p.orgId, req.body);
    },
  );

  app.patch(
    '/v1/users/:id',
    {
      schema: {
        tags: ['organisations'],
        summary: "Change a back-office user's role or name (the organisation keeps at least one owner: 409 last_owner)",
        params: Type.Object({ id: Id }),
        body: Type.Object({ role: Type.Optional(RoleSchema), name: Type.Optional(Type.String({ maxLength: 200 })) }, { additionalProperties: false }),
      },
    },
    async (req) => {
      const p = requireRole(req, 'owner');
      return svc.updateUser(ctx, p.orgId, req.params.id, req.body);
    },
  );

  app.delete(
    '/v1/users/:id',
    { schema: { tags: ['organisations'], summary: 'Remove a back-office user; their sessions end at once (not the last owner: 409 last_owner)', params: Type.Object({ id: Id }) } },
    async (req, reply) => {
      const p = requireRole(req, 'owner');
      await svc.removeUser(ctx, p.orgId, req.params.id);
      reply.status(204);
    },
  );

  app.get('/v1/api-keys', { schema: { tags: ['organisations'], summary: 'API keys (never the secret)' } }, async (req) => {
    const p = requireRole(req, 'owner');
    return { api_keys: await svc.listApiKeys(ctx, p.orgId) };
  });

  app.post(
    '/v1/api-keys',
    {
      schema: {
        tags: ['organisations'],
        summary: 'Create an API key; the secret is in this response only',
        body: Type.Object(
          {
            name: Type.String({ minLength: 1, maxLength: 200 }),
            role: Type.Optional(RoleSchema),
            audience_ids: Type.Optional(Type.Array(Id, { maxItems: 1000 })),
            rate_limit_per_minute: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (req, reply) => {
      const p = requireRole(req, 'owner');
      const b = req.body;
      reply.status(201);
      return svc.createApiKey(ctx, p.orgId, { name: b.name, role: b.role, audienceIds: b.audience_ids, rateLimitPerMinute: b.rate_limit_per_minute });
    },
  );

  app.delete('/v1/api-keys/:id', { schema: { tags: ['organisations'], summary: 'Revoke an API key', params: Type.Object({ id: Id }) } }, async (req, reply) => {
    const p = requireRole(req, 'owner');
    await svc.revokeApiKey(ctx, p.orgId, req.params.id);
    reply.status(204);
  });
}
