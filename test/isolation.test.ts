import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROUTES } from '../src/app.ts';
import { buildHttpApp, type RouteModule } from '../src/platform/http.ts';
import * as orgs from '../src/organisations/service.ts';
import { Worker } from '../src/sending/worker.ts';
import { expectStatus, startTestApp, until, type TestApp, type TestOrg } from './support/harness.ts';

/*
 * Tenant isolation and roles, generated from the route table: every route the app registers is
 * called with the credentials of another organisation (which must get 404 and see nothing of this
 * one) and, for every write, with a viewer of this organisation (which must get 403). A route added
 * later without an entry below fails this test until it is given one.
 */

let t: TestApp;
let a: TestOrg;
let b: TestOrg;
let viewerKey: string;
let worker: Worker;
const ids: Record<string, string> = {};
let routes: { method: string; url: string; body: boolean }[] = [];

const api = (method: string, url: string, body?: unknown, token = a.apiKey) => t.request(method, url, { token, body });
async function make(url: string, body: unknown, key = 'id') {
  const r = await api('POST', url, body);
  if (r.status !== 201 && r.status !== 202) throw new Error(`setup ${url}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body[key] as string;
}

beforeAll(async () => {
  t = await startTestApp();
  a = await t.createOrg('Tenant A');
  b = await t.createOrg('Tenant B');
  viewerKey = (await orgs.createApiKey(t.envoi.ctx, a.orgId, { name: 'viewer', role: 'viewer' })).key;
  ids.keyId = (await orgs.createApiKey(t.envoi.ctx, a.orgId, { name: 'spare', role: 'editor' })).id;
  ids.userId = (await orgs.createUser(t.envoi.ctx, a.orgId, { email: 'spare-user-a@example.com', password: 'correct horse battery', role: 'editor' })).id;

  ids.audienceId = await make('/v1/audiences', { name: 'A audience' });
  ids.eventId = await make(`/v1/audiences/${ids.audienceId}/events`, { name: 'A event', starts_at: '2027-03-01T09:00:00Z', ends_at: '2027-03-02T18:00:00Z', time_zone: 'Europe/Paris' });
  ids.communityId = await make(`/v1/audiences/${ids.audienceId}/communities`, { name: 'A community' });
  ids.contactId = await make(`/v1/audiences/${ids.audienceId}/contacts`, { email: 'secret-a@example.com', first_name: 'Alice' });
  ids.participantId = await make(`/v1/events/${ids.eventId}/participants`, { email: 'participant-a@example.com' });
  ids.memberId = await make(`/v1/communities/${ids.communityId}/members`, { email: 'member-a@example.com' });
  ids.viewId = await make(`/v1/audiences/${ids.audienceId}/views`, { name: 'A view', filter: { field: 'company', op: 'empty' } });
  ids.templateId = await make(`/v1/audiences/${ids.audienceId}/templates`, { name: 'A tx', language: 'en', category: 'transactional', subject: 'Hi', body: '<p>Hi {{ first_name }}</p>' });
  ids.marketingId = await make(`/v1/audiences/${ids.audienceId}/templates`, { name: 'A mkt', language: 'en', category: 'marketing', subject: 'News', body: '<p>News [UNSUBLINK]</p>' });
  ids.partTemplateId = await make(`/v1/audiences/${ids.audienceId}/templates`, { name: 'A part', language: 'en', category: 'participation', event_id: ids.eventId, subject: 'Info', body: '<p>Info</p>' });
  ids.campaignId = await make(`/v1/audiences/${ids.audienceId}/campaigns`, { name: 'A campaign', template_id: ids.marketingId, target: { view_id: ids.viewId } });
  ids.programId = await make(`/v1/audiences/${ids.audienceId}/programs`, { name: 'A program', trigger: { type: 'external_event', name: 'purchase' }, wait: { days: 1 }, template_id: ids.templateId });
  ids.formId = await make(`/v1/audiences/${ids.audienceId}/signup-forms`, { name: 'A form', language: 'en', wording: 'Yes, send me the newsletter please.', wording_version: '1' });
  ids.webhookId = await make('/v1/webhooks', { url: 'http://127.0.0.1:9/hook', events: ['*'] });
  await make(`/v1/audiences/${ids.audienceId}/contacts`, { email: 'webhook-trigger@example.com' });
  ids.webhookDeliveryId = (await t.envoi.ctx.db.selectFrom('webhook_deliveries').select('id').limit(1).executeTakeFirstOrThrow()).id;
  const imp = await t.request('POST', `/v1/audiences/${ids.audienceId}/imports`, { token: a.apiKey, body: 'email\nimported-a@example.com\n', headers: { 'content-type': 'text/csv' } });
  ids.importId = imp.body.id;
  worker = new Worker(t.envoi.ctx, { smtpUrl: null, pollMs: { transactional: 50, bulk: 50 } }).start();
  const m = await api('POST', '/v1/messages', { template_id: ids.templateId, to: { contact_id: ids.contactId } });
  ids.messageId = m.body.id;
  ids.deliveryId = m.body.delivery_id;
  await until(async () => (await t.envoi.ctx.db.selectFrom('outbox').select('id').where('message_id', '=', ids.messageId!).executeTakeFirst()) !== undefined, 'the outbox');
  ids.outboxId = (await t.envoi.ctx.db.selectFrom('outbox').select('id').where('message_id', '=', ids.messageId!).executeTakeFirstOrThrow()).id;
  expectStatus(await api('POST', '/v1/exclusions', { items: [{ email: 'excluded-a@example.com' }] }), 201);

  // The route table, as the app registers it.
  const collector: RouteModule = (app) => {
    app.addHook('onRoute', (r) => {
      for (const method of [r.method].flat()) if (method !== 'HEAD') routes.push({ method, url: r.url, body: Boolean((r.schema as { body?: unknown } | undefined)?.body) });
    });
  };
  const app = await buildHttpApp(t.envoi.ctx, { routes: [collector, ...ROUTES] });
  await app.close();
  routes = routes.filter((r) => r.url.startsWith('/v1/') && !r.url.startsWith('/v1/docs') && r.url !== '/v1/openapi.json');
  // Logging out ends the session the other calls use: last.
  routes.sort((x, y) => Number(x.url === '/v1/auth/logout') - Number(y.url === '/v1/auth/logout'));
});

afterAll(async () => {
  await worker?.stop();
  await t?.close();
});

/** The id a path parameter names, read from the path around it. */
function idFor(param: string, url: string): string {
  const direct: Record<string, string | undefined> = {
    audienceId: ids.audienceId,
    eventId: ids.eventId,
    communityId: ids.communityId,
    contactId: ids.contactId,
    viewId: ids.viewId,
    importId: ids.importId,
    formId: ids.formId,
    deliveryId: ids.webhookDeliveryId,
    email: 'excluded-a%40example.com',
    token: 'no-such-preview',
  };
  if (direct[param]) return direct[param]!;
  if (param === 'scopeId') return url.startsWith('/v1/events/') ? ids.eventId! : url.startsWith('/v1/communities/') ? ids.communityId! : ids.audienceId!;
  if (param === 'recordId') return url.includes('/participants/') ? ids.participantId! : ids.memberId!;
  if (param === 'id') {
    const byPrefix: [string, string | undefined][] = [
      ['/v1/audiences/:audienceId/templates/', ids.templateId],
      ['/v1/messages/', ids.messageId],
      ['/v1/campaigns/', ids.campaignId],
      ['/v1/programs/', ids.programId],
      ['/v1/webhooks/', ids.webhookId],
      ['/v1/signup-forms/', ids.formId],
      ['/v1/api-keys/', ids.keyId],
      ['/v1/users/', ids.userId],
      ['/v1/outbox/', ids.outboxId],
    ];
    const hit = byPrefix.find(([prefix]) => url.startsWith(prefix));
    if (hit?.[1]) return hit[1];
  }
  throw new Error(`no id of organisation A for :${param} in ${url}: add it to idFor()`);
}

const fill = (url: string) => url.replace(/:([A-Za-z]+)/g, (_m, param: string) => idFor(param, url));
const key = (r: { method: string; url: string }) => `${r.method} ${r.url}`;

/** A body each route with a body schema accepts, naming organisation A's objects where it takes ids. */
function sampleBody(route: { method: string; url: string }): unknown {
  const SAMPLES: Record<string, unknown> = {
    'PATCH /v1/audiences/:audienceId': { name: 'renamed' },
    'PATCH /v1/audiences/:audienceId/contacts/:contactId': { first_name: 'Mallory' },
    'PATCH /v1/audiences/:audienceId/templates/:id': { subject: 'Hijacked' },
    'PATCH /v1/audiences/:audienceId/views/:viewId': { name: 'hijacked' },
    'PATCH /v1/communities/:scopeId/members/:recordId': { first_name: 'Mallory' },
    'PATCH /v1/events/:eventId': { name: 'hijacked' },
    'PATCH /v1/events/:scopeId/participants/:recordId': { first_name: 'Mallory' },
    'PATCH /v1/programs/:id': { enabled: false },
    'PATCH /v1/users/:id': { role: 'viewer', name: 'hijacked' },
    'PATCH /v1/webhooks/:id': { enabled: false },
    'POST /v1/audiences/:audienceId/accounts': { email: 'new-account@example.com', password: 'correct horse battery' },
    'POST /v1/audiences/:audienceId/accounts/confirm': { token: 'x'.repeat(43) },
    'POST /v1/audiences/:audienceId/accounts/login': { email: 'secret-a@example.com', password: 'correct horse battery' },
    'POST /v1/audiences/:audienceId/accounts/password-reset': { token: 'x'.repeat(43), password: 'correct horse battery' },
    'POST /v1/audiences/:audienceId/accounts/password-reset-request': { email: 'secret-a@example.com' },
    'POST /v1/audiences/:audienceId/campaigns': { name: 'x', template_id: ids.marketingId, target: { view_id: ids.viewId } },
    'POST /v1/audiences/:audienceId/campaigns/dry-run': { template_id: ids.marketingId, target: { view_id: ids.viewId } },
    'POST /v1/audiences/:audienceId/communities': { name: 'x' },
    'POST /v1/audiences/:audienceId/companies': { name: 'x' },
    'POST /v1/audiences/:audienceId/contacts': { email: 'intruder@example.com' },
    'POST /v1/audiences/:audienceId/contacts/:contactId/consents': { action: 'withdrawn', method: 'api' },
    'POST /v1/audiences/:audienceId/contacts/bulk-update': { target: { contact_ids: [ids.contactId] }, set: { first_name: 'Mallory' } },
    'POST /v1/audiences/:audienceId/contacts/query': {},
    'POST /v1/audiences/:audienceId/dry-run': { template_id: ids.marketingId, all: true },
    'POST /v1/audiences/:audienceId/events': { name: 'x', starts_at: '2027-01-01T09:00:00Z', ends_at: '2027-01-01T18:00:00Z', time_zone: 'UTC' },
    'POST /v1/audiences/:audienceId/programs': { name: 'x', trigger: { type: 'external_event', name: 'x' }, wait: { days: 1 }, template_id: ids.templateId },
    'POST /v1/audiences/:audienceId/signup-forms': { name: 'x', language: 'en', wording: 'Yes, send me the newsletter please.', wording_version: '1' },
    'POST /v1/audiences/:audienceId/templates': { name: 'x', language: 'en', category: 'transactional', subject: 'x', body: '<p>x</p>' },
    'POST /v1/audiences/:audienceId/templates/:id/preview': { contact_id: ids.contactId },
    'POST /v1/audiences/:audienceId/templates/:id/test': { email: 'intruder@example.com' },
    'POST /v1/audiences/:audienceId/templates/render': { template: { language: 'en', subject: 'x', body: '<p>x</p>' }, contact_id: ids.contactId },
    'POST /v1/audiences/:audienceId/templates/from-builtin': { builtin: 're_permission', language: 'fr' },
    'POST /v1/audiences/:audienceId/views': { name: 'x' },
    'POST /v1/audiences/:audienceId/views/:viewId/query': {},
    'POST /v1/audiences/:scopeId/fields': { key: 'intruder', type: 'text' },
    'POST /v1/communities/:scopeId/fields': { key: 'intruder', type: 'text' },
    'POST /v1/communities/:scopeId/members': { email: 'intruder@example.com' },
    'POST /v1/events/:eventId/mail': { kind: 'practical_info', template_id: ids.partTemplateId },
    'POST /v1/events/:eventId/registrations': { participant: { email: 'intruder@example.com' } },
    'POST /v1/events/:scopeId/fields': { key: 'intruder', type: 'text' },
    'POST /v1/events/:scopeId/participants': { email: 'intruder@example.com' },
    // Routes of the caller's own organisation.
    'POST /v1/organisations': { name: 'Newcomer', owner_email: `newcomer${Math.random().toString(36).slice(2)}@example.com`, owner_password: 'correct horse battery' },
    'POST /v1/auth/login': { email: 'secret-a@example.com', password: 'not the password' },
    'POST /v1/users': { email: `user${Math.random().toString(36).slice(2)}@example.com`, password: 'correct horse battery', role: 'viewer' },
    'POST /v1/api-keys': { name: 'x', role: 'viewer' },
    'POST /v1/audiences': { name: 'x' },
    'POST /v1/webhooks': { url: 'http://127.0.0.1:9/x', events: ['*'] },
    'POST /v1/exclusions': { items: [{ email: 'intruder@example.com' }] },
    // Routes without an id in the path, whose body names A's objects.
    'POST /v1/messages': { template_id: ids.templateId, to: { contact_id: ids.contactId } },
    'POST /v1/bounces': { events: [{ delivery_id: ids.deliveryId, type: 'hard_bounce', status: '5.1.1' }] },
    'POST /v1/external-events': { audience_id: ids.audienceId, contact: { contact_id: ids.contactId }, name: 'purchase' },
    'POST /v1/data-subjects/export': { email: 'secret-a@example.com' },
    'POST /v1/data-subjects/erase': { email: 'secret-a@example.com' },
  };
  if (!(key(route) in SAMPLES)) throw new Error(`no sample body for ${key(route)}: add one to sampleBody()`);
  return SAMPLES[key(route)];
}

// Routes that act on the caller's own organisation by design: another organisation using them
// creates its own objects, which is what they are for.
const OWN_ORGANISATION = new Set([
  'POST /v1/organisations',
  'POST /v1/auth/login',
  'POST /v1/auth/logout',
  'GET /v1/me',
  'GET /v1/users',
  'POST /v1/users',
  'GET /v1/api-keys',
  'POST /v1/api-keys',
  'POST /v1/audiences',
  'GET /v1/audiences',
  'POST /v1/webhooks',
  'GET /v1/webhooks',
  'POST /v1/exclusions',
  'POST /v1/exclusions/import',
  'GET /v1/exclusions',
  'GET /v1/exclusions/export',
  'GET /v1/suppressions',
  'GET /v1/outbox',
]);

// Writes a viewer may still do: they read (a query, a dry run, a preview) or are the person's own.
const VIEWER_MAY = new Set([
  'POST /v1/audiences/:audienceId/contacts/query',
  'POST /v1/audiences/:audienceId/views/:viewId/query',
  'POST /v1/audiences/:audienceId/campaigns/dry-run',
  'POST /v1/campaigns/:id/dry-run',
  'POST /v1/audiences/:audienceId/dry-run',
  'POST /v1/audiences/:audienceId/templates/:id/preview',
  'POST /v1/audiences/:audienceId/templates/render',
  'POST /v1/auth/login',
  'POST /v1/auth/logout',
  'POST /v1/organisations',
]);

async function call(route: { method: string; url: string; body: boolean }, token: string) {
  const url = fill(route.url);
  if (url.endsWith('/imports') && route.method === 'POST') return t.request('POST', url, { token, body: 'email\nintruder@example.com\n', headers: { 'content-type': 'text/csv' } });
  if (url.endsWith('/exclusions/import')) return t.request('POST', url, { token, body: 'email\nintruder@example.com\n', headers: { 'content-type': 'text/csv' } });
  return t.request(route.method, url, { token, body: route.body ? sampleBody(route) : undefined });
}

const SECRETS = () => [ids.contactId!, ids.audienceId!, ids.campaignId!, ids.templateId!, 'secret-a@example.com', 'participant-a@example.com', 'excluded-a@example.com'];

describe('tenant isolation, for every route of the route table', () => {
  it('found the routes', () => {
    expect(routes.length).toBeGreaterThan(80);
  });

  it("another organisation's key and session get 404 on every route naming this one's objects, and see nothing of it anywhere", async () => {
    const problems: string[] = [];
    for (const route of routes) {
      const own = OWN_ORGANISATION.has(key(route));
      const namesA = /:[A-Za-z]+/.test(route.url) || ['POST /v1/messages', 'POST /v1/external-events', 'POST /v1/data-subjects/export', 'POST /v1/data-subjects/erase'].includes(key(route));
      for (const [who, token] of [['key', b.apiKey], ['session', b.ownerToken]] as const) {
        const r = await call(route, token);
        if (namesA && !own && r.status !== 404) problems.push(`${key(route)} (${who}): ${r.status} ${r.text.slice(0, 160)}`);
        if (route.method === 'GET' || own) {
          const leaked = SECRETS().find((s) => r.text.includes(s));
          if (leaked) problems.push(`${key(route)} (${who}) shows ${leaked}`);
        }
      }
    }
    expect(problems.join('\n')).toBe('');
    // The relay webhook answered: nothing of A was touched.
    expect((await t.envoi.ctx.db.selectFrom('deliveries').select('status').where('id', '=', ids.deliveryId!).executeTakeFirstOrThrow()).status).toBe('sent');
    const contact = await api('GET', `/v1/audiences/${ids.audienceId}/contacts/${ids.contactId}`);
    expect(contact.body).toMatchObject({ email: 'secret-a@example.com', first_name: 'Alice' });
  });

  it('a viewer of the organisation gets 403 on every write', async () => {
    const problems: string[] = [];
    for (const route of routes.filter((r) => r.method !== 'GET' && !VIEWER_MAY.has(key(r)))) {
      const r = await call(route, viewerKey);
      if (r.status !== 403) problems.push(`${key(route)}: ${r.status} ${r.text.slice(0, 160)}`);
    }
    expect(problems).toEqual([]);
  });
});
