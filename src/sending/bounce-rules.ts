/*
 * Reading what comes back to the VERP return path: delivery status notifications (RFC 3464), spam
 * complaints in the Abuse Reporting Format (RFC 5965), and everything else (auto-replies, garbage),
 * which is ignored. Pure: a parsed message in, a classification out; nothing here may throw on
 * hostile input, since anyone can write to a return path.
 *
 * A permanent failure suppresses the address by the same rule as a refusal seen at send time
 * (`isAddressStatus` in rules.ts): the receiver saying "no such mailbox" an hour later is no different
 * from saying it during the SMTP session.
 */
import { simpleParser, type ParsedMail } from 'mailparser';
import { enhancedStatus, isAddressStatus } from './rules.ts';

export interface HardBounce {
  type: 'hard_bounce';
  /** the address itself is refused (5.1.x, 5.2.1): never write to it again */
  suppress: boolean;
  status: string | null;
  diagnostic: string | null;
  /** the recipient the report names, when it names one */
  recipient: string | null;
}

export interface SoftBounce {
  type: 'soft_bounce';
  status: string | null;
  diagnostic: string | null;
  recipient: string | null;
}

export interface Complaint {
  type: 'complaint';
  feedbackType: string;
  recipient: string | null;
}

export type Bounce = HardBounce | SoftBounce | Complaint;
export type Classification = Bounce | { type: 'ignore'; reason: string };

// ---------------------------------------------------------------------------------------------
// RFC 822 style header blocks (the body of message/delivery-status and message/feedback-report)

/** Field name (lower case) to its unfolded value; the first occurrence of a repeated field wins. */
export type HeaderBlock = Map<string, string>;

/** A real report is a few hundred bytes; the cap bounds the work a hostile one can cause. */
const MAX_REPORT_CHARS = 64 * 1024;
const MAX_VALUE_CHARS = 2000;
const FIELD_NAME = /^[\x21-\x39\x3b-\x7e]+$/;

/**
 * Splits a text into blank-line separated blocks of `Name: value` fields, unfolding continuation
 * lines (those starting with a space or tab). A line that is neither a field nor a continuation is
 * skipped rather than ending the block: one broken line must not hide the Status after it.
 */
export function parseHeaderBlocks(text: string): HeaderBlock[] {
  const blocks: HeaderBlock[] = [];
  let block: HeaderBlock = new Map();
  let open: string | null = null; // the field a continuation line extends, when it was kept
  for (const line of text.slice(0, MAX_REPORT_CHARS).split(/\r\n|\r|\n/)) {
    if (line.trim() === '') {
      if (block.size) blocks.push(block);
      block = new Map();
      open = null;
      continue;
    }
    if (/^[ \t]/.test(line)) {
      if (open !== null) block.set(open, `${block.get(open)} ${line.trim()}`.slice(0, MAX_VALUE_CHARS));
      continue;
    }
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon).trim().toLowerCase() : '';
    if (!FIELD_NAME.test(name) || block.has(name)) {
      open = null;
      continue;
    }
    block.set(name, line.slice(colon + 1).trim().slice(0, MAX_VALUE_CHARS));
    open = name;
  }
  if (block.size) blocks.push(block);
  return blocks;
}

/**
 * `rfc822; ghost@example.com` -> `ghost@example.com`; `smtp; 550 ...` -> `550 ...`. Only a leading
 * type token is taken off: a semicolon inside the reply text is part of it.
 */
function typedValue(value: string | undefined): string | null {
  if (value === undefined) return null;
  const v = value.replace(/^\s*[a-z][a-z0-9.+-]*\s*;/i, '').trim();
  return v === '' ? null : v;
}

function address(value: string | undefined): string | null {
  const v = typedValue(value);
  return v ? v.replace(/^<|>$/g, '').trim() || null : null;
}

/** An RFC 3463 status code at the start of a field (`5.1.1`, `4.4.7 (delivery time expired)`), or null. */
export function parseStatus(value: string | null | undefined): string | null {
  const m = /^\s*([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])/.exec(value ?? '');
  return m ? `${m[1]}.${Number(m[2])}.${Number(m[3])}` : null;
}

/**
 * A diagnostic as one readable line. Multi-line SMTP replies repeat their code on every line
 * (`550-5.1.1 The email account ... 550-5.1.1 double-checking ... 550 5.1.1 https://...`): only the
 * first is kept.
 */
export function cleanDiagnostic(value: string | null | undefined, max = 500): string | null {
  let v = typedValue(value ?? undefined);
  if (!v) return null;
  v = v.replace(/[\u0000-\u001f\u007f]+/g, ' ').replace(/\s+/g, ' ').trim().replace(/^#/, '');
  const opening = /^(\d{3})[ -](\d\.\d{1,3}\.\d{1,3})\s/.exec(v);
  if (opening) {
    const again = new RegExp(`\\s${opening[1]}[ -]${opening[2].replace(/\./g, '\\.')}(?=\\s|$)`, 'g');
    v = `${opening[1]} ${opening[2]} ${v.slice(opening[0].length).replace(again, '')}`.replace(/\s+/g, ' ').trim();
  }
  return v.slice(0, max) || null;
}

/**
 * The status a recipient's report stands for: its Status field, made precise by the diagnostic when
 * the field is only the class (`5.0.0`) and the receiver's own reply says more (`550 5.1.1`).
 */
function effectiveStatus(field: string | undefined, diagnostic: string | null): string | null {
  const s = parseStatus(field);
  const d = enhancedStatus(diagnostic ?? undefined);
  const fromDiagnostic = d ? parseStatus(d) : null;
  if (!s) return fromDiagnostic;
  if (fromDiagnostic && /\.0\.0$/.test(s) && fromDiagnostic[0] === s[0]) return fromDiagnostic;
  return s;
}

// ---------------------------------------------------------------------------------------------
// Delivery status notifications

type Verdict = HardBounce | SoftBounce | null;

/**
 * One recipient's fields. `failed` is final whatever the status class: a 4.x.x there means the
 * sending MTA gave up retrying (queue lifetime over), so the message is bounced, but the address is
 * not condemned. `delayed` is a warning while retries go on. `delivered`, `relayed` and `expanded`
 * are success notices. Without a usable Action the status class decides.
 */
function recipientVerdict(fields: HeaderBlock): Verdict {
  const diagnostic = cleanDiagnostic(fields.get('diagnostic-code'));
  const status = effectiveStatus(fields.get('status'), diagnostic);
  const recipient = address(fields.get('original-recipient')) ?? address(fields.get('final-recipient'));
  const action = (fields.get('action') ?? '').trim().toLowerCase().split(/[\s(;]/)[0];
  const hard = (): HardBounce => ({ type: 'hard_bounce', suppress: status !== null && isAddressStatus(status), status, diagnostic, recipient });
  const soft = (): SoftBounce => ({ type: 'soft_bounce', status, diagnostic, recipient });
  if (action === 'failed') return hard();
  if (action === 'delayed') return soft();
  if (action === 'delivered' || action === 'relayed' || action === 'expanded') return null;
  if (status?.startsWith('5.')) return hard();
  if (status?.startsWith('4.')) return soft();
  return null;
}

const severity = (v: Verdict) => (v === null ? 0 : v.type === 'soft_bounce' ? 1 : v.suppress ? 3 : 2);

/**
 * Classifies the text of a message/delivery-status part: the per-message block, then one block per
 * recipient. A VERP return path gets reports about one recipient; should a report name several (an
 * alias expanded downstream), the most severe outcome stands for the delivery.
 */
export function classifyDeliveryStatus(text: string): Classification {
  const blocks = parseHeaderBlocks(text);
  const recipients = blocks.filter((b) => b.has('action') || b.has('status') || b.has('final-recipient'));
  if (recipients.length === 0) return { type: 'ignore', reason: 'delivery report without per-recipient fields' };
  let worst: Verdict = null;
  for (const r of recipients) {
    const v = recipientVerdict(r);
    if (severity(v) > severity(worst)) worst = v;
  }
  return worst ?? { type: 'ignore', reason: 'delivery report of a success (delivered, relayed or expanded)' };
}

// ---------------------------------------------------------------------------------------------
// Complaints

/**
 * Feedback types that are a person reporting the message as unwanted. `not-spam` is the opposite,
 * `auth-failure` (RFC 6591) a DKIM/SPF/DMARC report about the sending domain, `virus` a filter's
 * finding: none of them is the recipient refusing our mail.
 */
const COMPLAINT_TYPES = new Set(['abuse', 'fraud']);

/** Classifies the text of a message/feedback-report part. */
export function classifyFeedbackReport(text: string): Classification {
  const fields = new Map<string, string>();
  for (const block of parseHeaderBlocks(text)) for (const [k, v] of block) if (!fields.has(k)) fields.set(k, v);
  const type = (fields.get('feedback-type') ?? '').trim().toLowerCase();
  if (!type) return { type: 'ignore', reason: 'feedback report without Feedback-Type' };
  if (!COMPLAINT_TYPES.has(type)) return { type: 'ignore', reason: `feedback report of type "${type.slice(0, 40)}", not a complaint` };
  return { type: 'complaint', feedbackType: type, recipient: address(fields.get('original-rcpt-to')) };
}

// ---------------------------------------------------------------------------------------------
// A whole message

/** What classification reads of a parsed message; `ParsedMail` fits it. */
export interface InboundMessage {
  headers: ReadonlyMap<string, unknown>;
  subject?: string;
  attachments: readonly { contentType: string; content: Buffer }[];
}

const DSN_TYPES = new Set(['message/delivery-status', 'message/global-delivery-status']);
const ARF_TYPES = new Set(['message/feedback-report']);

function headerText(mail: InboundMessage, name: string): string {
  const v = mail.headers.get(name);
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { value?: unknown }).value === 'string') return (v as { value: string }).value;
  return '';
}

function reportType(mail: InboundMessage): string {
  const v = mail.headers.get('content-type') as { params?: Record<string, unknown> } | undefined;
  const t = v && typeof v === 'object' ? v.params?.['report-type'] : undefined;
  return typeof t === 'string' ? t.toLowerCase() : '';
}

/** RFC 3834 and the headers auto-responders put on vacation notices. */
function looksAutoReplied(mail: InboundMessage): boolean {
  const submitted = headerText(mail, 'auto-submitted').trim().toLowerCase();
  if (submitted !== '' && submitted !== 'no') return true;
  if (headerText(mail, 'x-autoreply') || headerText(mail, 'x-autorespond')) return true;
  if (/^auto[_-]?reply$/i.test(headerText(mail, 'precedence').trim())) return true;
  return /^\s*(auto(matic)?[ -]?reply|out of (the )?office|r[ée]ponse automatique|abwesenheit|absence)/i.test(mail.subject ?? '');
}

/**
 * Classifies a message received on the return path. The structured report part decides, never the
 * human-readable text (which is in any language and any wording); a message without one is ignored,
 * including DSN senders' own auto-submitted mail when it carries no report.
 */
export function classifyInbound(mail: InboundMessage): Classification {
  const parts = mail.attachments ?? [];
  const find = (types: Set<string>) => parts.find((a) => types.has((a.contentType ?? '').toLowerCase()));
  const arf = find(ARF_TYPES);
  if (arf && (reportType(mail) === 'feedback-report' || !find(DSN_TYPES))) return classifyFeedbackReport(arf.content.toString('utf8'));
  const dsn = find(DSN_TYPES);
  if (dsn) return classifyDeliveryStatus(dsn.content.toString('utf8'));
  if (looksAutoReplied(mail)) return { type: 'ignore', reason: 'auto-reply' };
  return { type: 'ignore', reason: 'not a delivery or feedback report' };
}

/**
 * Parses raw message bytes the way classification expects: the delivery-status part kept as a part
 * (mailparser otherwise folds it into the text), embedded messages left unparsed, no HTML work.
 */
export function parseInbound(raw: Buffer | string): Promise<ParsedMail> {
  return simpleParser(raw, {
    keepDeliveryStatus: true,
    ignoreEmbedded: true,
    skipHtmlToText: true,
    skipTextToHtml: true,
    skipTextLinks: true,
    skipImageLinks: true,
    keepCidLinks: true,
    checksumAlgo: false,
    maxChildNodes: 200,
  });
}

// ---------------------------------------------------------------------------------------------
// Relay webhooks and idempotency

export interface ReportedEvent {
  type: Bounce['type'];
  status?: string | null;
  diagnostic?: string | null;
  feedbackType?: string | null;
  recipient?: string | null;
}

/**
 * A bounce as a relay's webhook states it. A status, when given, decides suppression exactly as in a
 * DSN. A hard bounce without any status is suppressed: relays call "hard" (permanent, HardBounce)
 * the refusals about the address, and list policy blocks separately.
 */
export function bounceFromReport(e: ReportedEvent): Bounce {
  const recipient = e.recipient ?? null;
  if (e.type === 'complaint') return { type: 'complaint', feedbackType: (e.feedbackType ?? 'abuse').trim().toLowerCase() || 'abuse', recipient };
  const diagnostic = cleanDiagnostic(e.diagnostic);
  const status = effectiveStatus(e.status ?? undefined, diagnostic);
  if (e.type === 'soft_bounce') return { type: 'soft_bounce', status, diagnostic, recipient };
  return { type: 'hard_bounce', suppress: status === null ? true : isAddressStatus(status), status, diagnostic, recipient };
}

export interface PriorEvent {
  type: string;
  detail: unknown;
}

const field = (detail: unknown, key: string) => (detail && typeof detail === 'object' ? ((detail as Record<string, unknown>)[key] ?? null) : null);

/**
 * Whether `b` was already recorded for a delivery with these bounce and complaint events. A delivery
 * bounces for good once (also when the worker saw the refusal itself, an event without `kind`); a
 * person complains about one message once; a delay warning is new when it says something new.
 */
export function isDuplicate(prior: readonly PriorEvent[], b: Bounce): boolean {
  switch (b.type) {
    case 'hard_bounce':
      return prior.some((e) => e.type === 'bounced');
    case 'complaint':
      return prior.some((e) => e.type === 'complained');
    case 'soft_bounce':
      return prior.some((e) => e.type === 'delayed' && field(e.detail, 'status') === b.status && field(e.detail, 'diagnostic') === b.diagnostic);
  }
}
