import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  bounceFromReport,
  classifyDeliveryStatus,
  classifyFeedbackReport,
  classifyInbound,
  cleanDiagnostic,
  isDuplicate,
  parseHeaderBlocks,
  parseInbound,
  parseStatus,
  type Classification,
} from './bounce-rules.ts';
import { arfComplaint, exchangeBounce, gmailBounce, outOfOffice, postfixBounce, postfixDelayed, type Original } from '../../test/support/bounce-fixtures.ts';

const o: Original = { deliveryId: '0b7c0e6e-8a1c-4c11-9d41-3a5f1a2b3c4d', recipient: 'ghost@example.com' };
const classify = async (raw: string | Buffer): Promise<Classification> => classifyInbound(await parseInbound(raw));

describe('parseHeaderBlocks', () => {
  it('splits blank-line separated blocks and unfolds continuation lines', () => {
    const blocks = parseHeaderBlocks('Reporting-MTA: dns; mx.example\r\n\r\nFinal-Recipient: rfc822; a@example.com\r\nDiagnostic-Code: smtp; 550 5.1.1 no\r\n  such user\r\n\tat all\r\n');
    expect(blocks).toHaveLength(2);
    expect(blocks[0]!.get('reporting-mta')).toBe('dns; mx.example');
    expect(blocks[1]!.get('diagnostic-code')).toBe('smtp; 550 5.1.1 no such user at all');
  });

  it('is case-insensitive on names, keeps the first of a repeated field, accepts bare LF and CR', () => {
    const [b] = parseHeaderBlocks('ACTION: failed\nAction: delivered\n continued\rSTATUS:5.1.1');
    expect(b!.get('action')).toBe('failed');
    expect(b!.get('status')).toBe('5.1.1');
  });

  it('skips broken lines without losing the fields after them, and ignores extra blank lines', () => {
    const blocks = parseHeaderBlocks('\n\n  stray continuation\nnot a field\nAction: failed\n: no name\nStatus: 5.2.2\n\n\n\n   \nAction: delayed\n');
    expect(blocks.map((b) => Object.fromEntries(b))).toEqual([{ action: 'failed', status: '5.2.2' }, { action: 'delayed' }]);
  });

  it('never throws and bounds its output on arbitrary text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 2000 }), (s) => {
        const blocks = parseHeaderBlocks(s);
        for (const b of blocks) for (const [k, v] of b) expect(k.length + v.length).toBeLessThanOrEqual(s.length);
      }),
    );
    expect(parseHeaderBlocks('')).toEqual([]);
    const huge = parseHeaderBlocks(`X: ${'a'.repeat(1_000_000)}`);
    expect(huge[0]!.get('x')!.length).toBeLessThanOrEqual(2000);
  });
});

describe('status and diagnostic fields', () => {
  it('reads RFC 3463 codes and nothing else', () => {
    expect(parseStatus('5.1.1')).toBe('5.1.1');
    expect(parseStatus(' 4.4.7 (delivery time expired)')).toBe('4.4.7');
    expect(parseStatus('5.1.10')).toBe('5.1.10');
    expect(parseStatus('5.01.001')).toBe('5.1.1');
    for (const bad of ['', '550', '3.1.1', '5.1', '5.1.1.1', 'x5.1.1', '5.1234.1', undefined, null]) expect(parseStatus(bad)).toBeNull();
  });

  it('takes the type off, keeps one line, and drops the repeated code of multi-line replies', () => {
    expect(cleanDiagnostic('smtp; 550 5.1.1 <a@b.example>: Recipient address\n    rejected: User unknown')).toBe('550 5.1.1 <a@b.example>: Recipient address rejected: User unknown');
    expect(cleanDiagnostic('smtp; 550-5.1.1 The account does not exist. Please try 550-5.1.1 double-checking 550 5.1.1  https://x.example/?p=1 - gsmtp')).toBe(
      '550 5.1.1 The account does not exist. Please try double-checking https://x.example/?p=1 - gsmtp',
    );
    expect(cleanDiagnostic('X-Postfix; connect to mx[192.0.2.1]:25: Connection timed out')).toBe('connect to mx[192.0.2.1]:25: Connection timed out');
    // A semicolon inside the reply is part of it.
    expect(cleanDiagnostic('550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found')).toBe('550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found');
    expect(cleanDiagnostic('smtp;')).toBeNull();
    expect(cleanDiagnostic(undefined)).toBeNull();
    expect(cleanDiagnostic(`smtp; 550 ${'x'.repeat(900)}`)!.length).toBe(500);
  });
});

describe('delivery status notifications', () => {
  it('Postfix: user unknown is a hard bounce that suppresses', async () => {
    expect(await classify(postfixBounce(o))).toEqual({
      type: 'hard_bounce',
      suppress: true,
      status: '5.1.1',
      diagnostic: '550 5.1.1 <ghost@example.com>: Recipient address rejected: User unknown in virtual mailbox table',
      recipient: 'ghost@example.com',
    });
  });

  it('Exchange: RecipientNotFound (5.1.10) suppresses', async () => {
    expect(await classify(exchangeBounce(o))).toMatchObject({ type: 'hard_bounce', suppress: true, status: '5.1.10', diagnostic: expect.stringMatching(/^550 5\.1\.10 RESOLVER\.ADR\.RecipientNotFound/) });
  });

  it('Gmail: NoSuchUser suppresses, with a readable one-line diagnostic', async () => {
    const c = await classify(gmailBounce(o));
    expect(c).toMatchObject({ type: 'hard_bounce', suppress: true, status: '5.1.1', recipient: 'ghost@example.com' });
    expect((c as { diagnostic: string }).diagnostic).toBe(
      "550 5.1.1 The email account that you tried to reach does not exist. Please try double-checking the recipient's email address for typos or unnecessary spaces. For more information, go to https://support.google.com/mail/?p=NoSuchUser a1si123456wra.12 - gsmtp",
    );
  });

  it('a permanent refusal of the message, not the address, bounces without suppressing', async () => {
    const full = await classify(exchangeBounce(o, { status: '5.2.2', diagnostic: 'smtp;554 5.2.2 mailbox full; STOREDRV.Deliver.Exception:QuotaExceededException' }));
    expect(full).toMatchObject({ type: 'hard_bounce', suppress: false, status: '5.2.2' });
    const policy = await classify(postfixBounce(o, { status: '5.7.1', diagnostic: 'smtp; 550 5.7.1 Message rejected as spam by Content Filtering' }));
    expect(policy).toMatchObject({ type: 'hard_bounce', suppress: false, status: '5.7.1' });
    // 5.2.1: the mailbox is disabled, which is about the address.
    expect(await classify(postfixBounce(o, { status: '5.2.1', diagnostic: 'smtp; 550 5.2.1 mailbox disabled' }))).toMatchObject({ suppress: true });
  });

  it('a delay warning is a soft bounce', async () => {
    expect(await classify(postfixDelayed(o))).toEqual({
      type: 'soft_bounce',
      status: '4.4.1',
      diagnostic: 'connect to mail.example.com[192.0.2.10]:25: Connection timed out',
      recipient: 'ghost@example.com',
    });
  });

  it('a message given up after its queue lifetime (failed, 4.x.x) bounces without condemning the address', async () => {
    const c = await classify(postfixBounce(o, { status: '4.4.7', diagnostic: 'X-Postfix; delivery temporarily suspended: connect to mail.example.com: Connection refused' }));
    expect(c).toMatchObject({ type: 'hard_bounce', suppress: false, status: '4.4.7' });
  });

  it('a generic 5.0.0 status is made precise by the reply in the diagnostic', async () => {
    expect(await classify(postfixBounce(o, { status: '5.0.0', diagnostic: 'smtp; 550 5.1.1 user unknown' }))).toMatchObject({ status: '5.1.1', suppress: true });
    // but never across classes: a 4.x.x reply does not make a 5.0.0 temporary
    expect(await classify(postfixBounce(o, { status: '5.0.0', diagnostic: 'smtp; 450 4.2.0 greylisted' }))).toMatchObject({ status: '5.0.0', suppress: false });
    // without a status code at all, the diagnostic's is used
    expect(await classify(postfixBounce(o, { status: 'unknown', diagnostic: 'smtp; 550 5.1.1 user unknown' }))).toMatchObject({ status: '5.1.1', suppress: true });
    expect(await classify(postfixBounce(o, { status: 'unknown', diagnostic: 'X-Postfix; unknown user: "ghost"' }))).toMatchObject({ type: 'hard_bounce', status: null, suppress: false });
  });

  it('success notices (delivered, relayed, expanded) are not bounces', async () => {
    for (const action of ['delivered', 'relayed', 'expanded']) {
      expect(await classify(postfixBounce(o, { action, status: '2.0.0', diagnostic: 'smtp; 250 2.0.0 Ok: queued as ABC' }))).toMatchObject({ type: 'ignore' });
    }
  });

  it('several recipients: the most severe stands for the delivery', () => {
    const text = [
      'Reporting-MTA: dns; mx.example',
      '',
      'Final-Recipient: rfc822; a@example.com\nAction: delayed\nStatus: 4.2.0',
      'Final-Recipient: rfc822; b@example.com\nAction: failed\nStatus: 5.7.1',
      'Final-Recipient: rfc822; c@example.com\nAction: failed\nStatus: 5.1.1',
      'Final-Recipient: rfc822; d@example.com\nAction: delivered\nStatus: 2.0.0',
    ].join('\n\n');
    expect(classifyDeliveryStatus(text)).toMatchObject({ type: 'hard_bounce', suppress: true, recipient: 'c@example.com' });
  });

  it('without a usable Action, the status class decides', () => {
    expect(classifyDeliveryStatus('Final-Recipient: rfc822; a@example.com\nStatus: 5.1.2')).toMatchObject({ type: 'hard_bounce', suppress: true });
    expect(classifyDeliveryStatus('Final-Recipient: rfc822; a@example.com\nAction: maybe\nStatus: 4.7.0')).toMatchObject({ type: 'soft_bounce' });
    expect(classifyDeliveryStatus('Final-Recipient: rfc822; a@example.com')).toMatchObject({ type: 'ignore' });
    expect(classifyDeliveryStatus('Reporting-MTA: dns; mx.example')).toMatchObject({ type: 'ignore', reason: expect.stringMatching(/per-recipient/) });
  });

  it('reads a base64-encoded report and the SMTPUTF8 global-delivery-status', async () => {
    const fields = 'Reporting-MTA: dns; mx.example\r\n\r\nFinal-Recipient: rfc822; zoë@exämple.com\r\nAction: failed\r\nStatus: 5.1.1\r\n';
    const raw = [
      'From: MAILER-DAEMON@mx.example',
      'To: bounce+x@localhost',
      'Subject: Undeliverable',
      'MIME-Version: 1.0',
      'Content-Type: multipart/report; report-type=delivery-status; boundary="b"',
      '',
      '--b',
      'Content-Type: text/plain',
      '',
      'Failed.',
      '--b',
      'Content-Type: message/global-delivery-status; charset=utf-8',
      'Content-Transfer-Encoding: base64',
      '',
      Buffer.from(fields, 'utf8').toString('base64'),
      '--b--',
      '',
    ].join('\r\n');
    expect(await classify(raw)).toMatchObject({ type: 'hard_bounce', suppress: true, recipient: 'zoë@exämple.com' });
  });
});

describe('complaints', () => {
  it('an ARF abuse report is a complaint about the original recipient', async () => {
    expect(await classify(arfComplaint({ ...o, recipient: 'reader@example.com' }))).toEqual({ type: 'complaint', feedbackType: 'abuse', recipient: 'reader@example.com' });
    expect(await classify(arfComplaint(o, 'fraud'))).toMatchObject({ type: 'complaint', feedbackType: 'fraud' });
  });

  it('other feedback types are not complaints', async () => {
    for (const t of ['not-spam', 'auth-failure', 'virus', 'other']) expect(await classify(arfComplaint(o, t))).toMatchObject({ type: 'ignore' });
    expect(classifyFeedbackReport('User-Agent: x\nVersion: 1')).toMatchObject({ type: 'ignore', reason: expect.stringMatching(/Feedback-Type/) });
    expect(classifyFeedbackReport('Feedback-Type: ABUSE')).toMatchObject({ type: 'complaint', feedbackType: 'abuse', recipient: null });
  });
});

describe('what is not a report', () => {
  it('an out-of-office reply is ignored, whatever its text says', async () => {
    expect(await classify(outOfOffice(o))).toEqual({ type: 'ignore', reason: 'auto-reply' });
  });

  it('plain mail, garbage and broken MIME are ignored, never a crash', async () => {
    expect(await classify('From: someone@example.com\r\nSubject: hi\r\n\r\nAction: failed\r\nStatus: 5.1.1\r\n')).toMatchObject({ type: 'ignore', reason: 'not a delivery or feedback report' });
    expect(await classify('')).toMatchObject({ type: 'ignore' });
    expect(await classify(Buffer.from([0, 255, 1, 13, 10, 13, 10, 200, 7]))).toMatchObject({ type: 'ignore' });
    expect(await classify('Content-Type: multipart/report; report-type=delivery-status; boundary="never"\r\n\r\n--nope\r\nAction: failed\r\n')).toMatchObject({ type: 'ignore' });
    // a report part with nothing in it
    const empty = 'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\n\r\n--b--\r\n';
    expect(await classify(empty)).toMatchObject({ type: 'ignore' });
  });

  it('classifies arbitrary bytes without throwing', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 600 }), async (bytes) => {
        const c = await classify(Buffer.concat([Buffer.from('Content-Type: multipart/report; boundary="b"\r\n\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\n'), Buffer.from(bytes)]));
        expect(['hard_bounce', 'soft_bounce', 'complaint', 'ignore']).toContain(c.type);
      }),
      { numRuns: 200 },
    );
  });
});

describe('relay webhook events', () => {
  it('decides suppression from the status as a DSN would, and trusts a bare "hard"', () => {
    expect(bounceFromReport({ type: 'hard_bounce', status: '5.1.1' })).toMatchObject({ suppress: true, status: '5.1.1' });
    expect(bounceFromReport({ type: 'hard_bounce', status: '5.7.1', diagnostic: '550 5.7.1 blocked' })).toMatchObject({ suppress: false });
    expect(bounceFromReport({ type: 'hard_bounce', diagnostic: 'smtp; 550 5.1.1 no such user' })).toMatchObject({ suppress: true, status: '5.1.1', diagnostic: '550 5.1.1 no such user' });
    expect(bounceFromReport({ type: 'hard_bounce' })).toMatchObject({ suppress: true, status: null, diagnostic: null });
    expect(bounceFromReport({ type: 'hard_bounce', status: '4.4.7' })).toMatchObject({ suppress: false });
    expect(bounceFromReport({ type: 'soft_bounce', status: '4.2.2' })).toEqual({ type: 'soft_bounce', status: '4.2.2', diagnostic: null, recipient: null });
    expect(bounceFromReport({ type: 'complaint' })).toEqual({ type: 'complaint', feedbackType: 'abuse', recipient: null });
    expect(bounceFromReport({ type: 'complaint', feedbackType: ' Fraud ' })).toMatchObject({ feedbackType: 'fraud' });
  });
});

describe('isDuplicate', () => {
  const hard = bounceFromReport({ type: 'hard_bounce', status: '5.1.1' });
  const soft = bounceFromReport({ type: 'soft_bounce', status: '4.4.1', diagnostic: 'timeout' });
  const complaint = bounceFromReport({ type: 'complaint' });

  it('a delivery bounces for good once, including a bounce the worker saw itself', () => {
    expect(isDuplicate([], hard)).toBe(false);
    expect(isDuplicate([{ type: 'bounced', detail: { kind: 'hard', status: '5.2.2' } }], hard)).toBe(true);
    expect(isDuplicate([{ type: 'bounced', detail: { smtp_response: '550 5.1.1', suppressed: true } }], hard)).toBe(true);
    expect(isDuplicate([{ type: 'delayed', detail: { kind: 'soft', status: '4.4.1' } }], hard)).toBe(false);
    expect(isDuplicate([{ type: 'complained', detail: {} }], hard)).toBe(false);
  });

  it('a complaint once per delivery', () => {
    expect(isDuplicate([{ type: 'bounced', detail: { kind: 'hard' } }], complaint)).toBe(false);
    expect(isDuplicate([{ type: 'complained', detail: { source: 'dsn' } }], complaint)).toBe(true);
  });

  it('a delay warning again only when it says the same', () => {
    expect(isDuplicate([{ type: 'delayed', detail: { kind: 'soft', status: '4.4.1', diagnostic: 'timeout' } }], soft)).toBe(true);
    expect(isDuplicate([{ type: 'delayed', detail: { kind: 'soft', status: '4.4.1', diagnostic: 'refused' } }], soft)).toBe(false);
    expect(isDuplicate([{ type: 'bounced', detail: null }], soft)).toBe(false);
  });
});
