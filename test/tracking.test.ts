import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import * as orgs from '../src/organisations/service.ts';
import { Worker } from '../src/sending/worker.ts';
import { enqueueToContacts } from '../src/sending/service.ts';
import { expectStatus, startTestApp, type TestApp, type TestOrg } from './support/harness.ts';
import { startSmtpSink, type SmtpSink } from './support/smtp-sink.ts';

/*
 * The links of sent mail, end to end: a real message goes to a real SMTP server, and the test follows
 * the links found in what arrived: click redirects, the open pixel, the unsubscribe page and
 * one-click POST, which withdraw consent in the ledger and stop the next marketing send.
 */

let t: TestApp;
let org: TestOrg;
let other: TestOrg;
let sink: SmtpSink;
let worker: Worker;
let audienceId: string;
let otherAudienceId: string;
const tpl = { tx: '', mkt: '', mkt2: '' };
const WORDING = 'Yes, send me the Summit newsletter (about once a month). I can unsubscribe at any time.';

const api = (method: string, url: string, body?: unknown, token = org.apiKey) => t.request(method, url, { token, body });

async function contact(email: string, audience = audienceId) {
  const r = await api('POST', `/v1/audiences/${audience}/contacts`, { email, first_name: email.split('@')[0] });
  expectStatus(r, 201);
  return r.body.id as string;
}

async function optIn(contactId: string, audience = audienceId) {
  expectStatus(await api('POST', `/v1/audiences/${audience}/contacts/${contactId}/consents`, { action: 'given', method: 'signup_form', wording: WORDING, wording_version: 'v1', ip: '203.0.113.7' }), 201);
}

async function campaign(templateId: string, contactIds: string[]) {
  const principal = (await orgs.authenticate(t.envoi.ctx, org.apiKey))!;
  return enqueueToContacts(t.envoi.ctx, principal, { templateId, contactIds });
}

async function received(email: string, n = 1) {
  await sink.waitFor(() => sink.byRecipient(email).length >= n, 10_000);
  return sink.byRecipient(email)[n - 1]!.parse();
}

/** The path and query of a link of ours found in a message (the tests call the app in-process). */
const local = (url: string) => url.replace(/^http:\/\/127\.0\.0\.1:8080/, '');
const hrefs = (html: string) => [...html.matchAll(/href="([^"]+)"/g)].map((m) => m[1]!.replace(/&amp;/g, '&'));
const events = async (deliveryId: string) =>
  (await t.envoi.ctx.db.selectFrom('message_events').select(['type', 'detail']).where('delivery_id', '=', deliveryId).orderBy('id').execute()).map((e) => ({ type: e.type, detail: e.detail as any }));
const deliveryOf = async (messageId: string) => (await t.envoi.ctx.db.selectFrom('deliveries').select(['id', 'status', 'rule']).where('message_id', '=', messageId).executeTakeFirstOrThrow());

beforeAll(async () => {
  t = await startTestApp();
  org = await t.createOrg('Rencontres <b>Org</b>');
  other = await t.createOrg('Other Org');
  sink = await startSmtpSink();
  audienceId = (await api('POST', '/v1/audiences', { name: 'Summit <script>alert(1)</script>' })).body.id;
  otherAudienceId = (await api('POST', '/v1/audiences', { name: 'Workshops' })).body.id;
  const mk = async (audience: string, body: Record<string, unknown>) => {
    const r = await api('POST', `/v1/audiences/${audience}/templates`, { language: 'en', ...body });
    expectStatus(r, 201);
    return r.body.id as string;
  };
  tpl.tx = await mk(audienceId, {
    name: 'Receipt',
    category: 'transactional',
    subject: 'Your receipt',
    body: '<html><body><p>Thanks {{ first_name }}.</p><p><a href="https://shop.example/orders/{{ vars.order }}?utm=mail&amp;x=1">Your order</a> <a href="mailto:help@example.org">Help</a> <a data-envoi-notrack href="https://example.org/private">Private</a></p></body></html>',
  });
  tpl.mkt = await mk(audienceId, { name: 'Newsletter', category: 'marketing', subject: 'News', body: '<p>News <a href="https://example.org/agenda">Agenda</a></p><p><a href="[UNSUBLINK_FR]">Se désabonner</a></p>' });
  tpl.mkt2 = await mk(otherAudienceId, { name: 'Workshop news', category: 'marketing', subject: 'Workshops', body: '<p>Workshops [UNSUBLINK]</p>' });
  worker = new Worker(t.envoi.ctx, { smtpUrl: sink.url, pollMs: { transactional: 50, bulk: 50 }, leaseMs: 60_000 }).start();
});

afterAll(async () => {
  await worker?.stop();
  await sink?.close();
  await t?.close();
});

describe('click and open tracking', () => {
  it('wraps the http links of a sent message, redirects a click to where it pointed, and records it', async () => {
    const r = await api('POST', '/v1/messages', { template_id: tpl.tx, to: { email: 'ada@example.com', first_name: 'Ada' }, variables: { order: 'A-42' } });
    expectStatus(r, 202);
    const mail = await received('ada@example.com');
    const links = hrefs(String(mail.html));
    const tracked = links.filter((h) => h.includes('/c/'));
    expect(tracked).toHaveLength(1);
    expect(links).toContain('mailto:help@example.org');
    expect(links).toContain('https://example.org/private');
    expect(String(mail.html)).not.toContain('data-envoi-notrack');

    const click = await t.request('GET', local(tracked[0]!));
    expect(click.status).toBe(302);
    expect(click.headers.location).toBe('https://shop.example/orders/A-42?utm=mail&x=1');
    const ev = await events(r.body.delivery_id);
    expect(ev.filter((e) => e.type === 'clicked')).toEqual([{ type: 'clicked', detail: expect.objectContaining({ url: 'https://shop.example/orders/A-42?utm=mail&x=1', index: 0 }) }]);
  });

  it('redirects a link holding a line break or non-ASCII characters (from a variable) to the URL a browser would follow, not a 500', async () => {
    const tr = await api('POST', `/v1/audiences/${audienceId}/templates`, {
      name: 'Booking',
      category: 'transactional',
      language: 'en',
      subject: 'Your booking',
      body: '<p><a href="https://shop.example/réservations/{{ vars.ref }}">See it</a></p>',
    });
    expectStatus(tr, 201);
    const r = await api('POST', '/v1/messages', { template_id: tr.body.id, to: { email: 'kim@example.com' }, variables: { ref: 'B-1\r\nBcc: x@example.com' } });
    expectStatus(r, 202);
    const mail = await received('kim@example.com');
    const tracked = hrefs(String(mail.html)).filter((h) => h.includes('/c/'));
    expect(tracked).toHaveLength(1);
    const click = await t.request('GET', local(tracked[0]!));
    expect(click.status).toBe(302);
    expect(click.headers.location).toBe('https://shop.example/r%C3%A9servations/B-1Bcc:%20x@example.com');
  });

  it('never redirects where the message did not point: an altered link gets a 404 and records nothing', async () => {
    const mail = await received('ada@example.com');
    const link = local(hrefs(String(mail.html)).find((h) => h.includes('/c/'))!);
    const [id, idx, , mac] = link.slice(3).split('.');
    const forged = `/c/${id}.${idx}.${Buffer.from('https://evil.example/').toString('base64url')}.${mac}`;
    const r = await t.request('GET', forged);
    expect(r.status).toBe(404);
    expect(r.headers.location).toBeUndefined();
    expect(r.text).toContain('not valid');
    expect((await t.request('GET', '/c/not-a-token')).status).toBe(404);
    expect((await events(id!)).filter((e) => e.type === 'clicked')).toHaveLength(1);
  });

  it('serves the open pixel and records the open; a forged pixel still gets an image but no event', async () => {
    const mail = await received('ada@example.com');
    const pixel = /src="(http:\/\/127\.0\.0\.1:8080\/o\/[^"]+)"/.exec(String(mail.html))?.[1];
    expect(pixel).toBeTruthy();
    const r = await t.request('GET', local(pixel!));
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('image/gif');
    const id = local(pixel!).slice(3).split('.')[0]!;
    expect((await events(id)).filter((e) => e.type === 'opened')).toHaveLength(1);
    const forged = await t.request('GET', `/o/${id}.AAAAAAAAAAAAAAAAAAAAAA.gif`);
    expect(forged.status).toBe(200);
    expect((await events(id)).filter((e) => e.type === 'opened')).toHaveLength(1);
  });
});

describe('consent and unsubscribe', () => {
  it('records an opt-in with its proof, dates the authorisation, and refuses an opt-in without wording', async () => {
    const id = await contact('lin@example.com');
    expectStatus(await api('POST', `/v1/audiences/${audienceId}/contacts/${id}/consents`, { action: 'given', method: 'api' }), 400);
    await optIn(id);
    const h = await api('GET', `/v1/audiences/${audienceId}/contacts/${id}/consents`);
    expectStatus(h, 200);
    expect(h.body.marketing_authorized_at).toBeTruthy();
    expect(h.body.records).toEqual([expect.objectContaining({ action: 'given', method: 'signup_form', wording: WORDING, wording_version: 'v1', ip: '203.0.113.7', actor: expect.stringMatching(/^key:/) })]);
    const grid = await api('GET', `/v1/audiences/${audienceId}/contacts/${id}`);
    expect(grid.body.marketing_authorized_at).toBe(h.body.marketing_authorized_at);
    // Scoped: another organisation's key sees nothing, a viewer cannot write.
    expectStatus(await api('GET', `/v1/audiences/${audienceId}/contacts/${id}/consents`, undefined, other.apiKey), 404);
    const viewer = await orgs.createApiKey(t.envoi.ctx, org.orgId, { name: 'viewer', role: 'viewer' });
    expectStatus(await api('POST', `/v1/audiences/${audienceId}/contacts/${id}/consents`, { action: 'withdrawn', method: 'api' }, viewer.key), 403);
  });

  it('one-click unsubscribe (RFC 8058) withdraws consent for the audience: the next marketing send is blocked, transactional still goes', async () => {
    const id = await contact('max@example.com');
    await optIn(id);
    const first = await campaign(tpl.mkt, [id]);
    expect(first.queued).toBe(1);
    const mail = await received('max@example.com');
    const raw = sink.byRecipient('max@example.com')[0]!.raw.toString().split('\r\n\r\n')[0]!.replace(/\r\n[ \t]+/g, ' ');
    const url = /^List-Unsubscribe: <([^>]+)>/im.exec(raw)![1]!;
    // The French placeholder in the body is the same page, in French.
    expect(hrefs(String(mail.html))).toContain(`${url}?lang=fr`);

    const r = await t.request('POST', local(url), { body: 'List-Unsubscribe=One-Click', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(r.status).toBe(200);
    const h = await api('GET', `/v1/audiences/${audienceId}/contacts/${id}`);
    expect(h.body.marketing_authorized_at).toBeNull();
    const history = (await api('GET', `/v1/audiences/${audienceId}/contacts/${id}/consents`)).body;
    expect(history.records.map((x: any) => [x.action, x.method])).toEqual([['given', 'signup_form'], ['unsubscribed', 'one_click']]);
    expect(history.records[1].message_id).toBe(first.message_id);

    // A second click records nothing more.
    expect((await t.request('POST', local(url), { body: 'List-Unsubscribe=One-Click', headers: { 'content-type': 'application/x-www-form-urlencoded' } })).status).toBe(200);
    expect((await api('GET', `/v1/audiences/${audienceId}/contacts/${id}/consents`)).body.records).toHaveLength(2);

    const again = await campaign(tpl.mkt, [id]);
    expect(again.queued).toBe(0);
    expect(again.blocked).toEqual({ unsubscribed: 1 });
    const tx = await api('POST', '/v1/messages', { template_id: tpl.tx, to: { contact_id: id }, variables: { order: 'B-1' } });
    expectStatus(tx, 202);
    expect(tx.body.status).toBe('queued');
  });

  it('the landing page is localised and escaped, and can stop all marketing from the organisation', async () => {
    const id = await contact('zoe@example.com');
    await optIn(id);
    const id2 = await contact('zoe@example.com', otherAudienceId);
    await optIn(id2, otherAudienceId);
    await campaign(tpl.mkt, [id]);
    await received('zoe@example.com');
    const head = sink.byRecipient('zoe@example.com')[0]!.raw.toString().split('\r\n\r\n')[0]!.replace(/\r\n[ \t]+/g, ' ');
    const url = local(/^List-Unsubscribe: <([^>]+)>/im.exec(head)![1]!);

    const fr = await t.request('GET', `${url}?lang=fr`);
    expect(fr.status).toBe(200);
    expect(fr.text).toContain('Désabonnement');
    expect(fr.text).toContain('zo*@example.com');
    expect(fr.text).not.toContain('zoe@example.com');
    expect(fr.text).not.toContain('<script>alert(1)</script>');
    expect(fr.text).toContain('&lt;script&gt;');
    expect(fr.text).not.toContain('<b>Org</b>');
    const en = await t.request('GET', url, { headers: { 'accept-language': 'de-DE,en;q=0.8' } });
    expect(en.text).toContain('Stop marketing emails');

    const done = await t.request('POST', url, { body: 'scope=organisation&lang=fr', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(done.status).toBe(200);
    expect(done.text).toContain('aucun email marketing');
    const ex = await api('GET', '/v1/exclusions?q=zoe');
    expect(ex.body.items.map((x: any) => x.email_lower)).toEqual(['zoe@example.com']);

    // Excluded: no marketing from any audience of the organisation, even with consent there.
    const other = await campaign(tpl.mkt2, [id2]);
    expect(other.blocked).toEqual({ excluded: 1 });
    // ... and the exclusion never stops transactional mail.
    expectStatus(await api('POST', '/v1/messages', { template_id: tpl.tx, to: { contact_id: id }, variables: { order: 'C-3' } }), 202);
    await received('zoe@example.com', 2);
  });

  it('refuses a forged unsubscribe link, changing nothing', async () => {
    const r = await t.request('POST', '/u/2f0c9a52-6f3e-4a55-9d3c-1b2a3c4d5e6f.AAAAAAAAAAAAAAAAAAAAAA', { body: 'List-Unsubscribe=One-Click', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(r.status).toBe(404);
    expect((await t.request('GET', '/u/garbage')).status).toBe(404);
  });
});

describe('exclusion list', () => {
  it('adds, lists, refuses bad addresses whole, and removes', async () => {
    expectStatus(await api('POST', '/v1/exclusions', { items: [{ email: 'ok@example.com' }, { email: 'not an address' }] }), 400);
    expect((await api('GET', '/v1/exclusions?q=ok@')).body.items).toHaveLength(0);
    const add = await api('POST', '/v1/exclusions', { items: [{ email: 'Ok@Example.com', reason: 'asked by phone' }, { email: 'ok@example.com' }] });
    expectStatus(add, 201);
    expect(add.body).toEqual({ added: 1, already_listed: 1 });
    expect((await api('GET', '/v1/exclusions?q=ok@')).body.items).toEqual([expect.objectContaining({ email_lower: 'ok@example.com', reason: 'asked by phone', source: 'back_office' })]);
    expect((await api('GET', '/v1/exclusions?q=ok@', undefined, other.apiKey)).body.items).toHaveLength(0);
    expectStatus(await api('DELETE', '/v1/exclusions/ok%40example.com', undefined, other.apiKey), 404);
    expectStatus(await api('DELETE', '/v1/exclusions/OK%40example.com'), 204);
    expectStatus(await api('DELETE', '/v1/exclusions/ok%40example.com'), 404);
  });
});

describe('the ledger chain', () => {
  it('verifies, refuses in-place edits, and names the first altered record when someone bypasses that', async () => {
    const ok = await api('GET', `/v1/audiences/${audienceId}/consent-ledger/verify`);
    expectStatus(ok, 200);
    expect(ok.body).toMatchObject({ ok: true });
    expect(ok.body.checked).toBeGreaterThanOrEqual(5);
    const db = t.envoi.ctx.db;
    const victim = await db.selectFrom('consent_records').select(['seq']).where('audience_id', '=', audienceId).orderBy('seq').offset(1).limit(1).executeTakeFirstOrThrow();
    await expect(sql`UPDATE consent_records SET wording = 'I agree to everything' WHERE seq = ${victim.seq}`.execute(db)).rejects.toThrow(/append-only/);
    await sql`ALTER TABLE consent_records DISABLE TRIGGER consent_records_append_only`.execute(db);
    try {
      await sql`UPDATE consent_records SET wording = 'I agree to everything' WHERE seq = ${victim.seq}`.execute(db);
    } finally {
      await sql`ALTER TABLE consent_records ENABLE TRIGGER consent_records_append_only`.execute(db);
    }
    const broken = await api('GET', `/v1/audiences/${audienceId}/consent-ledger/verify`);
    expect(broken.body).toMatchObject({ ok: false, broken_at: String(victim.seq), reason: expect.stringContaining('altered') });
    expectStatus(await api('GET', `/v1/audiences/${audienceId}/consent-ledger/verify`, undefined, other.apiKey), 404);
  });

  it('keeps verifying after a contact is erased, with the clear address gone and its digest kept', async () => {
    const id = await contact('gone@example.com', otherAudienceId);
    await optIn(id, otherAudienceId);
    expectStatus(await api('DELETE', `/v1/audiences/${otherAudienceId}/contacts/${id}`), 200);
    const rows = await t.envoi.ctx.db.selectFrom('consent_records').select(['email', 'ip', 'email_hash', 'contact_id']).where('audience_id', '=', otherAudienceId).orderBy('seq', 'desc').limit(1).execute();
    expect(rows[0]).toMatchObject({ email: null, ip: null, contact_id: null });
    expect(rows[0]!.email_hash).toMatch(/^[0-9a-f]{64}$/);
    expect((await api('GET', `/v1/audiences/${otherAudienceId}/consent-ledger/verify`)).body).toMatchObject({ ok: true });
  });
});
