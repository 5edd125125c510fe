import { domainToASCII } from 'node:url';
import { boundedMemo } from './bounded-memo.ts';

export type EmailCheck = { ok: true; email: string; lower: string } | { ok: false; reason: string };

// RFC 5322 dot-atom characters for the local part; quoted local parts are accepted separately.
const ATOM = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~\u0080-\uFFFF-]+$/;
const QUOTED = /^"(?:[\x20\x21\x23-\x5B\x5D-\x7E\u0080-\uFFFF]|\\[\x20-\x7E])*"$/;
const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/**
 * Accepts what a mail server would deliver to and refuses obvious garbage with a reason a person can
 * act on. The stored form keeps the local part's case (it may matter to the receiving server) and
 * lower-cases the domain; `lower` is the comparison key (unique per audience).
 */
export function checkEmail(input: unknown): EmailCheck {
  if (typeof input !== 'string') return { ok: false, reason: 'email must be a string' };
  const value = input.trim();
  if (value === '') return { ok: false, reason: 'email is empty' };
  if (/[\r\n\0\t]/.test(value)) return { ok: false, reason: 'email contains a control character' };
  if (value.length > 254) return { ok: false, reason: 'email is longer than 254 characters' };
  const at = value.lastIndexOf('@');
  if (at <= 0 || at === value.length - 1) return { ok: false, reason: 'email must look like name@domain.tld' };
  const local = value.slice(0, at);
  const domainRaw = value.slice(at + 1);
  if (local.length > 64) return { ok: false, reason: 'the part before @ is longer than 64 characters' };
  const localOk = QUOTED.test(local) || (local.split('.').every((part) => part.length > 0 && ATOM.test(part)));
  if (!localOk) return { ok: false, reason: `"${local}" is not a valid part before @` };
  const d = domainOf(domainRaw);
  if (typeof d !== 'string') return { ok: false, reason: d.reason };
  // Keep the domain as typed (Unicode) when it was an IDN: it is what the person recognises; the
  // mail layer converts to ASCII at send time.
  const email = `${local}@${domainRaw.toLowerCase()}`;
  return { ok: true, email, lower: `${local.toLowerCase()}@${d}` };
}

// A campaign checks every recipient's address at resolution and again at send time, and most share
// a few domains: the domain's verdict (its IDNA conversion above all) is kept for the next address.
/** The ASCII form of a valid domain, or why it is not one. */
const domainOf = boundedMemo(2000, (domainRaw) => checkDomain(domainRaw));

function checkDomain(domainRaw: string): string | { ok: false; reason: string } {
  if (domainRaw.startsWith('[')) return { ok: false, reason: 'address literals ([1.2.3.4]) are not accepted' };
  const ascii = domainToASCII(domainRaw.toLowerCase());
  if (!ascii) return { ok: false, reason: `"${domainRaw}" is not a valid domain` };
  const labels = ascii.split('.');
  if (labels.length < 2) return { ok: false, reason: `the domain "${domainRaw}" has no top-level part (like .com)` };
  if (!labels.every((l) => LABEL.test(l))) return { ok: false, reason: `"${domainRaw}" is not a valid domain` };
  const tld = labels[labels.length - 1]!;
  if (!/^(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$/.test(tld)) return { ok: false, reason: `"${tld}" is not a valid top-level domain` };
  return ascii;
}
