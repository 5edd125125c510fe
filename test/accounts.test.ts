import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/platform/config.ts';
import { createEnvoi } from '../src/app.ts';
import * as orgs from '../src/organisations/service.ts';
import { expectStatus, freshDatabase, startTestApp, type TestApp, type TestOrg } from './support/harness.ts';

let t: TestApp;
let org: TestOrg;
let site: string; // the organiser's site backend: an editor key
let viewer: string;
let audienceId: string;
let otherAudienceId: string;

/** Every password any test sends: no response may ever contain one, nor an argon2 hash. */
const passwords = new Set<string>();
let n = 0;
const newPassword = () => {
  const p = `Pw-${++n}-correct-horse-${Math.random().toString(36).slice(2, 8)}`;
  passwords.add(p);
  return p;
};
const newEmail = (tag: string) => `${tag}-${++n}@example.com`;

async function call(method: string, url: string, opts: { token?: string; body?: unknown } = {}) {
  const r = await t.request(method, url, { token: site, ...opts });
  expect(r.text, `${method} ${url}`).not.toContain('$argon2');
  for (const p of passwords) expect(r.text, `${method} ${url}`).not.toContain(p);
  return r;
}

const accounts = (audience = audienceId) => `/v1/audiences/${audience}/accounts`;
const contactUrl = (contactId: string) => `/v1/audiences/${audienceId}/contacts/${contactId}`;
const MIN = 60_000;
const advance = (ms: number) => (t.clock.now = new Date(t.clock.now.getTime() + ms));

async function signUp(body: Record<string, unknown> = {}) {
  const email = (body.email as string) ?? newEmail('person');
  const password = (body.password as string) ?? newPassword();
  const r = await call('POST', accounts(), { body: { email, password, ...body } });
  expectStatus(r, 201);
  return { email, password, contactId: r.body.contact_id as string, confirmToken: r.body.confirm_token as string, body: r.body };
}
const login = (email: string, password: string, audience = audienceId) => call('POST', `${accounts(audience)}/login`, { body: { email, password } });
const accountOf = async (contactId: string) => {
  const r = await call('GET', contactUrl(contactId));
  expectStatus(r, 200);
  return r.body.account;
};

beforeAll(async () => {
  t = await startTestApp();
  org = await t.createOrg('Accounts Org');
  const a = await t.request('POST', '/v1/audiences', { token: org.apiKey, body: { name: 'Members' } });
  expectStatus(a, 201);
  audienceId = a.body.id;
  const b = await t.request('POST', '/v1/audiences', { token: org.apiKey, body: { name: 'Other audience' } });
  otherAudienceId = b.body.id;
  const e = await t.request('POST', '/v1/api-keys', { token: org.ownerToken, body: { name: 'site backend', role: 'editor' } });
  expectStatus(e, 201);
  site = e.body.key;
  const v = await t.request('POST', '/v1/api-keys', { token: org.ownerToken, body: { name: 'viewer', role: 'viewer' } });
  viewer = v.body.key;
  // The organiser's site, whose pages may take the tokens (ENVOI_ACCOUNT_PAGE_ORIGINS).
  t.envoi.ctx.config.accountPageOrigins = ['https://site.example'];
});
afterAll(async () => t?.close());

describe('sign-up', () => {
  it('creates the contact and an unconfirmed account, storing only an argon2id hash', async () => {
    const s = await signUp({ first_name: 'Ada', last_name: 'Lovelace' });
    expect(s.body).toMatchObject({ contact_created: true, confirmed: false });
    expect(s.confirmToken).toMatch(/^ec_/);
    const contact = await call('GET', contactUrl(s.contactId));
    expect(contact.body).toMatchObject({ email: s.email, first_name: 'Ada', last_name: 'Lovelace' });
    expect(contact.body.account).toMatchObject({ confirmed: false, locked: false, failed_attempts: 0, lock_end: null });
    const row = await t.envoi.ctx.db.selectFrom('contact_accounts').select('password_hash').where('contact_id', '=', s.contactId).executeTakeFirstOrThrow();
    expect(row.password_hash).toMatch(/^\$argon2id\$/);
    expect(row.password_hash).not.toContain(s.password);
    const token = await t.envoi.ctx.db.selectFrom('account_tokens').select(['token_hash', 'kind']).where('contact_id', '=', s.contactId).executeTakeFirstOrThrow();
    expect(token.kind).toBe('confirm');
    expect(token.token_hash).not.toContain(s.confirmToken);

    const ok = await login(s.email.toUpperCase(), s.password);
    expectStatus(ok, 200);
    expect(ok.body).toEqual({ contact_id: s.contactId, confirmed: false });
  });

  it('attaches the account to an existing contact without overwriting what the organiser knows', async () => {
    const email = newEmail('known');
    const c = await call('POST', `/v1/audiences/${audienceId}/contacts`, { body: { email, first_name: 'Grace' } });
    expectStatus(c, 201);
    const s = await signUp({ email: email.toUpperCase(), first_name: 'Mallory', last_name: 'Hopper' });
    expect(s.body.contact_created).toBe(false);
    expect(s.contactId).toBe(c.body.id);
    const after = await call('GET', contactUrl(c.body.id));
    expect(after.body).toMatchObject({ first_name: 'Grace', last_name: 'Hopper' });
    expect(after.body.account).toMatchObject({ confirmed: false, locked: false });
  });

  it('refuses a second account for the same contact with 409, keeping the first password', async () => {
    const s = await signUp();
    const again = await call('POST', accounts(), { body: { email: s.email, password: newPassword() } });
    expectStatus(again, 409);
    expect(again.body.error.code).toBe('account_exists');
    expectStatus(await login(s.email, s.password), 200);
  });

  it('refuses bad input with a clear 400 and creates nothing', async () => {
    const email = newEmail('bad');
    const cases: [unknown, string][] = [
      [{ email, password: 'short' }, 'weak_password'],
      [{ email, password: 'x'.repeat(257) }, 'weak_password'],
      [{ email: 'not-an-email', password: newPassword() }, 'invalid_email'],
      [{ email }, 'invalid_request'],
      [{ email, password: newPassword(), shoe_size: 42 }, 'invalid_request'],
    ];
    for (const [body, code] of cases) {
      const r = await call('POST', accounts(), { body });
      expectStatus(r, 400);
      expect(r.body.error.code, JSON.stringify(body)).toBe(code);
    }
    expect(JSON.stringify((await call('POST', accounts(), { body: { email, password: 'short' } })).body)).toMatch(/at least 10 characters/);
    const found = await t.envoi.ctx.db.selectFrom('contacts').select('id').where('email_lower', '=', email).execute();
    expect(found).toEqual([]);
    // exactly the bounds: 10 and 256 characters
    const ten = 'ten-chars!';
    const max = 'y'.repeat(256);
    passwords.add(ten);
    passwords.add(max);
    await signUp({ password: ten });
    await signUp({ password: max });
  });

  it('answers a wrong password and an unknown email identically', async () => {
    const s = await signUp();
    const wrong = await login(s.email, newPassword());
    const unknown = await login(newEmail('nobody'), newPassword());
    const noAccount = await call('POST', `/v1/audiences/${audienceId}/contacts`, { body: { email: newEmail('no-account') } });
    const contactOnly = await login(noAccount.body.email, newPassword());
    for (const r of [wrong, unknown, contactOnly]) {
      expectStatus(r, 401);
      expect(r.body).toEqual({ error: { code: 'invalid_credentials', message: 'wrong email or password' } });
    }
  });
});

describe('confirmation', () => {
  it('confirms with the emailed token once', async () => {
    const s = await signUp();
    const c = await call('POST', `${accounts()}/confirm`, { body: { token: s.confirmToken } });
    expectStatus(c, 200);
    expect(c.body).toEqual({ contact_id: s.contactId, confirmed: true });
    expect(await accountOf(s.contactId)).toMatchObject({ confirmed: true });
    expect((await login(s.email, s.password)).body.confirmed).toBe(true);
    const again = await call('POST', `${accounts()}/confirm`, { body: { token: s.confirmToken } });
    expectStatus(again, 400);
    expect(again.body.error.code).toBe('token_used');
  });

  it('refuses unknown tokens and tokens of another audience', async () => {
    const unknown = await call('POST', `${accounts()}/confirm`, { body: { token: 'ec_nope' } });
    expectStatus(unknown, 400);
    expect(unknown.body.error.code).toBe('invalid_token');
    const s = await signUp();
    const elsewhere = await call('POST', `${accounts(otherAudienceId)}/confirm`, { body: { token: s.confirmToken } });
    expectStatus(elsewhere, 400);
    expect(elsewhere.body.error.code).toBe('invalid_token');
    expect(await accountOf(s.contactId)).toMatchObject({ confirmed: false });
  });

  it('accepts a token one ms before its expiry (3 days) and refuses it at expiry', async () => {
    const early = await signUp();
    const late = await signUp();
    advance(3 * 24 * 60 * MIN - 1);
    expectStatus(await call('POST', `${accounts()}/confirm`, { body: { token: early.confirmToken } }), 200);
    advance(1);
    const r = await call('POST', `${accounts()}/confirm`, { body: { token: late.confirmToken } });
    expectStatus(r, 400);
    expect(r.body.error.code).toBe('token_expired');
    expect(await accountOf(late.contactId)).toMatchObject({ confirmed: false });
  });
});

describe('lockout', () => {
  it('locks after 5 wrong passwords, shows the lock end, refuses even the right password, and unlocks by itself', async () => {
    const s = await signUp();
    for (let i = 1; i <= 4; i++) {
      const r = await login(s.email, newPassword());
      expectStatus(r, 401);
      expect(await accountOf(s.contactId)).toMatchObject({ failed_attempts: i, locked: false, lock_end: null });
    }
    const lockedAt = t.clock.now.getTime();
    const fifth = await login(s.email, newPassword());
    expectStatus(fifth, 423);
    const lockEnd = new Date(lockedAt + 15 * MIN).toISOString();
    expect(fifth.body.error).toMatchObject({ code: 'account_locked', details: { lock_end: lockEnd } });
    expect(fifth.body.error.message).toContain(lockEnd);
    expect(await accountOf(s.contactId)).toMatchObject({ locked: true, failed_attempts: 5, lock_end: lockEnd });

    const during = await login(s.email, s.password);
    expectStatus(during, 423);
    expect(during.body.error.details.lock_end).toBe(lockEnd);
    advance(15 * MIN - 1);
    expectStatus(await login(s.email, s.password), 423);
    expectStatus(await login(s.email, newPassword()), 423);
    expect(await accountOf(s.contactId)).toMatchObject({ locked: true, failed_attempts: 5, lock_end: lockEnd });

    advance(1); // exactly the lock end
    expect(await accountOf(s.contactId)).toMatchObject({ locked: false, failed_attempts: 0, lock_end: null });
    const after = await login(s.email, s.password);
    expectStatus(after, 200);
    expect(after.body.contact_id).toBe(s.contactId);
    expect(await accountOf(s.contactId)).toMatchObject({ locked: false, failed_attempts: 0, lock_end: null });
  });

  it('gives a fresh set of attempts after a lock has ended', async () => {
    const s = await signUp();
    for (let i = 0; i < 5; i++) await login(s.email, newPassword());
    expect(await accountOf(s.contactId)).toMatchObject({ locked: true });
    advance(15 * MIN);
    expectStatus(await login(s.email, newPassword()), 401);
    expect(await accountOf(s.contactId)).toMatchObject({ locked: false, failed_attempts: 1 });
  });

  it('a successful login resets the counter', async () => {
    const s = await signUp();
    for (let i = 0; i < 4; i++) expectStatus(await login(s.email, newPassword()), 401);
    expectStatus(await login(s.email, s.password), 200);
    expect(await accountOf(s.contactId)).toMatchObject({ failed_attempts: 0 });
    for (let i = 0; i < 4; i++) expectStatus(await login(s.email, newPassword()), 401);
    expect(await accountOf(s.contactId)).toMatchObject({ failed_attempts: 4, locked: false });
  });

  it('counts every one of parallel wrong passwords', async () => {
    const s = await signUp();
    const three = await Promise.all([1, 2, 3].map(() => login(s.email, newPassword())));
    expect(three.map((r) => r.status)).toEqual([401, 401, 401]);
    expect(await accountOf(s.contactId)).toMatchObject({ failed_attempts: 3, locked: false });

    const other = await signUp();
    const many = await Promise.all(Array.from({ length: 30 }, () => login(other.email, newPassword())));
    const statuses = many.map((r) => r.status);
    expect(statuses.filter((s) => s === 401).length).toBe(4);
    expect(statuses.filter((s) => s === 423).length).toBe(26);
    expect(await accountOf(other.contactId)).toMatchObject({ failed_attempts: 5, locked: true });
  });
});

describe("the organiser's actions", () => {
  async function lockedAccount() {
    const s = await signUp();
    for (let i = 0; i < 5; i++) await login(s.email, newPassword());
    expect(await accountOf(s.contactId)).toMatchObject({ locked: true });
    return s;
  }

  it('unlocks an account and clears its counter', async () => {
    const s = await lockedAccount();
    const u = await call('POST', `${contactUrl(s.contactId)}/account/unlock`);
    expectStatus(u, 200);
    expect(u.body).toMatchObject({ locked: false, failed_attempts: 0, lock_end: null, confirmed: false });
    expect(await accountOf(s.contactId)).toMatchObject({ locked: false, failed_attempts: 0, lock_end: null });
    expectStatus(await login(s.email, s.password), 200);
  });

  it('answers 404 for a contact without an account', async () => {
    const c = await call('POST', `/v1/audiences/${audienceId}/contacts`, { body: { email: newEmail('plain') } });
    for (const action of ['unlock', 'password-reset']) {
      const r = await call('POST', `${contactUrl(c.body.id)}/account/${action}`);
      expectStatus(r, 404);
      expect(r.body.error.message).toMatch(/account/);
    }
  });

  it('sends a single-use reset token; the old password works until it is used, then stops', async () => {
    const s = await signUp();
    const first = await call('POST', `${contactUrl(s.contactId)}/account/password-reset`);
    expectStatus(first, 202);
    expect(first.body.reset_token).toMatch(/^er_/);
    expect(new Date(first.body.expires_at).getTime()).toBe(t.clock.now.getTime() + 60 * MIN);
    const second = await call('POST', `${contactUrl(s.contactId)}/account/password-reset`);
    expectStatus(second, 202);
    expectStatus(await login(s.email, s.password), 200);

    const replaced = await call('POST', `${accounts()}/password-reset`, { body: { token: first.body.reset_token, password: newPassword() } });
    expectStatus(replaced, 400);
    expect(replaced.body.error.code).toBe('invalid_token');

    const weak = await call('POST', `${accounts()}/password-reset`, { body: { token: second.body.reset_token, password: 'short' } });
    expectStatus(weak, 400);
    expect(weak.body.error.code).toBe('weak_password');

    const fresh = newPassword();
    const used = await call('POST', `${accounts()}/password-reset`, { body: { token: second.body.reset_token, password: fresh } });
    expectStatus(used, 200);
    expect(used.body).toEqual({ contact_id: s.contactId });
    expectStatus(await login(s.email, s.password), 401);
    expectStatus(await login(s.email, fresh), 200);

    const twice = await call('POST', `${accounts()}/password-reset`, { body: { token: second.body.reset_token, password: newPassword() } });
    expectStatus(twice, 400);
    expect(twice.body.error.code).toBe('token_used');
    expectStatus(await login(s.email, fresh), 200);
    // the token came by email: it proves the address too
    expect(await accountOf(s.contactId)).toMatchObject({ confirmed: true });
  });

  it('reset tokens expire after resetTokenMinutes', async () => {
    const s = await signUp();
    const r = await call('POST', `${contactUrl(s.contactId)}/account/password-reset`);
    advance(t.envoi.config.resetTokenMinutes * MIN);
    const late = await call('POST', `${accounts()}/password-reset`, { body: { token: r.body.reset_token, password: newPassword() } });
    expectStatus(late, 400);
    expect(late.body.error.code).toBe('token_expired');
    expectStatus(await login(s.email, s.password), 200);

    const r2 = await call('POST', `${contactUrl(s.contactId)}/account/password-reset`);
    advance(t.envoi.config.resetTokenMinutes * MIN - 1);
    const p = newPassword();
    expectStatus(await call('POST', `${accounts()}/password-reset`, { body: { token: r2.body.reset_token, password: p } }), 200);
    expectStatus(await login(s.email, p), 200);
  });

  it('a reset also ends a lock', async () => {
    const s = await lockedAccount();
    const r = await call('POST', `${contactUrl(s.contactId)}/account/password-reset`);
    const p = newPassword();
    expectStatus(await call('POST', `${accounts()}/password-reset`, { body: { token: r.body.reset_token, password: p } }), 200);
    expect(await accountOf(s.contactId)).toMatchObject({ locked: false, failed_attempts: 0 });
    expectStatus(await login(s.email, p), 200);
  });
});

describe('self-service reset request', () => {
  it('always answers 202, and sends a token only when the email has an account', async () => {
    const s = await signUp();
    const known = await call('POST', `${accounts()}/password-reset-request`, { body: { email: s.email.toUpperCase() } });
    const unknown = await call('POST', `${accounts()}/password-reset-request`, { body: { email: newEmail('stranger') } });
    const plain = await call('POST', `/v1/audiences/${audienceId}/contacts`, { body: { email: newEmail('plain') } });
    const noAccount = await call('POST', `${accounts()}/password-reset-request`, { body: { email: plain.body.email } });
    for (const r of [known, unknown, noAccount]) expectStatus(r, 202);
    const { reset_token, ...rest } = known.body;
    expect(reset_token).toMatch(/^er_/);
    expect(rest).toEqual(unknown.body);
    expect(noAccount.body).toEqual(unknown.body);
    const p = newPassword();
    expectStatus(await call('POST', `${accounts()}/password-reset`, { body: { token: reset_token, password: p } }), 200);
    expectStatus(await login(s.email, p), 200);
    expectStatus(await login(s.email, s.password), 401);
  });
});

describe('erasure', () => {
  it('deleting the contact erases its account and tokens', async () => {
    const s = await signUp();
    const reset = await call('POST', `${accounts()}/password-reset-request`, { body: { email: s.email } });
    const db = t.envoi.ctx.db;
    expect((await db.selectFrom('account_tokens').select('id').where('contact_id', '=', s.contactId).execute()).length).toBe(2);
    const del = await call('DELETE', contactUrl(s.contactId));
    expectStatus(del, 200);
    expect(del.body.account).toBe(true);
    expect(await db.selectFrom('contact_accounts').select('contact_id').where('contact_id', '=', s.contactId).execute()).toEqual([]);
    expect(await db.selectFrom('account_tokens').select('id').where('contact_id', '=', s.contactId).execute()).toEqual([]);
    expectStatus(await login(s.email, s.password), 401);
    expect((await call('POST', `${accounts()}/confirm`, { body: { token: s.confirmToken } })).body.error.code).toBe('invalid_token');
    expect((await call('POST', `${accounts()}/password-reset`, { body: { token: reset.body.reset_token, password: newPassword() } })).body.error.code).toBe('invalid_token');
    // the email can sign up afresh, as a new contact
    const again = await signUp({ email: s.email });
    expect(again.body.contact_created).toBe(true);
  });
});

describe('isolation and roles', () => {
  async function everyRoute() {
    const s = await signUp();
    return [
      ['POST', accounts(), { email: newEmail('intruder'), password: newPassword() }],
      ['POST', `${accounts()}/login`, { email: s.email, password: s.password }],
      ['POST', `${accounts()}/confirm`, { token: s.confirmToken }],
      ['POST', `${accounts()}/password-reset`, { token: 'er_x', password: newPassword() }],
      ['POST', `${accounts()}/password-reset-request`, { email: s.email }],
      ['POST', `${contactUrl(s.contactId)}/account/unlock`, undefined],
      ['POST', `${contactUrl(s.contactId)}/account/password-reset`, undefined],
    ] as const;
  }

  it("another organisation's key or session, or a key for another audience, gets 404 everywhere", async () => {
    const other = await t.createOrg('Intruders');
    const scoped = await t.request('POST', '/v1/api-keys', { token: org.ownerToken, body: { name: 'other audience only', role: 'editor', audience_ids: [otherAudienceId] } });
    expectStatus(scoped, 201);
    for (const [method, url, body] of await everyRoute()) {
      for (const token of [other.apiKey, other.ownerToken, scoped.body.key]) {
        const r = await call(method, url, { token, body });
        expect(r.status, `${method} ${url}`).toBe(404);
      }
    }
  });

  it('a viewer key gets 403 and an anonymous caller 401 on every route, changing nothing', async () => {
    const routes = await everyRoute();
    for (const [method, url, body] of routes) {
      expect((await call(method, url, { token: viewer, body })).status, `${method} ${url}`).toBe(403);
      expect((await t.request(method, url, { body })).status, `${method} ${url}`).toBe(401);
    }
    const signedUp = routes[1][2];
    const contactId = (await t.envoi.ctx.db.selectFrom('contacts').select('id').where('email_lower', '=', signedUp.email).executeTakeFirstOrThrow()).id;
    expect(await accountOf(contactId)).toMatchObject({ confirmed: false, failed_attempts: 0 });
  });
});

describe('secrets stay out of logs and, outside tests, out of answers', () => {
  it('never logs a password, a hash or a token, and shows no token when exposeTokensForTests is off', async () => {
    const lines: string[] = [];
    const fresh = await freshDatabase();
    const config = { ...loadConfig({ ENVOI_SECRET: 'test-secret-test-secret-test-secret!' }), databaseUrl: fresh.url };
    const envoi = await createEnvoi({ config, database: fresh.database, logger: { level: 'trace', stream: { write: (l: string) => lines.push(l) } } });
    try {
      const created = await orgs.createOrganisation(envoi.ctx, { name: 'Logged', ownerEmail: 'owner@example.com', ownerPassword: 'correct horse battery staple' });
      const key = (await orgs.createApiKey(envoi.ctx, created.organisation.id, { name: 'site', role: 'editor' })).key;
      const req = async (url: string, body?: unknown) => {
        const res = await envoi.http.inject({ method: 'POST', url, payload: body === undefined ? undefined : JSON.stringify(body), headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) } });
        return { status: res.statusCode, body: res.body ? JSON.parse(res.body) : null };
      };
      const aud = (await req('/v1/audiences', { name: 'Logged audience' })).body.id;
      const base = `/v1/audiences/${aud}/accounts`;
      const password = newPassword();
      const wrong = newPassword();
      const signUpRes = await req(base, { email: 'logged@example.com', password, first_name: 'Log' });
      expect(signUpRes.status).toBe(201);
      expect(signUpRes.body).not.toHaveProperty('confirm_token');
      expect(Object.keys(signUpRes.body).sort()).toEqual(['confirmed', 'contact_created', 'contact_id', 'email_sent']);
      expect((await req(`${base}/login`, { email: 'logged@example.com', password: wrong })).status).toBe(401);
      expect((await req(`${base}/login`, { email: 'logged@example.com', password })).status).toBe(200);
      expect((await req(base, { email: 'short@example.com', password: 'short-pw' })).status).toBe(400);
      const selfReset = await req(`${base}/password-reset-request`, { email: 'logged@example.com' });
      expect(selfReset).toEqual({ status: 202, body: { accepted: true } });
      const orgReset = await req(`/v1/audiences/${aud}/contacts/${signUpRes.body.contact_id}/account/password-reset`);
      expect(orgReset.status).toBe(202);
      expect(orgReset.body).not.toHaveProperty('reset_token');
      expect((await req(`${base}/password-reset`, { token: 'er_guess', password: wrong })).status).toBe(400);

      const log = lines.join('');
      expect(log).toContain('incoming request');
      expect(log).toContain(`${base}/login`);
      for (const secret of [password, wrong, 'short-pw', '$argon2', key, 'er_guess']) expect(log).not.toContain(secret);
      // the stored token hashes never appear either
      const hashes = await envoi.ctx.db.selectFrom('account_tokens').select('token_hash').execute();
      expect(hashes.length).toBeGreaterThan(0);
      for (const h of hashes) expect(log).not.toContain(h.token_hash);
    } finally {
      await envoi.close();
      await fresh.drop();
    }
  });
});

describe('account emails', () => {
  const mailOf = async (contactId: string) => (await call('GET', `${contactUrl(contactId)}/messages`)).body.items as Array<{ message_id: string; category: string; origin: string }>;
  const variablesOf = async (messageId: string) =>
    (await t.envoi.ctx.db.selectFrom('messages').select(['variables', 'sensitive']).where('id', '=', messageId).executeTakeFirstOrThrow()) as { variables: Record<string, string>; sensitive: boolean };

  it('emails the confirmation link to the page given at sign-up', async () => {
    const s = await signUp({ page_url: 'https://site.example/account/confirm?from=signup', language: 'en' });
    expect(s.body.email_sent).toBe(true);
    const mails = await mailOf(s.contactId);
    expect(mails).toHaveLength(1);
    expect(mails[0]).toMatchObject({ category: 'transactional', origin: 'triggered' });
    const stored = await variablesOf(mails[0]!.message_id);
    expect(stored.sensitive).toBe(true);
    expect(stored.variables.confirm_url).toBe(`https://site.example/account/confirm?from=signup&token=${s.confirmToken}`);
  });

  it('without a page of the caller, links to envoi\'s own page; a bad page is refused before the account is created', async () => {
    const s = await signUp({ language: 'fr' });
    expect(s.body.email_sent).toBe(true);
    const mails = await mailOf(s.contactId);
    expect(mails).toHaveLength(1);
    const link = new URL((await variablesOf(mails[0]!.message_id)).variables.confirm_url!);
    expect(`${link.origin}${link.pathname}`).toBe(`${t.envoi.ctx.config.publicUrl.replace(/\/+$/, '')}/a/${audienceId}/confirm`);
    expect(link.searchParams.get('lang')).toBe('fr');
    expect(link.searchParams.get('token')).toBe(s.confirmToken);
    const email = newEmail('bad-page');
    const bad = await call('POST', accounts(), { body: { email, password: newPassword(), page_url: 'javascript:alert(1)' } });
    expectStatus(bad, 400);
    expect(bad.body.error.code).toBe('invalid_url');
    // A page on an origin the operator did not list: a key holder cannot have the tokens sent to a server of theirs.
    for (const page_url of ['https://attacker.example/steal', 'http://site.example/account', 'https://site.example.attacker.example/x']) {
      const elsewhere = await call('POST', accounts(), { body: { email, password: newPassword(), page_url } });
      expectStatus(elsewhere, 400);
      expect(elsewhere.body.error.code).toBe('page_url_not_allowed');
      const reset = await call('POST', `${accounts()}/password-reset-request`, { body: { email: s.email, page_url } });
      expectStatus(reset, 400);
    }
    // Nothing was created: the same email signs up afresh (a second account would be a 409).
    expectStatus(await call('POST', accounts(), { body: { email, password: newPassword() } }), 201);
  });

  it('emails a reset link on request (the answer the same with or without an account) and on the organiser\'s action', async () => {
    const s = await signUp();
    const page = 'https://site.example/account/reset';
    const known = await call('POST', `${accounts()}/password-reset-request`, { body: { email: s.email, page_url: page } });
    const unknown = await call('POST', `${accounts()}/password-reset-request`, { body: { email: newEmail('stranger'), page_url: page } });
    expectStatus(known, 202);
    expectStatus(unknown, 202);
    expect(Object.keys(known.body).filter((k) => k !== 'reset_token')).toEqual(Object.keys(unknown.body));
    // the confirmation of the sign-up, then the reset link (newest first)
    let mails = await mailOf(s.contactId);
    expect(mails).toHaveLength(2);
    expect((await variablesOf(mails[0]!.message_id)).variables.reset_url).toBe(`${page}?token=${known.body.reset_token}`);

    const byOrganiser = await call('POST', `${contactUrl(s.contactId)}/account/password-reset`, { body: { page_url: page, language: 'fr' } });
    expectStatus(byOrganiser, 202);
    expect(byOrganiser.body.email_sent).toBe(true);
    mails = await mailOf(s.contactId);
    expect(mails).toHaveLength(3);
    expect((await variablesOf(mails[0]!.message_id)).variables.reset_url).toBe(`${page}?token=${byOrganiser.body.reset_token}`);
    expectStatus(await call('POST', `${contactUrl(s.contactId)}/account/password-reset`, { body: { page_url: 'ftp://x' } }), 400);
    expectStatus(await call('POST', `${contactUrl(s.contactId)}/account/password-reset`, { body: { nope: 1 } }), 400);
  });
});

describe("envoi's own account pages", () => {
  const form = (url: string, fields: Record<string, string>) =>
    t.request('POST', url, { body: new URLSearchParams(fields).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded', 'accept-language': 'en' } });
  const pathOf = (link: string) => { const u = new URL(link); return `${u.pathname}${u.search}`; };
  const linkOf = async (contactId: string, variable: 'confirm_url' | 'reset_url') => {
    const [latest] = (await call('GET', `${contactUrl(contactId)}/messages`)).body.items as Array<{ message_id: string }>;
    const row = await t.envoi.ctx.db.selectFrom('messages').select('variables').where('id', '=', latest!.message_id).executeTakeFirstOrThrow();
    return (row.variables as Record<string, string>)[variable]!;
  };

  it('confirms the address with a button (opening the link alone confirms nothing), once', async () => {
    const s = await signUp();
    const link = pathOf(await linkOf(s.contactId, 'confirm_url'));
    const page = await t.request('GET', link, { headers: { 'accept-language': 'fr-FR,fr;q=0.9' } });
    expectStatus(page, 200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.headers['referrer-policy']).toBe('no-referrer');
    expect(page.text).toContain('Confirmer mon adresse');
    expect(page.text).toContain(`value="${s.confirmToken}"`);
    expect((await accountOf(s.contactId)).confirmed).toBe(false);
    const done = await form(`/a/${audienceId}/confirm`, { token: s.confirmToken, lang: 'en' });
    expectStatus(done, 200);
    expect(done.text).toContain('Your address is confirmed');
    expect((await accountOf(s.contactId)).confirmed).toBe(true);
    const again = await form(`/a/${audienceId}/confirm`, { token: s.confirmToken });
    expectStatus(again, 400);
    expect(again.text).toContain('already been used');
  });

  it('sets a new password on the reset page: mismatch and weak passwords are shown on the page, the token then works once', async () => {
    const s = await signUp();
    expectStatus(await call('POST', `${contactUrl(s.contactId)}/account/password-reset`), 202);
    const link = await linkOf(s.contactId, 'reset_url');
    const token = new URL(link).searchParams.get('token')!;
    const page = await t.request('GET', pathOf(link), { headers: { 'accept-language': 'en' } });
    expectStatus(page, 200);
    expect(page.text).toContain('type="password"');
    const url = `/a/${audienceId}/reset`;
    const fresh = newPassword();
    const mismatch = await form(url, { token, password: fresh, password_again: `${fresh}x` });
    expectStatus(mismatch, 400);
    expect(mismatch.text).toContain('The two passwords are not the same');
    const weak = await form(url, { token, password: 'short', password_again: 'short' });
    expectStatus(weak, 400);
    expect(weak.text).toContain('role="alert"');
    expect(weak.text).toContain(`value="${token}"`);
    const done = await form(url, { token, password: fresh, password_again: fresh });
    expectStatus(done, 200);
    expect(done.text).toContain('Your password is changed');
    expectStatus(await login(s.email, fresh), 200);
    expectStatus(await login(s.email, s.password), 401);
    const reused = await form(url, { token, password: fresh, password_again: fresh });
    expectStatus(reused, 400);
    expect(reused.text).toContain('already been used');
  });

  it("refuses a forged token, a token of another audience, an expired token and an unknown audience", async () => {
    const s = await signUp();
    expect((await form(`/a/${audienceId}/confirm`, { token: 'ec_forged' })).text).toContain('not valid');
    expectStatus(await form(`/a/${otherAudienceId}/confirm`, { token: s.confirmToken }), 400);
    expectStatus(await t.request('GET', `/a/${audienceId}/confirm`), 400);
    expectStatus(await t.request('GET', '/a/2f0c9a52-6f3e-4a55-9d3c-1b2a3c4d5e6f/reset?token=x'), 404);
    expectStatus(await t.request('GET', '/a/not-a-uuid/reset?token=x'), 400);
    const page = await t.request('GET', `/a/${audienceId}/confirm?token=${encodeURIComponent('"><script>alert(1)</script>')}`);
    expect(page.text).not.toContain('<script>alert(1)');
    advance(30 * 24 * 60 * MIN);
    const late = await form(`/a/${audienceId}/confirm`, { token: s.confirmToken });
    expectStatus(late, 410);
    expect(late.text).toContain('expired');
  });
});
