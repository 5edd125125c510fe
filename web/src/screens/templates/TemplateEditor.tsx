import { useState } from 'react';
import { Link, useNavigate, useParams } from 'react-router-dom';
import { useQueryClient } from '@tanstack/react-query';
import { del, errorMessage, patch, post } from '../../api.ts';
import { IfRole, useAuth } from '../../auth.tsx';
import { ConfirmDialog } from '../../components/ConfirmDialog.tsx';
import { FormDialog } from '../../components/FormDialog.tsx';
import { Field, QueryStatus } from '../../components/Status.tsx';
import { useToast } from '../../components/Toast.tsx';
import { useLang, useT, type Lang } from '../../i18n/index.tsx';
import { useCommunities, useEvents } from '../audiences/data.ts';
import { CATEGORIES, tplKeys, useTemplate, type Category, type Template } from './data.ts';
import { messages } from './messages.ts';
import { PreviewPane } from './PreviewPane.tsx';
import { parseVariables, sampleVariables } from './variables.ts';

interface Draft {
  name: string;
  category: Category;
  language: string;
  subject: string;
  preheader: string;
  format: 'html' | 'mjml';
  body: string;
  text: string;
  tracking: boolean;
  /** `event:<id>`, `community:<id>` or '' */
  about: string;
  from_name: string;
  from_email: string;
  reply_to: string;
}

/** The starting body of a new template, in the interface language (the template's language too). */
const BLANK_BODY: Record<Lang, string> = {
  en: '<p>Hello {{ first_name }},</p>\n\n<p>…</p>\n\n<p><a href="[UNSUBLINK]">Unsubscribe</a></p>\n',
  fr: '<p>Bonjour {{ first_name }},</p>\n\n<p>…</p>\n\n<p><a href="[UNSUBLINK]">Se désabonner</a></p>\n',
};

const blankDraft = (lang: Lang): Draft => ({
  name: '',
  category: 'marketing',
  language: lang,
  subject: '',
  preheader: '',
  format: 'html',
  body: BLANK_BODY[lang],
  text: '',
  tracking: true,
  about: '',
  from_name: '',
  from_email: '',
  reply_to: '',
});

function draftOf(t: Template): Draft {
  return {
    name: t.name,
    category: t.category,
    language: t.language,
    subject: t.subject,
    preheader: t.preheader ?? '',
    format: t.format,
    body: t.body,
    text: t.text ?? '',
    tracking: t.tracking,
    about: t.event_id ? `event:${t.event_id}` : t.community_id ? `community:${t.community_id}` : '',
    from_name: t.from_name ?? '',
    from_email: t.from_email ?? '',
    reply_to: t.reply_to ?? '',
  };
}

/** The API body of a draft: empty optional texts are nulls, the scope is an event or a community. */
function payload(d: Draft) {
  const orNull = (s: string) => (s.trim() === '' ? null : s);
  const [kind, id] = d.about.split(':');
  return {
    name: d.name,
    category: d.category,
    language: d.language,
    subject: d.subject,
    preheader: orNull(d.preheader),
    format: d.format,
    body: d.body,
    text: orNull(d.text),
    tracking: d.tracking,
    event_id: kind === 'event' ? id : null,
    community_id: kind === 'community' ? id : null,
    from_name: orNull(d.from_name),
    from_email: orNull(d.from_email),
    reply_to: orNull(d.reply_to),
  };
}

function TestSendDialog({ audienceId, template, variables, onClose }: { audienceId: string; template: Template; variables: string; onClose(): void }) {
  const t = useT(messages);
  const toast = useToast();
  const [email, setEmail] = useState('');
  return (
    <FormDialog
      title={t('tpl.testTitle', { name: template.name })}
      submitLabel={t('tpl.testSend')}
      onClose={onClose}
      onSubmit={async () => {
        const vars = parseVariables(variables);
        if (!vars.ok) throw new Error(t('tpl.variablesInvalid', { message: vars.error }));
        await post(`/v1/audiences/${audienceId}/templates/${template.id}/test`, { email, variables: vars.value });
        toast.success(t('tpl.testSent', { email }));
      }}
    >
      <p>{t('tpl.testExplain')}</p>
      <Field label={t('tpl.testTo')}>
        <input type="email" required autoComplete="email" value={email} onChange={(e) => setEmail(e.target.value)} />
      </Field>
    </FormDialog>
  );
}

function AboutSelect({ audienceId, value, onChange, required, disabled }: { audienceId: string; value: string; onChange(v: string): void; required: boolean; disabled: boolean }) {
  const t = useT(messages);
  const events = useEvents(audienceId);
  const communities = useCommunities(audienceId);
  return (
    <Field label={t('tpl.about')} hint={required ? t('tpl.aboutRequired') : t('tpl.aboutHint')}>
      <select value={value} onChange={(e) => onChange(e.target.value)} required={required} disabled={disabled}>
        <option value="">{t('tpl.aboutNone')}</option>
        {!!events.data?.length && (
          <optgroup label={t('tpl.events')}>
            {events.data.map((e) => (
              <option key={e.id} value={`event:${e.id}`}>
                {e.name}
              </option>
            ))}
          </optgroup>
        )}
        {!!communities.data?.length && (
          <optgroup label={t('tpl.communities')}>
            {communities.data.map((c) => (
              <option key={c.id} value={`community:${c.id}`}>
                {c.name}
              </option>
            ))}
          </optgroup>
        )}
      </select>
    </Field>
  );
}

function EditorForm({ audienceId, initial }: { audienceId: string; initial: Template | null }) {
  const t = useT(messages);
  const { me, can } = useAuth();
  const qc = useQueryClient();
  const navigate = useNavigate();
  const toast = useToast();
  const [saved, setSaved] = useState<Template | null>(initial);
  const { lang } = useLang();
  const [draft, setDraft] = useState<Draft>(() => (initial ? draftOf(initial) : blankDraft(lang)));
  const sample = (d: Draft) => JSON.stringify(sampleVariables([d.subject, d.preheader, d.body, d.text], { organisation: me.organisation.name }), null, 2);
  const [variables, setVariables] = useState(() => sample(draft));
  const [saving, setSaving] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [dialog, setDialog] = useState<'test' | 'delete' | null>(null);
  const editable = can('editor');
  const dirty = !saved || JSON.stringify(payload(draft)) !== JSON.stringify(payload(draftOf(saved)));
  const set = <K extends keyof Draft>(k: K, v: Draft[K]) => setDraft((d) => ({ ...d, [k]: v }));

  async function save() {
    setSaving(true);
    setError(null);
    try {
      const body = payload(draft);
      const r = saved ? await patch<Template>(`/v1/audiences/${audienceId}/templates/${saved.id}`, { ...body, version: saved.version }) : await post<Template>(`/v1/audiences/${audienceId}/templates`, body);
      setSaved(r);
      qc.setQueryData(tplKeys.one(audienceId, r.id), r);
      await qc.invalidateQueries({ queryKey: tplKeys.list(audienceId), exact: true });
      toast.success(t('tpl.saved', { name: r.name, version: r.version }));
      if (!saved) navigate(`/templates/${audienceId}/${r.id}`, { replace: true });
    } catch (e) {
      setError(errorMessage(e));
    } finally {
      setSaving(false);
    }
  }

  const [aboutKind, aboutId] = draft.about.split(':');
  return (
    <div className="page">
      <div className="page-head">
        <Link to={`/templates?audience=${audienceId}`}>{t('tpl.back')}</Link>
        <h1>{saved ? saved.name : t('tpl.new')}</h1>
        {saved && <span className="badge">{t('tpl.versionN', { n: saved.version })}</span>}
        {saved && dirty && <span className="badge warn">{t('tpl.unsaved')}</span>}
        <IfRole min="editor">
          <div className="toolbar">
            {saved && (
              <button type="button" onClick={() => setDialog('delete')}>
                {t('common.delete')}
              </button>
            )}
            <button type="button" disabled={!saved || dirty} title={saved && dirty ? t('tpl.saveBeforeTest') : undefined} onClick={() => setDialog('test')}>
              {t('tpl.testSend')}
            </button>
            <button type="submit" form="tpl-form" className="primary" disabled={saving || !dirty}>
              {saving ? t('common.working') : t('common.save')}
            </button>
          </div>
        </IfRole>
      </div>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      <div className="editor-layout">
        <form
          id="tpl-form"
          className="card editor-form"
          aria-label={t('tpl.editorForm')}
          onSubmit={(e) => {
            e.preventDefault();
            void save();
          }}
        >
          <fieldset disabled={!editable}>
            <Field label={t('common.name')}>
              <input required maxLength={200} value={draft.name} onChange={(e) => set('name', e.target.value)} />
            </Field>
            <div className="row">
              <Field label={t('tpl.category')} hint={t(`tpl.catHint.${draft.category}`)}>
                <select value={draft.category} onChange={(e) => set('category', e.target.value as Category)}>
                  {CATEGORIES.map((c) => (
                    <option key={c} value={c}>
                      {t(`tpl.cat.${c}`)}
                    </option>
                  ))}
                </select>
              </Field>
              <Field label={t('tpl.language')}>
                <input required minLength={2} maxLength={35} list="tpl-languages" value={draft.language} onChange={(e) => set('language', e.target.value)} />
              </Field>
              <datalist id="tpl-languages">
                <option value="fr" />
                <option value="en" />
              </datalist>
            </div>
            <AboutSelect audienceId={audienceId} value={draft.about} onChange={(v) => set('about', v)} required={draft.category === 'participation'} disabled={!editable} />
            <Field label={t('tpl.subject')}>
              <input required maxLength={2000} value={draft.subject} onChange={(e) => set('subject', e.target.value)} />
            </Field>
            <Field label={t('tpl.preheader')} hint={t('tpl.preheaderHint')}>
              <input maxLength={2000} value={draft.preheader} onChange={(e) => set('preheader', e.target.value)} />
            </Field>
            <fieldset className="inline-choice">
              <legend>{t('tpl.format')}</legend>
              {(['html', 'mjml'] as const).map((f) => (
                <label key={f}>
                  <input type="radio" name="format" value={f} checked={draft.format === f} onChange={() => set('format', f)} /> {f.toUpperCase()}
                </label>
              ))}
            </fieldset>
            <Field label={t('tpl.source', { format: draft.format.toUpperCase() })} hint={t('tpl.sourceHint')}>
              <textarea className="code source" required spellCheck={false} rows={18} value={draft.body} onChange={(e) => set('body', e.target.value)} />
            </Field>
            <details>
              <summary>{t('tpl.more')}</summary>
              <Field label={t('tpl.textBody')} hint={t('tpl.textHint')}>
                <textarea className="code" spellCheck={false} rows={6} value={draft.text} onChange={(e) => set('text', e.target.value)} />
              </Field>
              <div className="row">
                <Field label={t('tpl.fromName')}>
                  <input maxLength={200} value={draft.from_name} onChange={(e) => set('from_name', e.target.value)} />
                </Field>
                <Field label={t('tpl.fromEmail')}>
                  <input type="email" maxLength={320} value={draft.from_email} onChange={(e) => set('from_email', e.target.value)} />
                </Field>
                <Field label={t('tpl.replyTo')}>
                  <input type="email" maxLength={320} value={draft.reply_to} onChange={(e) => set('reply_to', e.target.value)} />
                </Field>
              </div>
              <label className="check">
                <input type="checkbox" checked={draft.tracking} onChange={(e) => set('tracking', e.target.checked)} /> {t('tpl.tracking')}
              </label>
            </details>
          </fieldset>
        </form>
        <PreviewPane
          audienceId={audienceId}
          draft={{ ...draft, event_id: aboutKind === 'event' ? (aboutId ?? null) : null }}
          variables={variables}
          onVariables={setVariables}
          onSampleVariables={() => setVariables(sample(draft))}
        />
      </div>
      {dialog === 'test' && saved && <TestSendDialog audienceId={audienceId} template={saved} variables={variables} onClose={() => setDialog(null)} />}
      {dialog === 'delete' && saved && (
        <ConfirmDialog
          title={t('tpl.deleteTitle', { name: saved.name })}
          danger
          confirmLabel={t('common.delete')}
          onClose={() => setDialog(null)}
          onConfirm={async () => {
            await del(`/v1/audiences/${audienceId}/templates/${saved.id}`);
            await qc.invalidateQueries({ queryKey: tplKeys.list(audienceId), exact: true });
            toast.success(t('tpl.deleted', { name: saved.name }));
            navigate(`/templates?audience=${audienceId}`);
          }}
        >
          {t('tpl.deleteText')}
        </ConfirmDialog>
      )}
    </div>
  );
}

export function TemplateEditor() {
  const { audienceId = '', templateId } = useParams();
  const existing = useTemplate(audienceId, templateId);
  if (!templateId) return <EditorForm key="new" audienceId={audienceId} initial={null} />;
  return <QueryStatus query={existing}>{existing.data && <EditorForm key={existing.data.id} audienceId={audienceId} initial={existing.data} />}</QueryStatus>;
}
