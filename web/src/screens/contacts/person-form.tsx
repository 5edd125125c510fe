import { useEffect, useRef, useState, type ReactNode } from 'react';
import { Link } from 'react-router-dom';
import { ApiError, errorMessage } from '../../api.ts';
import { Dialog } from '../../components/Dialog.tsx';
import { Field } from '../../components/Status.tsx';
import { useT, type Translate } from '../../i18n/index.tsx';
import type { FieldDef } from './data.ts';
import { messages } from './messages.ts';

/*
 * The values of one person (a contact, a participant, a member) as a form: the built-in fields, then
 * the custom fields with an input suited to each type. The same pieces serve adding a contact from
 * the grid, registering a participant or a member, and editing a contact on its detail screen.
 */

export const BUILTIN_KEYS = ['email', 'first_name', 'last_name', 'company', 'job_title'] as const;
type BuiltinKey = (typeof BUILTIN_KEYS)[number];
const isBuiltin = (k: string): k is BuiltinKey => (BUILTIN_KEYS as readonly string[]).includes(k);

/** What the inputs hold: text for most, a list for a multiple choice. */
export type Draft = Record<string, string | string[]>;
export type FieldErrors = Record<string, string>;
type T = Translate<keyof typeof messages.en | Parameters<Translate>[0]>;

// Good enough to catch a typo before asking the server, which checks the address fully.
const EMAIL_SHAPE = /^[^\s@]+@[^\s@]+\.[^\s@.]+$/;

/** The inputs' values for stored values (a contact's, or nothing for a new person). */
export function draftOf(fields: Pick<FieldDef, 'key' | 'type'>[], values: Record<string, unknown>): Draft {
  const d: Draft = {};
  for (const f of fields) {
    const v = values[f.key];
    if (f.type === 'multi_choice') d[f.key] = Array.isArray(v) ? v.map(String) : [];
    else if (v === null || v === undefined) d[f.key] = '';
    else if (f.type === 'boolean') d[f.key] = v ? 'true' : 'false';
    else if (f.type === 'date') d[f.key] = String(v).slice(0, 10);
    else d[f.key] = String(v);
  }
  return d;
}

const same = (a: string | string[] | undefined, b: string | string[] | undefined) => JSON.stringify(a ?? '') === JSON.stringify(b ?? '');

/**
 * The API body for the inputs (built-ins at the top level, custom fields under `fields`), or the
 * problems found before asking the server. With `initial`, only what changed is sent (a cleared
 * input as null); without, only the inputs filled in.
 */
export function bodyOf(
  fields: FieldDef[],
  draft: Draft,
  t: T,
  opts: { emailRequired: boolean; initial?: Draft },
): { body: Record<string, unknown>; errors: FieldErrors; changed: number } {
  const body: Record<string, unknown> = {};
  const custom: Record<string, unknown> = {};
  const errors: FieldErrors = {};
  let changed = 0;
  for (const f of fields) {
    const raw = draft[f.key] ?? (f.type === 'multi_choice' ? [] : '');
    if (f.key === 'email') {
      const s = String(raw).trim();
      if (!s && opts.emailRequired) errors.email = t('p.emailRequired');
      else if (s && !EMAIL_SHAPE.test(s)) errors.email = t('p.emailInvalid');
    }
    if (opts.initial && same(opts.initial[f.key], raw)) continue;
    let value: unknown;
    if (Array.isArray(raw)) value = raw.length ? raw : null;
    else {
      const s = raw.trim();
      if (s === '') value = null;
      else if (f.type === 'number') {
        const n = Number(s.replace(',', '.'));
        if (!Number.isFinite(n)) errors[f.key] = t('p.numberInvalid');
        value = n;
      } else if (f.type === 'boolean') value = s === 'true';
      else value = s;
    }
    // A new person: only the values given are sent.
    if (!opts.initial && value === null) continue;
    changed++;
    if (isBuiltin(f.key) && f.scope === 'builtin') body[f.key] = value;
    else custom[f.key] = value;
  }
  if (Object.keys(custom).length) body.fields = custom;
  return { body, errors, changed };
}

export interface Explained {
  message: ReactNode;
  fields: FieldErrors;
}

/**
 * The API's refusal in the interface language: a taken email names the contact that has it, a
 * refused value is shown under its input with the server's reason.
 */
export function explain(e: unknown, t: T, audienceId: string, what: 'contact' | 'participant' | 'member'): Explained {
  if (!(e instanceof ApiError)) return { message: errorMessage(e), fields: {} };
  const details = e.details as { id?: string; contact_id?: string } | string[] | undefined;
  if (e.status === 409 && e.code === 'contact_exists') {
    const id = !Array.isArray(details) ? details?.id : undefined;
    return {
      message: (
        <>
          {t('p.emailTaken')}{' '}
          {id && what === 'contact' && <Link to={`/audiences/${audienceId}/contacts/${id}`}>{t('p.openExisting')}</Link>}
        </>
      ),
      fields: { email: t('p.emailTakenShort') },
    };
  }
  if (e.status === 409 && (e.code === 'already_participant' || e.code === 'already_member')) {
    const msg = e.code === 'already_participant' ? t('p.alreadyParticipant') : t('p.alreadyMember');
    return { message: msg, fields: { email: msg } };
  }
  if (e.code === 'email_required') return { message: t('p.refused'), fields: { email: t('p.emailRequired') } };
  if (e.code === 'invalid_values' && Array.isArray(details)) {
    const fields: FieldErrors = {};
    const rest: string[] = [];
    for (const problem of details) {
      const m = /^([a-z][a-z0-9_]*): (.*)$/s.exec(String(problem));
      if (m && m[1] === 'email') fields.email = t('p.emailRefused', { reason: m[2]! });
      else if (m) fields[m[1]!] = m[2]!;
      else rest.push(String(problem));
    }
    return { message: rest.length ? `${t('p.refused')} ${rest.join('; ')}` : t('p.refused'), fields };
  }
  return { message: e.message, fields: {} };
}

/** A field's name in the interface language: built-ins translated, custom fields by their label. */
export function useFieldLabel() {
  const t = useT(messages);
  return (f: Pick<FieldDef, 'key' | 'label' | 'scope'>) => (f.scope === 'builtin' ? t(`col.${f.key}` as 'col.email') : f.label || f.key);
}

/** One input, suited to the field's type. */
function FieldInput({ field, value, error, onChange, required }: { field: FieldDef; value: string | string[]; error?: string; onChange(v: string | string[]): void; required?: boolean }) {
  const t = useT(messages);
  const label = useFieldLabel()(field);
  const errorId = `pf-${field.key}-error`;
  if (field.type === 'multi_choice') {
    const list = Array.isArray(value) ? value : [];
    return (
      <fieldset className={error ? 'choice-group field-invalid' : 'choice-group'} aria-describedby={error ? errorId : undefined} aria-invalid={error ? true : undefined}>
        <legend>{label}</legend>
        {(field.options ?? []).map((o) => (
          <label key={o} className="check">
            <input type="checkbox" checked={list.includes(o)} onChange={(e) => onChange(e.target.checked ? [...list, o] : list.filter((x) => x !== o))} />
            {o}
          </label>
        ))}
        {error && (
          <span className="field-error" id={errorId}>
            {error}
          </span>
        )}
      </fieldset>
    );
  }
  const v = Array.isArray(value) ? '' : value;
  const set = (x: string) => onChange(x);
  let control;
  if (field.type === 'boolean' || field.type === 'choice')
    control = (
      <select value={v} onChange={(e) => set(e.target.value)}>
        <option value="">{t('p.notSet')}</option>
        {field.type === 'boolean' ? (
          <>
            <option value="true">{t('common.yes')}</option>
            <option value="false">{t('common.no')}</option>
          </>
        ) : (
          (field.options ?? []).map((o) => (
            <option key={o} value={o}>
              {o}
            </option>
          ))
        )}
      </select>
    );
  else if (field.type === 'date') control = <input type="date" value={v} onChange={(e) => set(e.target.value)} />;
  else if (field.type === 'number') control = <input type="text" inputMode="decimal" value={v} onChange={(e) => set(e.target.value)} />;
  else if (field.key === 'email') control = <input type="email" autoComplete="off" spellCheck={false} maxLength={320} aria-required={required || undefined} value={v} onChange={(e) => set(e.target.value)} />;
  else control = <input type="text" maxLength={field.scope === 'builtin' ? 500 : 10_000} value={v} onChange={(e) => set(e.target.value)} />;
  return (
    <Field label={required ? t('p.required', { label }) : label} error={error}>
      {control}
    </Field>
  );
}

/** The inputs of a list of fields, in groups with a heading each. */
export function PersonFields({
  groups,
  draft,
  errors,
  onChange,
  emailRequired,
}: {
  groups: { title?: string; fields: FieldDef[] }[];
  draft: Draft;
  errors: FieldErrors;
  onChange(key: string, v: string | string[]): void;
  emailRequired?: boolean;
}) {
  return (
    <>
      {groups
        .filter((g) => g.fields.length)
        .map((g, i) => (
          <div key={i} className="person-group">
            {g.title && <h3>{g.title}</h3>}
            <div className="person-grid">
              {g.fields.map((f) => (
                <FieldInput key={f.key} field={f} value={draft[f.key] ?? ''} error={errors[f.key]} onChange={(v) => onChange(f.key, v)} required={f.key === 'email' && emailRequired} />
              ))}
            </div>
          </div>
        ))}
    </>
  );
}

/** Moves the focus to the first input the last attempt found wrong (after the render showing it). */
export function useFocusFirstInvalid(attempt: number) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!attempt) return;
    const el = ref.current?.querySelector<HTMLElement>('[aria-invalid="true"]');
    if (el instanceof HTMLFieldSetElement) el.querySelector<HTMLElement>('input')?.focus();
    else el?.focus();
  }, [attempt]);
  return ref;
}

/**
 * A dialog to register one new person: a contact of the audience, or a participant / member (then
 * `fields` includes that event's or community's own fields). `save` sends the body to the API.
 */
export function NewPersonDialog({
  title,
  intro,
  audienceId,
  what,
  groups,
  emailRequired,
  save,
  onClose,
}: {
  title: string;
  intro?: ReactNode;
  audienceId: string;
  what: 'contact' | 'participant' | 'member';
  groups: { title?: string; fields: FieldDef[] }[];
  emailRequired: boolean;
  save(body: Record<string, unknown>): Promise<unknown>;
  onClose(): void;
}) {
  const t = useT(messages);
  const all = groups.flatMap((g) => g.fields);
  const [draft, setDraft] = useState<Draft>(() => draftOf(all, {}));
  const [errors, setErrors] = useState<FieldErrors>({});
  const [message, setMessage] = useState<ReactNode>(null);
  const [busy, setBusy] = useState(false);
  const [attempt, setAttempt] = useState(0);
  const ref = useFocusFirstInvalid(attempt);
  const fail = (m: ReactNode, f: FieldErrors) => {
    setMessage(m);
    setErrors(f);
    setAttempt((n) => n + 1);
  };
  return (
    <Dialog
      title={title}
      wide
      noValidate
      onClose={onClose}
      onSubmit={async () => {
        const { body, errors: found, changed } = bodyOf(all, draft, t, { emailRequired });
        if (Object.keys(found).length) return fail(t('p.checkFields'), found);
        if (!changed) return fail(t('p.nothingGiven'), {});
        setBusy(true);
        setMessage(null);
        try {
          await save(body);
          onClose();
        } catch (e) {
          const x = explain(e, t, audienceId, what);
          fail(x.message, x.fields);
          setBusy(false);
        }
      }}
      footer={
        <>
          <button type="button" onClick={onClose}>
            {t('common.cancel')}
          </button>
          <button type="submit" className="primary" disabled={busy}>
            {busy ? t('common.working') : t('common.add')}
          </button>
        </>
      }
    >
      <div ref={ref}>
        {intro && <p className="muted">{intro}</p>}
        <PersonFields
          groups={groups}
          draft={draft}
          errors={errors}
          emailRequired={emailRequired}
          onChange={(k, v) => {
            setDraft((d) => ({ ...d, [k]: v }));
            if (errors[k]) setErrors(({ [k]: _, ...rest }) => rest);
          }}
        />
        {message && (
          <p role="alert" className="error">
            {message}
          </p>
        )}
      </div>
    </Dialog>
  );
}

/** The built-in fields as field definitions, in the order a form shows them. */
export function builtinDefs(keys: readonly BuiltinKey[] = BUILTIN_KEYS): FieldDef[] {
  return keys.map((key) => ({ key, label: key, type: 'text', options: null, scope: 'builtin', central: true }));
}
