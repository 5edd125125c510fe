import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Worker } from '../src/sending/worker.ts';
import { expectStatus, startTestApp, until, type TestApp, type TestOrg } from './support/harness.ts';

// API routes added for the web UI's screens.

let t: TestApp;
let a: TestOrg;
let b: TestOrg;
let worker: Worker;
let audienceId: string;
let contactId: string;
let eventId: string;

beforeAll(async () => {
  t = await startTestApp();
  a = await t.createOrg('UI org');
  b = await t.createOrg('Other org');
  worker = new Worker(t.envoi.ctx, { smtpUrl: null, pollMs: { transactional: 50, bulk: 50 } }).start();
  const api = (method: string, url: string, body?: unknown) => t.request(method, url, { token: a.apiKey, body });
  audienceId = (await api('POST', '/v1/audiences', { name: 'UI audience' })).body.id;
  eventId = (await api('POST', `/v1/audiences/${audienceId}/events`, { name: 'Lyon day', starts_at: '2027-05-01T09:00:00Z', ends_at: '2027-05-01T18:00:00Z', time_zone: 'Europe/Paris' })).body.id;
  const participant = await api('POST', `/v1/events/${eventId}/participants`, { email: 'reader@example.com', first_name: 'Rita' });
  expectStatus(participant, 201);
  contactId = participant.body.contact_id;
});
afterAll(async () => {
  await worker?.stop();
  await t?.close();
});

describe('GET /v1/audiences/:audienceId/contacts/:contactId/messages', () => {
  it('lists the mail a contact received, newest first, with template, event and tracking history', async () => {
    const api = (method: string, url: string, body?: unknown) => t.request(method, url, { token: a.apiKey, body });
    const tx = await api('POST', `/v1/audiences/${audienceId}/templates`, { name: 'Welcome', language: 'en', category: 'transactional', subject: 'Hi', body: '<p>Hi {{ first_name }}</p>' });
    expectStatus(tx, 201);
    const part = await api('POST', `/v1/audiences/${audienceId}/templates`, { name: 'Practical info', language: 'en', category: 'participation', event_id: eventId, subject: 'Info', body: '<p>Info</p>' });
    expectStatus(part, 201);
    const first = await api('POST', '/v1/messages', { template_id: tx.body.id, to: { contact_id: contactId } });
    expectStatus(first, 202);
    t.clock.now = new Date(t.clock.now.getTime() + 1000);
    const second = await api('POST', '/v1/messages', { template_id: part.body.id, to: { contact_id: contactId } });
    expectStatus(second, 202);

    const url = `/v1/audiences/${audienceId}/contacts/${contactId}/messages`;
    await until(async () => {
      const r = await api('GET', url);
      return r.body.items?.length === 2 && r.body.items.every((m: { status: string }) => m.status === 'sent');
    }, 'both messages sent');
    const r = await api('GET', url);
    expectStatus(r, 200);
    expect(r.body.has_more).toBe(false);
    const [newest, oldest] = r.body.items;
    expect(newest.template_name).toBe('Practical info');
    expect(newest.event_name).toBe('Lyon day');
    expect(newest.category).toBe('participation');
    expect(oldest.template_name).toBe('Welcome');
    expect(oldest.event_name).toBeNull();
    expect(oldest.email).toBe('reader@example.com');
    for (const m of r.body.items) expect(m.events.map((e: { type: string }) => e.type)).toContain('sent');

    const paged = await api('GET', `${url}?limit=1`);
    expect(paged.body.items).toHaveLength(1);
    expect(paged.body.has_more).toBe(true);
    expect((await api('GET', `${url}?limit=1&offset=1`)).body.items[0].template_name).toBe('Welcome');
  });

  it('answers 404 to another organisation and for an unknown contact, 400 for a bad limit', async () => {
    const url = `/v1/audiences/${audienceId}/contacts/${contactId}/messages`;
    expectStatus(await t.request('GET', url, { token: b.apiKey }), 404);
    expectStatus(await t.request('GET', `/v1/audiences/${audienceId}/contacts/00000000-0000-4000-8000-000000000000/messages`, { token: a.apiKey }), 404);
    expectStatus(await t.request('GET', `${url}?limit=100000`, { token: a.apiKey }), 400);
  });
});
