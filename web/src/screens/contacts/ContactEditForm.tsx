import { useEffect, useState, type ReactNode } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import { patch } from '../../api.ts';
import { useToast } from '../../components/Toast.tsx';
import { useT } from '../../i18n/index.tsx';
import { gridKeys, type ContactDetail, type FieldDef } from './data.ts';
import { messages } from './messages.ts';
import { bodyOf, builtinDefs, draftOf, explain, PersonFields, useFocusFirstInvalid, type Draft, type FieldErrors } from './person-form.tsx';

/**
 * The contact's fields as a form, in place of the table on the detail screen: the built-in fields
 * and the audience's central fields; only what changed is sent. Escape or Cancel leaves it unsaved.
 */
export function ContactEditForm({ audienceId, contact, central, onDone }: { audienceId: string; contact: ContactDetail; central: FieldDef[]; onDone(): void }) {
  const t = useT(messages);
  const qc = useQueryClient();
  const toast = useToast();
  const builtins = builtinDefs(['last_name', 'first_name', 'email', 'company', 'job_title']);
  const all = [...builtins, ...central];
  const [initial] = useState<Draft>(() => draftOf(all, { ...contact.fields, email: contact.email, first_name: contact.first_name, last_name: contact.last_name, company: contact.company, job_title: contact.job_title }));
  const [draft, setDraft] = useState<Draft>(initial);
  const [errors, setErrors] = useState<FieldErrors>({});
  const [message, setMessage] = useState<ReactNode>(null);
  const [busy, setBusy] = useState(false);
  const [attempt, setAttempt] = useState(0);
  const ref = useFocusFirstInvalid(attempt);
  useEffect(() => {
    ref.current?.querySelector<HTMLElement>('input, select')?.focus();
  }, []); // eslint-disable-line react-hooks/exhaustive-deps
  const fail = (m: ReactNode, f: FieldErrors) => {
    setMessage(m);
    setErrors(f);
    setAttempt((n) => n + 1);
  };

  async function save() {
    const { body, errors: found, changed } = bodyOf(all, draft, t, { emailRequired: true, initial });
    if (Object.keys(found).length) return fail(t('p.checkFields'), found);
    if (!changed) {
      toast.success(t('p.noChange'));
      return onDone();
    }
    setBusy(true);
    setMessage(null);
    try {
      const saved = await patch<ContactDetail>(`/v1/audiences/${audienceId}/contacts/${contact.id}`, body);
      qc.setQueryData(gridKeys.contact(audienceId, contact.id), saved);
      void qc.invalidateQueries({ queryKey: gridKeys.all(audienceId) });
      toast.success(t('p.saved'));
      onDone();
    } catch (e) {
      const x = explain(e, t, audienceId, 'contact');
      fail(x.message, x.fields);
      setBusy(false);
    }
  }

  return (
    <form
      className="person-form"
      noValidate
      aria-label={t('p.edit')}
      onSubmit={(e) => {
        e.preventDefault();
        void save();
      }}
      onKeyDown={(e) => {
        if (e.key === 'Escape') {
          e.preventDefault();
          onDone();
        }
      }}
    >
      <div ref={ref}>
        <p className="muted">{t('p.editIntro')}</p>
        <PersonFields
          groups={[{ fields: builtins }, { title: t('p.centralFields'), fields: central }]}
          draft={draft}
          errors={errors}
          emailRequired
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
      <div className="toolbar">
        <button type="submit" className="primary" disabled={busy}>
          {busy ? t('common.working') : t('common.save')}
        </button>
        <button type="button" onClick={onDone}>
          {t('common.cancel')}
        </button>
      </div>
    </form>
  );
}
