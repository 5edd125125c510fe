import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { simpleParser } from 'mailparser';
import {
  buildRaw,
  composeMessage,
  ComposeError,
  deliveryTargets,
  headerAddress,
  parseUnsubscribeLocalPart,
  parseVerp,
  parseVerpLocalPart,
  unsubscribeToken,
  verifyUnsubscribeToken,
  verpAddress,
  type ComposeInput,
} from './compose.ts';
import { encodeQpPiece } from './qp.ts';
import MimeNode from 'nodemailer/lib/mime-node';
import { foldLines } from 'nodemailer/lib/mime-funcs';

const DELIVERY = '0b8e4a4e-3f1c-4a8c-9d2c-1a2b3c4d5e6f';
const SECRET = 's'.repeat(32);
const input = (over: Partial<ComposeInput> = {}): ComposeInput => ({
  deliveryId: DELIVERY,
  returnPath: verpAddress(DELIVERY, 'bounces.example.org', SECRET),
  from: { name: 'Rencontres Numériques', address: 'no-reply@example.org' },
  to: { name: 'Zoë Ümlaut', address: 'zoe@example.com' },
  subject: 'Bonjour Zoë',
  html: '<p>Bonjour</p>',
  text: 'Bonjour',
  date: new Date('2026-12-01T10:00:00Z'),
  bounceDomain: 'bounces.example.org',
  ...over,
});

const headOf = (raw: Buffer) => raw.toString().split('\r\n\r\n')[0]!.replace(/\r\n[ \t]+/g, ' ');

describe('composeMessage', () => {
  it('sets Message-ID, Date, the VERP envelope and the parts', async () => {
    const c = composeMessage(input());
    expect(c.messageId).toBe(`<${DELIVERY}@bounces.example.org>`);
    expect(c.envelope).toEqual({ from: expect.stringMatching(new RegExp(`^bounce\\+${DELIVERY}\\.[0-9a-f]{15}@bounces\\.example\\.org$`)), to: 'zoe@example.com' });
    expect(parseVerp(c.envelope.from, SECRET)).toBe(DELIVERY);
    const parsed = await simpleParser(await buildRaw(c));
    expect(parsed.messageId).toBe(c.messageId);
    expect(parsed.date?.toISOString()).toBe('2026-12-01T10:00:00.000Z');
    expect(parsed.subject).toBe('Bonjour Zoë');
    expect(parsed.from?.value[0]).toEqual({ name: 'Rencontres Numériques', address: 'no-reply@example.org' });
    expect(parsed.text?.trim()).toBe('Bonjour');
    expect(parsed.html).toBe('<p>Bonjour</p>');
  });

  it("writes To and From as nodemailer's header encoder does, plain names and addresses included", () => {
    const encoder = new MimeNode(false);
    const word = fc.string({ unit: fc.constantFrom(...'AbZz09 -.\'"éü,<@'), minLength: 0, maxLength: 14 });
    const name = fc.oneof(fc.constant(null), fc.constant(''), word, fc.array(fc.stringMatching(/^[A-Za-z0-9]{1,12}$/), { minLength: 1, maxLength: 6 }).map((w) => w.join(' ')));
    const address = fc.tuple(fc.stringMatching(/^[A-Za-z0-9._+-]{1,40}$/), fc.constantFrom('example.com', 'EXAMPLE.org', 'sub.domain-x.example', 'exämple.com', 'a'.repeat(40) + '.example')).map(([l, d]) => `${l}@${d}`);
    fc.assert(
      fc.property(name, address, name, (toName, to, fromName) => {
        const head = composeMessage(input({ to: { name: toName, address: to }, from: { name: fromName, address: 'no-reply@example.org' } })).raw.toString().split('\r\n\r\n')[0]!;
        const expected = (field: string, n: string | null, a: string) => `${foldLines(`${field}: ${encoder.encodeHeaderValue(field, { name: (n ?? '').replace(/\s+/g, ' ').trim(), address: headerAddress(a) })}`, 76)}\r\n`;
        expect(head).toContain(`\r\n${expected('To', toName, to)}`);
        expect(head.startsWith(expected('From', fromName, 'no-reply@example.org'))).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('encodes non-ASCII display names and IDN domains', async () => {
    const raw = await buildRaw(composeMessage(input({ to: { name: 'Zoë Ümlaut', address: 'zoe@exämple.com' } })));
    const head = headOf(raw);
    expect(head).toMatch(/^To: =\?UTF-8\?[QB]\?.+\?= <zoe@xn--exmple-cua\.com>$/m);
    expect(/[^\x00-\x7f]/.test(head)).toBe(false);
  });

  it('adds List-Unsubscribe (https and mailto) and one-click Post only when asked', async () => {
    const targets = deliveryTargets('https://envoi.example.org/', SECRET, DELIVERY, 'bounces.example.org');
    const withList = headOf(await buildRaw(composeMessage(input({ unsubscribe: targets }))));
    expect(withList).toMatch(
      new RegExp(`^List-Unsubscribe: <https://envoi\\.example\\.org/u/${DELIVERY}\\.[\\w-]{22}>, <mailto:unsubscribe\\+${DELIVERY}\\.[0-9a-f]{15}@bounces\\.example\\.org\\?subject=unsubscribe>$`, 'm'),
    );
    expect(withList).toMatch(/^List-Unsubscribe-Post: List-Unsubscribe=One-Click$/m);
    const without = headOf(await buildRaw(composeMessage(input())));
    expect(without).not.toMatch(/List-Unsubscribe/i);
  });

  it('cannot be made to carry an extra header, whatever a person typed', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string(), fc.string(), async (name, subject) => {
        const evilName = `${name}\r\nBcc: victim@example.net`;
        const evilSubject = `${subject}\nX-Injected: yes\r\n\r\n<p>body</p>`;
        const head = headOf(await buildRaw(composeMessage(input({ from: { name: evilName, address: 'no-reply@example.org' }, to: { name: evilName, address: 'zoe@example.com' }, subject: evilSubject }))));
        const names = head.split('\r\n').map((l) => l.slice(0, l.indexOf(':')).toLowerCase());
        expect(names).not.toContain('bcc');
        expect(names).not.toContain('x-injected');
      }),
      { numRuns: 50 },
    );
  });

  it('refuses addresses that could break a header or an SMTP command', () => {
    for (const bad of ['zoe@example.com\r\nRCPT TO:<x@y.z>', 'zoe @example.com', 'a<b>@example.com', 'no-at-sign', 'x@', '@example.com']) {
      expect(() => headerAddress(bad)).toThrow(ComposeError);
    }
    expect(() => composeMessage(input({ replyTo: 'help@example.org\nBcc: x@y.z' }))).toThrow(ComposeError);
  });
});

describe('VERP and unsubscribe tokens', () => {
  it('round-trips the delivery id through the return path, and only a genuine mark', () => {
    const verp = verpAddress(DELIVERY, 'b.example.org', SECRET);
    expect(parseVerp(verp, SECRET)).toBe(DELIVERY);
    expect(parseVerp(verp.toUpperCase(), SECRET)).toBe(DELIVERY); // a relay may fold the case of a local part
    expect(parseVerp(verp, 'y'.repeat(32))).toBeNull();
    expect(parseVerp(`bounce+${DELIVERY}@b.example.org`, SECRET)).toBeNull(); // unmarked: anyone who saw the id could write it
    expect(parseVerp('bounce+not-a-uuid@b.example.org', SECRET)).toBeNull();
    expect(parseVerp('someone@b.example.org', SECRET)).toBeNull();
    expect(parseVerp(verpAddress(DELIVERY, 'b.example.org', null), null)).toBe(DELIVERY);
    const local = verp.slice(0, verp.indexOf('@'));
    expect(parseVerpLocalPart(`${local}.x`, SECRET)).toBeNull();
    // every one-character change of the mark is refused
    const mark = local.slice(local.lastIndexOf('.') + 1);
    for (let i = 0; i < mark.length; i++) {
      for (const c of '0123456789abcdef') {
        if (c === mark[i]) continue;
        const forged = `${local.slice(0, local.length - mark.length)}${mark.slice(0, i)}${c}${mark.slice(i + 1)}`;
        expect(parseVerpLocalPart(forged, SECRET)).toBeNull();
      }
    }
  });

  it("gives a delivery's addresses from one seal: the mailto and return path within 64 octets, each only for its own kind", () => {
    const t = deliveryTargets('https://envoi.example.org', SECRET, DELIVERY, 'bounces.example.org');
    const mailtoLocal = t.mailto.slice('mailto:'.length, t.mailto.indexOf('@'));
    const verpLocal = t.returnPath.slice(0, t.returnPath.indexOf('@'));
    expect(mailtoLocal.length).toBeLessThanOrEqual(64);
    expect(verpLocal.length).toBeLessThanOrEqual(64);
    expect(parseUnsubscribeLocalPart(mailtoLocal, SECRET)).toBe(DELIVERY);
    expect(parseVerpLocalPart(verpLocal, SECRET)).toBe(DELIVERY);
    expect(parseVerpLocalPart(mailtoLocal, SECRET)).toBeNull();
    expect(parseUnsubscribeLocalPart(verpLocal, SECRET)).toBeNull();
    expect(parseUnsubscribeLocalPart(`unsubscribe+${DELIVERY}`, SECRET)).toBeNull();
    expect(t.returnPath).toBe(verpAddress(DELIVERY, 'bounces.example.org', SECRET));
    expect(t.url).toBe(`https://envoi.example.org/u/${unsubscribeToken(SECRET, DELIVERY)}`);
    // an IDN bounce domain goes to punycode in the addresses, as in the headers
    const idn = deliveryTargets('https://envoi.example.org', SECRET, DELIVERY, 'rückläufer.example');
    expect(idn.returnPath).toMatch(/@xn--rckl/);
    expect(idn.returnPath).toBe(verpAddress(DELIVERY, 'rückläufer.example', SECRET));
  });

  it('signs unsubscribe tokens when a secret is set', () => {
    const secret = 'x'.repeat(32);
    const token = unsubscribeToken(secret, DELIVERY);
    expect(verifyUnsubscribeToken(secret, token)).toBe(DELIVERY);
    expect(verifyUnsubscribeToken(secret, `${DELIVERY}.${'A'.repeat(22)}`)).toBeNull();
    expect(verifyUnsubscribeToken('y'.repeat(32), token)).toBeNull();
    expect(verifyUnsubscribeToken(secret, DELIVERY)).toBeNull();
    expect(verifyUnsubscribeToken(secret, `${token}.extra`)).toBeNull();
    expect(verifyUnsubscribeToken(null, unsubscribeToken(null, DELIVERY))).toBe(DELIVERY);
  });
});

describe('the raw message', () => {
  it('parses back to what was given, for tricky input: non-ASCII, long lines, CR/LF in values, leading dots', async () => {
    const targets = deliveryTargets('https://envoi.example.org', SECRET, DELIVERY, 'bounces.example.org');
    const longWord = 'Supercalifragilisticexpialidocious'.repeat(4);
    const html = `<p>Bonjour Zoë ${longWord}</p>\n.lead dot\n<p>${'Ligne très longue, '.repeat(30)}</p>\r\n😀 fin`;
    const text = `Bonjour Zoë\n.lead dot\n${'Ligne très longue, '.repeat(30)}\n\nFrom the team  \nfin`;
    const c = composeMessage(
      input({
        from: { name: 'Rencontres "Numériques", Paris', address: 'no-reply@example.org' },
        to: { name: 'Zoë\r\nBcc: x@y.z Ümlaut', address: 'zoe@exämple.com' },
        replyTo: 'help@example.org',
        subject: `Programme complet de la journée du 3 juin, avec les ateliers et ${longWord}\r\nX-Evil: 1`,
        html,
        text,
        unsubscribe: targets,
      }),
    );
    const parsed = await simpleParser(c.raw);
    expect(parsed.subject).toBe(`Programme complet de la journée du 3 juin, avec les ateliers et ${longWord} X-Evil: 1`);
    expect(parsed.from?.value[0]).toEqual({ name: 'Rencontres "Numériques", Paris', address: 'no-reply@example.org' });
    expect(parsed.to && !Array.isArray(parsed.to) ? parsed.to.value[0] : null).toEqual({ name: 'Zoë Bcc: x@y.z Ümlaut', address: 'zoe@exämple.com' }); // mailparser shows the punycode domain decoded
    expect(parsed.replyTo?.value[0]?.address).toBe('help@example.org');
    expect(parsed.messageId).toBe(`<${DELIVERY}@bounces.example.org>`);
    const line = (key: string) => parsed.headerLines.find((h) => h.key === key)?.line.replace(/\r\n[ \t]+/g, ' ');
    expect(line('list-unsubscribe-post')).toBe('List-Unsubscribe-Post: List-Unsubscribe=One-Click');
    expect(line('list-unsubscribe')).toBe(`List-Unsubscribe: <${targets.url}>, <${targets.mailto}>`);
    expect(parsed.headers.has('bcc')).toBe(false);
    expect(parsed.headers.has('x-evil')).toBe(false);
    expect((parsed.html as string).replace(/\r\n/g, '\n')).toBe(html.replace(/\r\n/g, '\n'));
    expect(parsed.text).toBe(text);
  });

  it('goes into SMTP DATA as it is: CRLF line ends only, short lines, none starting with a dot', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: 'binary', maxLength: 300 }), fc.string({ unit: 'binary', maxLength: 100 }), fc.string({ unit: 'binary', maxLength: 100 }), async (body, name, subject) => {
        const c = composeMessage(input({ html: body, text: body, to: { name, address: 'zoe@example.com' }, subject }));
        expect(c.dataSafe).toBe(true);
        const s = c.raw.toString('latin1');
        expect(/\r(?!\n)|(?<!\r)\n/.test(s)).toBe(false);
        expect(/[^\x20-\x7e\r\n\t]/.test(s)).toBe(false);
        for (const line of s.split('\r\n')) {
          expect(line.length).toBeLessThanOrEqual(998);
          expect(line.startsWith('.')).toBe(false);
        }
        const parsed = await simpleParser(c.raw);
        expect(parsed.headers.get('message-id')).toBe(`<${DELIVERY}@bounces.example.org>`);
      }),
      { numRuns: 60 },
    );
  }, 60_000);

  it('takes the HTML part as quoted-printable pieces, the same part as from a string', async () => {
    const html = '<p>Bonjour Zoë</p>\n<p>' + 'x'.repeat(200) + '</p>';
    const asPieces = composeMessage(input({ html: { pieces: [encodeQpPiece(html.slice(0, 37)), encodeQpPiece(html.slice(37))] } }));
    expect((await simpleParser(asPieces.raw)).html).toBe((await simpleParser(composeMessage(input({ html })).raw)).html);
  });
});

describe('composeMessage headers reused from the previous message', () => {
  const head = (i: ComposeInput) => composeMessage(i).raw.toString('latin1').split('MIME-Version:')[0];
  it('gives each message the headers it would have alone', () => {
    const arb = fc.record({
      fromName: fc.constantFrom('Rencontres Numériques', 'Acme', '', ' Acme  News ', 'a\u0000b'),
      fromAddress: fc.constantFrom('no-reply@example.org', 'news@exämple.org'),
      subject: fc.oneof(fc.constantFrom('Bonjour Zoë', 'Hello', ''), fc.string()),
      ms: fc.integer({ min: 1_700_000_000_000, max: 1_700_000_003_000 }),
      bounceDomain: fc.constantFrom('bounces.example.org', 'bouncés.example.org'),
    });
    const of = (x: { fromName: string; fromAddress: string; subject: string; ms: number; bounceDomain: string }) =>
      input({ from: { name: x.fromName, address: x.fromAddress }, subject: x.subject, date: new Date(x.ms), bounceDomain: x.bounceDomain });
    fc.assert(
      fc.property(arb, arb, (a, b) => {
        const alone = head(of(a));
        expect(head(of(a))).toBe(alone);
        head(of(b));
        expect(head(of(a))).toBe(alone);
        expect(alone).toContain(`\r\nDate: ${new Date(a.ms).toUTCString().replace('GMT', '+0000')}\r\n`);
      }),
    );
  });

  it('still refuses a sender address that cannot be a header', () => {
    expect(() => composeMessage(input({ from: { name: 'x', address: 'a\r\nBcc: evil@example.com' } }))).toThrow(ComposeError);
    expect(() => composeMessage(input({ from: { name: 'x', address: 'a\u0000b@example.org' } }))).toThrow(ComposeError);
  });
});
