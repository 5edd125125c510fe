import { useEffect, useId, useState } from 'react';
import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { errorMessage, post } from '../../api.ts';
import { Field } from '../../components/Status.tsx';
import { useT } from '../../i18n/index.tsx';
import { useContactSearch, type ContactHit, type Rendered } from './data.ts';
import { messages } from './messages.ts';
import { useDebounced } from './useDebounced.ts';
import { parseVariables } from './variables.ts';

export interface DraftSource {
  category: string;
  language: string;
  subject: string;
  preheader: string;
  format: 'html' | 'mjml';
  body: string;
  text: string;
  event_id: string | null;
}

const label = (c: ContactHit) => [c.first_name, c.last_name].filter(Boolean).join(' ') || c.email;

/**
 * The live preview: the source being edited, rendered by the API for a chosen contact (or a sample
 * person) once typing pauses, shown in a sandboxed frame that loads the API's rendered document.
 */
export function PreviewPane({ audienceId, draft, variables, onVariables, onSampleVariables }: { audienceId: string; draft: DraftSource; variables: string; onVariables(v: string): void; onSampleVariables(): void }) {
  const t = useT(messages);
  const [q, setQ] = useState('');
  const [contact, setContact] = useState<ContactHit | null>(null);
  const hits = useContactSearch(audienceId, useDebounced(q, 250));
  const vars = parseVariables(variables);
  // Debounced as text: the parent builds a new draft object on every render.
  const settled = JSON.parse(useDebounced(JSON.stringify(draft), 400)) as DraftSource;
  const settledVars = parseVariables(useDebounced(variables, 400));
  const varsId = useId();
  // The query key is this body: TanStack Query compares it by value, so an unchanged draft asks nothing.
  const body = {
      template: {
        category: settled.category,
        language: settled.language || 'en',
        subject: settled.subject,
        preheader: settled.preheader || null,
        format: settled.format,
        body: settled.body,
        text: settled.text.trim() ? settled.text : null,
        event_id: settled.event_id,
      },
      ...(contact ? { contact_id: contact.id } : {}),
      variables: settledVars.ok ? settledVars.value : {},
    };
  const hasSubject = settled.subject.trim() !== '';
  const rendered = useQuery({
    queryKey: ['templates', audienceId, 'render', body],
    queryFn: () => post<Rendered>(`/v1/audiences/${audienceId}/templates/render`, body),
    // Nothing to ask before there is a subject and a body: the API would only say one is missing.
    enabled: hasSubject && settled.body.trim() !== '' && settled.language.trim().length >= 2 && settledVars.ok,
    placeholderData: keepPreviousData,
    retry: false,
    staleTime: 5 * 60_000,
  });
  // The last good render stays in view (dimmed) while the source does not compile: the frame is not torn down at each typo.
  const [lastGood, setLastGood] = useState<Rendered | null>(null);
  useEffect(() => {
    if (rendered.data) setLastGood(rendered.data);
  }, [rendered.data]);
  const shown = rendered.data ?? lastGood;

  return (
    <section className="card preview-pane" aria-labelledby="tpl-preview-title">
      <div className="card-head">
        <h2 id="tpl-preview-title">{t('tpl.preview')}</h2>
        {rendered.isFetching && (
          <span className="muted" role="status">
            {t('tpl.rendering')}
          </span>
        )}
      </div>
      <div className="preview-for">
        <p>
          {contact ? t('tpl.previewFor', { name: label(contact), email: contact.email }) : t('tpl.previewSample')}{' '}
          {contact && (
            <button type="button" className="link" onClick={() => setContact(null)}>
              {t('tpl.useSample')}
            </button>
          )}
        </p>
        <Field label={t('tpl.findContact')}>
          <input type="search" value={q} onChange={(e) => setQ(e.target.value)} placeholder={t('tpl.findContactHint')} />
        </Field>
        {q.trim() !== '' && hits.data && (
          <ul className="plain-list contact-hits" aria-label={t('tpl.contactHits')}>
            {hits.data.length === 0 && <li className="muted">{t('tpl.noContact')}</li>}
            {hits.data.map((c) => (
              <li key={c.id}>
                <button
                  type="button"
                  className="link"
                  onClick={() => {
                    setContact(c);
                    setQ('');
                  }}
                >
                  {t('tpl.previewAs', { name: label(c), email: c.email })}
                </button>
              </li>
            ))}
          </ul>
        )}
      </div>
      <details className="variables" open={variables.trim() !== '' && variables.trim() !== '{}'}>
        <summary>{t('tpl.variables')}</summary>
        <label className="field" htmlFor={varsId}>
          <span className="field-label">{t('tpl.variablesJson')}</span>
        </label>
        <textarea id={varsId} className="code" rows={4} spellCheck={false} value={variables} onChange={(e) => onVariables(e.target.value)} aria-invalid={!vars.ok} />
        {!vars.ok && (
          <p role="alert" className="error">
            {t('tpl.variablesInvalid', { message: vars.error })}
          </p>
        )}
        <button type="button" onClick={onSampleVariables}>
          {t('tpl.sampleVariables')}
        </button>
      </details>
      {!hasSubject ? (
        <p className="muted">{t('tpl.previewNeedsSubject')}</p>
      ) : rendered.error ? (
        <p role="alert" className="error preview-error">
          {t('tpl.previewError', { message: errorMessage(rendered.error) })}
        </p>
      ) : null}
      {shown && (
        <div className={rendered.error || !hasSubject ? 'preview-stale' : undefined}>
          <dl className="preview-meta">
            <dt>{t('tpl.subject')}</dt>
            <dd data-testid="preview-subject">{shown.subject}</dd>
            {shown.preheader && (
              <>
                <dt>{t('tpl.preheader')}</dt>
                <dd>{shown.preheader}</dd>
              </>
            )}
          </dl>
          <iframe className="preview-frame" sandbox="" referrerPolicy="no-referrer" title={t('tpl.previewFrame')} src={shown.html_url} />
          <details>
            <summary>{t('tpl.textPart')}</summary>
            <pre className="text-part">{shown.text}</pre>
          </details>
        </div>
      )}
      {!shown && hasSubject && !rendered.error && <p className="muted">{t('tpl.previewEmpty')}</p>}
    </section>
  );
}
