import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as orgs from '../src/organisations/service.ts';
import { Worker } from '../src/sending/worker.ts';
import { expectStatus, startTestApp, type TestApp, type TestOrg } from './support/harness.ts';
import { startSmtpSink, type SmtpSink } from './support/smtp-sink.ts';

/* Data-subject rights end to end: the export of everything held about one person, and erasure everywhere. */

let t: TestApp;
let org: TestOrg;
let other: TestOrg;
let sink: SmtpSink;
let worker: Worker;
const aud: string[] = [];
let eventId: string;
const contacts: string[] = [];
let messageId: string;
let deliveryId: string;

const api = (method: string, url: string, body?: unknown, token = org.apiKey) => t.request(method, url, { token, body });

beforeAll(async () => {
  t = await startTestApp();
  org = await t.createOrg('Rencontres');
  other = await t.createOrg('Other');
  sink = await startSmtpSink();
  for (const name of ['Summit', 'Alumni']) aud.push((await api('POST', '/v1/audiences', { name })).body.id);
  eventId = (await api('POST', `/v1/audiences/${aud[0]}/events`, { name: 'Summit 2026', starts_at: '2027-01-10T09:00:00Z', ends_at: '2027-01-11T18:00:00Z', time_zone: 'Europe/Paris' })).body.id;
  expectStatus(await api('POST', `/v1/events/${eventId}/participants`, { email: 'Sam@Example.com', first_name: 'Sam', company: 'Acme' }), 201);
  for (const a of aud) {
    const c = await api('POST', `/v1/audiences/${a}/contacts`, { email: 'sam@example.com', first_name: 'Sam' });
    contacts.push(c.status === 201 ? c.body.id : (await t.envoi.ctx.db.selectFrom('contacts').select('id').where('audience_id', '=', a).where('email_lower', '=', 'sam@example.com').executeTakeFirstOrThrow()).id);
  }
  expectStatus(await api('POST', `/v1/audiences/${aud[0]}/contacts/${contacts[0]}/consents`, { action: 'given', method: 'registration_checkbox', wording: 'Send me the Summit newsletter', ip: '198.51.100.4' }), 201);
  expectStatus(await api('POST', `/v1/audiences/${aud[0]}/accounts`, { email: 'sam@example.com', password: 'correct horse battery staple' }), 201);
  const tpl = await api('POST', `/v1/audiences/${aud[0]}/templates`, { name: 'Order', language: 'en', category: 'transactional', subject: 'Order {{ vars.order }}', body: '<p>Thanks {{ first_name }} <a href="https://shop.example/o">see</a></p>' });
  worker = new Worker(t.envoi.ctx, { smtpUrl: sink.url, pollMs: { transactional: 50, bulk: 50 } }).start();
  const m = await api('POST', '/v1/messages', { template_id: tpl.body.id, to: { contact_id: contacts[0] }, variables: { order: 'SAM-42' } });
  expectStatus(m, 202);
  messageId = m.body.id;
  deliveryId = m.body.delivery_id;
  // Two mails: the account's confirmation link, then the order.
  await sink.waitFor(() => sink.byRecipient('Sam@example.com').length === 2, 10_000);
  const parsed = await Promise.all(sink.byRecipient('Sam@example.com').map((x) => x.parse()));
  const html = String(parsed.find((x) => x.subject === 'Order SAM-42')!.html);
  await t.request('GET', /src="http:\/\/127\.0\.0\.1:8080(\/o\/[^"]+)"/.exec(html)![1]!, { headers: { 'user-agent': 'SamPhone/1.0' } });
});

afterAll(async () => {
  await worker?.stop();
  await sink?.close();
  await t?.close();
});

describe('data subjects', () => {
  it('exports everything held about a person, without secrets', async () => {
    const r = await api('POST', '/v1/data-subjects/export', { email: 'SAM@example.com' });
    expectStatus(r, 200);
    expect(r.body.email).toBe('sam@example.com');
    expect(r.body.contacts).toHaveLength(2);
    const summit = r.body.contacts.find((c: any) => c.audience_id === aud[0]);
    expect(summit).toMatchObject({ first_name: 'Sam', company: 'Acme' });
    expect(JSON.stringify(summit)).toContain('Summit 2026');
    expect(summit.consents).toEqual([expect.objectContaining({ action: 'given', wording: 'Send me the Summit newsletter', ip: '198.51.100.4' })]);
    expect(r.body.messages).toHaveLength(2);
    expect(r.body.messages).toContainEqual(expect.objectContaining({ message_id: messageId, category: 'transactional', status: 'sent', events: expect.arrayContaining([expect.objectContaining({ type: 'opened' })]) }));
    const all = JSON.stringify(r.body);
    // Nor the account's confirmation token: its link left the message once it was sent.
    expect(all).not.toMatch(/argon2|password_hash|correct horse|ec_[A-Za-z0-9_-]{10}/);
    expectStatus(await api('POST', '/v1/data-subjects/export', { email: 'sam@example.com' }, other.apiKey), 404);
    expectStatus(await api('POST', '/v1/data-subjects/export', { email: 'not an email' }), 400);
  });

  it('erases the person everywhere: contacts, participations, account, message details; the ledger keeps a hashed withdrawal', async () => {
    const editor = await orgs.createApiKey(t.envoi.ctx, org.orgId, { name: 'editor', role: 'editor' });
    expectStatus(await api('POST', '/v1/data-subjects/erase', { email: 'sam@example.com' }, editor.key), 403);
    expectStatus(await api('POST', '/v1/data-subjects/erase', { email: 'sam@example.com' }, other.apiKey), 404);

    const r = await api('POST', '/v1/data-subjects/erase', { email: 'sam@example.com' });
    expectStatus(r, 200);
    expect(r.body).toMatchObject({ messages_anonymised: 2, exclusion_kept: false });
    expect(r.body.contacts).toHaveLength(2);
    expect(r.body.email_hash).toMatch(/^[0-9a-f]{64}$/);

    for (const [i, a] of aud.entries()) expectStatus(await api('GET', `/v1/audiences/${a}/contacts/${contacts[i]}`), 404);
    expect((await api('GET', `/v1/events/${eventId}/participants`)).body.items ?? (await api('GET', `/v1/events/${eventId}/participants`)).body.participants).toHaveLength(0);
    const db = t.envoi.ctx.db;
    expect(await db.selectFrom('contact_accounts').selectAll().execute()).toHaveLength(0);
    expect(await db.selectFrom('deliveries').select(['email', 'contact_id', 'status']).where('id', '=', deliveryId).executeTakeFirst()).toEqual({ email: 'erased@invalid', contact_id: null, status: 'sent' });
    expect((await db.selectFrom('messages').select('variables').where('id', '=', messageId).executeTakeFirstOrThrow()).variables).toEqual({});
    const opened = await db.selectFrom('message_events').select('detail').where('delivery_id', '=', deliveryId).where('type', '=', 'opened').executeTakeFirstOrThrow();
    expect(JSON.stringify(opened.detail)).not.toContain('SamPhone');
    const ledger = await db.selectFrom('consent_records').select(['email', 'ip', 'action', 'method', 'email_hash', 'contact_id']).where('audience_id', '=', aud[0]!).orderBy('seq').execute();
    expect(ledger.map((x) => [x.action, x.method, x.email, x.ip, x.contact_id])).toEqual([
      ['given', 'registration_checkbox', null, null, null],
      ['withdrawn', 'erasure', null, null, null],
    ]);
    expect(ledger[1]!.email_hash).toBe(r.body.email_hash);
    for (const a of aud) expect((await api('GET', `/v1/audiences/${a}/consent-ledger/verify`)).body.ok).toBe(true);
    // Nothing is held about the address any more.
    expectStatus(await api('POST', '/v1/data-subjects/export', { email: 'sam@example.com' }), 404);
  });
});
