/**
 * Builds the MIME message of one delivery with nodemailer's own composer, so encoding (RFC 2047
 * display names, quoted-printable bodies, folded headers, punycode domains) is nodemailer's, not
 * ours. What is ours: which headers a delivery carries, and that no value a person typed can add a
 * header of its own.
 *
 * - Message-ID `<delivery id@bounce domain>`: stable across retries, so a receiver can tell a retry
 *   of a message it already has.
 * - The envelope sender (MAIL FROM, which becomes Return-Path) is the VERP address
 *   `bounce+<delivery id>@<bounce domain>`: a bounce names the delivery it is about.
 * - List-Unsubscribe (an https URL and a mailto) and List-Unsubscribe-Post (RFC 8058 one-click) on
 *   participation and marketing mail.
 */
import { domainToASCII } from 'node:url';
import MailComposer, { type MailComposerOptions } from 'nodemailer/lib/mail-composer';
import { sign, safeEqual } from '../platform/secrets.ts';

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
  html: string;
  text: string;
  date: Date;
  bounceDomain: string;
  /** Set on participation and marketing mail; null on transactional mail. */
  unsubscribe?: { url: string; mailto: string } | null;
}

export interface ComposedMessage {
  messageId: string;
  envelope: { from: string; to: string };
  /** The message as nodemailer takes it: the SMTP transport streams it out in one pass. */
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
export function headerAddress(address: string): string {
  if (typeof address !== 'string' || /[\u0000-\u0020\u007f<>,;"]/.test(address)) {
    throw new ComposeError(`"${String(address).replace(CONTROL, '?')}" cannot be used as an email address in a header`);
  }
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) throw new ComposeError(`"${address}" is not an email address`);
  const domain = domainToASCII(address.slice(at + 1).toLowerCase());
  if (!domain) throw new ComposeError(`"${address}" has an invalid domain`);
  return `${address.slice(0, at)}@${domain}`;
}

export function verpAddress(deliveryId: string, bounceDomain: string): string {
  return `bounce+${deliveryId}@${bounceDomain}`;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The delivery id in a VERP address (`bounce+<id>@domain`), or null: for the bounce listener. */
export function parseVerp(address: string): string | null {
  const m = /^bounce\+([^@]+)@/i.exec(address.trim());
  return m && UUID.test(m[1]!) ? m[1]!.toLowerCase() : null;
}

/**
 * The token of a delivery's unsubscribe link: the delivery id and, when a secret is configured, its
 * HMAC, so a link cannot be forged for another delivery. Without a secret the delivery id alone (a
 * random UUID nobody else sees) is the token.
 */
export function unsubscribeToken(secret: string | null, deliveryId: string): string {
  return secret ? `${deliveryId}.${sign(secret, `unsubscribe:${deliveryId}`).slice(0, 22)}` : deliveryId;
}

/** The delivery id an unsubscribe token is for, or null when it is not genuine. */
export function verifyUnsubscribeToken(secret: string | null, token: string): string | null {
  const [id, mac] = token.split('.');
  if (!id || !UUID.test(id)) return null;
  if (!secret) return mac === undefined ? id.toLowerCase() : null;
  return mac !== undefined && safeEqual(mac, sign(secret, `unsubscribe:${id}`).slice(0, 22)) ? id.toLowerCase() : null;
}

/** The List-Unsubscribe targets of a delivery: the one-click https page and a mailto for older clients. */
export function unsubscribeTargets(publicUrl: string, secret: string | null, deliveryId: string, bounceDomain: string) {
  return {
    url: `${publicUrl.replace(/\/+$/, '')}/u/${unsubscribeToken(secret, deliveryId)}`,
    mailto: `mailto:unsubscribe+${deliveryId}@${bounceDomain}?subject=unsubscribe`,
  };
}

function mailbox(m: Mailbox): { name: string; address: string } {
  return { name: headerText(m.name, 200), address: headerAddress(m.address) };
}

/** Composes one delivery's message; throws ComposeError for an address no header can hold. */
export function composeMessage(input: ComposeInput): ComposedMessage {
  const bounceDomain = headerAddress(`x@${input.bounceDomain}`).slice(2);
  const messageId = `<${input.deliveryId}@${bounceDomain}>`;
  const from = mailbox(input.from);
  const to = mailbox(input.to);
  const envelope = { from: verpAddress(input.deliveryId, bounceDomain), to: to.address };
  const headers: Record<string, string> = { 'X-Envoi-Delivery': headerText(input.deliveryId, 64) };
  if (input.unsubscribe) {
    for (const target of [input.unsubscribe.url, input.unsubscribe.mailto]) {
      if (/[\s<>,]/.test(target)) throw new ComposeError(`unsubscribe target "${headerText(target)}" cannot go in a header`);
    }
    headers['List-Unsubscribe'] = `<${input.unsubscribe.url}>, <${input.unsubscribe.mailto}>`;
    headers['List-Unsubscribe-Post'] = 'List-Unsubscribe=One-Click';
  }
  const mail: MailComposerOptions = {
    from,
    to,
    ...(input.replyTo ? { replyTo: headerAddress(input.replyTo) } : {}),
    subject: headerText(input.subject),
    messageId,
    date: input.date,
    text: input.text,
    html: input.html,
    headers,
    envelope,
    xMailer: false,
    disableFileAccess: true,
    disableUrlAccess: true,
  };
  return { messageId, envelope, mail };
}

/** The message's bytes (CRLF line ends), as the SMTP transport would send them: for the outbox and tests. */
export async function buildRaw(composed: ComposedMessage): Promise<Buffer> {
  try {
    return await new MailComposer({ ...composed.mail, newline: 'win' }).compile().build();
  } catch (e) {
    throw new ComposeError(`the message could not be built: ${(e as Error).message}`);
  }
}
