import { useId, useState } from 'react';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { get, post } from '../../api.ts';
import { IfRole } from '../../auth.tsx';
import { FormDialog } from '../../components/FormDialog.tsx';
import { Field, QueryStatus } from '../../components/Status.tsx';
import { useToast } from '../../components/Toast.tsx';
import { useFormat, useT } from '../../i18n/index.tsx';
import { AudienceSelect, NoAudience, useAudienceChoice } from '../campaigns/shared/audience.tsx';
import { messages } from './messages.ts';

interface SignupForm {
  id: string;
  name: string;
  language: 'fr' | 'en';
  wording: string;
  wording_version: string;
  success_url: string | null;
  created_at: string;
  disabled_at: string | null;
  hosted_url: string;
  embed_html: string;
}

const key = (audienceId: string) => ['consent', 'forms', audienceId] as const;

function NewFormDialog({ audienceId, onClose }: { audienceId: string; onClose(): void }) {
  const t = useT(messages);
  const qc = useQueryClient();
  const [name, setName] = useState('');
  const [language, setLanguage] = useState<'fr' | 'en'>('fr');
  const [wording, setWording] = useState('');
  const [version, setVersion] = useState(new Date().toISOString().slice(0, 10));
  const [successUrl, setSuccessUrl] = useState('');
  return (
    <FormDialog
      title={t('cons.fm.new')}
      submitLabel={t('common.create')}
      wide
      onClose={onClose}
      onSubmit={async () => {
        await post(`/v1/audiences/${audienceId}/signup-forms`, { name, language, wording, wording_version: version, success_url: successUrl.trim() || null });
        await qc.invalidateQueries({ queryKey: key(audienceId) });
      }}
    >
      <Field label={t('common.name')}>
        <input required maxLength={200} value={name} onChange={(e) => setName(e.target.value)} />
      </Field>
      <Field label={t('cons.fm.language')}>
        <select value={language} onChange={(e) => setLanguage(e.target.value as 'fr' | 'en')}>
          <option value="fr">Français</option>
          <option value="en">English</option>
        </select>
      </Field>
      <Field label={t('cons.fm.wording')} hint={t('cons.fm.wordingHint')}>
        <textarea required minLength={10} maxLength={2000} rows={3} value={wording} onChange={(e) => setWording(e.target.value)} />
      </Field>
      <div className="row">
        <Field label={t('cons.fm.version')}>
          <input required maxLength={100} value={version} onChange={(e) => setVersion(e.target.value)} />
        </Field>
        <Field label={t('cons.fm.successUrl')} hint={t('cons.fm.successHint')}>
          <input type="url" maxLength={2000} value={successUrl} onChange={(e) => setSuccessUrl(e.target.value)} />
        </Field>
      </div>
    </FormDialog>
  );
}

function FormCard({ form }: { form: SignupForm }) {
  const t = useT(messages);
  const fmt = useFormat();
  const toast = useToast();
  const embedId = useId();
  const headingId = useId();
  return (
    <article className="signup-form" aria-labelledby={headingId}>
      <h3 id={headingId}>{form.name}</h3>
      <p className="muted">{t('cons.fm.meta', { language: form.language, version: form.wording_version, at: fmt.date(form.created_at) })}</p>
      <blockquote className="wording">{form.wording}</blockquote>
      <p>
        {t('cons.fm.hosted')}{' '}
        <a href={form.hosted_url} target="_blank" rel="noopener noreferrer">
          {form.hosted_url}
        </a>
      </p>
      <label className="field" htmlFor={embedId}>
        <span className="field-label">{t('cons.fm.embed')}</span>
      </label>
      <textarea id={embedId} className="code" readOnly rows={6} value={form.embed_html} onFocus={(e) => e.currentTarget.select()} />
      <button
        type="button"
        onClick={() =>
          void navigator.clipboard
            .writeText(form.embed_html)
            .then(() => toast.success(t('cons.fm.copied')))
            .catch(() => toast.error(t('cons.fm.copyFailed')))
        }
      >
        {t('cons.fm.copy')}
      </button>
    </article>
  );
}

function Forms({ audienceId }: { audienceId: string }) {
  const t = useT(messages);
  const forms = useQuery({ queryKey: key(audienceId), queryFn: async () => (await get<{ forms: SignupForm[] }>(`/v1/audiences/${audienceId}/signup-forms`)).forms });
  return <QueryStatus query={forms}>{forms.data?.length ? forms.data.map((f) => <FormCard key={f.id} form={f} />) : <p className="muted">{t('cons.fm.none')}</p>}</QueryStatus>;
}

export function SignupFormsPanel() {
  const t = useT(messages);
  const choice = useAudienceChoice();
  const [open, setOpen] = useState(false);
  const aid = choice.audienceId;
  return (
    <section className="card" aria-labelledby="cons-fm-title">
      <div className="card-head">
        <h2 id="cons-fm-title">{t('cons.fm.title')}</h2>
        <div className="toolbar">
          <AudienceSelect value={aid} onChange={choice.setAudienceId} />
          {aid && (
            <IfRole min="editor">
              <button type="button" className="primary" onClick={() => setOpen(true)}>
                {t('cons.fm.new')}
              </button>
            </IfRole>
          )}
        </div>
      </div>
      <p className="muted">{t('cons.fm.explain')}</p>
      <QueryStatus query={choice}>{aid ? <Forms key={aid} audienceId={aid} /> : <NoAudience />}</QueryStatus>
      {open && aid && <NewFormDialog audienceId={aid} onClose={() => setOpen(false)} />}
    </section>
  );
}
