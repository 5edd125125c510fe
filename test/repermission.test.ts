import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Worker } from '../src/sending/worker.ts';
import { CampaignScheduler } from '../src/campaigns/scheduler.ts';
import { expectStatus, startTestApp, until, type TestApp, type TestOrg } from './support/harness.ts';
import { startSmtpSink, type SmtpSink } from './support/smtp-sink.ts';

/*
 * Re-permission (reference: mailjet-gdpr-repermission), end to end: the ready MJML template, the
 * campaign to contacts whose consent is unproven, YES / NO answers through the links that arrived by
 * SMTP, a late YES, silence, and the resulting consenting list and export.
 */

let t: TestApp;
let org: TestOrg;
let other: TestOrg;
let sink: SmtpSink;
let worker: Worker;
let scheduler: CampaignScheduler;
let audienceId: string;
let templateId: string;
const ids: Record<string, string> = {};

const api = (method: string, url: string, body?: unknown, token = org.apiKey) => t.request(method, url, { token, body });
const local = (url: string) => url.replace(/^http:\/\/127\.0\.0\.1:8080/, '');
const form = (url: string, fields: Record<string, string> = {}) => t.request('POST', url, { body: new URLSearchParams(fields).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } });

async function answerLinks(email: string) {
  await sink.waitFor(() => sink.byRecipient(email).length >= 1, 10_000);
  const html = String((await sink.byRecipient(email)[0]!.parse()).html);
  const links = [...html.matchAll(/href="(http:\/\/127\.0\.0\.1:8080\/r\/[^"]+)"/g)].map((m) => local(m[1]!));
  return { yes: links.find((l) => l.includes('.yes.'))!, no: links.find((l) => l.includes('.no.'))!, html };
}

beforeAll(async () => {
  t = await startTestApp();
  org = await t.createOrg('Rencontres');
  other = await t.createOrg('Other');
  sink = await startSmtpSink();
  audienceId = (await api('POST', '/v1/audiences', { name: 'Anciens inscrits' })).body.id;
  for (const name of ['yes', 'no', 'late', 'silent', 'already', 'refused']) {
    const r = await api('POST', `/v1/audiences/${audienceId}/contacts`, { email: `${name}@example.com`, first_name: name });
    expectStatus(r, 201);
    ids[name] = r.body.id;
  }
  expectStatus(await api('POST', `/v1/audiences/${audienceId}/contacts/${ids.already}/consents`, { action: 'given', method: 'import', wording: 'Newsletter, 2019 form' }), 201);
  expectStatus(await api('POST', `/v1/audiences/${audienceId}/contacts/${ids.refused}/consents`, { action: 'withdrawn', method: 'back_office' }), 201);
  const tpl = await api('POST', `/v1/audiences/${audienceId}/templates/from-builtin`, { builtin: 're_permission', language: 'fr' });
  expectStatus(tpl, 201);
  templateId = tpl.body.id;
  worker = new Worker(t.envoi.ctx, { smtpUrl: sink.url, pollMs: { transactional: 50, bulk: 50 }, leaseMs: 60_000 }).start();
  scheduler = new CampaignScheduler(t.envoi.ctx, { pollMs: 50 }).start();
});

afterAll(async () => {
  await scheduler?.stop();
  await worker?.stop();
  await sink?.close();
  await t?.close();
});

describe('re-permission campaigns', () => {
  let campaignId: string;
  let deadline: Date;

  it('sends the ready template to contacts without proven consent too, never to one who refused', async () => {
    expect((await api('GET', `/v1/audiences/${audienceId}/templates/${templateId}`)).body).toMatchObject({ category: 'marketing', format: 'mjml' });
    deadline = new Date(t.clock.now.getTime() + 7 * 86_400_000);
    const target = { contact_ids: Object.values(ids) };
    const dry = await api('POST', `/v1/audiences/${audienceId}/campaigns/dry-run`, { template_id: templateId, target });
    // As a plain marketing campaign, only the one with consent would get it.
    expect(dry.body).toMatchObject({ allowed: 1, blocked: { unsubscribed: 1, no_marketing_consent: 4 } });
    expectStatus(await api('POST', `/v1/audiences/${audienceId}/campaigns`, { name: 'x', template_id: templateId, target, repermission: { deadline: new Date(t.clock.now.getTime() - 1000).toISOString() } }), 400);
    const c = await api('POST', `/v1/audiences/${audienceId}/campaigns`, { name: 'Requalification 2026', template_id: templateId, target, repermission: { deadline: deadline.toISOString() }, start: true });
    expectStatus(c, 201);
    expect(c.body).toMatchObject({ kind: 'repermission', deadline: deadline.toISOString() });
    campaignId = c.body.id;
    expect((await api('POST', `/v1/campaigns/${campaignId}/dry-run`)).body).toMatchObject({ allowed: 5, blocked: { unsubscribed: 1 } });
    await until(async () => (await api('GET', `/v1/campaigns/${campaignId}`)).body.status === 'completed', 'the campaign');
    expect(sink.received.flatMap((m) => m.rcptTo).sort()).toEqual(['already', 'late', 'no', 'silent', 'yes'].map((n) => `${n}@example.com`));
    const { yes, no, html } = await answerLinks('yes@example.com');
    expect(yes).toBeTruthy();
    expect(no).toBeTruthy();
    expect(html).toContain('OUI, je continue');
    expect(html).toMatch(/Sans réponse de votre part avant le/);
  });

  it('YES opens a page and records a fresh consent, with the confirmed sentence, only on its button', async () => {
    const { yes } = await answerLinks('yes@example.com');
    const page = await t.request('GET', yes, { headers: { 'accept-language': 'fr-FR' } });
    expect(page.status).toBe(200);
    expect(page.text).toContain('Oui, je souhaite continuer');
    // Opening the link (a mail scanner does) answers nothing.
    expect((await api('GET', `/v1/audiences/${audienceId}/contacts/${ids.yes}/consents`)).body.records).toHaveLength(0);
    const done = await form(yes, { lang: 'fr' });
    expect(done.status).toBe(200);
    expect(done.text).toContain('Merci pour votre confirmation');
    const h = (await api('GET', `/v1/audiences/${audienceId}/contacts/${ids.yes}/consents`)).body;
    expect(h.marketing_authorized_at).toBeTruthy();
    expect(h.records).toEqual([expect.objectContaining({ action: 'repermission_yes', method: 'repermission_click', campaign_id: campaignId, wording: expect.stringContaining('Oui, je souhaite continuer') })]);
  });

  it('NO unsubscribes; a YES after the deadline still counts, as late; silence unsubscribes nobody', async () => {
    const no = (await answerLinks('no@example.com')).no;
    expect((await form(no, { lang: 'fr' })).text).toContain("C'est noté");
    expect((await api('GET', `/v1/audiences/${audienceId}/contacts/${ids.no}/consents`)).body.records.map((r: any) => r.action)).toEqual(['repermission_no']);

    t.clock.now = new Date(deadline.getTime() + 86_400_000);
    expectStatus(await form((await answerLinks('late@example.com')).yes), 200);
    // Answering YES again after the deadline keeps the YES given on time.
    expectStatus(await form((await answerLinks('yes@example.com')).yes), 200);

    const r = await api('GET', `/v1/campaigns/${campaignId}/repermission`);
    expectStatus(r, 200);
    expect(r.body).toMatchObject({ closed: true, sent: 5, yes: 2, yes_on_time: 1, yes_late: 1, no: 1, unanswered: 2 });
    expect(r.body.consenting.map((c: any) => [c.email, c.late]).sort()).toEqual([
      ['late@example.com', true],
      ['yes@example.com', false],
    ]);
    // Silent contacts keep their state: no fresh consent, not unsubscribed.
    const silent = (await api('GET', `/v1/audiences/${audienceId}/contacts/${ids.silent}/consents`)).body;
    expect(silent).toMatchObject({ marketing_authorized_at: null, marketing_withdrawn_at: null, records: [] });

    const csv = await api('GET', `/v1/campaigns/${campaignId}/repermission?format=csv`);
    expect(csv.headers['content-type']).toMatch(/text\/csv/);
    expect(csv.text.split('\n')[0]).toMatch(/^\uFEFF?email,contact_id,answered_at,late/);
    expect(csv.text).toContain('late@example.com');
    expect(csv.text).not.toContain('no@example.com');

    // ... and as a view of the audience, to send the next newsletter to.
    const view = await api('POST', `/v1/campaigns/${campaignId}/repermission/view`);
    expectStatus(view, 201);
    const listed = await api('POST', `/v1/audiences/${audienceId}/views/${view.body.id}/query`, {});
    expectStatus(listed, 200);
    expect(listed.body.items.map((c: any) => c.email).sort()).toEqual(['late@example.com', 'yes@example.com']);

    // The answers are the campaign's two links in its click report.
    const clickers = await api('GET', `/v1/reports/links?message_id=${(await api('GET', `/v1/campaigns/${campaignId}`)).body.message_id}`);
    expectStatus(clickers, 200);
    expect(JSON.stringify(clickers.body)).toContain('repermission:yes');
  });

  it('refuses forged answers, other organisations and non re-permission campaigns', async () => {
    const { yes } = await answerLinks('silent@example.com');
    expect((await form(yes.replace('.yes.', '.no.'))).status).toBe(404);
    expect((await t.request('GET', '/r/garbage')).status).toBe(404);
    expectStatus(await api('GET', `/v1/campaigns/${campaignId}/repermission`, undefined, other.apiKey), 404);
    expect((await api('GET', `/v1/audiences/${audienceId}/consent-ledger/verify`)).body.ok).toBe(true);
  });
});
