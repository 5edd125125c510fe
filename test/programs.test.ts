import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as orgs from '../src/organisations/service.ts';
import { Worker } from '../src/sending/worker.ts';
import { ProgramRunner } from '../src/programs/runner.ts';
import * as programStore from '../src/programs/store.ts';
import { expectStatus, startTestApp, until, type TestApp, type TestOrg } from './support/harness.ts';
import { startSmtpSink, type SmtpSink } from './support/smtp-sink.ts';

/*
 * Follow-up programs end to end, through the HTTP API, the program runner, the sending worker and a
 * real SMTP server: an external purchase followed by a survey days later (once, however often it
 * is reported), a condition over the contact's purchases, a follow-up to an opened message that only
 * goes with consent, a birthday, a waiting step that outlives its runner, and another organisation
 * that sees none of it.
 */

let t: TestApp;
let org: TestOrg;
let other: TestOrg;
let sink: SmtpSink;
let worker: Worker;
let runner: ProgramRunner;
let audienceId: string;
const tpl: Record<string, string> = {};
const DAY = 86_400_000;

const api = (method: string, url: string, body?: unknown, token = org.apiKey) => t.request(method, url, { token, body });

const pause = (ms = 300) => new Promise((r) => setTimeout(r, ms));

function advance(ms: number) {
  t.clock.now = new Date(t.clock.now.getTime() + ms);
  runner.wake();
}

async function entries(programId: string, status?: string) {
  const r = await api('GET', `/v1/programs/${programId}/entries${status ? `?status=${status}` : ''}`);
  expectStatus(r, 200);
  return r.body.items as any[];
}

async function program(body: Record<string, unknown>) {
  const r = await api('POST', `/v1/audiences/${audienceId}/programs`, body);
  expectStatus(r, 201);
  return r.body.id as string;
}

async function person(email: string, opts: { consent?: boolean; fields?: Record<string, unknown> } = {}) {
  const r = await api('POST', `/v1/audiences/${audienceId}/contacts`, { email, first_name: email.split('@')[0], ...(opts.fields ? { fields: opts.fields } : {}) });
  expectStatus(r, 201);
  if (opts.consent) expectStatus(await api('POST', `/v1/audiences/${audienceId}/contacts/${r.body.id}/consents`, { action: 'given', method: 'import', wording: 'News: yes', wording_version: '2026-01' }), 201);
  return r.body.id as string;
}

const event = (body: Record<string, unknown>, token?: string) => api('POST', '/v1/external-events', { audience_id: audienceId, ...body }, token);
const mailsTo = (email: string) => sink.byRecipient(email);
async function subjects(email: string) {
  return Promise.all(mailsTo(email).map(async (m) => (await m.parse()).subject));
}

beforeAll(async () => {
  t = await startTestApp();
  org = await t.createOrg('Shop');
  other = await t.createOrg('Other shop');
  sink = await startSmtpSink();
  audienceId = (await api('POST', '/v1/audiences', { name: 'Customers' })).body.id;
  expectStatus(await api('POST', `/v1/audiences/${audienceId}/fields`, { key: 'birthday', type: 'date' }), 201);
  expectStatus(await api('POST', `/v1/audiences/${audienceId}/fields`, { key: 'points', type: 'number' }), 201);
  const mk = async (name: string, category: string, subject: string, body: string) => {
    const r = await api('POST', `/v1/audiences/${audienceId}/templates`, { name, language: 'en', category, subject, body });
    expectStatus(r, 201);
    tpl[name] = r.body.id;
  };
  await mk('survey', 'transactional', 'How was order {{ vars.trigger.properties.order }}?', '<p>Tell us, {{ first_name }}.</p>');
  await mk('session survey', 'transactional', 'How was the session?', '<p>Your opinion</p>');
  await mk('loyalty', 'marketing', 'Join the club, {{ first_name }}', '<p>Two purchases already! [UNSUBLINK]</p>');
  await mk('receipt', 'transactional', 'Your receipt', '<p>Thanks <a href="https://shop.example/o">order</a></p>');
  await mk('after open', 'marketing', 'You might also like', '<p>More [UNSUBLINK]</p>');
  await mk('birthday', 'marketing', 'Happy birthday {{ first_name }}', '<p>Cake [UNSUBLINK]</p>');
  worker = new Worker(t.envoi.ctx, { smtpUrl: sink.url, pollMs: { transactional: 50, bulk: 50 }, leaseMs: 60_000, concurrency: 2 }).start();
  runner = new ProgramRunner(t.envoi.ctx, { pollMs: 50 }).start();
});

afterAll(async () => {
  await runner?.stop();
  await worker?.stop();
  await sink?.close();
  await t?.close();
});

describe('programs', () => {
  let survey: string;

  it('sends the survey N days after an external purchase, once however often the purchase is posted', async () => {
    survey = await program({ name: 'Purchase survey', trigger: { type: 'external_event', name: 'purchase' }, wait: { days: 3 }, template_id: tpl.survey });
    const body = { contact: { email: 'bea@example.com', first_name: 'Bea' }, name: 'purchase', properties: { order: 'A-1' }, idempotency_key: 'order-A-1' };
    const first = await event(body);
    expectStatus(first, 202);
    expect(first.body).toMatchObject({ id: expect.any(String), contact_id: expect.any(String), entered: 1 });
    const again = await event(body);
    expectStatus(again, 202);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.body).toMatchObject({ id: first.body.id, entered: 0 });
    expectStatus(await event({ ...body, properties: { order: 'A-2' } }), 409);
    // A header key is refused, not cut, when longer than a key may be: cut, two purchases would be one.
    const { idempotency_key: _k, ...unkeyed } = body;
    const long = await t.request('POST', '/v1/external-events', { token: org.apiKey, body: { audience_id: audienceId, ...unkeyed }, headers: { 'idempotency-key': `${'o'.repeat(255)}-2` } });
    expectStatus(long, 400);
    expect(long.body.error.code).toBe('invalid_idempotency_key');

    const [entry, ...rest] = await entries(survey);
    expect(rest).toHaveLength(0);
    expect(entry).toMatchObject({ status: 'waiting', email: 'bea@example.com', trigger_key: first.body.id, context: { name: 'purchase', properties: { order: 'A-1' } } });
    expect(new Date(entry.due_at).getTime()).toBe(t.clock.now.getTime() + 3 * DAY);

    advance(2 * DAY);
    await pause();
    expect(mailsTo('bea@example.com')).toHaveLength(0);
    advance(DAY + 60_000);
    await until(async () => (await entries(survey))[0].status === 'sent', 'the survey entry to be sent');
    await until(() => mailsTo('bea@example.com').length === 1, 'the survey to be delivered');
    expect(await subjects('bea@example.com')).toEqual(['How was order A-1?']);
    const sent = (await entries(survey, 'sent'))[0];
    const m = await api('GET', `/v1/messages/${sent.message_id}`);
    expect(m.body).toMatchObject({ origin: 'triggered', category: 'transactional', template_id: tpl.survey });
    expect((await api('GET', `/v1/programs/${survey}`)).body.entries).toEqual({ waiting: 0, sent: 1, skipped: 0, failed: 0 });
  });

  it('checks the condition when the wait is over: the loyalty invitation skips the first purchase and goes after the second', async () => {
    const loyalty = await program({ name: 'Loyalty', trigger: { type: 'external_event', name: 'purchase' }, wait: { days: 1 }, condition: { external_event: 'purchase', count_gte: 2 }, template_id: tpl.loyalty });
    const cid = await person('carl@example.com', { consent: true });
    expectStatus(await event({ contact: { contact_id: cid }, name: 'Purchase' }), 202);
    advance(DAY + 60_000);
    await until(async () => (await entries(loyalty))[0]?.status === 'skipped', 'the first follow-up to be skipped');
    expect((await entries(loyalty))[0].reason).toBe('condition not met: purchase count is 1 (needs >= 2)');

    expectStatus(await event({ contact: { email: 'Carl@example.com' }, name: 'purchase' }), 202);
    advance(DAY + 60_000);
    await until(async () => (await entries(loyalty, 'sent')).length === 1, 'the second follow-up to be sent');
    await until(() => mailsTo('carl@example.com').some(() => true), 'the invitation');
    await until(async () => (await subjects('carl@example.com')).includes('Join the club, carl'), 'the invitation to arrive');
    const m = await api('GET', `/v1/messages/${(await entries(loyalty, 'sent'))[0].message_id}`);
    // Marketing goes the campaign way: decided by the consent policy.
    expect(m.body).toMatchObject({ origin: 'campaign', category: 'marketing' });
    expect(await entries(loyalty)).toHaveLength(2);
  });

  it('follows up an opened message, once per message, and only with consent for marketing', async () => {
    const followUp = await program({ name: 'After the receipt is opened', trigger: { type: 'message_opened', template_id: tpl.receipt }, wait: { hours: 1 }, template_id: tpl['after open'] });
    await person('olga@example.com', { consent: true });
    await person('cold@example.com');
    for (const email of ['olga@example.com', 'cold@example.com']) expectStatus(await api('POST', '/v1/messages', { template_id: tpl.receipt, to: { email } }), 202);
    await until(() => mailsTo('olga@example.com').length === 1 && mailsTo('cold@example.com').length === 1, 'the receipts');
    expect(await entries(followUp)).toHaveLength(0);
    const open = async (email: string) => {
      const html = String((await mailsTo(email)[0]!.parse()).html);
      const pixel = /src="https?:\/\/[^/"]+(\/o\/[^"]+)"/.exec(html)?.[1];
      expect(pixel).toBeTruthy();
      expect((await t.request('GET', pixel!)).status).toBe(200);
    };
    await open('olga@example.com');
    await open('olga@example.com');
    await open('cold@example.com');
    const waiting = await entries(followUp, 'waiting');
    expect(waiting.map((e) => e.email).sort()).toEqual(['cold@example.com', 'olga@example.com']);
    expect(waiting[0].context).toMatchObject({ type: 'message_opened', template_id: tpl.receipt });

    advance(3_600_000 + 60_000);
    await until(async () => (await entries(followUp, 'waiting')).length === 0, 'both follow-ups to be decided');
    const all = await entries(followUp);
    expect(all.find((e) => e.email === 'olga@example.com')).toMatchObject({ status: 'sent' });
    expect(all.find((e) => e.email === 'cold@example.com')).toMatchObject({ status: 'skipped', reason: expect.stringContaining('no_marketing_consent') });
    await until(() => mailsTo('olga@example.com').length === 2, 'the follow-up to arrive');
    expect(await subjects('olga@example.com')).toContain('You might also like');
    expect(mailsTo('cold@example.com')).toHaveLength(1);
  });

  it('mails on a birthday at the hour of the trigger, entering each contact once that year', async () => {
    // The next UTC day, 06:00 (not 29 February: the contacts' month-day must exist in every year).
    let day = new Date(Math.floor(t.clock.now.getTime() / DAY) * DAY + DAY);
    if (day.toISOString().slice(5, 10) === '02-29') day = new Date(day.getTime() + DAY);
    t.clock.now = new Date(day.getTime() + 6 * 3_600_000);
    const md = day.toISOString().slice(5, 10);
    const otherMd = new Date(day.getTime() + 10 * DAY).toISOString().slice(5, 10);
    await person('dora@example.com', { consent: true, fields: { birthday: `1990-${md}` } });
    await person('ed@example.com', { consent: true, fields: { birthday: `1985-${otherMd}` } });
    await person('nobday@example.com', { consent: true });

    const bday = await program({ name: 'Birthday', trigger: { type: 'date_field', field: 'birthday', hour: 9, time_zone: 'UTC' }, wait: { seconds: 0 }, template_id: tpl.birthday });
    await until(async () => (await entries(bday)).length === 1, 'the birthday entry');
    const [entry] = await entries(bday);
    expect(entry).toMatchObject({ email: 'dora@example.com', status: 'waiting', trigger_key: `${day.getUTCFullYear()}-${md}`, due_at: new Date(day.getTime() + 9 * 3_600_000).toISOString() });

    advance(2 * 3_600_000);
    await pause();
    expect(mailsTo('dora@example.com')).toHaveLength(0);
    advance(3_600_000 + 60_000);
    await until(async () => (await subjects('dora@example.com')).includes('Happy birthday dora'), 'the birthday mail');
    // The next day's look enters nobody again and nobody new.
    advance(DAY);
    await pause();
    expect(await entries(bday)).toHaveLength(1);
    expect(mailsTo('ed@example.com')).toHaveLength(0);
  });

  it('keeps a waiting step across a runner restart, and takes over the entries of a runner that died', async () => {
    const follow = await program({ name: 'Session follow-up', trigger: { type: 'external_event', name: 'session_attended' }, wait: { hours: 2 }, template_id: tpl['session survey'] });
    expectStatus(await event({ contact: { email: 'finn@example.com' }, name: 'session_attended', properties: { session: 'Keynote' } }), 202);
    await runner.stop();
    expect(await entries(follow, 'waiting')).toHaveLength(1);
    runner = new ProgramRunner(t.envoi.ctx, { pollMs: 50 }).start();
    advance(2 * 3_600_000 + 60_000);
    await until(() => mailsTo('finn@example.com').length === 1, 'the follow-up after the restart');
    expect((await entries(follow))[0]).toMatchObject({ status: 'sent' });

    // A runner claims an entry and dies holding it: the others leave it alone until its lease ends.
    await runner.stop();
    expectStatus(await event({ contact: { email: 'gus@example.com' }, name: 'session_attended' }), 202);
    t.clock.now = new Date(t.clock.now.getTime() + 2 * 3_600_000 + 60_000);
    const claimed = await programStore.claimEntries(t.envoi.ctx.db, 'dead-runner', t.clock.now, new Date(t.clock.now.getTime() + 60_000), 10);
    // Other programs' entries may fall due in this window too (how many depends on the hour the suite starts).
    expect(claimed.filter((e) => e.program_id === follow).map((e) => e.context)).toEqual([expect.objectContaining({ name: 'session_attended' })]);
    runner = new ProgramRunner(t.envoi.ctx, { pollMs: 50 }).start();
    await pause();
    expect(mailsTo('gus@example.com')).toHaveLength(0);
    advance(61_000);
    await until(() => mailsTo('gus@example.com').length === 1, 'the entry of the dead runner');
    expect((await entries(follow)).find((e) => e.email === 'gus@example.com')).toMatchObject({ status: 'sent', attempts: 2 });
  });

  it('refuses bad programs, naming the problem', async () => {
    const bad = async (body: Record<string, unknown>, code: string, message: RegExp) => {
      const r = await api('POST', `/v1/audiences/${audienceId}/programs`, { name: 'x', trigger: { type: 'external_event', name: 'purchase' }, wait: { days: 1 }, template_id: tpl.survey, ...body });
      expectStatus(r, 400);
      expect(r.body.error.code).toBe(code);
      expect(r.body.error.message).toMatch(message);
    };
    await bad({ condition: { field: 'shoe_size', op: 'gte', value: 40 } }, 'invalid_condition', /"shoe_size" is not a field/);
    await bad({ condition: { field: 'points', op: 'bigger', value: 1 } }, 'invalid_condition', /"bigger" is not an operator/);
    await bad({ condition: { external_event: 'purchase' } }, 'invalid_condition', /count_gte/);
    await bad({ trigger: { type: 'external_event', name: 'not valid!' } }, 'invalid_trigger', /not an event name/);
    await bad({ trigger: { type: 'sometimes' } }, 'invalid_trigger', /"sometimes" is not a trigger/);
    await bad({ trigger: { type: 'date_field', field: 'points' }, template_id: tpl.birthday }, 'invalid_trigger', /points" is a number field/);
    await bad({ trigger: { type: 'date_field', field: 'birthday' } }, 'invalid_template', /not an action of the person/);
    await bad({ trigger: { type: 'message_opened', template_id: tpl.loyalty } }, 'invalid_template', /follow-up to marketing mail/);
    await bad({ trigger: { type: 'message_sent', template_id: tpl.receipt }, template_id: tpl.receipt }, 'program_cycle', /its own mail/);
    await bad({ wait: { days: 1, hours: 2 } }, 'invalid_wait', /exactly one/);
    await bad({ template_id: '00000000-0000-4000-8000-000000000000' }, 'invalid_template', /no template/);
    // A loop through two programs: receipt -> survey, then survey -> receipt.
    const a = await program({ name: 'A', trigger: { type: 'message_sent', template_id: tpl.receipt }, wait: { days: 1 }, template_id: tpl.survey });
    await bad({ name: 'B', trigger: { type: 'message_sent', template_id: tpl.survey }, template_id: tpl.receipt }, 'program_cycle', /"A"/);
    const patch = await api('PATCH', `/v1/programs/${a}`, { trigger: { type: 'external_event', name: 'x' } });
    expectStatus(patch, 400);
    expect(patch.body.error.code).toBe('trigger_immutable');
    const off = await api('PATCH', `/v1/programs/${a}`, { enabled: false, wait: { hours: 5 } });
    expectStatus(off, 200);
    expect(off.body).toMatchObject({ enabled: false, wait: { hours: 5 } });
    expectStatus(await api('DELETE', `/v1/programs/${a}`), 204);
    expectStatus(await api('GET', `/v1/programs/${a}`), 404);

    const ev = await event({ contact: { email: 'x@example.com' }, name: 'purchase', occurred_at: new Date(t.clock.now.getTime() + DAY).toISOString() });
    expectStatus(ev, 400);
    expect(ev.body.error.code).toBe('invalid_occurred_at');
    expectStatus(await event({ contact: { email: 'x@example.com', contact_id: '00000000-0000-4000-8000-000000000000' }, name: 'purchase' }), 400);
    const viewer = await orgs.createApiKey(t.envoi.ctx, org.orgId, { name: 'viewer', role: 'viewer' });
    expectStatus(await event({ contact: { email: 'x@example.com' }, name: 'purchase' }, viewer.key), 403);
    expectStatus(await api('POST', `/v1/audiences/${audienceId}/programs`, { name: 'x', trigger: { type: 'external_event', name: 'purchase' }, wait: { days: 1 }, template_id: tpl.survey }, viewer.key), 403);
    expectStatus(await api('GET', `/v1/audiences/${audienceId}/programs`, undefined, viewer.key), 200);
  });

  it('shows another organisation nothing, and its events enter only its own programs', async () => {
    const list = await api('GET', `/v1/audiences/${audienceId}/programs`);
    expect(list.body.programs.length).toBeGreaterThan(0);
    for (const [method, url, body] of [
      ['GET', `/v1/programs/${survey}`],
      ['GET', `/v1/programs/${survey}/entries`],
      ['PATCH', `/v1/programs/${survey}`, { enabled: false }],
      ['DELETE', `/v1/programs/${survey}`],
      ['GET', `/v1/audiences/${audienceId}/programs`],
      ['POST', `/v1/audiences/${audienceId}/programs`, { name: 'x', trigger: { type: 'external_event', name: 'purchase' }, wait: { days: 1 }, template_id: tpl.survey }],
      ['POST', '/v1/external-events', { audience_id: audienceId, contact: { email: 'bea@example.com' }, name: 'purchase' }],
    ] as const) {
      expectStatus(await api(method, url, body, other.apiKey), 404);
    }
    // The other organisation's own program on "purchase" gets none of this organisation's purchases.
    const theirAudience = (await api('POST', '/v1/audiences', { name: 'Theirs' }, other.apiKey)).body.id;
    const theirTpl = (await api('POST', `/v1/audiences/${theirAudience}/templates`, { name: 's', language: 'en', category: 'transactional', subject: 'S', body: '<p>s</p>' }, other.apiKey)).body.id;
    const theirs = await api('POST', `/v1/audiences/${theirAudience}/programs`, { name: 'Theirs', trigger: { type: 'external_event', name: 'purchase' }, wait: { days: 1 }, template_id: theirTpl }, other.apiKey);
    expectStatus(theirs, 201);
    // Their program cannot send our template, nor be triggered by it.
    expectStatus(await api('POST', `/v1/audiences/${theirAudience}/programs`, { name: 'x', trigger: { type: 'message_opened', template_id: tpl.receipt }, wait: { days: 1 }, template_id: theirTpl }, other.apiKey), 400);
    expectStatus(await event({ contact: { email: 'bea@example.com' }, name: 'purchase' }), 202);
    const r = await api('GET', `/v1/programs/${theirs.body.id}/entries`, undefined, other.apiKey);
    expectStatus(r, 200);
    expect(r.body.items).toEqual([]);
    expectStatus(await api('GET', `/v1/programs/${theirs.body.id}`), 404);
  });
});
