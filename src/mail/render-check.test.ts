import { describe, expect, it } from 'vitest';
import { checkPreview, compileTemplate, render, TEMPLATE_LIMITS, type RenderData, type TemplateSource } from './render.ts';

// checkPreview answers for the accept path of the triggered API without rendering when it can: its
// verdict must be the preview render's, error for error, on every template and data.

const source = (over: Partial<TemplateSource>): TemplateSource => ({
  category: 'transactional',
  language: 'en',
  subject: 'Hello',
  format: 'html',
  body: '<html><body><p>Hello</p></body></html>',
  ...over,
});

const mjml = (inner: string) => `<mjml><mj-body><mj-section><mj-column>\n${inner}\n</mj-column></mj-section></mj-body></mjml>`;

const outcome = (f: () => unknown) => {
  try {
    f();
    return 'ok';
  } catch (e) {
    const err = e as { name?: string; code?: string; message?: string; details?: unknown };
    return { name: err.name, code: err.code, message: err.message, details: err.details };
  }
};

const contact = { email: 'ada@example.com', first_name: 'Ada', last_name: 'Lovelace', company: 'Acme & Co', job_title: null, diet: 'vegan' };
const event = { name: 'Summit', starts_at: new Date('2026-06-03T07:30:00Z'), ends_at: new Date('2026-06-03T16:00:00Z'), time_zone: 'Europe/Paris' };

const sources: Partial<TemplateSource>[] = [
  { subject: 'Booking {{ booking }} confirmed, {{ first_name }}', body: '<p>Hello {{ first_name }} {{ last_name }}, {{ vars.seats }} seat(s) at {{ organisation_name }}</p><a href="https://x.example/{{ booking }}">b</a>' },
  { subject: 'Hi {{ contact.first_name }}', body: '<p>{{ event.name }} {{ vars.nested.deep }} {{ vars["with space"] }}</p>', preheader: 'For {{ first_name }}' },
  { body: '<p>{{ unsubscribe_url }} {{ unsubscribe_url_fr }}</p>', text: 'Text {{ company }} {{ job_title }} {{ missing_in_text }}' },
  { body: '<p>{{ first_name | default: "there" }} {{ seat }}</p>' },
  { body: '<p>{% if company %}{{ company }}{% endif %}{{ seat }}</p>' },
  { body: '<p>{{ seat | raw }} {{ seat | escape }} {{- first_name -}}</p>' },
  { body: '<p>{{ list[0] }} {{ list.first }} {{ list.size }} {{ first_name.size }}</p>' },
  { body: '<p>{{ event.starts_at }} {{ event.starts_at | date: "%H:%M" }}</p>' },
  { body: '<p>{{ contact.constructor }} {{ toString }} {{ vars.__proto__ }}</p>' },
  { body: '<p>{{ nothing_here.at_all }} {{ nullish.inside }}</p>' },
  { format: 'mjml', body: mjml('<mj-text>Hi {{ first_name }} {{ vars.seats }}</mj-text>\n<mj-text>{{ event.room }}</mj-text>') },
  { format: 'mjml', body: mjml('<mj-text>Hi {{ first_name }} {{ booking }}</mj-text>') },
  { body: '<p>{{ big }}{{ big }}{{ big }}</p>' },
  { subject: '{{ big }}{{ big }}{{ big }}', body: '<p>x</p>' },
];

const datas: RenderData[] = [
  { contact, event, vars: { organisation_name: 'Org', booking: 'B-1', seats: 2, nested: { deep: true }, 'with space': 'yes', seat: '12A', list: [1, 2] } },
  { contact, event: null, vars: { organisation_name: 'Org', booking: 'B-2', seats: null } },
  { contact: { ...contact, booking: 'from contact' }, vars: { organisation_name: 'Org' }, unsubscribe: 'https://u.example/1' },
  { contact, event, vars: { organisation_name: 'Org', booking: 'B-3', seats: 1, nested: 'not an object', seat: '<b>', nullish: null }, unsubscribe: 'https://u.example/2' },
  { contact: { email: 'x@example.com' }, vars: { first_name: 'Vars', booking: 7, seats: 3, organisation_name: 'Org', missing_in_text: 'm', company: '' } },
  { contact, vars: { organisation_name: 'Org', booking: 'B', seats: 1, big: 'x'.repeat(Math.floor(TEMPLATE_LIMITS.outputChars / 3) + 10) } },
  { contact, vars: { organisation_name: 'Org', booking: 'B', seats: 1, big: '&'.repeat(Math.floor(TEMPLATE_LIMITS.outputChars / 10)) } },
  { contact, vars: { organisation_name: 'Org', booking: 'B', seats: 1, big: 'small' } },
  { contact, vars: { organisation_name: 'Org', booking: 'B', seats: 1, event: 'shadow', vars: 'shadow', contact: 'shadow' } },
];

describe('checkPreview', () => {
  it('gives the verdict of the preview render, error for error', async () => {
    let compared = 0;
    for (const s of sources) {
      const compiled = await compileTemplate(source(s));
      for (const data of datas) {
        const expected = outcome(() => render(compiled, data, 'preview'));
        expect(outcome(() => checkPreview(compiled, data)), `${JSON.stringify(s)} with data #${datas.indexOf(data)}`).toEqual(expected);
        // and a second time, from what the first call kept
        expect(outcome(() => checkPreview(compiled, data))).toEqual(expected);
        compared++;
      }
    }
    expect(compared).toBe(sources.length * datas.length);
  });

  it('reads instead of rendering for plain templates with every variable there, and renders otherwise', async () => {
    const plain = await compileTemplate(source(sources[0]!));
    expect(checkPreview(plain, datas[0]!)).toBe('read');
    expect(outcome(() => checkPreview(plain, { contact, vars: { booking: 'B' } }))).not.toBe('ok');
    const mj = await compileTemplate(source(sources[11]!));
    expect(checkPreview(mj, datas[0]!)).toBe('read');
    const withFilter = await compileTemplate(source(sources[3]!));
    expect(checkPreview(withFilter, datas[0]!)).toBe('rendered');
    const big = await compileTemplate(source(sources[12]!));
    expect(checkPreview(big, datas[7]!)).toBe('read');
    expect(outcome(() => checkPreview(big, datas[5]!))).not.toBe('ok');
  });

  it('names the missing variable like the render does', async () => {
    const compiled = await compileTemplate(source({ subject: 'Booking {{ booking }}', body: '<p>{{ first_name }}</p>' }));
    expect(() => checkPreview(compiled, { contact, vars: {} })).toThrow('Missing variable "booking" in the subject');
    expect(() => checkPreview(compiled, { contact, vars: { booking: 'B' } })).not.toThrow();
  });

  it('only checks what compileTemplate returned', () => {
    expect(() => checkPreview({} as never, {})).toThrow(TypeError);
  });
});
