import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as orgs from '../src/organisations/service.ts';
import { expectStatus, startTestApp, type TestApp, type TestOrg } from './support/harness.ts';

let t: TestApp;
let org: TestOrg;
let other: TestOrg;
let audienceId: string;
let otherAudienceId: string;
let eventId: string;
let contactId: string;

const mjml = (inner: string) => `<mjml><mj-body><mj-section><mj-column>${inner}</mj-column></mj-section></mj-body></mjml>`;

beforeAll(async () => {
  t = await startTestApp();
  org = await t.createOrg('Templates Org');
  other = await t.createOrg('Other Org');
  audienceId = (await t.request('POST', '/v1/audiences', { token: org.apiKey, body: { name: 'Main' } })).body.id;
  otherAudienceId = (await t.request('POST', '/v1/audiences', { token: other.apiKey, body: { name: 'Theirs' } })).body.id;
  const e = await t.request('POST', `/v1/audiences/${audienceId}/events`, {
    token: org.apiKey,
    body: { name: 'Summit 2027', starts_at: '2027-03-01T09:00:00+01:00', ends_at: '2027-03-02T18:00:00+01:00', time_zone: 'Europe/Paris' },
  });
  eventId = e.body.id;
  const c = await t.request('POST', `/v1/audiences/${audienceId}/contacts`, { token: org.apiKey, body: { email: 'ada@example.com', first_name: 'Ada', company: 'Analytical & Co' } });
  expectStatus(c, 201);
  contactId = c.body.id;
});
afterAll(async () => t?.close());

const base = () => `/v1/audiences/${audienceId}/templates`;

describe('templates', () => {
  it('creates, reads and lists a template at version 1', async () => {
    const r = await t.request('POST', base(), {
      token: org.apiKey,
      body: { name: 'Welcome', category: 'transactional', language: 'en', subject: 'Welcome {{ first_name }}', body: '<p>Hello {{ first_name }} from {{ company }}</p>' },
    });
    expectStatus(r, 201);
    expect(r.body).toMatchObject({ name: 'Welcome', category: 'transactional', format: 'html', tracking: true, version: 1, audience_id: audienceId });
    const got = await t.request('GET', `${base()}/${r.body.id}`, { token: org.apiKey });
    expectStatus(got, 200);
    expect(got.body.subject).toBe('Welcome {{ first_name }}');
    const list = await t.request('GET', base(), { token: org.apiKey });
    expect(list.body.templates.map((x: any) => x.id)).toContain(r.body.id);
  });

  it('refuses a marketing template without an unsubscribe link, on creation and on edit', async () => {
    const news = { name: 'News', category: 'marketing', language: 'en', subject: 'News', body: '<p>Our news</p>' };
    const bare = await t.request('POST', base(), { token: org.apiKey, body: news });
    expectStatus(bare, 400);
    expect(bare.body.error.code).toBe('unsubscribe_link_missing');
    for (const body of ['<p>News <a href="[UNSUBLINK]">stop</a></p>', '<p>News <a href="{{ unsubscribe_url_fr }}">stop</a></p>', mjml('<mj-button href="{{ no_url }}">No</mj-button>')]) {
      expectStatus(await t.request('POST', base(), { token: org.apiKey, body: { ...news, body, format: body.startsWith('<mjml') ? 'mjml' : 'html' } }), 201);
    }
    const withText = await t.request('POST', base(), { token: org.apiKey, body: { ...news, text: 'Unsubscribe: [UNSUBLINK]' } });
    expectStatus(withText, 201);
    const ok = await t.request('POST', base(), { token: org.apiKey, body: { ...news, body: '<p>News [UNSUBLINK]</p>' } });
    const edit = await t.request('PATCH', `${base()}/${ok.body.id}`, { token: org.apiKey, body: { body: '<p>News, no way out</p>' } });
    expectStatus(edit, 400);
    expect(edit.body.error.code).toBe('unsubscribe_link_missing');
    // Transactional and event mail need none.
    expectStatus(await t.request('POST', base(), { token: org.apiKey, body: { ...news, category: 'transactional' } }), 201);
    expectStatus(await t.request('POST', `${base()}/from-builtin`, { token: org.apiKey, body: { builtin: 're_permission', language: 'fr' } }), 201);
  });

  it('refuses a template that does not compile, saying where', async () => {
    const liquid = await t.request('POST', base(), {
      token: org.apiKey,
      body: { name: 'Broken', category: 'transactional', language: 'en', subject: 'Hi', body: '<p>line one</p>\n<p>{% if first_name %}Hello</p>' },
    });
    expectStatus(liquid, 400);
    expect(liquid.body.error.code).toBe('template_syntax');
    expect(liquid.body.error.details.line).toBe(2);
    const badMjml = await t.request('POST', base(), {
      token: org.apiKey,
      body: { name: 'Broken MJML', category: 'transactional', language: 'en', subject: 'Hi', format: 'mjml', body: mjml('<mj-text unknown-attr="1">Hi</mj-text><mj-nonsense/>') },
    });
    expectStatus(badMjml, 400);
    expect(badMjml.body.error.code).toBe('template_mjml');
    expect(badMjml.body.error.message).toMatch(/MJML/);
    const noEvent = await t.request('POST', base(), { token: org.apiKey, body: { name: 'Event mail', category: 'participation', language: 'fr', subject: 'Bonjour', body: '<p>x</p>' } });
    expectStatus(noEvent, 400);
    expect(noEvent.body.error.code).toBe('invalid_template');
    const badFrom = await t.request('POST', base(), { token: org.apiKey, body: { name: 'From', category: 'transactional', language: 'fr', subject: 'x', body: 'x', from_email: 'not an address' } });
    expectStatus(badFrom, 400);
    const foreignEvent = await t.request('POST', `/v1/audiences/${otherAudienceId}/templates`, {
      token: other.apiKey,
      body: { name: 'X', category: 'participation', language: 'fr', subject: 'x', body: 'x', event_id: eventId },
    });
    expectStatus(foreignEvent, 400);
    expect(foreignEvent.body.error.code).toBe('unknown_event');
    // Nothing half-saved.
    const list = await t.request('GET', base(), { token: org.apiKey });
    expect(list.body.templates.map((x: any) => x.name)).not.toContain('Broken');
  });

  it('bumps the version on each edit and refuses an edit of a stale version', async () => {
    const r = await t.request('POST', base(), {
      token: org.apiKey,
      body: { name: 'Programme', category: 'participation', language: 'fr', subject: 'Programme de {{ event.name }}', format: 'mjml', body: mjml('<mj-text>Bonjour {{ first_name }}</mj-text>'), event_id: eventId },
    });
    expectStatus(r, 201);
    const e1 = await t.request('PATCH', `${base()}/${r.body.id}`, { token: org.apiKey, body: { subject: 'Votre programme : {{ event.name }}', version: 1 } });
    expectStatus(e1, 200);
    expect(e1.body.version).toBe(2);
    expect(e1.body.body).toContain('mj-text'); // untouched parts kept
    const stale = await t.request('PATCH', `${base()}/${r.body.id}`, { token: org.apiKey, body: { subject: 'Lost update', version: 1 } });
    expectStatus(stale, 409);
    const broken = await t.request('PATCH', `${base()}/${r.body.id}`, { token: org.apiKey, body: { body: mjml('<mj-text>{{ first_name </mj-text>') } });
    expectStatus(broken, 400);
    const after = await t.request('GET', `${base()}/${r.body.id}`, { token: org.apiKey });
    expect(after.body.version).toBe(2);
    expect(after.body.subject).toBe('Votre programme : {{ event.name }}');
  });

  it('previews for a contact or sample data, and names a missing variable', async () => {
    const r = await t.request('POST', base(), {
      token: org.apiKey,
      body: {
        name: 'Reset',
        category: 'transactional',
        language: 'en',
        subject: 'Reset for {{ first_name }}',
        preheader: 'Your link inside',
        body: '<html><body><p>Hello {{ first_name }} ({{ contact.company }})</p><a href="{{ reset_url }}">Reset</a></body></html>',
      },
    });
    expectStatus(r, 201);
    const url = `${base()}/${r.body.id}/preview`;
    const missing = await t.request('POST', url, { token: org.apiKey, body: { contact_id: contactId } });
    expectStatus(missing, 400);
    expect(missing.body.error.code).toBe('template_missing_variable');
    expect(missing.body.error.details.variable).toBe('reset_url');
    expect(missing.body.error.message).toMatch(/reset_url/);
    const ok = await t.request('POST', url, { token: org.apiKey, body: { contact_id: contactId, variables: { reset_url: 'https://example.com/r?a=1&b=2' } } });
    expectStatus(ok, 200);
    expect(ok.body.subject).toBe('Reset for Ada');
    expect(ok.body.html).toContain('Hello Ada (Analytical &amp; Co)');
    expect(ok.body.html).toContain('href="https://example.com/r?a=1&amp;b=2"');
    expect(ok.body.text).toContain('Hello Ada (Analytical & Co)');
    const sample = await t.request('POST', url, { token: org.apiKey, body: { contact: { first_name: 'Zoë' }, variables: { reset_url: 'https://x.example' } } });
    expectStatus(sample, 200);
    expect(sample.body.subject).toBe('Reset for Zoë');
  });

  it('keeps templates inside their organisation and role', async () => {
    const r = await t.request('POST', base(), { token: org.apiKey, body: { name: 'Private', category: 'transactional', language: 'en', subject: 'x', body: 'x' } });
    expectStatus(r, 201);
    expectStatus(await t.request('GET', `${base()}/${r.body.id}`, { token: other.apiKey }), 404);
    expectStatus(await t.request('GET', `/v1/audiences/${otherAudienceId}/templates/${r.body.id}`, { token: other.apiKey }), 404);
    expectStatus(await t.request('PATCH', `/v1/audiences/${otherAudienceId}/templates/${r.body.id}`, { token: other.apiKey, body: { subject: 'y' } }), 404);
    expectStatus(await t.request('GET', base(), { token: other.apiKey }), 404);
    const viewer = await orgs.createApiKey(t.envoi.ctx, org.orgId, { name: 'viewer', role: 'viewer' });
    expectStatus(await t.request('GET', base(), { token: viewer.key }), 200);
    expectStatus(await t.request('POST', base(), { token: viewer.key, body: { name: 'No', category: 'transactional', language: 'en', subject: 'x', body: 'x' } }), 403);
  });

  it('deletes a template from lists and new use', async () => {
    const r = await t.request('POST', base(), { token: org.apiKey, body: { name: 'Old', category: 'transactional', language: 'en', subject: 'x', body: 'x' } });
    expectStatus(await t.request('DELETE', `${base()}/${r.body.id}`, { token: org.apiKey }), 204);
    expectStatus(await t.request('GET', `${base()}/${r.body.id}`, { token: org.apiKey }), 404);
    const list = await t.request('GET', base(), { token: org.apiKey });
    expect(list.body.templates.map((x: any) => x.id)).not.toContain(r.body.id);
  });
});
