import { connect, type Socket } from 'node:net';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import nodemailer from 'nodemailer';
import * as orgs from '../src/organisations/service.ts';
import { ConfigError, loadConfig } from '../src/platform/config.ts';
import { Worker } from '../src/sending/worker.ts';
import { enqueueToContacts } from '../src/sending/service.ts';
import { startBounceListener, type BounceListener } from '../src/sending/bounce-listener.ts';
import { deliveryTargets, verpAddress } from '../src/mail/compose.ts';
import { startBounceListenerInServer } from '../src/cli/bounce-listener.ts';
import { dbKind, expectStatus, startTestApp, type TestApp, type TestOrg } from './support/harness.ts';
import { startSmtpSink, type SmtpSink } from './support/smtp-sink.ts';
import { arfComplaint, exchangeBounce, gmailBounce, outOfOffice, postfixBounce, postfixDelayed } from './support/bounce-fixtures.ts';

/*
 * Bounces and complaints end to end: a real message goes out through the worker to an SMTP server,
 * then the report about it comes back as mail over SMTP to the bounce listener (or from a relay's
 * webhook), and the next send to the address is decided by what the report said.
 */

let t: TestApp;
let org: TestOrg;
let other: TestOrg;
let sink: SmtpSink;
let worker: Worker;
let listener: BounceListener;
let audienceId: string;
const tpl = { tx: '', mkt: '' };
const MAX_BYTES = 256 * 1024;
const WORDING = 'Yes, send me the newsletter. I can unsubscribe at any time.';

const api = (method: string, url: string, body?: unknown, token = org.apiKey) => t.request(method, url, { token, body });
const db = () => t.envoi.ctx.db;

async function waitFor<T>(check: () => Promise<T | undefined | null | false>, what: string, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`${what}: not reached within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const delivery = (id: string) => db().selectFrom('deliveries').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
const eventsOf = async (id: string) =>
  (await db().selectFrom('message_events').select(['type', 'detail', 'org_id']).where('delivery_id', '=', id).orderBy('id').execute()).map((e) => ({ ...e, detail: e.detail as any }));
const suppressionsOf = (orgId: string, emailLower: string) => db().selectFrom('suppressions').selectAll().where('org_id', '=', orgId).where('email_lower', '=', emailLower).execute();

/** A transactional message through the triggered API, delivered to the sink: its ids once it is 'sent'. */
async function sent(email: string, token = org.apiKey) {
  const r = await api('POST', '/v1/messages', { template_id: tpl.tx, to: { email } }, token);
  expectStatus(r, 202);
  expect(r.body.status).toBe('queued');
  await waitFor(async () => (await delivery(r.body.delivery_id)).status === 'sent', `delivery to ${email} sent`);
  return { messageId: r.body.id as string, deliveryId: r.body.delivery_id as string };
}

/** Sends a report to the listener as an MTA would: null sender, one VERP recipient. */
async function deliverReport(to: string, raw: string | Buffer) {
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: listener.port, secure: false, ignoreTLS: true });
  try {
    return await transport.sendMail({ envelope: { from: '', to: [to] }, raw });
  } finally {
    transport.close();
  }
}
const verp = (deliveryId: string) => verpAddress(deliveryId, 'localhost', t.envoi.ctx.config.secret);
const mailtoOf = (deliveryId: string) => /^mailto:([^?]+)/.exec(deliveryTargets(t.envoi.ctx.config.publicUrl, t.envoi.ctx.config.secret, deliveryId, 'localhost').mailto)![1]!;

/** A raw SMTP dialogue: each command's whole reply, for checking exactly what the listener answers. */
async function smtpDialogue(port: number, commands: string[]): Promise<string[]> {
  const socket: Socket = connect(port, '127.0.0.1');
  let buffer = '';
  let failure: Error | null = null;
  const waiters: (() => void)[] = [];
  const wake = () => waiters.splice(0).forEach((w) => w());
  socket.on('data', (d) => {
    buffer += d.toString('utf8');
    wake();
  });
  socket.on('error', (e) => {
    failure = e;
    wake();
  });
  const reply = async (): Promise<string> => {
    for (;;) {
      if (failure) throw failure;
      const m = /^(?:\d{3}-[^\r\n]*\r\n)*\d{3}(?: [^\r\n]*)?\r\n/.exec(buffer);
      if (m) {
        buffer = buffer.slice(m[0].length);
        return m[0].trim();
      }
      await new Promise<void>((r) => waiters.push(r));
    }
  };
  const out: string[] = [await reply()];
  for (const c of commands) {
    socket.write(`${c}\r\n`);
    out.push(await reply());
  }
  socket.end();
  return out;
}

beforeAll(async () => {
  t = await startTestApp();
  org = await t.createOrg('Bouncing Org');
  other = await t.createOrg('Other Org');
  sink = await startSmtpSink();
  audienceId = (await api('POST', '/v1/audiences', { name: 'Readers' })).body.id;
  const mk = async (body: Record<string, unknown>) => {
    const r = await api('POST', `/v1/audiences/${audienceId}/templates`, { language: 'en', ...body });
    expectStatus(r, 201);
    return r.body.id as string;
  };
  tpl.tx = await mk({ name: 'Receipt', category: 'transactional', subject: 'Your receipt', body: '<p>Hello {{ first_name | default: "there" }}</p>' });
  tpl.mkt = await mk({ name: 'Newsletter', category: 'marketing', subject: 'News', body: '<p>News [UNSUBLINK]</p>' });
  worker = new Worker(t.envoi.ctx, { smtpUrl: sink.url, pollMs: { transactional: 50, bulk: 50 }, leaseMs: 60_000 }).start();
  listener = await startBounceListener(t.envoi.ctx, { port: 0, host: '127.0.0.1', maxBytes: MAX_BYTES });
});

afterAll(async () => {
  await listener?.close();
  await worker?.stop();
  await sink?.close();
  await t?.close();
});

describe('reports sent to the VERP return path', () => {
  it('a Postfix DSN for a sent message bounces it, suppresses the address and blocks the next send; the same DSN again changes nothing', async () => {
    const { messageId, deliveryId } = await sent('Ghost@Example.com');
    const dsn = postfixBounce({ deliveryId, recipient: 'Ghost@example.com' });
    const info = await deliverReport(verp(deliveryId), dsn);
    expect(info.response).toMatch(/^250 /);

    const d = await delivery(deliveryId);
    expect(d.status).toBe('bounced');
    expect(d.smtp_response).toMatch(/^550 5\.1\.1 <Ghost@example\.com>: Recipient address rejected/);
    expect(d.last_error).toMatch(/delivery status notification.*5\.1\.1/);
    expect(d.sent_at).not.toBeNull();
    const events = await eventsOf(deliveryId);
    expect(events.map((e) => e.type)).toEqual(['queued', 'sent', 'bounced']);
    expect(events[2]!.detail).toMatchObject({ kind: 'hard', status: '5.1.1', source: 'dsn', suppressed: true, diagnostic: expect.stringMatching(/User unknown/) });
    expect(events[2]!.org_id).toBe(org.orgId);
    const sup = await suppressionsOf(org.orgId, 'ghost@example.com');
    expect(sup).toMatchObject([{ reason: 'hard_bounce', delivery_id: deliveryId }]);

    // The API tells the story too.
    const m = await api('GET', `/v1/messages/${messageId}`);
    expect(m.body).toMatchObject({ status: 'bounced', deliveries: [{ status: 'bounced' }] });
    expect((await api('GET', '/v1/suppressions')).body.items.map((s: any) => s.email_lower)).toContain('ghost@example.com');

    // Delivered twice (a retrying MX, a second MX): answered 250, recorded once.
    expect((await deliverReport(verp(deliveryId), dsn)).response).toMatch(/^250 /);
    expect((await eventsOf(deliveryId)).filter((e) => e.type === 'bounced')).toHaveLength(1);
    expect(await suppressionsOf(org.orgId, 'ghost@example.com')).toHaveLength(1);

    const before = sink.attempts.length;
    const next = await api('POST', '/v1/messages', { template_id: tpl.tx, to: { email: 'ghost@EXAMPLE.com' } });
    expectStatus(next, 202);
    expect(next.body).toMatchObject({ status: 'blocked', rule: 'hard_bounced' });
    await new Promise((r) => setTimeout(r, 200));
    expect(sink.attempts.slice(before).filter((a) => a.rcpt.toLowerCase() === 'ghost@example.com')).toEqual([]);
    // Suppression is per organisation: the other one still writes to the address.
    const theirs = await api('POST', `/v1/audiences`, { name: 'Theirs' }, other.apiKey);
    const theirTpl = await api('POST', `/v1/audiences/${theirs.body.id}/templates`, { language: 'en', name: 'R', category: 'transactional', subject: 'Hi', body: '<p>Hi</p>' }, other.apiKey);
    const theirSend = await api('POST', '/v1/messages', { template_id: theirTpl.body.id, to: { email: 'ghost@example.com' } }, other.apiKey);
    expect(theirSend.body.status).toBe('queued');
  });

  it('Exchange and Gmail reports of an unknown address suppress it; a mailbox-full report bounces without suppressing', async () => {
    const a = await sent('nobody@contoso.example');
    await deliverReport(verp(a.deliveryId), exchangeBounce({ deliveryId: a.deliveryId, recipient: 'nobody@contoso.example' }));
    const b = await sent('typo@gmail.example');
    await deliverReport(verp(b.deliveryId), gmailBounce({ deliveryId: b.deliveryId, recipient: 'typo@gmail.example' }));
    const c = await sent('full@contoso.example');
    await deliverReport(verp(c.deliveryId), exchangeBounce({ deliveryId: c.deliveryId, recipient: 'full@contoso.example' }, { status: '5.2.2', diagnostic: 'smtp;554 5.2.2 mailbox full' }));

    expect((await delivery(a.deliveryId)).status).toBe('bounced');
    expect((await eventsOf(a.deliveryId)).at(-1)!.detail).toMatchObject({ kind: 'hard', status: '5.1.10', suppressed: true });
    expect((await eventsOf(b.deliveryId)).at(-1)!.detail).toMatchObject({ kind: 'hard', status: '5.1.1', suppressed: true, diagnostic: expect.stringMatching(/^550 5\.1\.1 The email account/) });
    expect((await delivery(c.deliveryId)).status).toBe('bounced');
    expect((await eventsOf(c.deliveryId)).at(-1)!.detail).toMatchObject({ kind: 'hard', status: '5.2.2', suppressed: false });
    expect(await suppressionsOf(org.orgId, 'nobody@contoso.example')).toHaveLength(1);
    expect(await suppressionsOf(org.orgId, 'typo@gmail.example')).toHaveLength(1);
    expect(await suppressionsOf(org.orgId, 'full@contoso.example')).toHaveLength(0);
    const again = await api('POST', '/v1/messages', { template_id: tpl.tx, to: { email: 'full@contoso.example' } });
    expect(again.body.status).toBe('queued');
  });

  it('a delay warning is recorded, and the address stays sendable', async () => {
    const { deliveryId } = await sent('slow@example.net');
    expect((await deliverReport(verp(deliveryId), postfixDelayed({ deliveryId, recipient: 'slow@example.net' }))).response).toMatch(/^250 /);
    expect((await delivery(deliveryId)).status).toBe('sent');
    const events = await eventsOf(deliveryId);
    expect(events.map((e) => e.type)).toEqual(['queued', 'sent', 'delayed']);
    expect(events[2]!.detail).toMatchObject({ kind: 'soft', status: '4.4.1', source: 'dsn', suppressed: false });
    expect(await suppressionsOf(org.orgId, 'slow@example.net')).toEqual([]);
    await deliverReport(verp(deliveryId), postfixDelayed({ deliveryId, recipient: 'slow@example.net' }));
    expect(await eventsOf(deliveryId)).toHaveLength(3);

    const before = sink.byRecipient('slow@example.net').length;
    await sent('slow@example.net');
    expect(sink.byRecipient('slow@example.net')).toHaveLength(before + 1);
  });

  it('an ARF spam complaint stops marketing mail to the address; transactional mail still goes', async () => {
    const c = await api('POST', `/v1/audiences/${audienceId}/contacts`, { email: 'reader@example.org', first_name: 'Rea' });
    expectStatus(c, 201);
    expectStatus(await api('POST', `/v1/audiences/${audienceId}/contacts/${c.body.id}/consents`, { action: 'given', method: 'signup_form', wording: WORDING, wording_version: 'v1' }), 201);
    const principal = (await orgs.authenticate(t.envoi.ctx, org.apiKey))!;
    const first = await enqueueToContacts(t.envoi.ctx, principal, { templateId: tpl.mkt, contactIds: [c.body.id] });
    expect(first.queued).toBe(1);
    const d = await db().selectFrom('deliveries').select('id').where('message_id', '=', first.message_id).executeTakeFirstOrThrow();
    await waitFor(async () => (await delivery(d.id)).status === 'sent', 'newsletter sent');

    expect((await deliverReport(verp(d.id), arfComplaint({ deliveryId: d.id, recipient: 'reader@example.org' }))).response).toMatch(/^250 /);
    expect((await delivery(d.id)).status).toBe('sent');
    const events = await eventsOf(d.id);
    expect(events.at(-1)).toMatchObject({ type: 'complained', detail: { source: 'dsn', feedback_type: 'abuse', recipient: 'reader@example.org' } });
    expect(await suppressionsOf(org.orgId, 'reader@example.org')).toMatchObject([{ reason: 'complaint', delivery_id: d.id }]);
    await deliverReport(verp(d.id), arfComplaint({ deliveryId: d.id, recipient: 'reader@example.org' }));
    expect((await eventsOf(d.id)).filter((e) => e.type === 'complained')).toHaveLength(1);

    const again = await enqueueToContacts(t.envoi.ctx, principal, { templateId: tpl.mkt, contactIds: [c.body.id] });
    expect(again).toMatchObject({ queued: 0, blocked: { complained: 1 } });
    const before = sink.byRecipient('reader@example.org').length;
    await sent('reader@example.org');
    expect(sink.byRecipient('reader@example.org')).toHaveLength(before + 1);
  });

  it('answers 250 and records nothing for an auto-reply, garbage, an unknown delivery or one never sent', async () => {
    const { deliveryId } = await sent('holiday@example.com');
    expect((await deliverReport(verp(deliveryId), outOfOffice({ deliveryId, recipient: 'holiday@example.com' }))).response).toMatch(/^250 /);
    expect((await deliverReport(verp(deliveryId), Buffer.from('\u0000\u00ff garbage\r\n\r\n\r\nAction: failed\r\nStatus: 5.1.1\r\n', 'latin1'))).response).toMatch(/^250 /);
    expect((await deliverReport(verp(deliveryId), 'Content-Type: multipart/report; report-type=delivery-status; boundary="x"\r\n\r\n--x\r\nContent-Type: message/delivery-status\r\n\r\nAction: delivered\r\n--x--\r\n')).response).toMatch(/^250 /);
    expect((await delivery(deliveryId)).status).toBe('sent');
    expect((await eventsOf(deliveryId)).map((e) => e.type)).toEqual(['queued', 'sent']);

    const unknown = randomUUID();
    expect((await deliverReport(verp(unknown), postfixBounce({ deliveryId: unknown, recipient: 'x@example.com' }))).response).toMatch(/^250 /);
    expect(await suppressionsOf(org.orgId, 'x@example.com')).toEqual([]);

    // A delivery blocked by the policy was never sent: a "bounce" of it is not genuine.
    const blocked = await api('POST', '/v1/messages', { template_id: tpl.tx, to: { email: 'ghost@example.com' } });
    expect(blocked.body.status).toBe('blocked');
    await deliverReport(verp(blocked.body.delivery_id), postfixBounce({ deliveryId: blocked.body.delivery_id, recipient: 'ghost@example.com' }));
    expect((await delivery(blocked.body.delivery_id)).status).toBe('blocked');
    expect((await eventsOf(blocked.body.delivery_id)).map((e) => e.type)).toEqual(['blocked']);
  });

  it('refuses every recipient that is not one of its own with 550 at RCPT TO: it is not a relay', async () => {
    const id = randomUUID();
    const replies = await smtpDialogue(listener.port, [
      'EHLO mx.example.net',
      'MAIL FROM:<>',
      'RCPT TO:<someone@example.com>',
      `RCPT TO:<bounce+${id}@other.example>`,
      `RCPT TO:<unsubscribe+${id}@other.example>`,
      'RCPT TO:<bounce+not-a-uuid@localhost>',
      'RCPT TO:<postmaster@localhost>',
      // without its mark, or with another delivery's: anyone who saw a delivery id could write these
      `RCPT TO:<bounce+${id}@localhost>`,
      `RCPT TO:<unsubscribe+${id}@localhost>`,
      `RCPT TO:<${verp(id).replace(id, randomUUID())}>`,
      `RCPT TO:<${verp(id).toUpperCase().replace('LOCALHOST', 'LocalHost')}>`,
      'QUIT',
    ]);
    expect(replies[0]).toMatch(/^220 localhost/);
    expect(replies[1]).toMatch(/^250[ -]/);
    expect(replies[1]).not.toMatch(/AUTH|STARTTLS/);
    expect(replies[1]).toMatch(new RegExp(`SIZE ${MAX_BYTES}`));
    expect(replies[2]).toMatch(/^250 /);
    for (const r of replies.slice(3, 11)) expect(r).toMatch(/^550 5\.1\.1 <[^>]+>: no such mailbox here/);
    expect(replies[11]).toMatch(/^250 /); // a relay may change the case of the address

    // nodemailer sees the refusal the same way
    await expect(deliverReport('someone@example.com', 'Subject: relay me\r\n\r\nhi\r\n')).rejects.toMatchObject({ responseCode: 550 });
  });

  it('takes the List-Unsubscribe mailto: a mail to unsubscribe+<delivery> withdraws marketing consent, once', async () => {
    const { deliveryId } = await sent('mailto@example.com');
    const d = await delivery(deliveryId);
    const consents = `/v1/audiences/${audienceId}/contacts/${d.contact_id}/consents`;
    expectStatus(await api('POST', consents, { action: 'given', method: 'signup_form', wording: WORDING }), 201);
    // Without its mark the address is refused, and nothing changes.
    await expect(deliverReport(`unsubscribe+${deliveryId}@localhost`, 'Subject: unsubscribe\r\n\r\n')).rejects.toMatchObject({ responseCode: 550 });
    expect((await api('GET', consents)).body.records).toHaveLength(1);
    const mailto = mailtoOf(deliveryId);
    expect(mailto).toMatch(new RegExp(`^unsubscribe\\+${deliveryId}\\.[0-9a-f]{15}@localhost$`));
    expect((await deliverReport(mailto, 'From: mailto@example.com\r\nSubject: unsubscribe\r\n\r\n')).response).toMatch(/^250 /);
    await deliverReport(mailto, 'From: mailto@example.com\r\nSubject: unsubscribe\r\n\r\n');
    const history = (await api('GET', consents)).body;
    expect(history.records.map((r: any) => [r.action, r.method, r.delivery_id])).toEqual([
      ['given', 'signup_form', null],
      ['unsubscribed', 'mailto', deliveryId],
    ]);
    expect(history.marketing_authorized_at).toBeNull();
    // An unknown delivery is answered 250 and changes nothing.
    expect((await deliverReport(mailtoOf(randomUUID()), 'Subject: unsubscribe\r\n\r\n')).response).toMatch(/^250 /);
  });

  it('refuses a message over the size limit with 552', async () => {
    const id = randomUUID();
    const big = `Subject: big\r\nContent-Type: text/plain\r\n\r\n${'x'.repeat(76).concat('\r\n').repeat(Math.ceil((MAX_BYTES + 10_000) / 78))}`;
    const replies = await smtpDialogue(listener.port, ['HELO mx.example.net', 'MAIL FROM:<>', `RCPT TO:<${verp(id)}>`, 'DATA', `${big}\r\n.`, 'QUIT']);
    expect(replies[3]).toMatch(/^250 /);
    expect(replies[4]).toMatch(/^354/);
    expect(replies[5]).toMatch(/^552 5\.\d\.\d message larger than/);
    // a declared size over the limit is refused before the data is sent
    const declared = await smtpDialogue(listener.port, ['EHLO mx.example.net', `MAIL FROM:<> SIZE=${MAX_BYTES + 1}`, 'QUIT']);
    expect(declared[2]).toMatch(/^552 /);
  });

  it('starts from the configuration in `envoi serve` / `envoi start`, and closes with the server', async () => {
    expect(loadConfig({}).bounceSmtpPort).toBeNull();
    const cfg = loadConfig({ ENVOI_BOUNCE_SMTP_PORT: '2525', HOST: '0.0.0.0' });
    expect(cfg).toMatchObject({ bounceSmtpPort: 2525, bounceSmtpHost: '0.0.0.0' });
    expect(loadConfig({ ENVOI_BOUNCE_SMTP_PORT: '2525', ENVOI_BOUNCE_SMTP_HOST: '127.0.0.2' }).bounceSmtpHost).toBe('127.0.0.2');
    expect(() => loadConfig({ ENVOI_BOUNCE_SMTP_PORT: 'twenty-five' })).toThrow(ConfigError);

    let closed = false;
    const off = { ...t.envoi, close: async () => {} };
    expect(await startBounceListenerInServer(off)).toBeNull();
    const on = { ...t.envoi, config: { ...t.envoi.config, bounceSmtpPort: 0, bounceSmtpHost: '127.0.0.1' }, close: async () => void (closed = true) };
    const started = (await startBounceListenerInServer(on))!;
    expect((await smtpDialogue(started.port, ['QUIT']))[0]).toMatch(/^220 /);
    await on.close();
    expect(closed).toBe(true);
    await expect(smtpDialogue(started.port, [])).rejects.toThrow(/ECONNREFUSED/);
  });
});

describe('relay webhook: POST /v1/bounces', () => {
  const hook = (events: unknown, token = org.apiKey) => t.request('POST', '/v1/bounces', { token, body: { events } });

  it('applies hard and soft bounces and complaints by delivery id, Message-ID, or message id and email; each once', async () => {
    const a = await sent('hook-hard@example.com');
    const b = await sent('Hook-Soft@Example.com');
    const c = await sent('hook-complaint@example.com');
    const r = await hook([
      { delivery_id: a.deliveryId, type: 'hard_bounce', status: '5.1.1', diagnostic: '550 5.1.1 user unknown', at: '2020-01-01T00:00:00Z' },
      { message_id: b.messageId, email: 'hook-soft@EXAMPLE.com', type: 'soft_bounce', status: '4.2.2', diagnostic: '452 4.2.2 mailbox full' },
      { message_id: `<${c.deliveryId}@localhost>`, type: 'complaint' },
      { delivery_id: a.deliveryId, type: 'hard_bounce', status: '5.1.1', diagnostic: '550 5.1.1 user unknown' },
      { delivery_id: randomUUID(), type: 'hard_bounce' },
      { message_id: b.messageId, email: 'someone-else@example.com', type: 'hard_bounce' },
    ]);
    expectStatus(r, 200);
    expect(r.body.results).toEqual([
      { index: 0, result: 'applied', delivery_id: a.deliveryId, suppressed: true },
      { index: 1, result: 'applied', delivery_id: b.deliveryId, suppressed: false },
      { index: 2, result: 'applied', delivery_id: c.deliveryId, suppressed: true },
      { index: 3, result: 'duplicate', delivery_id: a.deliveryId, suppressed: false },
      { index: 4, result: 'unknown_delivery', delivery_id: null, suppressed: false },
      { index: 5, result: 'unknown_delivery', delivery_id: null, suppressed: false },
    ]);
    expect(r.body.counts).toEqual({ applied: 3, duplicate: 1, unknown_delivery: 2, not_sent: 0 });

    expect((await delivery(a.deliveryId)).status).toBe('bounced');
    const ea = (await eventsOf(a.deliveryId)).at(-1)!;
    expect(ea).toMatchObject({ type: 'bounced', detail: { kind: 'hard', status: '5.1.1', source: 'webhook', suppressed: true } });
    expect((await db().selectFrom('message_events').select('at').where('delivery_id', '=', a.deliveryId).where('type', '=', 'bounced').executeTakeFirstOrThrow()).at.toISOString()).toBe('2020-01-01T00:00:00.000Z');
    expect((await delivery(b.deliveryId)).status).toBe('sent');
    expect((await eventsOf(b.deliveryId)).at(-1)).toMatchObject({ type: 'delayed', detail: { kind: 'soft', status: '4.2.2', source: 'webhook' } });
    expect((await eventsOf(c.deliveryId)).at(-1)).toMatchObject({ type: 'complained', detail: { source: 'webhook', feedback_type: 'abuse' } });
    expect(await suppressionsOf(org.orgId, 'hook-hard@example.com')).toMatchObject([{ reason: 'hard_bounce' }]);
    expect(await suppressionsOf(org.orgId, 'hook-soft@example.com')).toEqual([]);
    expect(await suppressionsOf(org.orgId, 'hook-complaint@example.com')).toMatchObject([{ reason: 'complaint' }]);

    // A DSN about a delivery the webhook already bounced is the same bounce.
    await deliverReport(verp(a.deliveryId), postfixBounce({ deliveryId: a.deliveryId, recipient: 'hook-hard@example.com' }));
    expect((await eventsOf(a.deliveryId)).filter((e) => e.type === 'bounced')).toHaveLength(1);
  });

  it('applies concurrent copies of one report once', async () => {
    const { deliveryId } = await sent('race@example.com');
    const answers = await Promise.all(Array.from({ length: 6 }, () => hook([{ delivery_id: deliveryId, type: 'hard_bounce', status: '5.1.1' }])));
    const results = answers.map((a) => a.body.results[0].result).sort();
    expect(results).toEqual(['applied', 'duplicate', 'duplicate', 'duplicate', 'duplicate', 'duplicate']);
    expect((await eventsOf(deliveryId)).filter((e) => e.type === 'bounced')).toHaveLength(1);
  });

  it("never touches another organisation's delivery, nor one outside an API key's audiences", async () => {
    const { messageId, deliveryId } = await sent('mine@example.com');
    const before = { d: await delivery(deliveryId), events: await eventsOf(deliveryId) };
    const r = await hook(
      [
        { delivery_id: deliveryId, type: 'hard_bounce', status: '5.1.1' },
        { message_id: messageId, email: 'mine@example.com', type: 'complaint' },
        { message_id: `<${deliveryId}@localhost>`, type: 'soft_bounce' },
      ],
      other.apiKey,
    );
    expectStatus(r, 200);
    expect(r.body.results.map((x: any) => [x.result, x.delivery_id])).toEqual([
      ['unknown_delivery', null],
      ['unknown_delivery', null],
      ['unknown_delivery', null],
    ]);
    const otherAudience = (await api('POST', '/v1/audiences', { name: 'Elsewhere' })).body.id;
    const limited = await orgs.createApiKey(t.envoi.ctx, org.orgId, { name: 'elsewhere only', role: 'editor', audienceIds: [otherAudience] });
    expect((await hook([{ delivery_id: deliveryId, type: 'hard_bounce' }], limited.key)).body.results[0].result).toBe('unknown_delivery');

    expect(await delivery(deliveryId)).toEqual(before.d);
    expect(await eventsOf(deliveryId)).toEqual(before.events);
    expect(await suppressionsOf(org.orgId, 'mine@example.com')).toEqual([]);
    expect(await suppressionsOf(other.orgId, 'mine@example.com')).toEqual([]);
  });

  it('refuses bad input with a clear 400 and applies nothing of a bad batch; needs an editor', async () => {
    const { deliveryId } = await sent('careful@example.com');
    const bad: [unknown, RegExp][] = [
      [undefined, /events/],
      [[], /events/],
      [[{ type: 'hard_bounce' }], /delivery_id, or message_id/],
      [[{ delivery_id: deliveryId, type: 'bounce' }], /type/],
      [[{ delivery_id: 'not-a-uuid', type: 'hard_bounce' }], /delivery_id/],
      [[{ delivery_id: deliveryId, type: 'hard_bounce', status: '550' }], /status/],
      [[{ delivery_id: deliveryId, type: 'hard_bounce', at: 'yesterday' }], /at/],
      [[{ delivery_id: deliveryId, type: 'hard_bounce', extra: 1 }], /additional/],
      [[{ message_id: randomUUID(), type: 'complaint' }], /needs email/],
      [[{ message_id: 'abc@relay.example', type: 'complaint' }], /message_id/],
      [Array.from({ length: 1001 }, () => ({ delivery_id: deliveryId, type: 'soft_bounce' })), /1000/],
      [[{ delivery_id: deliveryId, type: 'hard_bounce' }, { type: 'complaint' }], /events\/1/],
    ];
    for (const [events, message] of bad) {
      const r = events === undefined ? await t.request('POST', '/v1/bounces', { token: org.apiKey, body: {} }) : await hook(events);
      expectStatus(r, 400);
      expect(JSON.stringify(r.body.error)).toMatch(message);
    }
    expectStatus(await t.request('POST', '/v1/bounces', { token: org.apiKey, body: 'not json', headers: { 'content-type': 'application/json' } }), 400);
    expect((await delivery(deliveryId)).status).toBe('sent');
    expect((await eventsOf(deliveryId)).map((e) => e.type)).toEqual(['queued', 'sent']);

    const viewer = await orgs.createApiKey(t.envoi.ctx, org.orgId, { name: 'viewer', role: 'viewer' });
    expectStatus(await hook([{ delivery_id: deliveryId, type: 'hard_bounce' }], viewer.key), 403);
    expectStatus(await t.request('POST', '/v1/bounces', { body: { events: [{ delivery_id: deliveryId, type: 'hard_bounce' }] } }), 401);
    expect((await delivery(deliveryId)).status).toBe('sent');
  });

  it(`takes a batch of 1000 events in one call, in a few statements (${dbKind})`, async () => {
    // Three messages to one address: three deliveries, one suppression.
    const ids = [(await sent('batch@example.com')).deliveryId, (await sent('batch@example.com')).deliveryId, (await sent('batch@example.com')).deliveryId];
    const events = [
      ...ids.map((id) => ({ delivery_id: id, type: 'hard_bounce', status: '5.1.1' })),
      ...ids.map((id) => ({ delivery_id: id, type: 'complaint' })),
      ...Array.from({ length: 994 }, () => ({ delivery_id: randomUUID(), type: 'soft_bounce' })),
    ];
    const started = performance.now();
    const r = await hook(events);
    const ms = performance.now() - started;
    expectStatus(r, 200);
    expect(r.body.counts).toEqual({ applied: 6, duplicate: 0, unknown_delivery: 994, not_sent: 0 });
    for (const id of ids) expect((await delivery(id)).status).toBe('bounced');
    expect((await suppressionsOf(org.orgId, 'batch@example.com')).map((s) => s.reason).sort()).toEqual(['complaint', 'hard_bounce']);
    console.log(`bounce webhook (${dbKind}): 1000 events in ${Math.round(ms)} ms`);
  });
});
