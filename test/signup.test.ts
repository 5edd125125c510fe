import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Worker } from '../src/sending/worker.ts';
import { expectStatus, startTestApp, type TestApp, type TestOrg } from './support/harness.ts';
import { startSmtpSink, type SmtpSink } from './support/smtp-sink.ts';

/*
 * Double opt-in end to end: the hosted form, the confirmation email through a real SMTP server, the
 * click that makes consent active, and the ledger proof of each step.
 */

let t: TestApp;
let org: TestOrg;
let other: TestOrg;
let sink: SmtpSink;
let worker: Worker;
let audienceId: string;
let mkt: string;
let form: any;
const WORDING = 'Je souhaite recevoir la <b>lettre</b> des Rencontres (une par mois), désabonnement à tout moment.';

const api = (method: string, url: string, body?: unknown, token = org.apiKey) => t.request(method, url, { token, body });
const formPost = (url: string, fields: Record<string, string>, headers: Record<string, string> = {}) =>
  t.request('POST', url, { body: new URLSearchParams(fields).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': 'Mozilla/5.0 test', ...headers } });
const local = (url: string) => url.replace(/^http:\/\/127\.0\.0\.1:8080/, '');

async function contactByEmail(email: string) {
  return t.envoi.ctx.db.selectFrom('contacts').selectAll().where('audience_id', '=', audienceId).where('email_lower', '=', email).executeTakeFirst();
}
const history = async (contactId: string) => (await api('GET', `/v1/audiences/${audienceId}/contacts/${contactId}/consents`)).body;
const dryRun = async (contactId: string) => (await api('POST', `/v1/audiences/${audienceId}/campaigns/dry-run`, { template_id: mkt, target: { contact_ids: [contactId] } })).body;

async function confirmLink(email: string, n = 1) {
  await sink.waitFor(() => sink.byRecipient(email).length >= n, 10_000);
  const mail = await sink.byRecipient(email)[n - 1]!.parse();
  const link = /href="(http:\/\/127\.0\.0\.1:8080\/f\/[^"]+\/confirm\/[^"]+)"/.exec(String(mail.html))?.[1];
  expect(link).toBeTruthy();
  return { mail, link: local(link!.replace(/&amp;/g, '&')) };
}

beforeAll(async () => {
  t = await startTestApp();
  org = await t.createOrg('Rencontres');
  other = await t.createOrg('Other');
  sink = await startSmtpSink();
  audienceId = (await api('POST', '/v1/audiences', { name: 'Lettre' })).body.id;
  mkt = (await api('POST', `/v1/audiences/${audienceId}/templates`, { name: 'Lettre', language: 'fr', category: 'marketing', subject: 'La lettre', body: '<p>Nouvelles [UNSUBLINK]</p>' })).body.id;
  const f = await api('POST', `/v1/audiences/${audienceId}/signup-forms`, { name: 'Lettre mensuelle', language: 'fr', wording: WORDING, wording_version: '2026-12' });
  expectStatus(f, 201);
  form = f.body;
  worker = new Worker(t.envoi.ctx, { smtpUrl: sink.url, pollMs: { transactional: 50, bulk: 50 }, leaseMs: 60_000 }).start();
});

afterAll(async () => {
  await worker?.stop();
  await sink?.close();
  await t?.close();
});

describe('signup forms', () => {
  it('creates a form with its hosted page and embeddable HTML, escaped; refuses a bad one; scoped', async () => {
    expect(form.hosted_url).toBe(`http://127.0.0.1:8080/f/${form.id}`);
    expect(form.embed_html).toContain(`action="http://127.0.0.1:8080/f/${form.id}"`);
    expect(form.embed_html).toContain('&lt;b&gt;lettre&lt;/b&gt;');
    expect(form.embed_html).not.toContain('<b>lettre</b>');
    const page = await t.request('GET', `/f/${form.id}`);
    expect(page.status).toBe(200);
    expect(page.text).toContain('&lt;b&gt;lettre&lt;/b&gt;');
    expect(page.text).toContain('lang="fr"');
    expectStatus(await api('POST', `/v1/audiences/${audienceId}/signup-forms`, { name: 'x', language: 'fr', wording: WORDING, wording_version: '1', success_url: 'javascript:alert(1)' }), 400);
    expectStatus(await api('POST', `/v1/audiences/${audienceId}/signup-forms`, { name: 'x', language: 'de', wording: WORDING, wording_version: '1' }), 400);
    expectStatus(await api('GET', `/v1/signup-forms/${form.id}`, undefined, other.apiKey), 404);
    expect((await t.request('GET', '/f/2f0c9a52-6f3e-4a55-9d3c-1b2a3c4d5e6f')).status).toBe(404);
  });

  it('a submission records the request with its proof and emails a confirmation; consent is not active until the click', async () => {
    const r = await formPost(`/f/${form.id}`, { email: 'Ines@Example.com', first_name: 'Inès', consent: 'yes' });
    expect(r.status).toBe(200);
    expect(r.text).toContain('email de confirmation');
    const { mail, link } = await confirmLink('Ines@example.com');
    expect(mail.subject).toBe('Confirmez votre abonnement');
    const c = (await contactByEmail('ines@example.com'))!;
    expect(c.first_name).toBe('Inès');
    const h = await history(c.id);
    expect(h.marketing_authorized_at).toBeNull();
    expect(h.records).toEqual([expect.objectContaining({ action: 'requested', method: 'signup_form', wording: WORDING, wording_version: '2026-12', user_agent: 'Mozilla/5.0 test', actor: 'contact' })]);
    expect((await dryRun(c.id)).blocked).toEqual({ no_marketing_consent: 1 });

    // The same request again at once sends no second email.
    expect((await formPost(`/f/${form.id}`, { email: 'ines@example.com', consent: 'yes' })).status).toBe(200);
    await new Promise((res) => setTimeout(res, 400));
    expect(sink.byRecipient('Ines@example.com')).toHaveLength(1);

    // Opening the link (a person, or a mail scanner) confirms nothing: it shows the button that does.
    const opened = await t.request('GET', link);
    expect(opened.status).toBe(200);
    expect(opened.text).toContain('Je confirme mon abonnement');
    expect(opened.text).toContain(`action="${t.envoi.ctx.config.publicUrl.replace(/\/+$/, '')}${new URL(link, 'http://x').pathname}"`);
    expect((await history(c.id)).marketing_authorized_at).toBeNull();
    const done = await formPost(link, {});
    expect(done.status).toBe(200);
    expect(done.text).toContain('confirmé');
    const after = await history(c.id);
    expect(after.marketing_authorized_at).toBeTruthy();
    expect(after.records.map((x: any) => [x.action, x.method, x.wording])).toEqual([
      ['requested', 'signup_form', WORDING],
      ['confirmed', 'double_opt_in', WORDING],
    ]);
    expect((await dryRun(c.id)).allowed).toBe(1);
    // A second click, or opening the link again, changes nothing.
    expect((await formPost(link, {})).text).toContain('déjà confirmé');
    expect((await t.request('GET', link)).text).toContain('déjà confirmé');
    expect((await history(c.id)).records).toHaveLength(2);
    // The chain still verifies.
    expect((await api('GET', `/v1/audiences/${audienceId}/consent-ledger/verify`)).body.ok).toBe(true);
  });

  it('refuses a submission without the box ticked or with a bad address, keeping what was typed; JSON too', async () => {
    const r = await formPost(`/f/${form.id}`, { email: 'noconsent@example.com' });
    expect(r.status).toBe(400);
    expect(r.text).toContain('role="alert"');
    expect(r.text).toContain('value="noconsent@example.com"');
    expect(await contactByEmail('noconsent@example.com')).toBeUndefined();
    const j = await t.request('POST', `/f/${form.id}`, { body: { email: 'not-an-email', consent: true } });
    expect(j.status).toBe(400);
    expect(j.body.error.code).toBe('invalid_signup');
    const ok = await t.request('POST', `/f/${form.id}`, { body: { email: 'json@example.com', consent: true } });
    expect(ok.status).toBe(202);
  });

  it('ignores robots that fill the hidden field, answering as for anyone', async () => {
    const r = await formPost(`/f/${form.id}`, { email: 'bot@example.com', consent: 'yes', website: 'http://spam.example' });
    expect(r.status).toBe(200);
    expect(await contactByEmail('bot@example.com')).toBeUndefined();
  });

  it('refuses a forged link and an expired one, and sends to the organiser page when the form has one', async () => {
    expect((await t.request('GET', `/f/${form.id}/confirm/2f0c9a52-6f3e-4a55-9d3c-1b2a3c4d5e6f.AAAAAAAAAAAAAAAAAAAAAA`)).status).toBe(404);
    await formPost(`/f/${form.id}`, { email: 'late@example.com', consent: 'yes' });
    const { link } = await confirmLink('late@example.com');
    const saved = t.clock.now;
    t.clock.now = new Date(saved.getTime() + 8 * 86_400_000);
    try {
      expect((await t.request('GET', link)).status).toBe(410);
      const r = await formPost(link, {});
      expect(r.status).toBe(410);
      expect((await history((await contactByEmail('late@example.com'))!.id)).marketing_authorized_at).toBeNull();
    } finally {
      t.clock.now = saved;
    }
    // A link of one form does not confirm through another.
    const f2 = (await api('POST', `/v1/audiences/${audienceId}/signup-forms`, { name: 'Site', language: 'en', wording: 'Yes, send me the newsletter.', wording_version: 'v1', success_url: 'https://site.example/thanks' })).body;
    expect((await t.request('GET', `/f/${f2.id}/confirm/${link.split('/').pop()}`)).status).toBe(404);
    expect((await formPost(`/f/${f2.id}/confirm/${link.split('/').pop()}`, {})).status).toBe(404);
    await formPost(`/f/${f2.id}`, { email: 'site@example.com', consent: 'on' });
    const second = await confirmLink('site@example.com');
    expect(second.mail.subject).toBe('Please confirm your subscription');
    const r = await formPost(second.link, {});
    expect(r.status).toBe(303);
    expect(r.headers.location).toBe('https://site.example/thanks');
  });
  it('takes a form off line and back: its page and submissions answer 404 meanwhile, a link already sent still confirms', async () => {
    const f = (await api('POST', `/v1/audiences/${audienceId}/signup-forms`, { name: 'Spring', language: 'en', wording: 'Yes, send me the spring news.', wording_version: 's1' })).body;
    await formPost(`/f/${f.id}`, { email: 'spring@example.com', consent: 'yes' });
    const { link } = await confirmLink('spring@example.com');
    const off = await api('POST', `/v1/signup-forms/${f.id}/disable`);
    expect(off.status).toBe(200);
    expect(off.body.disabled_at).toBeTruthy();
    expect((await t.request('GET', `/f/${f.id}`)).status).toBe(404);
    expect((await formPost(`/f/${f.id}`, { email: 'late-spring@example.com', consent: 'yes' })).status).toBe(404);
    expect(await contactByEmail('late-spring@example.com')).toBeUndefined();
    expect((await formPost(link, {})).status).toBe(200);
    expect((await history((await contactByEmail('spring@example.com'))!.id)).marketing_authorized_at).toBeTruthy();
    expect((await api('POST', `/v1/signup-forms/${f.id}/disable`, undefined, other.apiKey)).status).toBe(404);
    const on = await api('POST', `/v1/signup-forms/${f.id}/enable`);
    expect(on.body.disabled_at).toBeNull();
    expect((await t.request('GET', `/f/${f.id}`)).status).toBe(200);
  });
});
