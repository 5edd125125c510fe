import type { Kysely } from 'kysely';
import type { AppContext } from '../platform/context.ts';
import type { DB, Role } from '../platform/schema.ts';
import { checkEmail } from '../platform/email-address.ts';
import { badRequest, conflict, notFound, unauthorized } from '../platform/errors.ts';
import { burnPasswordCheck, hashPassword, hashToken, randomToken, verifyPassword } from '../platform/secrets.ts';
import { API_KEY_PREFIX, SESSION_PREFIX, keyDisplayPrefix, passwordProblem } from './rules.ts';

export interface Principal {
  orgId: string;
  role: Role;
  kind: 'user' | 'key';
  /** user id or API key id */
  id: string;
  /** null: every audience of the organisation */
  audienceIds: string[] | null;
  rateLimitPerMinute: number | null;
}

const SESSION_DAYS = 14;

function validEmail(input: string, field = 'email'): string {
  const r = checkEmail(input);
  if (!r.ok) throw badRequest('invalid_email', `${field}: ${r.reason}`);
  return r.email;
}

function validPassword(password: string) {
  const p = passwordProblem(password);
  if (p) throw badRequest('weak_password', p);
}

export async function countOrganisations(ctx: AppContext): Promise<number> {
  const r = await ctx.db.selectFrom('organisations').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  return Number(r.n);
}

/** Creates an organisation and its first owner in one transaction. */
export async function createOrganisation(ctx: AppContext, input: { name: string; ownerEmail: string; ownerPassword: string; ownerName?: string }) {
  const name = input.name.trim();
  if (!name) throw badRequest('invalid_name', 'organisation name is empty');
  const email = validEmail(input.ownerEmail, 'owner_email');
  validPassword(input.ownerPassword);
  const passwordHash = await hashPassword(input.ownerPassword);
  return ctx.db.transaction().execute(async (trx) => {
    const org = await trx.insertInto('organisations').values({ name, settings: JSON.stringify({}) }).returning(['id', 'name', 'created_at']).executeTakeFirstOrThrow();
    const user = await insertUser(trx, org.id, { email, name: input.ownerName ?? '', role: 'owner', passwordHash });
    return { organisation: org, owner: user };
  });
}

async function insertUser(db: Kysely<DB>, orgId: string, u: { email: string; name: string; role: Role; passwordHash: string }) {
  const taken = await db.selectFrom('users').select('id').where((eb) => eb(eb.fn('lower', ['email']), '=', u.email.toLowerCase())).executeTakeFirst();
  if (taken) throw conflict('email_taken', 'a back-office user with this email already exists');
  return db
    .insertInto('users')
    .values({ org_id: orgId, email: u.email, name: u.name, role: u.role, password_hash: u.passwordHash })
    .returning(['id', 'org_id', 'email', 'name', 'role', 'created_at'])
    .executeTakeFirstOrThrow();
}

export async function createUser(ctx: AppContext, orgId: string, input: { email: string; password: string; role: Role; name?: string }) {
  const email = validEmail(input.email);
  validPassword(input.password);
  const passwordHash = await hashPassword(input.password);
  return insertUser(ctx.db, orgId, { email, name: input.name ?? '', role: input.role, passwordHash });
}

export async function listUsers(ctx: AppContext, orgId: string) {
  return ctx.db.selectFrom('users').select(['id', 'email', 'name', 'role', 'created_at']).where('org_id', '=', orgId).orderBy('created_at').execute();
}

/** Serialises the changes of an organisation's owners: two owners demoting each other at once cannot leave none. */
async function lockOrganisation(trx: Kysely<DB>, orgId: string) {
  await trx.selectFrom('organisations').select('id').where('id', '=', orgId).forUpdate().executeTakeFirst();
}

async function refuseLastOwner(trx: Kysely<DB>, orgId: string, user: { id: string; email: string }, doing: 'demote' | 'remove') {
  const others = await trx.selectFrom('users').select('id').where('org_id', '=', orgId).where('role', '=', 'owner').where('id', '!=', user.id).limit(1).executeTakeFirst();
  if (others) return;
  const what = doing === 'demote' ? `${user.email} cannot stop being an owner` : `${user.email} cannot be removed`;
  throw conflict('last_owner', `${what}: they are the organisation's last owner, and an organisation keeps at least one. Make another user owner first.`);
}

/** Changes a user's role or name; the organisation keeps at least one owner. A new role applies to their open sessions at once. */
export async function updateUser(ctx: AppContext, orgId: string, id: string, input: { role?: Role; name?: string }) {
  if (input.role === undefined && input.name === undefined) throw badRequest('nothing_to_change', 'give a role or a name');
  return ctx.db.transaction().execute(async (trx) => {
    await lockOrganisation(trx, orgId);
    const user = await trx.selectFrom('users').select(['id', 'email', 'role']).where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst();
    if (!user) throw notFound('user');
    if (user.role === 'owner' && input.role !== undefined && input.role !== 'owner') await refuseLastOwner(trx, orgId, user, 'demote');
    return trx
      .updateTable('users')
      .set({ ...(input.role !== undefined ? { role: input.role } : {}), ...(input.name !== undefined ? { name: input.name.trim() } : {}) })
      .where('org_id', '=', orgId)
      .where('id', '=', id)
      .returning(['id', 'email', 'name', 'role', 'created_at'])
      .executeTakeFirstOrThrow();
  });
}

/** Removes a back-office user; their sessions go with them (ON DELETE CASCADE), so they are logged out at once. */
export async function removeUser(ctx: AppContext, orgId: string, id: string) {
  await ctx.db.transaction().execute(async (trx) => {
    await lockOrganisation(trx, orgId);
    const user = await trx.selectFrom('users').select(['id', 'email', 'role']).where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst();
    if (!user) throw notFound('user');
    if (user.role === 'owner') await refuseLastOwner(trx, orgId, user, 'remove');
    await trx.deleteFrom('user_sessions').where('user_id', '=', id).execute();
    await trx.deleteFrom('users').where('org_id', '=', orgId).where('id', '=', id).execute();
  });
}

export async function login(ctx: AppContext, emailInput: string, password: string) {
  const user = await ctx.db
    .selectFrom('users')
    .selectAll()
    .where((eb) => eb(eb.fn('lower', ['email']), '=', String(emailInput).trim().toLowerCase()))
    .executeTakeFirst();
  if (!user) {
    await burnPasswordCheck(password);
    throw unauthorized('wrong email or password');
  }
  if (!(await verifyPassword(user.password_hash, password))) throw unauthorized('wrong email or password');
  const token = randomToken(SESSION_PREFIX);
  const expiresAt = new Date(ctx.now().getTime() + SESSION_DAYS * 86_400_000);
  await ctx.db.insertInto('user_sessions').values({ user_id: user.id, token_hash: hashToken(token), expires_at: expiresAt }).execute();
  return { token, expiresAt, user: { id: user.id, org_id: user.org_id, email: user.email, name: user.name, role: user.role } };
}

export async function logout(ctx: AppContext, token: string) {
  await ctx.db.deleteFrom('user_sessions').where('token_hash', '=', hashToken(token)).execute();
}

export async function createApiKey(
  ctx: AppContext,
  orgId: string,
  input: { name: string; role?: Role; audienceIds?: string[] | null; rateLimitPerMinute?: number },
) {
  const name = input.name.trim();
  if (!name) throw badRequest('invalid_name', 'API key name is empty');
  const audienceIds = input.audienceIds && input.audienceIds.length ? [...new Set(input.audienceIds)] : null;
  if (audienceIds) {
    const found = await ctx.db.selectFrom('audiences').select('id').where('org_id', '=', orgId).where('id', 'in', audienceIds).execute();
    if (found.length !== audienceIds.length) throw badRequest('unknown_audience', 'audience_ids names an audience this organisation does not have');
  }
  const key = randomToken(API_KEY_PREFIX);
  const row = await ctx.db
    .insertInto('api_keys')
    .values({
      org_id: orgId,
      name,
      prefix: keyDisplayPrefix(key),
      key_hash: hashToken(key),
      role: input.role ?? 'editor',
      audience_ids: audienceIds,
      rate_limit_per_minute: input.rateLimitPerMinute ?? 300,
    })
    .returning(['id', 'name', 'prefix', 'role', 'audience_ids', 'rate_limit_per_minute', 'created_at'])
    .executeTakeFirstOrThrow();
  return { ...row, key };
}

export async function listApiKeys(ctx: AppContext, orgId: string) {
  return ctx.db
    .selectFrom('api_keys')
    .select(['id', 'name', 'prefix', 'role', 'audience_ids', 'rate_limit_per_minute', 'created_at', 'last_used_at', 'revoked_at'])
    .where('org_id', '=', orgId)
    .orderBy('created_at')
    .execute();
}

export async function revokeApiKey(ctx: AppContext, orgId: string, id: string) {
  const r = await ctx.db.updateTable('api_keys').set({ revoked_at: ctx.now() }).where('org_id', '=', orgId).where('id', '=', id).where('revoked_at', 'is', null).executeTakeFirst();
  if (Number(r.numUpdatedRows) === 0) throw notFound('API key');
  forgetKey(ctx.db, id);
}

// ---- API keys seen recently ----
// An integration sends many requests with one key: looking the key up for each of them was one
// statement per request. A key found is kept for KEY_CACHE_MS, so a revocation (or a change of its
// role or limit) made by another process takes effect there within that time, and at once in the
// process that made it. Unknown tokens are not kept: a guesser cannot fill the cache.

const KEY_CACHE_MS = 2_000;
const KEY_CACHE_MAX = 10_000;
type CachedKey = { principal: Principal | null; until: number };
const keyCaches = new WeakMap<Kysely<DB>, Map<string, Promise<CachedKey>>>();

function keyCache(db: Kysely<DB>) {
  let c = keyCaches.get(db);
  if (!c) keyCaches.set(db, (c = new Map()));
  return c;
}

function forgetKey(db: Kysely<DB>, keyId: string) {
  const cache = keyCache(db);
  for (const [hash, entry] of cache) {
    void entry.then((e) => {
      if (e.principal?.id === keyId && cache.get(hash) === entry) cache.delete(hash);
    });
  }
}

/** How fresh a key's `last_used_at` is kept: at most one write per key and process per minute, off the request's path. */
const LAST_USED_STEP_MS = 60_000;

async function lookUpKey(db: Kysely<DB>, tokenHash: string): Promise<CachedKey> {
  const key = await db.selectFrom('api_keys').selectAll().where('key_hash', '=', tokenHash).where('revoked_at', 'is', null).executeTakeFirst();
  if (key && (!key.last_used_at || Date.now() - key.last_used_at.getTime() >= LAST_USED_STEP_MS)) {
    // Not awaited: the request does not wait for a bookkeeping write, nor fail with it.
    db.updateTable('api_keys').set({ last_used_at: new Date() }).where('id', '=', key.id).execute().catch(() => {});
  }
  return {
    principal: key ? { orgId: key.org_id, role: key.role, kind: 'key', id: key.id, audienceIds: key.audience_ids, rateLimitPerMinute: key.rate_limit_per_minute } : null,
    until: performance.now() + KEY_CACHE_MS,
  };
}

async function keyPrincipal(db: Kysely<DB>, tokenHash: string): Promise<Principal | null> {
  const cache = keyCache(db);
  // A copy per request: what a request learns on its principal (the audiences it saw) stays its own.
  const copy = (p: Principal | null): Principal | null => (p ? { ...p, audienceIds: p.audienceIds ? [...p.audienceIds] : null } : null);
  const held = cache.get(tokenHash);
  if (held) {
    const e = await held;
    if (e.until >= performance.now()) return copy(e.principal);
    if (cache.get(tokenHash) === held) cache.delete(tokenHash);
  }
  let entry = cache.get(tokenHash);
  if (!entry) {
    // Concurrent requests of one key wait for the same lookup.
    const lookup = lookUpKey(db, tokenHash);
    entry = lookup;
    cache.set(tokenHash, lookup);
    if (cache.size > KEY_CACHE_MAX) cache.delete(cache.keys().next().value!);
    const drop = () => {
      if (cache.get(tokenHash) === lookup) cache.delete(tokenHash);
    };
    lookup.then((e) => !e.principal && drop(), drop);
  }
  return copy((await entry).principal);
}

/** Resolves a bearer token (API key or session) to who is calling, or null. */
export async function authenticate(ctx: AppContext, token: string): Promise<Principal | null> {
  const tokenHash = hashToken(token);
  if (token.startsWith(API_KEY_PREFIX)) return keyPrincipal(ctx.db, tokenHash);
  if (token.startsWith(SESSION_PREFIX)) {
    const s = await ctx.db
      .selectFrom('user_sessions')
      .innerJoin('users', 'users.id', 'user_sessions.user_id')
      .select(['users.id', 'users.org_id', 'users.role', 'user_sessions.expires_at'])
      .where('user_sessions.token_hash', '=', tokenHash)
      .executeTakeFirst();
    if (!s || s.expires_at <= ctx.now()) return null;
    return { orgId: s.org_id, role: s.role, kind: 'user', id: s.id, audienceIds: null, rateLimitPerMinute: null };
  }
  return null;
}

export async function getOrganisation(ctx: AppContext, orgId: string) {
  const org = await ctx.db.selectFrom('organisations').select(['id', 'name', 'settings', 'created_at']).where('id', '=', orgId).executeTakeFirst();
  if (!org) throw notFound('organisation');
  return org;
}
