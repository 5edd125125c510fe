/**
 * Template rendering: compile once per template version and render per recipient, versus
 * compiling for every recipient; then the whole message per recipient, MIME included, built by
 * nodemailer's composer versus spliced from the version's skeleton.
 * Run: npx tsx bench/render.bench.ts  (not part of the tests)
 *
 * Two 9 KB shapes in HTML and MJML: a typical mail (static text, ~25 personalised outputs, a
 * condition, a loop), and a dense one (~5 outputs in every paragraph, ~300 in all) where the
 * per-output cost of Liquid (a few microseconds) dominates.
 */
import { performance } from 'node:perf_hooks';
import MailComposer from 'nodemailer/lib/mail-composer';
import { compileTemplate, render, type RenderData, type TemplateSource } from '../src/mail/render.ts';
import { composeMessage, verpAddress } from '../src/mail/compose.ts';
import { encodeHtml, skeletonOf } from '../src/mail/mime-skeleton.ts';
import { trackingFor } from '../src/mail/tracking-tokens.ts';
import { fmt, printTable, type Row } from './support.ts';

const STATIC =
  'Our programme brings together engineers, designers and researchers for two days of talks, workshops and demos. ' +
  'Doors open at 8:30; coffee and breakfast are served in the main hall. Please bring a photo ID for the badge desk.';

const DENSE =
  'Thank you for joining us at {{ event.name }}, {{ first_name | default: "friend" }}. As {{ job_title | default: "a guest" }} at ' +
  '{{ company | default: "your company" }}, you will find sessions on data, design and engineering. ' +
  '<a href="https://example.com/agenda?c={{ contact.email | url_encode }}">See the agenda</a>.';

/** Paragraphs until `target` characters; every `denseEvery`-th one personalised (1: all). */
function paragraphs(target: number, start: number, wrap: (p: string) => string, denseEvery: number): string {
  let body = '';
  for (let i = 0; start + body.length < target; i++) body += wrap(i % denseEvery === 0 ? DENSE : STATIC) + '\n';
  return body;
}

function htmlBody(target: number, denseEvery: number): string {
  let body = '<!doctype html><html><head><title>{{ event.name }}</title></head><body><h1>Hello {{ first_name }}</h1>';
  body += '{% if vars.vip %}<p>Your VIP lounge pass is attached.</p>{% endif %}';
  body += '<ul>{% for s in vars.sessions %}<li>{{ s }}</li>{% endfor %}</ul>';
  body += paragraphs(target - 60, body.length, (p) => `<p>${p}</p>`, denseEvery);
  return body + '<p><a href="[UNSUBLINK]">Unsubscribe</a></p></body></html>';
}

function mjmlBody(target: number, denseEvery: number): string {
  let body = '<mjml><mj-body><mj-section><mj-column><mj-text><h1>Hello {{ first_name }}</h1></mj-text>';
  body += '<mj-button href="https://example.com/ticket?e={{ contact.email | url_encode }}">My ticket</mj-button>';
  body += paragraphs(target - 120, body.length, (p) => `<mj-text>${p}</mj-text>`, denseEvery);
  return body + '<mj-text><a href="[UNSUBLINK]">Unsubscribe</a></mj-text></mj-column></mj-section></mj-body></mjml>';
}

const base = { category: 'marketing', language: 'en', subject: 'See you at {{ event.name }}, {{ first_name }}', preheader: 'Your programme, {{ first_name | default: "friend" }}' } as const;
const sources: Record<string, TemplateSource> = {
  'HTML 9 KB typical': { ...base, format: 'html', body: htmlBody(9000, 6) },
  'MJML 9 KB typical': { ...base, format: 'mjml', body: mjmlBody(9000, 6) },
  'HTML 9 KB dense': { ...base, format: 'html', body: htmlBody(9000, 1) },
  'MJML 9 KB dense': { ...base, format: 'mjml', body: mjmlBody(9000, 1) },
};

const recipient = (i: number): RenderData => ({
  contact: { email: `person${i}@example.com`, first_name: i % 7 ? `Ada${i}` : null, last_name: 'Lovelace', company: 'Acme & Co', job_title: 'Engineer' },
  event: { name: 'Summit 2026', starts_at: '2026-06-03T07:30:00Z', ends_at: '2026-06-03T16:00:00Z', time_zone: 'Europe/Paris' },
  vars: { vip: i % 3 === 0, sessions: ['Keynote', 'Data at scale', 'Design systems'] },
  unsubscribe: `https://envoi.example/u/${i}`,
});

/** Calls `fn` for about `ms` milliseconds (after a warm-up) and returns calls per second. */
async function rate(ms: number, fn: (i: number) => unknown): Promise<number> {
  for (let i = 0; i < 20; i++) await fn(i);
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < ms) {
    await fn(n);
    n++;
  }
  return n / ((performance.now() - t0) / 1000);
}

const tracking = { wrap: (url: string, i: number) => `https://envoi.example/c/abc/${i}?u=${encodeURIComponent(url)}`, openPixelUrl: 'https://envoi.example/o/abc' };

const rows: Row[] = [];
for (const [name, source] of Object.entries(sources)) {
  const compiled = await compileTemplate(source);
  const once = await rate(2000, (i) => render(compiled, recipient(i), 'send'));
  const eachTime = await rate(2000, async (i) => render(await compileTemplate(source), recipient(i), 'send'));
  const tracked = await rate(1000, (i) => render(compiled, recipient(i), 'send', { tracking }));
  const outputs = (source.body.match(/\{\{/g) ?? []).length;
  const detail = `${source.body.length} B, ${outputs} outputs, text ${compiled.textMode}`;
  rows.push({ measure: `${name}: compile once, render per recipient (${detail})`, value: `${fmt(once, 0)} renders/s`, baseline: `${fmt(eachTime, 0)} renders/s compile each time`, ratio: `${fmt(once / eachTime)}x` });
  rows.push({ measure: `${name}: + link tracking and open pixel`, value: `${fmt(tracked, 0)} renders/s` });
}
printTable('Template rendering (one core, sync render of subject, preheader, HTML and text)', rows);

// ---- the whole message per recipient: render, track, MIME ----
// nodemailer's MailComposer per recipient (what the worker did before) against the skeleton of the
// template version spliced with the recipient's parts (src/mail/mime-skeleton.ts + compose.ts).
// CPU time per message, so that what else runs on the machine counts less.

const cpuRate = async (n: number, fn: (i: number) => unknown) => {
  for (let i = 0; i < 50; i++) await fn(i);
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) await fn(i);
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / n; // microseconds
};

const mimeRows: Row[] = [];
for (const [name, source] of Object.entries(sources).filter(([k]) => k.includes('typical'))) {
  const compiled = await compileTemplate(source);
  const skeleton = await skeletonOf(compiled);
  const secret = 'bench-secret-'.repeat(4);
  const message = async (i: number, composer: 'nodemailer' | 'skeleton') => {
    const delivery = `0b8e4a4e-3f1c-4a8c-9d2c-${String(i % 1e12).padStart(12, '0')}`;
    const data = { ...recipient(i), unsubscribe: `https://envoi.example/u/${delivery}` };
    const tracking = trackingFor('https://envoi.example', secret, delivery);
    const base = { deliveryId: delivery, from: { name: 'News', address: 'news@example.org' }, to: { name: 'Ada Lovelace', address: `person${i}@example.com` }, date: new Date(), bounceDomain: 'bounces.example.org', returnPath: verpAddress(delivery, 'bounces.example.org', secret) };
    if (composer === 'nodemailer') {
      const r = render(compiled, data, 'send', { tracking });
      return new MailComposer({ from: base.from, to: base.to, subject: r.subject, html: r.html, text: r.text, messageId: `<${delivery}@bounces.example.org>`, date: base.date, newline: 'win' }).compile().build();
    }
    const r = render(compiled, data, 'send');
    return composeMessage({ ...base, subject: r.subject, html: encodeHtml(compiled, skeleton, data, r, tracking), text: r.text }).raw;
  };
  const before = await cpuRate(2000, (i) => message(i, 'nodemailer'));
  const after = await cpuRate(5000, (i) => message(i, 'skeleton'));
  const bytes = ((await message(1, 'skeleton')) as Buffer).length;
  mimeRows.push({
    measure: `${name}: render + tracking + MIME, per recipient (${fmt(bytes, 0)} bytes)`,
    value: `${fmt(after, 0)} us CPU (skeleton ${skeleton ? 'spliced' : 'none'})`,
    baseline: `${fmt(before, 0)} us CPU with nodemailer's MailComposer`,
    ratio: `${fmt(before / after)}x`,
  });
}
printTable('Whole message per recipient (CPU time per message)', mimeRows);
