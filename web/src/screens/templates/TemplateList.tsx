import { useState } from 'react';
import { Link, useNavigate } from 'react-router-dom';
import { useQueryClient } from '@tanstack/react-query';
import { post } from '../../api.ts';
import { IfRole } from '../../auth.tsx';
import { FormDialog } from '../../components/FormDialog.tsx';
import { Field, QueryStatus } from '../../components/Status.tsx';
import { useFormat, useT } from '../../i18n/index.tsx';
import { AudienceSelect, NoAudience, useAudienceChoice } from '../campaigns/shared/audience.tsx';
import { BUILTINS, tplKeys, useTemplates, type Builtin, type Template } from './data.ts';
import { messages } from './messages.ts';

function FromBuiltinDialog({ audienceId, onClose }: { audienceId: string; onClose(): void }) {
  const t = useT(messages);
  const qc = useQueryClient();
  const navigate = useNavigate();
  const [builtin, setBuiltin] = useState<Builtin>('re_permission');
  const [language, setLanguage] = useState<'fr' | 'en'>('fr');
  const [name, setName] = useState('');
  // Named in the interface language when left empty (the API's own default is the kind's code: "re permission (fr)").
  const defaultName = `${t(`tpl.builtinName.${builtin}`)} (${language})`;
  return (
    <FormDialog
      title={t('tpl.fromBuiltin')}
      submitLabel={t('common.create')}
      onClose={onClose}
      onSubmit={async () => {
        const created = await post<Template>(`/v1/audiences/${audienceId}/templates/from-builtin`, { builtin, language, name: name.trim() || defaultName });
        await qc.invalidateQueries({ queryKey: tplKeys.list(audienceId) });
        navigate(`/templates/${audienceId}/${created.id}`);
      }}
    >
      <Field label={t('tpl.builtin')}>
        <select value={builtin} onChange={(e) => setBuiltin(e.target.value as Builtin)} data-autofocus="">
          {BUILTINS.map((b) => (
            <option key={b} value={b}>
              {t(`tpl.builtin.${b}`)}
            </option>
          ))}
        </select>
      </Field>
      <Field label={t('tpl.language')}>
        <select value={language} onChange={(e) => setLanguage(e.target.value as 'fr' | 'en')}>
          <option value="fr">Français</option>
          <option value="en">English</option>
        </select>
      </Field>
      <Field label={t('tpl.nameOptional')}>
        <input maxLength={200} value={name} placeholder={defaultName} onChange={(e) => setName(e.target.value)} />
      </Field>
    </FormDialog>
  );
}

export function TemplateList() {
  const t = useT(messages);
  const fmt = useFormat();
  const choice = useAudienceChoice();
  const templates = useTemplates(choice.audienceId);
  const [builtinOpen, setBuiltinOpen] = useState(false);
  const aid = choice.audienceId;
  return (
    <div className="page">
      <div className="page-head">
        <h1>{t('tpl.title')}</h1>
        <AudienceSelect value={aid} onChange={choice.setAudienceId} />
        {aid && (
          <IfRole min="editor">
            <div className="toolbar">
              <button type="button" onClick={() => setBuiltinOpen(true)}>
                {t('tpl.fromBuiltin')}
              </button>
              <Link className="button primary" to={`/templates/${aid}/new`}>
                {t('tpl.new')}
              </Link>
            </div>
          </IfRole>
        )}
      </div>
      <QueryStatus query={choice}>
        {!aid ? (
          <NoAudience />
        ) : (
          <QueryStatus query={templates}>
            {templates.data?.length ? (
              <table className="simple card">
                <caption className="visually-hidden">{t('tpl.title')}</caption>
                <thead>
                  <tr>
                    <th scope="col">{t('common.name')}</th>
                    <th scope="col">{t('tpl.category')}</th>
                    <th scope="col">{t('tpl.language')}</th>
                    <th scope="col">{t('tpl.format')}</th>
                    <th scope="col">{t('tpl.version')}</th>
                    <th scope="col">{t('tpl.updated')}</th>
                  </tr>
                </thead>
                <tbody>
                  {templates.data.map((tpl) => (
                    <tr key={tpl.id}>
                      <td>
                        <Link to={`/templates/${aid}/${tpl.id}`}>{tpl.name}</Link>
                        {tpl.builtin_kind && <span className="badge">{t('tpl.replaces', { kind: t(`tpl.builtin.${tpl.builtin_kind}`) })}</span>}
                      </td>
                      <td>
                        <span className={`badge cat-${tpl.category}`}>{t(`tpl.cat.${tpl.category}`)}</span>
                      </td>
                      <td>{tpl.language}</td>
                      <td>{tpl.format.toUpperCase()}</td>
                      <td>{tpl.version}</td>
                      <td>{fmt.dateTime(tpl.updated_at)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            ) : (
              <p className="muted">{t('tpl.none')}</p>
            )}
          </QueryStatus>
        )}
      </QueryStatus>
      {builtinOpen && aid && <FromBuiltinDialog audienceId={aid} onClose={() => setBuiltinOpen(false)} />}
    </div>
  );
}
