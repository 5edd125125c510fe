import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import * as orgs from '../src/organisations/service.ts';
import { Worker } from '../src/sending/worker.ts';
import { enqueueToContacts } from '../src/sending/service.ts';
import { BACKOFF } from '../src/sending/rules.ts';
import { expectStatus, startTestApp, until, type TestApp, type TestOrg, audienceWithEvent } from './support/harness.ts';
import { firstTimes, reply, startFaultySmtp, type FaultySmtp } from './support/faulty-smtp.ts';

/*
 * SMTP faults: a real worker sends to a receiving server scripted to answer 421, 450, 451 after
 * DATA, 452 for some recipients, 550, 552, to drop the connection during DATA, to stall past the
 * client's timeout, and to break STARTTLS. Each test checks the final state of the delivery
 * (retried on the backoff schedule then sent, bounced with the reply, or failed with the reason)
 * and its event history; after each test, every delivery record is compared with what the server
 * accepted: a delivery is `sent` exactly when the server gave it a 250, with that 250 as its reply.
 */

let t: TestApp;
let org: TestOrg;
let smtp: FaultySmtp;
let worker: Worker;
let audienceId: string;
let eventId: string;
let tx: string;
let part: string;

const TIMEOUT_MS = 1500;
// nodemailer reads its options from the URL's query too: a stalled server is given up on quickly.
const smtpUrl = () => `${smtp.url}?connectionTimeout=${TIMEOUT_MS}&greetingTimeout=${TIMEOUT_MS}&socketTimeout=${TIMEOUT_MS}`;
const api = (method: string, url: string, body?: unknown) => t.request(method, url, { token: org.apiKey, body });

async function send(email: string) {
  const r = await api('POST', '/v1/messages', { template_id: tx, to: { email, first_name: 'Test' }, variables: { code: email } });
  expectStatus(r, 202);
  return { id: r.body.id as string, delivery: r.body.delivery_id as string };
}

async function message(id: string) {
  const m = await api('GET', `/v1/messages/${id}`);
  expectStatus(m, 200);
  return m.body;
}

async function waitForStatus(id: string, status: string, ms = 20_000) {
  let last: any;
  // The status and the delivery rows are separate reads: wait until they agree.
  const settled = (m: any) => m.status === status && (m.deliveries.length !== 1 || (m.deliveries[0].status === status && m.events.at(-1)?.type === status));
  await until(async () => settled((last = await message(id))), `message ${id} to be ${status}`, ms).catch((e) => {
    throw new Error(`${e.message}; it is ${last?.status}: ${JSON.stringify(last?.deliveries)}`);
  });
  if (process.env.DEBUG_FAULTS) console.log(status, last.deliveries.map((d: any) => [d.email, d.last_error, d.smtp_response]));
  return last;
}

/** The delivery's own history: the types of its events, oldest first. */
const history = (m: any, deliveryId: string) => m.events.filter((e: any) => e.delivery_id === deliveryId).map((e: any) => e.type);

/** Moves the test clock to just after the delivery's retry time and wakes the worker. */
function passRetryTime(due: string) {
  t.clock.now = new Date(new Date(due).getTime() + 1000);
  worker.wake();
}

/** Passes each retry time until the message is sent (a fault scripted for more than one try). */
async function retryUntilSent(id: string, rounds = 4) {
  for (let i = 0; ; i++) {
    let m: any;
    await until(async () => ['sent', 'deferred'].includes((m = await message(id)).status) && m.deliveries[0].status === m.status, `message ${id} to be sent or deferred`);
    if (m.status === 'sent') return m;
    if (i >= rounds) throw new Error(`message ${id} still deferred after ${rounds} retries: ${JSON.stringify(m.deliveries)}`);
    passRetryTime(m.deliveries[0].due_at);
    await until(async () => (await message(id)).deliveries[0].attempts > m.deliveries[0].attempts, 'the next attempt');
  }
}

/** A deferral must come back after the backoff for its attempt (the worker's jitter is 0 here), not sooner nor later. */
function expectBackoff(m: any, attempt: number, reason: keyof typeof BACKOFF.baseMs) {
  const d = m.deliveries[0];
  expect(d.status, JSON.stringify(m)).toBe('deferred');
  expect(d.attempts).toBe(attempt);
  const wait = new Date(d.due_at).getTime() - t.clock.now.getTime();
  expect(wait).toBe(Math.min(BACKOFF.capMs, BACKOFF.baseMs[reason] * 2 ** (attempt - 1)));
  expect(m.events.at(-1)).toMatchObject({ type: 'deferred', detail: { reason, attempt, retry_at: d.due_at } });
}

beforeAll(async () => {
  t = await startTestApp();
  org = await t.createOrg('Faults Org');
  smtp = await startFaultySmtp();
  const seeded = await audienceWithEvent(t, org.apiKey, 'Congress');
  ({ audienceId, eventId } = seeded);
  const mk = seeded.template;
  tx = await mk({ name: 'Code', category: 'transactional', subject: 'Your code', body: '<p>Hello {{ first_name }}, your code is {{ vars.code }}</p>' });
  part = await mk({ name: 'Info', category: 'participation', event_id: eventId, subject: 'About {{ event.name }}', body: '<p>See you, {{ first_name }}. [UNSUBLINK]</p>' });
});

beforeEach(() => {
  smtp.script = {};
  smtp.log.length = 0;
  // A fresh worker, so that each test's connection-level faults meet new connections, not pooled ones.
  worker = new Worker(t.envoi.ctx, { smtpUrl: smtpUrl(), pollMs: { transactional: 50, bulk: 50 }, random: () => 0, concurrency: 4, transactionalConcurrency: 2 }).start();
});

afterEach(async () => {
  await worker.stop();
  smtp.script = {};
  // The ledger: sent exactly when the server accepted it, with the server's own reply recorded.
  const rows = await t.envoi.ctx.db.selectFrom('deliveries').select(['id', 'email', 'status', 'smtp_response']).where('org_id', '=', org.orgId).execute();
  for (const d of rows) {
    const got = smtp.acceptedFor(d.id);
    if (d.status === 'sent') {
      expect(got, `${d.email} is marked sent`).toHaveLength(1);
      expect(d.smtp_response).toBe(got[0]!.response);
      expect(got[0]!.rcptTo).toEqual([d.email]);
    } else {
      expect(got, `${d.email} is ${d.status} but the server accepted it`).toHaveLength(0);
    }
  }
  expect(smtp.accepted.every((m) => rows.some((d) => d.id === m.deliveryId && d.status === 'sent'))).toBe(true);
});

afterAll(async () => {
  await smtp?.close();
  await t?.close();
});

describe('temporary failures are retried on the backoff schedule, then delivered', () => {
  it('421 at the greeting', async () => {
    smtp.script.greeting = firstTimes(1, reply(421, '4.3.2 Service not available, try later'));
    const m = await send('greeting421@example.com');
    const deferred = await waitForStatus(m.id, 'deferred');
    expectBackoff(deferred, 1, 'temporary');
    expect(deferred.deliveries[0].smtp_response).toMatch(/^421 4\.3\.2 Service not available/);
    expect(smtp.outcomes('greeting')).toEqual([421]);
    passRetryTime(deferred.deliveries[0].due_at);
    const sent = await waitForStatus(m.id, 'sent');
    expect(history(sent, m.delivery)).toEqual(['queued', 'deferred', 'sent']);
    expect(sent.deliveries[0].attempts).toBe(2);
  });

  it('421 in the middle of a session, on a pooled connection that has delivered before: deferred with the reply', async () => {
    const first = await send('before421@example.com');
    await waitForStatus(first.id, 'sent');
    const pooled = smtp.accepted.at(-1)!.connection;
    smtp.log.length = 0;
    // The next MAIL FROM on that connection gets a 421 (which closes it), and so does the next one
    // on a fresh connection, should the client try the message again over one at once.
    smtp.script.mailFrom = firstTimes(2, reply(421, '4.4.2 Closing connection, too busy'));
    const m = await send('after421@example.com');
    const deferred = await waitForStatus(m.id, 'deferred');
    expectBackoff(deferred, 1, 'temporary');
    expect(deferred.deliveries[0].smtp_response).toMatch(/^421 4\.4\.2 Closing connection/);
    const mails = smtp.log.filter((e) => e.step === 'mail');
    expect(mails[0]).toMatchObject({ connection: pooled, outcome: 421 });
    expect(mails.every((e) => e.outcome === 421)).toBe(true);
    const sent = await retryUntilSent(m.id);
    expect(sent.deliveries[0].attempts).toBeLessThanOrEqual(3);
  });

  it('421 once on a pooled connection: delivered over a new connection in the same attempt, or deferred with the reply', async () => {
    const first = await send('pooled421@example.com');
    await waitForStatus(first.id, 'sent');
    const pooled = smtp.accepted.at(-1)!.connection;
    smtp.script.mailFrom = firstTimes(1, reply(421, '4.4.2 Idle for too long'));
    const m = await send('once421@example.com');
    let now: any;
    await until(async () => ['sent', 'deferred'].includes((now = await message(m.id)).status), 'the message to be sent or deferred');
    if (now.status === 'deferred') {
      expectBackoff(now, 1, 'temporary');
      expect(now.deliveries[0].smtp_response).toMatch(/^421 4\.4\.2 Idle/);
      passRetryTime(now.deliveries[0].due_at);
      now = await waitForStatus(m.id, 'sent');
    } else {
      expect(now.deliveries[0].attempts).toBe(1);
    }
    expect(smtp.acceptedFor(m.delivery)[0]!.connection).not.toBe(pooled);
  });

  it('a connection closed without a word at the greeting: deferred as a connection failure, then delivered', async () => {
    smtp.script.greeting = firstTimes(2, 'drop');
    const m = await send('greetingdrop@example.com');
    const deferred = await waitForStatus(m.id, 'deferred');
    expectBackoff(deferred, 1, 'connection');
    expect(deferred.deliveries[0].last_error).toMatch(/clos/i);
    expect(smtp.outcomes('greeting')[0]).toBe('drop');
    await retryUntilSent(m.id);
  });

  it('450 at RCPT TO (greylisting) twice: the wait doubles, then it is delivered once', async () => {
    smtp.script.rcpt = firstTimes(2, (to) => (to === 'grey@example.com' ? reply(450, '4.2.0 Greylisted, please retry') : null));
    const m = await send('grey@example.com');
    const once = await waitForStatus(m.id, 'deferred');
    expectBackoff(once, 1, 'temporary');
    expect(once.deliveries[0].last_error).toBeTruthy();
    expect(once.deliveries[0].smtp_response).toMatch(/^450 4\.2\.0 Greylisted/);
    passRetryTime(once.deliveries[0].due_at);
    let twice: any;
    await until(async () => (twice = await message(m.id)).deliveries[0].attempts === 2 && twice.status === 'deferred', 'the second deferral');
    expectBackoff(twice, 2, 'temporary');
    passRetryTime(twice.deliveries[0].due_at);
    const sent = await waitForStatus(m.id, 'sent');
    expect(history(sent, m.delivery)).toEqual(['queued', 'deferred', 'deferred', 'sent']);
    expect(sent.deliveries[0].attempts).toBe(3);
    expect(smtp.outcomes('rcpt', 'grey@example.com')).toEqual([450, 450, 250]);
  });

  it('451 after DATA (mid-transaction): the message the server received but refused is not sent', async () => {
    smtp.script.data = firstTimes(1, (rcpt) => (rcpt.includes('data451@example.com') ? reply(451, '4.3.0 Local error in processing') : null));
    const m = await send('data451@example.com');
    const deferred = await waitForStatus(m.id, 'deferred');
    expectBackoff(deferred, 1, 'temporary');
    expect(deferred.deliveries[0].smtp_response).toMatch(/^451 4\.3\.0/);
    expect(smtp.acceptedFor(m.delivery)).toHaveLength(0);
    passRetryTime(deferred.deliveries[0].due_at);
    await waitForStatus(m.id, 'sent');
    expect(smtp.outcomes('data')).toEqual([451, 250]);
  });

  it('452 for some recipients of a message to many: only those are retried', async () => {
    const emails = ['crowd0@example.com', 'crowd1@example.com', 'crowd2@example.com', 'crowd3@example.com'];
    const contactIds: string[] = [];
    for (const email of emails) {
      const p = await api('POST', `/v1/events/${eventId}/participants`, { email, first_name: 'Crowd' });
      expectStatus(p, 201);
      contactIds.push(p.body.contact_id);
    }
    const full = new Set(['crowd1@example.com', 'crowd3@example.com']);
    const refused = new Set<string>();
    smtp.script.rcpt = (to) => {
      if (!full.has(to) || refused.has(to)) return null;
      refused.add(to);
      return reply(452, '4.5.3 Too many recipients for this mailbox right now');
    };
    const principal = (await orgs.authenticate(t.envoi.ctx, org.apiKey))!;
    const bulk = await enqueueToContacts(t.envoi.ctx, principal, { templateId: part, contactIds });
    expect(bulk).toMatchObject({ recipients: 4, allowed: 4 });
    let m: any;
    await until(async () => {
      m = await message(bulk.message_id);
      return m.deliveries.every((d: any) => d.status === 'sent' || d.status === 'deferred');
    }, 'every delivery to be sent or deferred');
    const by = (email: string) => m.deliveries.find((d: any) => d.email === email);
    for (const email of emails) expect(by(email).status, email).toBe(full.has(email) ? 'deferred' : 'sent');
    expect(by('crowd1@example.com').smtp_response).toMatch(/^452 4\.5\.3/);
    passRetryTime(by('crowd1@example.com').due_at);
    await until(async () => (m = await message(bulk.message_id)).status === 'completed', 'the message to complete');
    expect(m.deliveries.map((d: any) => d.status)).toEqual(['sent', 'sent', 'sent', 'sent']);
    for (const email of emails) {
      expect(smtp.outcomes('rcpt', email), email).toEqual(full.has(email) ? [452, 250] : [250]);
      expect(by(email).attempts, email).toBe(full.has(email) ? 2 : 1);
    }
  });
});

describe('connection failures are retried sooner, and nothing half-sent counts as sent', () => {
  it('the connection dropped in the middle of DATA', async () => {
    let dropped = false;
    smtp.script.dataStart = () => (dropped ? null : ((dropped = true), 'drop'));
    const m = await send('dropped@example.com');
    const deferred = await waitForStatus(m.id, 'deferred');
    expectBackoff(deferred, 1, 'connection');
    expect(deferred.deliveries[0].last_error).toBeTruthy();
    expect(smtp.outcomes('data-start')).toEqual(['drop']);
    expect(smtp.acceptedFor(m.delivery)).toHaveLength(0);
    passRetryTime(deferred.deliveries[0].due_at);
    const sent = await waitForStatus(m.id, 'sent');
    expect(history(sent, m.delivery)).toEqual(['queued', 'deferred', 'sent']);
  });

  it('the connection closed after the whole message was sent, before the reply', async () => {
    smtp.script.data = firstTimes(1, 'drop');
    const m = await send('noreply@example.com');
    const deferred = await waitForStatus(m.id, 'deferred');
    expectBackoff(deferred, 1, 'connection');
    expect(smtp.outcomes('data')).toEqual(['drop']);
    passRetryTime(deferred.deliveries[0].due_at);
    await waitForStatus(m.id, 'sent');
  });

  for (const [where, step, error] of [
    ['the greeting', 'greeting', /greeting never received|timed? ?out/i],
    ['RCPT TO', 'rcpt', /timed? ?out/i],
    ['the end of DATA', 'data', /timed? ?out/i],
  ] as const) {
    it(`a server that stalls at ${where} past the timeout`, async () => {
      smtp.script[step] = firstTimes(1, 'stall') as never;
      const started = Date.now();
      const m = await send(`stall-${step}@example.com`);
      const deferred = await waitForStatus(m.id, 'deferred', 30_000);
      expect(Date.now() - started).toBeGreaterThanOrEqual(TIMEOUT_MS - 100);
      expectBackoff(deferred, 1, 'connection');
      expect(deferred.deliveries[0].last_error).toMatch(error);
      expect(smtp.outcomes(step)[0]).toBe('stall');
      passRetryTime(deferred.deliveries[0].due_at);
      await waitForStatus(m.id, 'sent');
    });
  }
});

describe('broken TLS', () => {
  for (const [fault, what] of [
    ['garbage', 'STARTTLS offered, then bytes that are not TLS'],
    ['alert', 'STARTTLS offered, then a handshake_failure alert'],
    ['untrusted', 'STARTTLS with a certificate the client cannot verify'],
  ] as const) {
    it(`${what}: retried with the TLS error, never sent in the clear on that attempt, delivered once TLS works or is no longer offered`, async () => {
      let broken = true;
      smtp.script.tls = () => (broken ? fault : null);
      const m = await send(`tls-${fault}@example.com`);
      const deferred = await waitForStatus(m.id, 'deferred');
      expect(deferred.deliveries[0].attempts).toBe(1);
      expect(deferred.deliveries[0].last_error).toBeTruthy();
      expect(smtp.outcomes('tls')).toContain(fault);
      expect(smtp.outcomes('mail'), 'no MAIL FROM over the broken session').toEqual([]);
      expect(smtp.acceptedFor(m.delivery)).toHaveLength(0);
      broken = false;
      passRetryTime(deferred.deliveries[0].due_at);
      const sent = await waitForStatus(m.id, 'sent');
      expect(history(sent, m.delivery)).toEqual(['queued', 'deferred', 'sent']);
    });
  }
});

describe('permanent refusals bounce with the reply, and are not retried', () => {
  it('550 5.1.1 at RCPT TO: bounced, the address suppressed', async () => {
    smtp.script.rcpt = (to) => (to === 'nobody@example.com' ? reply(550, '5.1.1 No such user') : null);
    const m = await send('nobody@example.com');
    const bounced = await waitForStatus(m.id, 'bounced');
    expect(bounced.deliveries[0]).toMatchObject({ attempts: 1, due_at: null });
    expect(bounced.deliveries[0].smtp_response).toMatch(/^550 5\.1\.1 No such user/);
    expect(bounced.events.at(-1)).toMatchObject({ type: 'bounced', detail: { suppressed: true, attempt: 1 } });
    const sup = await t.envoi.ctx.db.selectFrom('suppressions').select(['email_lower', 'reason']).where('org_id', '=', org.orgId).execute();
    expect(sup).toContainEqual({ email_lower: 'nobody@example.com', reason: 'hard_bounce' });
    // Nothing comes back later.
    t.clock.now = new Date(t.clock.now.getTime() + 3_600_000);
    worker.wake();
    await new Promise((r) => setTimeout(r, 300));
    expect(smtp.outcomes('rcpt', 'nobody@example.com')).toEqual([550]);
  });

  it('552 5.2.2 at RCPT TO (mailbox full): bounced, the address kept', async () => {
    smtp.script.rcpt = (to) => (to === 'full@example.com' ? reply(552, '5.2.2 Mailbox full') : null);
    const m = await send('full@example.com');
    const bounced = await waitForStatus(m.id, 'bounced');
    expect(bounced.deliveries[0].smtp_response).toMatch(/^552 5\.2\.2 Mailbox full/);
    expect(bounced.events.at(-1)).toMatchObject({ type: 'bounced', detail: { suppressed: false } });
    const sup = await t.envoi.ctx.db.selectFrom('suppressions').select('email_lower').where('org_id', '=', org.orgId).where('email_lower', '=', 'full@example.com').execute();
    expect(sup).toEqual([]);
  });

  it('552 5.3.4 after DATA (message too big): bounced, the address kept', async () => {
    smtp.script.data = (rcpt) => (rcpt.includes('big@example.com') ? reply(552, '5.3.4 Message size exceeds fixed limit') : null);
    const m = await send('big@example.com');
    const bounced = await waitForStatus(m.id, 'bounced');
    expect(bounced.deliveries[0].smtp_response).toMatch(/^552 5\.3\.4/);
    expect(bounced.events.at(-1)).toMatchObject({ type: 'bounced', detail: { suppressed: false } });
  });

  it('550 5.7.1 at MAIL FROM (sender refused by policy): bounced, the address kept', async () => {
    smtp.script.mailFrom = () => reply(550, '5.7.1 Sender rejected by policy');
    const m = await send('policy@example.com');
    const bounced = await waitForStatus(m.id, 'bounced');
    expect(bounced.deliveries[0].smtp_response).toMatch(/^550 5\.7\.1/);
    expect(bounced.events.at(-1)).toMatchObject({ type: 'bounced', detail: { suppressed: false } });
  });
});

describe('refusals of the session itself are the relay\'s, not the recipient\'s', () => {
  it('554 at the greeting: retried slowly, neither bounced nor suppressed', async () => {
    smtp.script.greeting = firstTimes(1, reply(554, '5.7.1 Your IP is on a block list'));
    const m = await send('refusedsession@example.com');
    const deferred = await waitForStatus(m.id, 'deferred');
    expectBackoff(deferred, 1, 'relay');
    expect(deferred.deliveries[0].smtp_response).toMatch(/^554 5\.7\.1/);
    const sup = await t.envoi.ctx.db.selectFrom('suppressions').select('email_lower').where('org_id', '=', org.orgId).where('email_lower', '=', 'refusedsession@example.com').execute();
    expect(sup).toEqual([]);
    passRetryTime(deferred.deliveries[0].due_at);
    await waitForStatus(m.id, 'sent');
  });
});

describe('giving up', () => {
  it('a temporary failure past the retry deadline fails the delivery with the reply and the reason', async () => {
    smtp.script.rcpt = (to) => (to === 'forever450@example.com' ? reply(450, '4.2.1 Mailbox temporarily disabled') : null);
    const m = await send('forever450@example.com');
    const deferred = await waitForStatus(m.id, 'deferred');
    // A day later (the transactional deadline), the next attempt is the last.
    t.clock.now = new Date(t.clock.now.getTime() + 25 * 3_600_000);
    worker.wake();
    const failed = await waitForStatus(m.id, 'failed');
    expect(failed.deliveries[0].attempts).toBe(2);
    expect(failed.deliveries[0].last_error).toMatch(/retry deadline/);
    expect(failed.deliveries[0].smtp_response).toMatch(/^450 4\.2\.1/);
    expect(history(failed, m.delivery)).toEqual(['queued', 'deferred', 'failed']);
    expect(deferred.deliveries[0].attempts).toBe(1);
    expect(smtp.outcomes('rcpt', 'forever450@example.com')).toEqual([450, 450]);
  });
});
