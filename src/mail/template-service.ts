/**
 * Templates stored per audience: saved only once they compile, versioned on every edit, compiled
 * once per (template, version) per process and rendered per recipient from that compiled form.
 */
import type { AppContext } from '../platform/context.ts';
import type { Contact, Event } from '../platform/schema.ts';
import { AppError, badRequest, conflict, notFound } from '../platform/errors.ts';
import { checkEmail } from '../platform/email-address.ts';
import type { Principal } from '../organisations/service.ts';
import { audienceFor, communityFor, contactFor, eventFor, listFields } from '../audience/service.ts';
import { compileTemplate, render, TemplateError, type CompiledTemplate, type ContactData, type EventData, type RenderedMessage, type TemplateCategory, type TemplateSource } from './render.ts';
import * as store from './template-store.ts';
import { headerText } from './compose.ts';
import { builtinTemplate, isBuiltinKind, type BuiltinKind } from './builtin-templates.ts';

export interface TemplateInput {
  name: string;
  category: TemplateCategory;
  language: string;
  subject: string;
  preheader?: string | null;
  format?: 'html' | 'mjml';
  body: string;
  text?: string | null;
  tracking?: boolean;
  event_id?: string | null;
  community_id?: string | null;
  from_name?: string | null;
  from_email?: string | null;
  reply_to?: string | null;
  /** This template replaces envoi's built-in template of this kind, in its language, for this audience. */
  builtin_kind?: BuiltinKind | null;
}

export type TemplatePatch = Partial<TemplateInput> & { version?: number };

// ---- compiled forms, per process ----

const CACHE_LIMIT = 500;
const compiledCache = new Map<string, Promise<CompiledTemplate>>();
let compilations = 0;

/** How many templates this process has compiled: a send to many must not add one per recipient. */
export function compileCount(): number {
  return compilations;
}

/**
 * The compiled form of an immutable source under `key` (`<template id>:<version>`), compiled on
 * first use. Concurrent first uses share one compilation; a failed one is not kept.
 */
export function compiledFor(key: string, source: () => TemplateSource): Promise<CompiledTemplate> {
  const hit = compiledCache.get(key);
  if (hit) {
    compiledCache.delete(key);
    compiledCache.set(key, hit);
    return hit;
  }
  compilations++;
  const p = compileTemplate(source());
  compiledCache.set(key, p);
  p.catch(() => compiledCache.delete(key));
  if (compiledCache.size > CACHE_LIMIT) compiledCache.delete(compiledCache.keys().next().value!);
  return p;
}

function remember(key: string, compiled: CompiledTemplate) {
  compiledCache.set(key, Promise.resolve(compiled));
  if (compiledCache.size > CACHE_LIMIT) compiledCache.delete(compiledCache.keys().next().value!);
}

export function sourceOf(v: store.VersionContent): TemplateSource {
  return { category: v.category, language: v.language, subject: v.subject, preheader: v.preheader, format: v.format, body: v.body, text: v.text_body, tracking: v.tracking };
}

export function compiledVersion(templateId: string, version: number, content: store.VersionContent): Promise<CompiledTemplate> {
  return compiledFor(`${templateId}:${version}`, () => sourceOf(content));
}

/** Template problems are the author's to fix: a 400 naming the part, line and variable. */
export function asBadRequest(e: unknown): unknown {
  return e instanceof TemplateError ? new AppError(400, e.code, e.message, e.details) : e;
}

// ---- render data ----

/** Contact values as templates see them: built-ins, and custom fields by key (null when unset). */
export function contactData(c: Pick<Contact, 'email' | 'first_name' | 'last_name' | 'company' | 'job_title' | 'fields'>, fieldKeys: readonly string[] = []): ContactData {
  const custom: Record<string, unknown> = {};
  for (const k of fieldKeys) custom[k] = null;
  Object.assign(custom, (c.fields as Record<string, unknown> | null) ?? {});
  return { ...custom, email: c.email, first_name: c.first_name, last_name: c.last_name, company: c.company, job_title: c.job_title };
}

export function eventData(e: Pick<Event, 'name' | 'starts_at' | 'ends_at' | 'time_zone'>): EventData {
  return { name: e.name, starts_at: e.starts_at, ends_at: e.ends_at, time_zone: e.time_zone };
}

const SAMPLE_CONTACT = { email: 'sample.contact@example.com', first_name: 'Camille', last_name: 'Martin', company: 'Example', job_title: null, fields: {} };

// ---- validation ----

function checkContent(input: TemplateInput): store.VersionContent {
  const problems: string[] = [];
  const address = (field: string, v: string | null | undefined) => {
    if (v === null || v === undefined || v === '') return null;
    const r = checkEmail(v);
    if (!r.ok) problems.push(`${field}: ${r.reason}`);
    return r.ok ? r.email : null;
  };
  const from_email = address('from_email', input.from_email);
  const reply_to = address('reply_to', input.reply_to);
  const from_name = input.from_name == null ? null : headerText(input.from_name, 200) || null;
  if (input.category === 'participation' && !input.event_id && !input.community_id) {
    problems.push('a participation template is about one event (event_id) or one community (community_id): it goes only to its participants or members');
  }
  if (input.event_id && input.community_id) problems.push('give event_id or community_id, not both');
  if (input.builtin_kind != null) {
    if (!isBuiltinKind(input.builtin_kind)) problems.push(`builtin_kind "${input.builtin_kind}" is not one of envoi's built-in templates`);
    else {
      // An override keeps the contract of what it replaces: same category (so the same policy).
      const original = builtinTemplate(input.builtin_kind, input.language);
      if (original.category !== input.category) problems.push(`an override of ${input.builtin_kind} must be ${original.category} mail, like the built-in template`);
    }
  }
  if (problems.length) throw badRequest('invalid_template', problems.join('; '), { problems });
  return {
    category: input.category,
    language: input.language,
    subject: input.subject,
    preheader: input.preheader ?? null,
    format: input.format ?? 'html',
    body: input.body,
    text_body: input.text ?? null,
    tracking: input.tracking ?? true,
    from_name,
    from_email,
    reply_to,
  };
}

async function checkScope(ctx: AppContext, p: Principal, audienceId: string, eventId: string | null | undefined, communityId: string | null | undefined) {
  if (eventId) {
    const e = await eventFor(ctx, p, eventId).catch(() => null);
    if (!e || e.audience_id !== audienceId) throw badRequest('unknown_event', 'event_id names no event of this audience');
  }
  if (communityId) {
    const c = await communityFor(ctx, p, communityId).catch(() => null);
    if (!c || c.audience_id !== audienceId) throw badRequest('unknown_community', 'community_id names no community of this audience');
  }
}

async function compileChecked(content: store.VersionContent): Promise<CompiledTemplate> {
  let compiled: CompiledTemplate;
  try {
    compiled = await compileTemplate(sourceOf(content));
  } catch (e) {
    throw asBadRequest(e);
  }
  // Marketing mail must let its reader opt out from the message itself: the List-Unsubscribe header is
  // not shown by every client. A re-permission template's NO link ({{ no_url }}) is such an opt-out.
  if (content.category === 'marketing' && !compiled.hasUnsubscribeLink && !usesNoUrl(content)) {
    throw badRequest(
      'unsubscribe_link_missing',
      'a marketing template must contain an unsubscribe link: put [UNSUBLINK] (or {{ unsubscribe_url }}) in the body, e.g. <a href="[UNSUBLINK]">Unsubscribe</a>',
    );
  }
  return compiled;
}

const NO_URL = /\{\{-?\s*no_url\b/;
const usesNoUrl = (c: store.VersionContent) => NO_URL.test(c.body) || NO_URL.test(c.text_body ?? '');

const createdBy = (p: Principal) => `${p.kind}:${p.id}`;

function overrideTaken(e: unknown): never {
  if ((e as { code?: string })?.code === '23505' && /templates_builtin/.test(`${(e as Error).message} ${(e as { constraint?: string }).constraint ?? ''}`)) {
    throw conflict('builtin_override_exists', 'this audience already has a template replacing this built-in template in this language');
  }
  throw e;
}

export function toApi(t: store.TemplateWithContent) {
  return {
    id: t.id,
    audience_id: t.audience_id,
    builtin_kind: t.builtin_kind,
    event_id: t.event_id,
    community_id: t.community_id,
    name: t.name,
    category: t.category,
    language: t.language,
    subject: t.subject,
    preheader: t.preheader,
    format: t.format,
    body: t.body,
    text: t.text_body,
    tracking: t.tracking,
    from_name: t.from_name,
    from_email: t.from_email,
    reply_to: t.reply_to,
    version: t.version,
    created_at: t.created_at,
    updated_at: t.updated_at,
  };
}

// ---- CRUD ----

/** A live template of the caller's organisation and visible audience; 404 otherwise. */
export async function templateFor(ctx: AppContext, p: Principal, templateId: string, audienceId?: string): Promise<store.TemplateWithContent> {
  const t = await store.findTemplate(ctx.db, p.orgId, templateId);
  if (!t || (audienceId !== undefined && t.audience_id !== audienceId)) throw notFound('template');
  await audienceFor(ctx, p, t.audience_id).catch(() => {
    throw notFound('template');
  });
  return t;
}

export async function createTemplate(ctx: AppContext, p: Principal, audienceId: string, input: TemplateInput) {
  await audienceFor(ctx, p, audienceId);
  const content = checkContent(input);
  await checkScope(ctx, p, audienceId, input.event_id, input.community_id);
  const compiled = await compileChecked(content);
  const id = await ctx.db.transaction().execute((trx) =>
    store.insertTemplate(trx, {
      orgId: p.orgId,
      audienceId,
      eventId: input.event_id ?? null,
      communityId: input.community_id ?? null,
      name: input.name.trim(),
      builtinKind: input.builtin_kind ?? null,
      createdBy: createdBy(p),
      content,
      now: ctx.now(),
    }),
  ).catch(overrideTaken);
  remember(`${id}:1`, compiled);
  return toApi((await store.findTemplate(ctx.db, p.orgId, id))!);
}

/** A copy of one of envoi's built-in templates as an ordinary template of the audience, to use as is or edit. */
export async function createFromBuiltin(ctx: AppContext, p: Principal, audienceId: string, input: { builtin: BuiltinKind; language: string; name?: string }) {
  const b = builtinTemplate(input.builtin, input.language);
  return createTemplate(ctx, p, audienceId, {
    name: input.name ?? `${input.builtin.replace(/_/g, ' ')} (${b.language})`,
    category: b.category,
    language: b.language,
    subject: b.subject,
    preheader: b.preheader,
    format: 'mjml',
    body: b.body,
  });
}

export async function updateTemplate(ctx: AppContext, p: Principal, audienceId: string, templateId: string, patch: TemplatePatch) {
  const current = await templateFor(ctx, p, templateId, audienceId);
  if (patch.version !== undefined && patch.version !== current.version) {
    throw conflict('template_changed', `the template is at version ${current.version}, not ${patch.version}: reload it and apply your change again`);
  }
  const { version: _expected, ...changes } = patch;
  const merged: TemplateInput = {
    name: current.name,
    category: current.category,
    language: current.language,
    subject: current.subject,
    preheader: current.preheader,
    format: current.format,
    body: current.body,
    text: current.text_body,
    tracking: current.tracking,
    event_id: current.event_id,
    community_id: current.community_id,
    from_name: current.from_name,
    from_email: current.from_email,
    reply_to: current.reply_to,
    builtin_kind: current.builtin_kind as BuiltinKind | null,
    ...Object.fromEntries(Object.entries(changes).filter(([, v]) => v !== undefined)),
  };
  const content = checkContent(merged);
  await checkScope(ctx, p, audienceId, merged.event_id, merged.community_id);
  const compiled = await compileChecked(content);
  const written = await ctx.db.transaction().execute((trx) =>
    store.insertNextVersion(trx, {
      templateId,
      base: current.version,
      name: merged.name.trim(),
      eventId: merged.event_id ?? null,
      communityId: merged.community_id ?? null,
      builtinKind: merged.builtin_kind ?? null,
      createdBy: createdBy(p),
      content,
      now: ctx.now(),
    }),
  ).catch(overrideTaken);
  if (!written) throw conflict('template_changed', 'the template was edited by someone else at the same time: reload it and apply your change again');
  remember(`${templateId}:${current.version + 1}`, compiled);
  return toApi((await store.findTemplate(ctx.db, p.orgId, templateId))!);
}

export async function getTemplate(ctx: AppContext, p: Principal, audienceId: string, templateId: string) {
  return toApi(await templateFor(ctx, p, templateId, audienceId));
}

export async function listTemplates(ctx: AppContext, p: Principal, audienceId: string) {
  await audienceFor(ctx, p, audienceId);
  return (await store.listTemplates(ctx.db, audienceId)).map(toApi);
}

/** Removes the template from lists and from new sends; mail already queued still goes out. */
export async function deleteTemplate(ctx: AppContext, p: Principal, audienceId: string, templateId: string) {
  await templateFor(ctx, p, templateId, audienceId);
  await store.softDeleteTemplate(ctx.db, templateId, ctx.now());
}

// ---- preview ----

export interface PreviewInput {
  contact_id?: string;
  /** sample values instead of a stored contact */
  contact?: { email?: string; first_name?: string | null; last_name?: string | null; company?: string | null; job_title?: string | null; fields?: Record<string, unknown> };
  variables?: Record<string, unknown>;
}

/** The central custom field keys of an audience: unset values render as empty, not as a missing variable. */
export async function audienceFieldKeys(ctx: AppContext, p: Principal, audienceId: string): Promise<string[]> {
  const fields = await listFields(ctx, p, { audienceId });
  return fields.filter((f) => f.scope !== 'builtin').map((f) => f.key);
}

export async function previewTemplate(ctx: AppContext, p: Principal, audienceId: string, templateId: string, input: PreviewInput): Promise<Pick<RenderedMessage, 'subject' | 'preheader' | 'html' | 'text'>> {
  const t = await templateFor(ctx, p, templateId, audienceId);
  const keys = await audienceFieldKeys(ctx, p, audienceId);
  let contact: ContactData;
  if (input.contact_id) contact = contactData(await contactFor(ctx, p, audienceId, input.contact_id), keys);
  else if (input.contact) {
    const { fields, ...builtins } = input.contact;
    contact = contactData({ ...SAMPLE_CONTACT, ...builtins, fields: fields ?? {} }, keys);
  } else contact = contactData(SAMPLE_CONTACT, keys);
  const event = t.event_id ? eventData(await eventFor(ctx, p, t.event_id)) : null;
  const compiled = await compiledVersion(t.id, t.version, t);
  try {
    const r = render(compiled, { contact, event, vars: input.variables ?? {}, unsubscribe: `${ctx.config.publicUrl}/u/preview` }, 'preview');
    return { subject: r.subject, preheader: r.preheader, html: r.html, text: r.text };
  } catch (e) {
    throw asBadRequest(e);
  }
}
