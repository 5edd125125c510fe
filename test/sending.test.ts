import { performance } from 'node:perf_hooks';
import { generateKeyPairSync, verify as verifySignature } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as orgs from '../src/organisations/service.ts';
import { openPostgres } from '../src/platform/database.ts';
import { createContext, type AppContext } from '../src/platform/context.ts';
import { Worker } from '../src/sending/worker.ts';
import { enqueueToContacts, sendAccountToken } from '../src/sending/service.ts';
import { signUp } from '../src/accounts/service.ts';
import { compileCount } from '../src/mail/template-service.ts';
import { parseVerp, verpAddress } from '../src/mail/compose.ts';
import { dbKind, expectStatus, startTestApp, type TestApp, type TestOrg } from './support/harness.ts';
import { startSmtpSink, type SmtpSink } from './support/smtp-sink.ts';

let t: TestApp;
let org: TestOrg;
let other: TestOrg;
let sink: SmtpSink;
let worker: Worker;
let audienceId: string;
let eventId: string;
let participantEmail: string;
const tpl: Record<'tx' | 'part' | 'mkt', string> = { tx: '', part: '', mkt: '' };
const figures: Record<string, unknown> = { database: dbKind };

const post = (body: unknown, token = org.apiKey, headers?: Record<string, string>) => t.request('POST', '/v1/messages', { token, body, headers });
const getMessage = (id: string, token = org.apiKey) => t.request('GET', `/v1/messages/${id}`, { token });

async function waitForStatus(id: string, status: string, timeoutMs = 10_000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const m = await getMessage(id);
    expectStatus(m, 200);
    if (m.body.status === status) return m.body;
    if (Date.now() > end) throw new Error(`message ${id} stayed ${m.body.status}, expected ${status}: ${JSON.stringify(m.body.deliveries)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Moves the test clock past a deferred delivery's retry time and wakes the worker. */
async function passRetryTime(message: { deliveries: { due_at: string }[] }) {
  t.clock.now = new Date(new Date(message.deliveries[0]!.due_at).getTime() + 1000);
  worker.wake();
}

beforeAll(async () => {
  t = await startTestApp();
  org = await t.createOrg('Sender Org');
  other = await t.createOrg('Other Org');
  sink = await startSmtpSink();
  audienceId = (await t.request('POST', '/v1/audiences', { token: org.apiKey, body: { name: 'Summit people' } })).body.id;
  const day = 86_400_000;
  const e = await t.request('POST', `/v1/audiences/${audienceId}/events`, {
    token: org.apiKey,
    body: { name: 'Summit', starts_at: new Date(t.clock.now.getTime() + 20 * day).toISOString(), ends_at: new Date(t.clock.now.getTime() + 21 * day).toISOString(), time_zone: 'Europe/Paris' },
  });
  expectStatus(e, 201);
  eventId = e.body.id;
  participantEmail = 'grace@example.com';
  expectStatus(await t.request('POST', `/v1/events/${eventId}/participants`, { token: org.apiKey, body: { email: participantEmail, first_name: 'Grace' } }), 201);
  const mk = async (body: Record<string, unknown>) => {
    const r = await t.request('POST', `/v1/audiences/${audienceId}/templates`, { token: org.apiKey, body: { language: 'en', ...body } });
    expectStatus(r, 201);
    return r.body.id as string;
  };
  tpl.tx = await mk({
    name: 'Confirm',
    category: 'transactional',
    subject: 'Confirm your address, {{ first_name }}',
    preheader: 'One click to go',
    body: '<html><body><p>Hello {{ first_name }},</p><p><a href="{{ confirm_url }}">Confirm</a></p><p>Ref {{ vars.ref | default: "none" }}</p></body></html>',
    from_name: 'Rencontres Numériques',
    reply_to: 'help@example.org',
  });
  tpl.part = await mk({
    name: 'Programme',
    category: 'participation',
    event_id: eventId,
    format: 'mjml',
    subject: 'Your programme for {{ event.name }}',
    body: '<mjml><mj-body><mj-section><mj-column><mj-text>Hi {{ first_name }}, see you at {{ event.name }}. <a href="{{ unsubscribe_url }}">Unsubscribe</a></mj-text></mj-column></mj-section></mj-body></mjml>',
  });
  tpl.mkt = await mk({ name: 'Newsletter', category: 'marketing', subject: 'News', body: '<p>News [UNSUBLINK]</p>' });
  worker = new Worker(t.envoi.ctx, { smtpUrl: sink.url, pollMs: { transactional: 50, bulk: 50 }, leaseMs: 60_000 }).start();
});

afterAll(async () => {
  await worker?.stop();
  await sink?.close();
  await t?.close();
  console.log(`sending figures (${dbKind}): ${JSON.stringify(figures)}`);
});

describe('triggered sending over SMTP', () => {
  it('delivers a personalised transactional email within a second, with the right parts and headers', async () => {
    const before = performance.now();
    const r = await post({ template_id: tpl.tx, to: { email: 'Zoe@Example.com', first_name: 'Zoë' }, variables: { confirm_url: 'https://example.org/c?t=abc&x=1', ref: 'R-42' }, custom_id: 'order-7', tags: ['signup'], sensitive: true });
    const accepted = performance.now();
    expectStatus(r, 202);
    expect(r.body).toMatchObject({ status: 'queued' });
    await sink.waitFor(() => sink.byRecipient('Zoe@example.com').length === 1, 5000);
    const mail = sink.byRecipient('Zoe@example.com')[0]!;
    const ms = mail.at - accepted;
    figures.accept_ms = Math.round(accepted - before);
    figures.accepted_to_smtp_ms = Math.round(ms);
    expect(ms).toBeLessThan(1000);

    const deliveryId = r.body.delivery_id as string;
    expect(mail.envelopeFrom).toMatch(new RegExp(`^bounce\\+${deliveryId}\\.[0-9a-f]{15}@localhost$`));
    expect(parseVerp(mail.envelopeFrom, t.envoi.ctx.config.secret)).toBe(deliveryId);
    const parsed = await mail.parse();
    expect(parsed.subject).toBe('Confirm your address, Zoë');
    expect(parsed.messageId).toBe(`<${deliveryId}@localhost>`);
    expect(parsed.date).toBeInstanceOf(Date);
    expect(parsed.headers.has('date')).toBe(true);
    expect(parsed.from?.value[0]).toMatchObject({ name: 'Rencontres Numériques', address: 'no-reply@localhost' });
    expect(parsed.replyTo?.value[0]?.address).toBe('help@example.org');
    expect(parsed.to && !Array.isArray(parsed.to) ? parsed.to.value[0] : null).toMatchObject({ address: 'Zoe@example.com', name: 'Zoë' });
    expect(parsed.headers.has('list-unsubscribe')).toBe(false);
    expect(parsed.html).toContain('Hello Zoë,');
    // A link holding a secret is sent as written: messages marked sensitive are not click-tracked.
    expect(parsed.html).toContain('href="https://example.org/c?t=abc&amp;x=1"');
    expect(parsed.html).not.toContain('/o/');
    expect(parsed.html).toContain('One click to go');
    expect(parsed.text).toContain('Hello Zoë,');
    expect(parsed.text).toContain('Ref R-42');
    expect(mail.raw.toString()).toMatch(/Content-Type: multipart\/alternative/);

    const m = await waitForStatus(r.body.id, 'sent');
    expect(m.events.map((e: any) => e.type)).toEqual(['queued', 'sent']);
    expect(m.deliveries[0]).toMatchObject({ status: 'sent', attempts: 1, email: 'Zoe@example.com', lane: 'transactional' });
    expect(m.deliveries[0].smtp_response).toMatch(/^250/);
    expect(m).toMatchObject({ custom_id: 'order-7', tags: ['signup'], category: 'transactional', origin: 'triggered' });
    // Once connections are open and code is warm: accept, then SMTP receipt, of a second message.
    const warm: number[] = [];
    for (let i = 0; i < 5; i++) {
      const a = performance.now();
      const again = await post({ template_id: tpl.tx, to: { email: `warm${i}@example.com` }, variables: { confirm_url: 'https://example.org/c' } });
      const b = performance.now();
      expectStatus(again, 202);
      await sink.waitFor(() => sink.byRecipient(`warm${i}@example.com`).length === 1, 5000);
      warm.push(sink.byRecipient(`warm${i}@example.com`)[0]!.at - b, b - a);
    }
    figures.warm_accept_ms = warm.filter((_, i) => i % 2 === 1).map(Math.round);
    figures.warm_accepted_to_smtp_ms = warm.filter((_, i) => i % 2 === 0).map(Math.round);
    // The address became a contact of the audience.
    const contact = await t.request('GET', `/v1/audiences/${audienceId}/contacts/${m.deliveries[0].contact_id}`, { token: org.apiKey });
    expect(contact.body).toMatchObject({ email: 'Zoe@example.com', first_name: 'Zoë' });
  });

  it('adds List-Unsubscribe with one-click to participation mail', async () => {
    const r = await post({ template_id: tpl.part, to: { email: participantEmail } });
    expectStatus(r, 202);
    await sink.waitFor(() => sink.byRecipient(participantEmail).length === 1);
    const mail = sink.byRecipient(participantEmail)[0]!;
    const parsed = await mail.parse();
    const head = mail.raw.toString().split('\r\n\r\n')[0]!.replace(/\r\n[ \t]+/g, ' ');
    const list = /^List-Unsubscribe: (.*)$/im.exec(head)?.[1] ?? '';
    expect(list).toMatch(new RegExp(`<http://127\\.0\\.0\\.1:8080/u/${r.body.delivery_id}\\.[A-Za-z0-9_-]+>`));
    expect(list).toMatch(new RegExp(`<mailto:unsubscribe\\+${r.body.delivery_id}\\.[0-9a-f]{15}@localhost\\?subject=unsubscribe>`));
    expect(head).toMatch(/^List-Unsubscribe-Post: List-Unsubscribe=One-Click$/im);
    // The body link is the same page.
    expect(parsed.html).toMatch(new RegExp(`href="http://127\\.0\\.0\\.1:8080/u/${r.body.delivery_id}\\.`));
    expect(parsed.subject).toBe('Your programme for Summit');
  });

  it('refuses marketing templates with the rule explained, and stores nothing', async () => {
    const count = async () => Number((await t.envoi.ctx.db.selectFrom('messages').select((eb) => eb.fn.countAll().as('n')).where('org_id', '=', org.orgId).executeTakeFirstOrThrow()).n);
    const before = await count();
    const r = await post({ template_id: tpl.mkt, to: { email: participantEmail } });
    expectStatus(r, 422);
    expect(r.body.error.code).toBe('triggered_marketing');
    expect(r.body.error.message).toMatch(/campaign/);
    expect(r.body.error.details.explanation.fr).toMatch(/campagne/);
    expect(await count()).toBe(before);
  });

  it('stores a blocked recipient with its rule and sends nothing', async () => {
    const r = await post({ template_id: tpl.part, to: { email: 'stranger@example.com' } });
    expectStatus(r, 202);
    expect(r.body).toMatchObject({ status: 'blocked', rule: 'not_participant' });
    const m = await getMessage(r.body.id);
    expect(m.body.status).toBe('blocked');
    expect(m.body.deliveries[0]).toMatchObject({ status: 'blocked', rule: 'not_participant' });
    expect(m.body.deliveries[0].rule_detail).toMatch(new RegExp(eventId));
    expect(m.body.deliveries[0].explanation.en).toMatch(/participant/);
    expect(m.body.events).toMatchObject([{ type: 'blocked', detail: { rule: 'not_participant' } }]);
    await new Promise((r) => setTimeout(r, 200));
    expect(sink.attempts.filter((a) => a.rcpt === 'stranger@example.com')).toHaveLength(0);
  });

  it('refuses bad requests with a clear 4xx and names a missing variable', async () => {
    const missing = await post({ template_id: tpl.tx, to: { email: 'forgot@example.com' } });
    expectStatus(missing, 400);
    expect(missing.body.error).toMatchObject({ code: 'template_missing_variable', details: { variable: 'confirm_url' } });
    expectStatus(await post({ template_id: tpl.tx, to: {} }), 400);
    expectStatus(await post({ template_id: tpl.tx, to: { email: 'not-an-email' }, variables: { confirm_url: 'x' } }), 400);
    expectStatus(await post({ to: { email: 'a@example.com' } }), 400);
    expectStatus(await post({ template_id: tpl.tx, to: { email: 'a@example.com' }, variables: { confirm_url: 'x' } }, other.apiKey), 404);
    expectStatus(await post({ template_id: '00000000-0000-4000-8000-000000000000', to: { email: 'a@example.com' } }), 404);
    const r = await post({ template_id: tpl.tx, to: { email: 'z2@example.com' }, variables: { confirm_url: 'x' } });
    expectStatus(await getMessage(r.body.id, other.apiKey), 404);
  });

  it('sends an inline transactional message, and only transactional ones', async () => {
    const r = await post({ audience_id: audienceId, subject: 'Receipt {{ vars.n }}', html: '<p>Thanks {{ first_name | default: "friend" }}</p>', to: { email: 'inline@example.com' }, variables: { n: 12 } });
    expectStatus(r, 202);
    await sink.waitFor(() => sink.byRecipient('inline@example.com').length === 1);
    const parsed = await sink.byRecipient('inline@example.com')[0]!.parse();
    expect(parsed.subject).toBe('Receipt 12');
    expect(parsed.text).toContain('Thanks friend');
    expectStatus(await post({ template_id: tpl.tx, subject: 'x', html: 'y', to: { email: 'inline@example.com' } }), 400);
  });

  it('refuses an Idempotency-Key header it would have to cut, or that contradicts the body, rather than confuse two messages', async () => {
    const body = { template_id: tpl.tx, to: { email: 'idem-long@example.com' }, variables: { confirm_url: 'https://e.example/l' } };
    const long = 'k'.repeat(255);
    const first = await post(body, org.apiKey, { 'idempotency-key': `${long}-1` });
    expectStatus(first, 400);
    expect(first.body.error.code).toBe('invalid_idempotency_key');
    const clash = await post({ ...body, idempotency_key: 'body-key' }, org.apiKey, { 'idempotency-key': 'header-key' });
    expectStatus(clash, 400);
    expect(clash.body.error.code).toBe('invalid_idempotency_key');
    // The same key both ways is one key.
    expectStatus(await post({ ...body, idempotency_key: 'same-key' }, org.apiKey, { 'idempotency-key': 'same-key' }), 202);
    expectStatus(await post(body, org.apiKey, { 'idempotency-key': 'same-key' }), 202);
    const rows = await t.envoi.ctx.db.selectFrom('messages').select('id').where('idempotency_key', '=', 'same-key').execute();
    expect(rows).toHaveLength(1);
  });

  it('answers a repeated idempotency key with the first result and sends once, even concurrently', async () => {
    const body = { template_id: tpl.tx, to: { email: 'idem@example.com' }, variables: { confirm_url: 'https://e.example/1' }, idempotency_key: 'signup-idem-1' };
    const first = await post(body);
    expectStatus(first, 202);
    const again = await post(body);
    expectStatus(again, 202);
    expect(again.body).toEqual(first.body);
    expect(again.headers['idempotent-replayed']).toBe('true');
    const reused = await post({ ...body, variables: { confirm_url: 'https://e.example/other' } });
    expectStatus(reused, 409);
    expect(reused.body.error.code).toBe('idempotency_key_reused');

    const burst = { template_id: tpl.tx, to: { email: 'burst@example.com' }, variables: { confirm_url: 'https://e.example/2' } };
    const answers = await Promise.all(Array.from({ length: 8 }, () => post(burst, org.apiKey, { 'idempotency-key': 'burst-1' })));
    for (const a of answers) expectStatus(a, 202);
    expect(new Set(answers.map((a) => a.body.id)).size).toBe(1);
    await waitForStatus(first.body.id, 'sent');
    await waitForStatus(answers[0]!.body.id, 'sent');
    await new Promise((r) => setTimeout(r, 200));
    expect(sink.byRecipient('idem@example.com')).toHaveLength(1);
    expect(sink.byRecipient('burst@example.com')).toHaveLength(1);
    const rows = await t.envoi.ctx.db.selectFrom('messages').select('id').where('idempotency_key', '=', 'burst-1').execute();
    expect(rows).toHaveLength(1);
  });

  it('limits an API key to its requests per minute, with Retry-After', async () => {
    const limited = await orgs.createApiKey(t.envoi.ctx, org.orgId, { name: 'limited', role: 'editor', rateLimitPerMinute: 3 });
    const body = { template_id: tpl.part, to: { email: participantEmail } };
    for (let i = 0; i < 3; i++) {
      const ok = await post(body, limited.key);
      expectStatus(ok, 202);
      expect(ok.headers['x-ratelimit-remaining']).toBe(String(2 - i));
    }
    const over = await post(body, limited.key);
    expectStatus(over, 429);
    expect(over.body.error.code).toBe('rate_limited');
    const retryAfter = Number(over.headers['retry-after']);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    // Other keys are not affected; the next window is open again.
    expectStatus(await post(body), 202);
    t.clock.now = new Date(t.clock.now.getTime() + retryAfter * 1000);
    expectStatus(await post(body, limited.key), 202);
  });
});

describe('built-in templates', () => {
  it('sends a built-in template in the asked language, signed with the organisation name', async () => {
    const r = await post({ builtin: 'password_reset', audience_id: audienceId, language: 'fr-CA', to: { email: 'reset@example.com' }, variables: { reset_url: 'https://site.example/reset?t=1' } });
    expectStatus(r, 202);
    await sink.waitFor(() => sink.byRecipient('reset@example.com').length === 1);
    const parsed = await sink.byRecipient('reset@example.com')[0]!.parse();
    expect(parsed.subject).toBe('Réinitialisation de votre mot de passe');
    expect(parsed.html).toContain('href="https://site.example/reset?t=1"');
    expect(parsed.html).toContain('Sender Org');
    expect(parsed.html).toMatch(/<html[^>]*lang="fr"/);
    const missing = await post({ builtin: 'password_reset', audience_id: audienceId, to: { email: 'reset@example.com' } });
    expectStatus(missing, 400);
    expect(missing.body.error.details.variable).toBe('reset_url');
    const marketing = await post({ builtin: 're_permission', audience_id: audienceId, to: { email: 'reset@example.com' } });
    expectStatus(marketing, 422);
    expect(marketing.body.error.code).toBe('triggered_marketing');
    expectStatus(await post({ builtin: 'password_reset', to: { email: 'reset@example.com' }, variables: { reset_url: 'x' } }), 400);
  });

  it("uses the audience's override of a built-in, in its language only", async () => {
    const base = `/v1/audiences/${audienceId}/templates`;
    const override = { name: 'Our reset', category: 'transactional', language: 'fr', builtin_kind: 'password_reset', subject: 'Nouveau mot de passe {{ organisation_name }}', body: '<p>Cliquez : {{ reset_url }}</p>' };
    expectStatus(await t.request('POST', base, { token: org.apiKey, body: { ...override, category: 'participation', event_id: eventId } }), 400);
    expectStatus(await t.request('POST', base, { token: org.apiKey, body: override }), 201);
    expectStatus(await t.request('POST', base, { token: org.apiKey, body: { ...override, name: 'Second' } }), 409);
    const fr = await post({ builtin: 'password_reset', audience_id: audienceId, language: 'fr', to: { email: 'over@example.com' }, variables: { reset_url: 'https://site.example/r' } });
    const en = await post({ builtin: 'password_reset', audience_id: audienceId, language: 'en', to: { email: 'over-en@example.com' }, variables: { reset_url: 'https://site.example/r' } });
    await sink.waitFor(() => sink.byRecipient('over@example.com').length === 1 && sink.byRecipient('over-en@example.com').length === 1);
    expect((await sink.byRecipient('over@example.com')[0]!.parse()).subject).toBe('Nouveau mot de passe Sender Org');
    expect((await sink.byRecipient('over-en@example.com')[0]!.parse()).subject).toBe('Reset your password');
    expect((await getMessage(fr.body.id)).body.template_id).toBeTruthy();
    expect((await getMessage(en.body.id)).body.template_id).toBeNull();
  });

  it('emails the confirmation link of a new contact account, and keeps the token only until it is sent', async () => {
    const principal = (await orgs.authenticate(t.envoi.ctx, org.apiKey))!;
    const account = await signUp(t.envoi.ctx, principal, audienceId, { email: 'newaccount@example.com', password: 'correct horse battery', first_name: 'Nora' });
    const r = await sendAccountToken(t.envoi.ctx, principal, audienceId, account.confirmToken, 'https://site.example/confirm?from=mail', 'en');
    expect(r.status).toBe('queued');
    await waitForStatus(r.id, 'sent');
    const parsed = await sink.byRecipient('newaccount@example.com')[0]!.parse();
    const link = new URL(`https://site.example/confirm?from=mail&token=${account.confirmToken.token}`).toString().replace(/&/g, '&amp;');
    expect(parsed.html).toContain(link);
    expect(parsed.html).toContain('Nora');
    const stored = await t.envoi.ctx.db.selectFrom('messages').select(['variables', 'sensitive']).where('id', '=', r.id).executeTakeFirstOrThrow();
    expect(stored).toEqual({ variables: {}, sensitive: true });
  });

  it('sends registration_confirmation about the event given', async () => {
    const r = await post({ builtin: 'registration_confirmation', audience_id: audienceId, event_id: eventId, to: { email: participantEmail } });
    expectStatus(r, 202);
    await waitForStatus(r.body.id, 'sent');
    const mails = sink.byRecipient(participantEmail);
    expect((await mails[mails.length - 1]!.parse()).html).toContain('Summit');
  });
});

describe('SMTP failures', () => {
  it('defers on a 4xx, then sends', async () => {
    let greylisted = 0;
    sink.behaviour.rcpt = (a) => (a === 'grey@example.com' && greylisted++ === 0 ? { code: 450, message: '4.2.0 Greylisted, come back later' } : null);
    const r = await post({ template_id: tpl.tx, to: { email: 'grey@example.com' }, variables: { confirm_url: 'https://e.example/g' } });
    const deferred = await waitForStatus(r.body.id, 'deferred');
    expect(deferred.deliveries[0].smtp_response).toMatch(/^450 4\.2\.0 Greylisted/);
    expect(deferred.events.at(-1)).toMatchObject({ type: 'deferred', detail: { reason: 'temporary', attempt: 1 } });
    await passRetryTime(deferred);
    const sent = await waitForStatus(r.body.id, 'sent');
    expect(sent.events.map((e: any) => e.type)).toEqual(['queued', 'deferred', 'sent']);
    expect(sent.deliveries[0].attempts).toBe(2);
    expect(sink.byRecipient('grey@example.com')).toHaveLength(1);
    sink.behaviour.rcpt = undefined;
  });

  it('bounces on a 5xx, suppresses the address, and blocks the next send to it', async () => {
    sink.behaviour.rcpt = (a) => (a === 'ghost@example.com' ? { code: 550, message: '5.1.1 No such user here' } : null);
    const r = await post({ template_id: tpl.tx, to: { email: 'ghost@example.com' }, variables: { confirm_url: 'https://e.example/b' } });
    const bounced = await waitForStatus(r.body.id, 'bounced');
    expect(bounced.deliveries[0].smtp_response).toMatch(/^550 5\.1\.1/);
    expect(bounced.events.at(-1)).toMatchObject({ type: 'bounced', detail: { suppressed: true } });
    const sup = await t.envoi.ctx.db.selectFrom('suppressions').selectAll().where('org_id', '=', org.orgId).execute();
    expect(sup.map((s) => [s.email_lower, s.reason])).toContainEqual(['ghost@example.com', 'hard_bounce']);
    const next = await post({ template_id: tpl.tx, to: { email: 'GHOST@example.com' }, variables: { confirm_url: 'https://e.example/b2' } });
    expectStatus(next, 202);
    expect(next.body).toMatchObject({ status: 'blocked', rule: 'hard_bounced' });
    const m = await getMessage(next.body.id);
    expect(m.body.deliveries[0].explanation.fr).toMatch(/hard bounce/);
    expect(sink.attempts.filter((a) => a.rcpt.toLowerCase() === 'ghost@example.com')).toHaveLength(1);
    sink.behaviour.rcpt = undefined;
  });

  it('retries after the connection drops in the middle of DATA', async () => {
    let dropped = 0;
    sink.behaviour.drop = (rcpt) => rcpt.includes('flaky@example.com') && dropped++ === 0;
    const r = await post({ template_id: tpl.tx, to: { email: 'flaky@example.com' }, variables: { confirm_url: 'https://e.example/f' } });
    const deferred = await waitForStatus(r.body.id, 'deferred');
    expect(deferred.events.at(-1)).toMatchObject({ type: 'deferred', detail: { reason: 'connection' } });
    expect(sink.byRecipient('flaky@example.com')).toHaveLength(0);
    await passRetryTime(deferred);
    await waitForStatus(r.body.id, 'sent');
    expect(sink.byRecipient('flaky@example.com')).toHaveLength(1);
    expect(dropped).toBe(2);
    sink.behaviour.drop = undefined;
  });

  it('refuses, when accepted, event mail whose send_at falls after the event window closes (as campaigns and event mail do)', async () => {
    const now = t.clock.now.getTime();
    const ev = await t.request('POST', `/v1/audiences/${audienceId}/events`, {
      token: org.apiKey,
      body: { name: 'Past meetup', starts_at: new Date(now - 6 * 86_400_000).toISOString(), ends_at: new Date(now - 5 * 86_400_000).toISOString(), time_zone: 'Europe/Paris' },
    });
    expectStatus(ev, 201);
    expectStatus(await t.request('POST', `/v1/events/${ev.body.id}/participants`, { token: org.apiKey, body: { email: 'late@example.com' } }), 201);
    const tr = await t.request('POST', `/v1/audiences/${audienceId}/templates`, { token: org.apiKey, body: { name: 'Replay', category: 'participation', event_id: ev.body.id, language: 'en', subject: 'The replay', body: '<p>Replay</p>' } });
    expectStatus(tr, 201);
    // Now, within the window: it goes.
    const ok = await post({ template_id: tr.body.id, to: { email: 'late@example.com' }, send_at: new Date(now + 3_600_000).toISOString() });
    expect(ok.body.status).toBe('queued');
    // Ten days from now the window (end + 7 local days) is closed: said at once, with the rule.
    const late = await post({ template_id: tr.body.id, to: { email: 'late@example.com' }, send_at: new Date(now + 10 * 86_400_000).toISOString() });
    expectStatus(late, 202);
    expect(late.body).toMatchObject({ status: 'blocked', rule: 'event_window_closed' });
  });

  it('decides again at send time: a participant removed before a scheduled send is not written to', async () => {
    const p = await t.request('POST', `/v1/events/${eventId}/participants`, { token: org.apiKey, body: { email: 'leaver@example.com' } });
    expectStatus(p, 201);
    const sendAt = new Date(t.clock.now.getTime() + 3_600_000);
    const r = await post({ template_id: tpl.part, to: { email: 'leaver@example.com' }, send_at: sendAt.toISOString() });
    expect(r.body.status).toBe('queued');
    expectStatus(await t.request('DELETE', `/v1/events/${eventId}/participants/${p.body.id}`, { token: org.apiKey }), 204);
    t.clock.now = new Date(sendAt.getTime() + 1000);
    worker.wake();
    const m = await waitForStatus(r.body.id, 'blocked');
    expect(m.deliveries[0].rule).toBe('not_participant');
    expect(m.events.at(-1)).toMatchObject({ type: 'blocked', detail: { at: 'send' } });
    expect(sink.byRecipient('leaver@example.com')).toHaveLength(0);
  });
});

describe('lanes and workers', () => {
  it('sends a transactional message before a 2,000 participation backlog drains, with two workers and no double send', async () => {
    const ctx = t.envoi.ctx;
    // 2,000 participants of the event, written directly in batches (the fixture, not the subject).
    const ids: string[] = [];
    for (let i = 0; i < 2000; i += 500) {
      const rows = Array.from({ length: 500 }, (_, j) => ({ org_id: org.orgId, audience_id: audienceId, email: `bulk${i + j}@example.com`, email_lower: `bulk${i + j}@example.com`, first_name: `B${i + j}`, fields: '{}' }));
      const inserted = await ctx.db.insertInto('contacts').values(rows).returning('id').execute();
      ids.push(...inserted.map((r) => r.id));
      await ctx.db.insertInto('participants').values(inserted.map((c) => ({ org_id: org.orgId, audience_id: audienceId, event_id: eventId, contact_id: c.id, data: '{}' }))).execute();
    }
    // A second worker: on PostgreSQL with its own connections, as a second process would have.
    let secondDb: Awaited<ReturnType<typeof openPostgres>> | null = null;
    let secondCtx: AppContext = ctx;
    if (dbKind === 'postgres') {
      secondDb = await openPostgres(ctx.config.databaseUrl!, 5);
      secondCtx = createContext(ctx.config, secondDb, { now: () => t.clock.now });
    }
    const second = new Worker(secondCtx, { smtpUrl: sink.url, pollMs: { transactional: 50, bulk: 50 } }).start();
    const sentBefore = { first: worker.stats.sent, second: second.stats.sent };
    const compilesBefore = compileCount();
    sink.behaviour.delayMs = 1;
    const start = sink.received.length;
    const principal = (await orgs.authenticate(ctx, org.apiKey))!;
    const queuedAt = performance.now();
    const bulk = await enqueueToContacts(ctx, principal, { templateId: tpl.part, contactIds: ids });
    expect(bulk).toMatchObject({ recipients: 2000, queued: 2000, allowed: 2000 });
    await sink.waitFor((r) => r.length - start >= 100, 20_000);
    const tx = await post({ template_id: tpl.tx, to: { email: 'urgent@example.com' }, variables: { confirm_url: 'https://e.example/u' } });
    expectStatus(tx, 202);
    await sink.waitFor(() => sink.byRecipient('urgent@example.com').length === 1, 20_000);
    await sink.waitFor((r) => r.slice(start).filter((m) => m.rcptTo[0]!.startsWith('bulk')).length >= 2000, 60_000);
    const drainedAt = performance.now();
    sink.behaviour.delayMs = 0;
    await second.stop();
    await secondDb?.close();

    const window = sink.received.slice(start);
    const urgentIndex = window.findIndex((m) => m.rcptTo[0] === 'urgent@example.com');
    const bulkAfter = window.slice(urgentIndex + 1).filter((m) => m.rcptTo[0]!.startsWith('bulk')).length;
    figures.bulk_messages_per_second = Math.round(2000 / ((drainedAt - queuedAt) / 1000));
    figures.transactional_position_in_2000_backlog = urgentIndex;
    figures.bulk_sent_after_transactional = bulkAfter;
    figures.worker_split = { first: worker.stats.sent - sentBefore.first, second: second.stats.sent - sentBefore.second };
    expect(bulkAfter).toBeGreaterThan(500);

    // Each bulk recipient exactly once, though two workers claimed from the same rows.
    const counts = new Map<string, number>();
    for (const m of window) counts.set(m.rcptTo[0]!, (counts.get(m.rcptTo[0]!) ?? 0) + 1);
    const bulkCounts = [...counts].filter(([a]) => a.startsWith('bulk'));
    expect(bulkCounts).toHaveLength(2000);
    expect(bulkCounts.filter(([, n]) => n > 1)).toEqual([]);
    expect(second.stats.sent - sentBefore.second).toBeGreaterThan(0);
    // Compiled once per template version, never per recipient.
    expect(compileCount() - compilesBefore).toBeLessThanOrEqual(1);
    await waitFor(async () => {
      const rows = await ctx.db.selectFrom('deliveries').select('status').where('message_id', '=', bulk.message_id).where('status', '!=', 'sent').execute();
      return rows.length === 0;
    });
  });

  it('dry-runs a prospective send with counts per rule', async () => {
    const part = await t.request('POST', `/v1/audiences/${audienceId}/dry-run`, { token: org.apiKey, body: { template_id: tpl.part, all: true } });
    expectStatus(part, 200);
    const blockedTotal = Object.values(part.body.blocked as Record<string, number>).reduce((a, b) => a + b, 0);
    expect(part.body.allowed + blockedTotal).toBe(part.body.total);
    expect(part.body.allowed).toBeGreaterThanOrEqual(2001); // the bulk participants and Grace
    expect(part.body.blocked.not_participant).toBeGreaterThan(0);
    expect(part.body.blocked.hard_bounced).toBe(1); // ghost@ is no participant, but the address rule comes first
    expect(part.body.explanations.not_participant.en).toMatch(/participant/);
    const grace = (await t.envoi.ctx.db.selectFrom('contacts').select('id').where('email_lower', '=', participantEmail).executeTakeFirstOrThrow()).id;
    const mkt = await t.request('POST', `/v1/audiences/${audienceId}/dry-run`, { token: org.apiKey, body: { template_id: tpl.mkt, contact_ids: [grace] } });
    expectStatus(mkt, 200);
    expect(mkt.body).toMatchObject({ total: 1, allowed: 0, blocked: { no_marketing_consent: 1 } });
    const asTriggered = await t.request('POST', `/v1/audiences/${audienceId}/dry-run`, { token: org.apiKey, body: { template_id: tpl.mkt, contact_ids: [grace], origin: 'triggered' } });
    expect(asTriggered.body.blocked).toEqual({ triggered_marketing: 1 });
    expectStatus(await t.request('POST', `/v1/audiences/${audienceId}/dry-run`, { token: org.apiKey, body: { template_id: tpl.mkt } }), 400);
    expectStatus(await t.request('POST', `/v1/audiences/${audienceId}/dry-run`, { token: other.apiKey, body: { template_id: tpl.mkt, all: true } }), 404);
  });

  it('signs with DKIM when a key is configured, and uses STARTTLS when the relay offers it', async () => {
    await worker.stop();
    const tlsSink = await startSmtpSink({}, { starttls: true });
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const ctx = t.envoi.ctx;
    const dkimCtx: AppContext = { ...ctx, config: { ...ctx.config, dkim: { domainName: 'example.org', keySelector: 'envoi2026', privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() } } };
    worker = new Worker(dkimCtx, { smtpUrl: `${tlsSink.url}?tls.rejectUnauthorized=false`, pollMs: { transactional: 50, bulk: 50 } }).start();
    try {
      const r = await post({ template_id: tpl.tx, to: { email: 'signed@example.com' }, variables: { confirm_url: 'https://e.example/s' } });
      expectStatus(r, 202);
      await tlsSink.waitFor(() => tlsSink.received.length === 1);
      const mail = tlsSink.received[0]!;
      expect(mail.secure).toBe(true);
      const head = mail.raw.toString().split('\r\n\r\n')[0]!.replace(/\r\n[ \t]+/g, ' ');
      const dkim = /^DKIM-Signature: (.*)$/im.exec(head)?.[1] ?? '';
      expect(dkim).toMatch(/\bd=example\.org;/);
      expect(dkim).toMatch(/\bs=envoi2026;/);
      expect(dkim).toMatch(/\bh=[^;]*\bfrom\b/i);
      // The signature is genuine: verify it against the public key (relaxed/relaxed canonicalisation of the signed headers).
      const tags = Object.fromEntries(dkim.split(/;\s*/).filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')).trim(), kv.slice(kv.indexOf('=') + 1).trim()]));
      const lines = head.split('\r\n');
      const canon = (line: string) => `${line.slice(0, line.indexOf(':')).trim().toLowerCase()}:${line.slice(line.indexOf(':') + 1).replace(/\s+/g, ' ').trim()}`;
      const signed = String(tags.h).split(':').map((name) => lines.find((l) => l.toLowerCase().startsWith(`${name.trim().toLowerCase()}:`)) ?? '').map(canon);
      const own = canon(`DKIM-Signature: ${dkim}`).replace(/\bb=[^;]*$/, 'b=');
      const data = [...signed, own].join('\r\n');
      expect(verifySignature('sha256', Buffer.from(data), publicKey, Buffer.from(String(tags.b).replace(/\s+/g, ''), 'base64'))).toBe(true);
    } finally {
      await worker.stop();
      await tlsSink.close();
    }
  });

  it('keeps mail in the development outbox when no SMTP relay is configured', async () => {
    worker = new Worker(t.envoi.ctx, { smtpUrl: null, pollMs: { transactional: 50, bulk: 50 } }).start();
    const r = await post({ template_id: tpl.tx, to: { email: 'dev@example.com', first_name: 'Dev' }, variables: { confirm_url: 'https://e.example/d' } });
    await waitForStatus(r.body.id, 'sent');
    const list = await t.request('GET', '/v1/outbox', { token: org.apiKey });
    expectStatus(list, 200);
    expect(list.body.smtp_configured).toBe(false);
    const item = list.body.items.find((i: any) => i.envelope_to === 'dev@example.com');
    expect(item).toMatchObject({ subject: 'Confirm your address, Dev', delivery_id: r.body.delivery_id, envelope_from: verpAddress(r.body.delivery_id, 'localhost', t.envoi.ctx.config.secret) });
    const full = await t.request('GET', `/v1/outbox/${item.id}`, { token: org.apiKey });
    expect(full.body.raw).toMatch(/Message-ID: <[0-9a-f-]+@localhost>/);
    expectStatus(await t.request('GET', `/v1/outbox/${item.id}`, { token: other.apiKey }), 404);
    expect((await t.request('GET', '/v1/outbox', { token: other.apiKey })).body.items).toEqual([]);
  });
});

describe('what deleting takes with it (statement triggers in place of row-checked keys, 0017)', () => {
  it('a deleted contact leaves its deliveries without a contact; a deleted delivery or message takes its events', async () => {
    const db = t.envoi.ctx.db;
    const c = await t.request('POST', `/v1/audiences/${audienceId}/contacts`, { token: org.apiKey, body: { email: 'leaving@example.com', first_name: 'Lea' } });
    expectStatus(c, 201);
    const one = await post({ template_id: tpl.tx, to: { contact_id: c.body.id }, variables: { confirm_url: 'https://e.example/1' } });
    const two = await post({ template_id: tpl.tx, to: { contact_id: c.body.id }, variables: { confirm_url: 'https://e.example/2' } });
    expectStatus(one, 202);
    expectStatus(two, 202);
    const eventsOf = async (messageId: string) => (await db.selectFrom('message_events').select('type').where('message_id', '=', messageId).execute()).length;
    expect(await eventsOf(one.body.id)).toBeGreaterThan(0);

    expectStatus(await t.request('DELETE', `/v1/audiences/${audienceId}/contacts/${c.body.id}`, { token: org.apiKey }), 200);
    const kept = await db.selectFrom('deliveries').select(['id', 'contact_id', 'email']).where('message_id', 'in', [one.body.id, two.body.id]).execute();
    expect(kept).toHaveLength(2);
    expect(kept).toEqual(expect.arrayContaining([
      { id: one.body.delivery_id, contact_id: null, email: 'leaving@example.com' },
      { id: two.body.delivery_id, contact_id: null, email: 'leaving@example.com' },
    ]));

    await db.deleteFrom('deliveries').where('id', '=', one.body.delivery_id).execute();
    expect(await eventsOf(one.body.id)).toBe(0);
    expect(await eventsOf(two.body.id)).toBeGreaterThan(0);
    await db.deleteFrom('messages').where('id', '=', two.body.id).execute();
    expect(await eventsOf(two.body.id)).toBe(0);
    expect(await db.selectFrom('deliveries').select('id').where('message_id', '=', two.body.id).execute()).toEqual([]);
  });
});

async function waitFor(check: () => Promise<boolean>, timeoutMs = 10_000) {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
