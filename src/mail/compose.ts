/**
 * Builds the MIME message of one delivery as bytes, ready for SMTP DATA as they are.
 *
 * Header values are encoded by nodemailer's own header encoder (RFC 2047 display names and
 * subjects, punycode domains, folding at 76 characters); the bodies are quoted-printable in pieces
 * (src/mail/qp.ts), so that a campaign's HTML part can come spliced from a skeleton encoded once
 * per template version (src/mail/mime-skeleton.ts). Building the whole message with nodemailer's
 * MailComposer cost about 1.9 ms per 31 KB message; this costs a few tens of microseconds.
 * What is ours: which headers a delivery carries, and that no value a person typed can add a
 * header of its own.
 *
 * - Message-ID `<delivery id@bounce domain>`: stable across retries, so a receiver can tell a retry
 *   of a message it already has.
 * - The envelope sender (MAIL FROM, which becomes Return-Path) is the VERP address
 *   `bounce+<delivery id>.<mark>@<bounce domain>`: a bounce names the delivery it is about, and the
 *   mark (see deliveryTargets) that it came back from that delivery's message.
 * - List-Unsubscribe (an https URL and a mailto) and List-Unsubscribe-Post (RFC 8058 one-click) on
 *   participation and marketing mail.
 * - multipart/alternative, text then HTML, both quoted-printable UTF-8. The boundary holds `=_`,
 *   which quoted-printable never writes, so no body can contain it.
 */
import { randomBytes } from 'node:crypto';
import { domainToASCII } from 'node:url';
import type { MailComposerOptions } from 'nodemailer/lib/mail-composer';
import MimeNode from 'nodemailer/lib/mime-node';
import { foldLines } from 'nodemailer/lib/mime-funcs';
import { boundedMemo } from '../platform/bounded-memo.ts';
import { safeEqual } from '../platform/secrets.ts';
import { encodeQpPiece, encodeQpView } from './qp.ts';
import { signPayloadBytes } from './tracking-tokens.ts';

export class ComposeError extends Error {
  override name = 'ComposeError';
  readonly code = 'ECOMPOSE';
}

export interface Mailbox {
  name?: string | null;
  address: string;
}

export interface ComposeInput {
  deliveryId: string;
  from: Mailbox;
  replyTo?: string | null;
  to: Mailbox;
  subject: string;
  /** The HTML part: a string, or its quoted-printable pieces (from src/mail/mime-skeleton.ts). */
  html: string | { pieces: readonly Buffer[] };
  text: string;
  date: Date;
  bounceDomain: string;
  /** The envelope sender: the delivery's VERP address (deliveryTargets). */
  returnPath: string;
  /** Set on participation and marketing mail; null on transactional mail. */
  unsubscribe?: { url: string; mailto: string } | null;
  /** Where the message's bytes are written (src/mail/message-buffers.ts); a new Buffer by default. */
  alloc?: (size: number) => Buffer;
}

export interface ComposedMessage {
  messageId: string;
  envelope: { from: string; to: string };
  /** The message: CRLF line ends, lines under 1,000 bytes, no line starting with a dot. */
  raw: Buffer;
  /** Always true here: SMTP DATA can take `raw` as it is (no dot-stuffing, no line-end repair). */
  dataSafe: boolean;
  /** The same message as nodemailer's transports take it. */
  mail: MailComposerOptions;
}

const CONTROL = /[\u0000-\u001f\u007f\u0085\u2028\u2029]/g;

/** A header value from a person (display name, subject): control characters become spaces, one line. */
export function headerText(value: string | null | undefined, max = 998): string {
  return (value ?? '').replace(CONTROL, ' ').replace(/\s+/g, ' ').trim().slice(0, max);
}

/**
 * An address for a header or the envelope: refused rather than repaired when it holds anything
 * that could end a header or an SMTP command (CR, LF, other controls, spaces, angle brackets).
 * The domain goes to ASCII (punycode) for the envelope and the headers alike.
 */
const QUOTED_LOCAL = /^"(?:[\x20\x21\x23-\x5B\x5D-\x7E\u0080-\uFFFF]|\\[\x20-\x7E])*"$/;

export function headerAddress(address: string): string {
  const at = typeof address === 'string' ? address.lastIndexOf('@') : -1;
  // A quoted local part ("john doe"@example.com) is a valid address with spaces and quotes inside the quotes only.
  const local = at > 0 ? address.slice(0, at) : '';
  const quotedOk = QUOTED_LOCAL.test(local) && !/[\u0000-\u001f\u007f]/.test(local);
  const rest = quotedOk ? address.slice(at) : address;
  if (typeof address !== 'string' || /[\u0000-\u0020\u007f<>,;"]/.test(rest)) {
    throw new ComposeError(`"${String(address).replace(CONTROL, '?')}" cannot be used as an email address in a header`);
  }
  if (at <= 0 || at === address.length - 1) throw new ComposeError(`"${address}" is not an email address`);
  const domain = asciiDomain(address.slice(at + 1).toLowerCase());
  if (!domain) throw new ComposeError(`"${address}" has an invalid domain`);
  return `${address.slice(0, at)}@${domain}`;
}

// A campaign's recipients share a few domains: their punycode is looked up, not redone per message.
const asciiDomain = boundedMemo(1000, (domain) => domainToASCII(domain));

/*
 * A delivery's private addresses (the VERP return path, the List-Unsubscribe mailto) carry a mark:
 * delivery ids are not secret (Message-ID, X-Envoi-Delivery, click links, webhooks and reports show
 * them), and an unmarked address let anyone who saw one suppress a recipient with a made-up bounce
 * or withdraw their consent with a mail. The mark is the first 60 bits, in hex, of the same HMAC as
 * the unsubscribe link's token (one HMAC per message for the three): hex because relays may change
 * the case of a local part, 60 bits because each guess costs an SMTP transaction, and
 * `unsubscribe+<uuid>.<mark>` then fills the 64 octets a local part may hold (RFC 5321 4.5.3.1.1).
 */
const MARK_CHARS = 15;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The HMAC behind a delivery's unsubscribe token and address marks. */
const sealOf = (secret: string, deliveryId: string) => signPayloadBytes(secret, `unsubscribe:${deliveryId}`);
const markOf = (seal: Buffer) => seal.toString('hex', 0, 8).slice(0, MARK_CHARS);
/** The unsubscribe link's token: the id and the seal's first 132 bits, base64url; the id alone without a secret. */
const tokenOf = (deliveryId: string, seal: Buffer | null) => (seal ? `${deliveryId}.${seal.toString('base64url').slice(0, 22)}` : deliveryId);

/** `<prefix><id>.<mark>`, or `<prefix><id>` without a secret. */
function markedLocalPart(prefix: string, deliveryId: string, secret: string | null, seal = secret ? sealOf(secret, deliveryId) : null): string {
  return seal ? `${prefix}${deliveryId}.${markOf(seal)}` : `${prefix}${deliveryId}`;
}

function readMarkedLocalPart(prefix: string, localPart: string, secret: string | null): string | null {
  if (localPart.slice(0, prefix.length).toLowerCase() !== prefix) return null;
  const [id, mark, ...rest] = localPart.slice(prefix.length).toLowerCase().split('.');
  if (!id || rest.length || !UUID.test(id)) return null;
  if (!secret) return mark === undefined ? id : null;
  return mark !== undefined && mark.length === MARK_CHARS && safeEqual(mark, markOf(sealOf(secret, id))) ? id : null;
}

const BOUNCE_PREFIX = 'bounce+';
const UNSUBSCRIBE_PREFIX = 'unsubscribe+';

/** The VERP return path of a delivery: `bounce+<delivery id>.<mark>@<bounce domain>`. */
export function verpAddress(deliveryId: string, bounceDomain: string, secret: string | null): string {
  return `${markedLocalPart(BOUNCE_PREFIX, deliveryId, secret)}@${asciiBounceDomain(bounceDomain)}`;
}

/** The delivery id of a genuine VERP local part (case aside), or null: for the bounce listener. */
export function parseVerpLocalPart(localPart: string, secret: string | null): string | null {
  return readMarkedLocalPart(BOUNCE_PREFIX, localPart, secret);
}

/** The delivery id of a genuine VERP address (`bounce+<id>.<mark>@domain`), or null. */
export function parseVerp(address: string, secret: string | null): string | null {
  const a = address.trim();
  const at = a.lastIndexOf('@');
  return at > 0 ? parseVerpLocalPart(a.slice(0, at), secret) : null;
}

/** The delivery id of a genuine List-Unsubscribe mailto local part (`unsubscribe+<id>.<mark>`), or null. */
export function parseUnsubscribeLocalPart(localPart: string, secret: string | null): string | null {
  return readMarkedLocalPart(UNSUBSCRIBE_PREFIX, localPart, secret);
}

/**
 * The token of a delivery's unsubscribe link: the delivery id and, when a secret is configured, its
 * HMAC, so a link cannot be forged for another delivery. Without a secret the delivery id alone (a
 * random UUID nobody else sees) is the token.
 */
export function unsubscribeToken(secret: string | null, deliveryId: string): string {
  return tokenOf(deliveryId, secret ? sealOf(secret, deliveryId) : null);
}

/** The delivery id an unsubscribe token is for, or null when it is not genuine. */
export function verifyUnsubscribeToken(secret: string | null, token: string): string | null {
  const [id, mac, ...rest] = token.split('.');
  if (!id || rest.length || !UUID.test(id)) return null;
  if (!secret) return mac === undefined ? id.toLowerCase() : null;
  return mac !== undefined && safeEqual(token, tokenOf(id, sealOf(secret, id))) ? id.toLowerCase() : null;
}

/**
 * A delivery's own addresses, from one HMAC: the List-Unsubscribe targets (the one-click https page
 * and a mailto for older clients) and the VERP return path its bounces come back to.
 */
export function deliveryTargets(publicUrl: string, secret: string | null, deliveryId: string, bounceDomain: string) {
  const seal = secret ? sealOf(secret, deliveryId) : null;
  const domain = asciiBounceDomain(bounceDomain);
  return {
    url: `${publicUrl.replace(/\/+$/, '')}/u/${tokenOf(deliveryId, seal)}`,
    mailto: `mailto:${markedLocalPart(UNSUBSCRIBE_PREFIX, deliveryId, secret, seal)}@${domain}?subject=unsubscribe`,
    returnPath: `${markedLocalPart(BOUNCE_PREFIX, deliveryId, secret, seal)}@${domain}`,
  };
}

// One node, reused: its encoder is all that is needed of it (it holds no state between calls).
const headerEncoder = new MimeNode(false);

function header(name: string, value: string): string {
  return `${foldLines(`${name}: ${value}`, 76)}\r\n`;
}

// Names of plain words and plain addresses come out of the encoder as they went in: written directly
// (the encoder's address parser was a tenth of a message's composing; compose.test.ts checks both agree).
const PLAIN_NAME = /^[A-Za-z0-9]+(?: [A-Za-z0-9]+)*$/;
const PLAIN_ADDRESS = /^[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*@[a-z0-9-]+(?:\.[a-z0-9-]+)*$/;

function addressHeader(name: string, m: Mailbox): string {
  const address = headerAddress(m.address);
  const display = headerText(m.name, 200);
  if ((display === '' || PLAIN_NAME.test(display)) && PLAIN_ADDRESS.test(address)) {
    const line = `${name}: ${display ? `${display} <${address}>` : address}`;
    if (line.length < 76) return `${line}\r\n`;
  }
  return header(name, headerEncoder.encodeHeaderValue(name, { name: display, address }));
}

/**
 * The last result of a pure function of one string key. Within a campaign the sender, the bounce
 * domain, often the subject, and the Date (to the second) are the same message after message:
 * their encoding (nodemailer's address parser, punycode, RFC 2047, folding) is done once.
 */
function lastOf<T>(f: (key: string) => T): (key: string) => T {
  let lastKey: string | null = null;
  let last: T;
  return (key) => {
    if (key !== lastKey) {
      last = f(key);
      lastKey = key;
    }
    return last;
  };
}

const asciiBounceDomain = lastOf((domain) => headerAddress(`x@${domain}`).slice(2));
// headerText leaves no NUL in the name (and is idempotent): the first NUL of the key ends it.
const fromHeader = lastOf((key) => {
  const cut = key.indexOf('\u0000');
  return addressHeader('From', { name: key.slice(0, cut), address: key.slice(cut + 1) });
});
const fromMailbox = (m: Mailbox) => (typeof m.address === 'string' ? fromHeader(`${headerText(m.name, 200)}\u0000${m.address}`) : addressHeader('From', m));
const subjectHeader = lastOf((subject) => header('Subject', headerEncoder.encodeHeaderValue('Subject', headerText(subject))));
// The Date header shows whole seconds only (toUTCString).
const dateHeader = lastOf((seconds) => header('Date', headerEncoder.encodeHeaderValue('Date', new Date(Number(seconds) * 1000))));
const dateOf = (date: Date) => dateHeader(String(Math.floor(date.getTime() / 1000)));

const CRLF = Buffer.from('\r\n');
// Unique per message without a random draw each time: quoted-printable never writes `=_`, so no body
// can contain a boundary anyway; the prefix keeps two processes' boundaries apart.
const BOUNDARY_PREFIX = randomBytes(9).toString('base64url');
let boundaries = 0;

/** Composes one delivery's message; throws ComposeError for an address no header can hold. */
export function composeMessage(input: ComposeInput): ComposedMessage {
  const bounceDomain = asciiBounceDomain(input.bounceDomain);
  const messageId = `<${input.deliveryId}@${bounceDomain}>`;
  const to = headerAddress(input.to.address);
  const envelope = { from: headerAddress(input.returnPath), to };
  let head = fromMailbox(input.from) + addressHeader('To', { name: input.to.name, address: to });
  if (input.replyTo) head += header('Reply-To', headerAddress(input.replyTo));
  head += subjectHeader(input.subject);
  head += header('Message-ID', messageId);
  head += dateOf(input.date);
  head += header('X-Envoi-Delivery', headerText(input.deliveryId, 64));
  if (input.unsubscribe) {
    for (const target of [input.unsubscribe.url, input.unsubscribe.mailto]) {
      if (/[\s<>,]/.test(target) || /[^\x21-\x7e]/.test(target)) throw new ComposeError(`unsubscribe target "${headerText(target)}" cannot go in a header`);
    }
    head += header('List-Unsubscribe', `<${input.unsubscribe.url}>, <${input.unsubscribe.mailto}>`);
    head += header('List-Unsubscribe-Post', 'List-Unsubscribe=One-Click');
  }
  const boundary = `=_envoi_${BOUNDARY_PREFIX}_${(boundaries++).toString(36)}`;
  head += `MIME-Version: 1.0\r\nContent-Type: multipart/alternative;\r\n boundary="${boundary}"\r\n\r\n`;
  const part = (type: string) => `--${boundary}\r\nContent-Type: ${type}; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n`;
  const html = typeof input.html === 'string' ? [encodeQpPiece(input.html)] : input.html.pieces;
  // Written straight into one Buffer of the message's size: no intermediate Buffer per string, and
  // the text body is copied from the encoder's scratch (a view, read before the next encoding).
  const first = head + part('text/plain');
  const second = part('text/html');
  const last = `--${boundary}--\r\n`;
  const text = encodeQpView(input.text);
  let htmlLength = 0;
  for (const p of html) htmlLength += p.length;
  // Each part's pieces end on a line end, which is the CRLF the next delimiter line needs; an empty
  // body is an empty line (the delimiter's CRLF is its own).
  const total = Buffer.byteLength(first) + (text.length || 2) + second.length + (htmlLength || 2) + last.length;
  const raw = input.alloc ? input.alloc(total) : Buffer.allocUnsafe(total);
  if (raw.length !== total) throw new Error(`composeMessage: alloc gave ${raw.length} bytes for ${total}`);
  let pos = raw.write(first, 0, 'utf8');
  pos += text.length ? text.copy(raw, pos) : CRLF.copy(raw, pos);
  pos += raw.write(second, pos, 'latin1');
  if (htmlLength) for (const p of html) pos += p.copy(raw, pos);
  else pos += CRLF.copy(raw, pos);
  pos += raw.write(last, pos, 'latin1');
  if (pos !== total) throw new Error(`composeMessage: wrote ${pos} bytes of ${total}`);
  return { messageId, envelope, raw, dataSafe: true, mail: { raw, envelope, messageId } };
}

/** The message's bytes (CRLF line ends), as they are sent: for the outbox and tests. */
export async function buildRaw(composed: ComposedMessage): Promise<Buffer> {
  return composed.raw;
}
