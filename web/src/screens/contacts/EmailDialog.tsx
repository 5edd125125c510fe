import { useState } from 'react';
import { Link } from 'react-router-dom';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { errorMessage, get, post } from '../../api.ts';
import { Dialog } from '../../components/Dialog.tsx';
import { Field } from '../../components/Status.tsx';
import { useFormat, useLang, useT } from '../../i18n/index.tsx';
import type { Target } from './BulkEditDialog.tsx';
import { messages } from './messages.ts';

interface Template {
  id: string;
  name: string;
  category: string;
  language: string;
}
interface DryRun {
  total: number;
  allowed: number;
  blocked: Record<string, number>;
  /** why each rule blocks, in both interface languages */
  explanations: Record<string, string | Partial<Record<'en' | 'fr', string>>>;
}

/**
 * "Email the whole view / the selection": pick a template, see what the sending policy would do
 * (allowed, and blocked per rule), then create the campaign as a draft and go to its screen.
 */
export function EmailDialog({ audienceId, target, onClose }: { audienceId: string; target: Target; onClose(): void }) {
  const t = useT(messages);
  const fmt = useFormat();
  const { lang } = useLang();
  const qc = useQueryClient();
  const explain = (rule: string) => {
    const e = dry?.explanations[rule];
    return typeof e === 'string' ? e : (e?.[lang] ?? e?.en ?? '');
  };
  const templates = useQuery({ queryKey: ['templates', audienceId], queryFn: async () => (await get<{ templates: Template[] }>(`/v1/audiences/${audienceId}/templates`)).templates });
  const usable = (templates.data ?? []).filter((tp) => tp.category === 'marketing');
  const [templateId, setTemplateId] = useState('');
  const [name, setName] = useState('');
  const [dry, setDry] = useState<DryRun | null>(null);
  const [created, setCreated] = useState<{ id: string; name: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const chosen = templateId || usable[0]?.id || '';

  async function run<T>(fn: () => Promise<T>) {
    setBusy(true);
    setError(null);
    try {
      return await fn();
    } catch (e) {
      setError(errorMessage(e));
      return undefined;
    } finally {
      setBusy(false);
    }
  }
  const selection = 'contact_ids' in target;
  return (
    <Dialog
      title={selection ? t('c.emailSelection') : t('c.emailView')}
      wide
      onClose={onClose}
      onSubmit={async () => {
        if (created) return onClose();
        if (!dry) {
          const r = await run(() => post<DryRun>(`/v1/audiences/${audienceId}/campaigns/dry-run`, { template_id: chosen, target }));
          if (r) setDry(r);
          return;
        }
        const c = await run(() => post<{ id: string; name: string }>(`/v1/audiences/${audienceId}/campaigns`, { name, template_id: chosen, target }));
        if (c) {
          setCreated(c);
          void qc.invalidateQueries({ queryKey: ['campaigns'] });
        }
      }}
      footer={
        created ? (
          <button type="submit" className="primary">
            {t('common.close')}
          </button>
        ) : (
          <>
            <button type="button" onClick={onClose}>
              {t('common.cancel')}
            </button>
            <button type="submit" className="primary" disabled={busy || !chosen || (dry !== null && !name.trim())}>
              {busy ? t('common.working') : dry ? t('c.createCampaign') : t('c.checkRecipients')}
            </button>
          </>
        )
      }
    >
      {templates.isPending ? (
        <p role="status">{t('app.loading')}</p>
      ) : usable.length === 0 ? (
        <p>{t('c.noMarketingTemplate')}</p>
      ) : (
        <Field label={t('c.template')}>
          <select
            value={chosen}
            disabled={created !== null}
            onChange={(e) => {
              setTemplateId(e.target.value);
              setDry(null);
            }}
          >
            {usable.map((tp) => (
              <option key={tp.id} value={tp.id}>
                {tp.name} ({tp.language})
              </option>
            ))}
          </select>
        </Field>
      )}
      {dry && (
        <section aria-labelledby="dry-title" className="dry-run">
          <h3 id="dry-title">{t('c.dryRunTitle')}</h3>
          <table className="simple">
            <tbody>
              <tr>
                <th scope="row">{t('c.dryTotal')}</th>
                <td data-testid="dry-total">{fmt.number(dry.total)}</td>
              </tr>
              <tr>
                <th scope="row">{t('c.dryAllowed')}</th>
                <td className="ok" data-testid="dry-allowed">
                  {fmt.number(dry.allowed)}
                </td>
              </tr>
              {Object.entries(dry.blocked).map(([rule, n]) => (
                <tr key={rule}>
                  <th scope="row">
                    {t('c.dryBlocked', { rule })}
                    <div className="muted small">{explain(rule)}</div>
                  </th>
                  <td className="error">{fmt.number(n)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {!created && (
            <Field label={t('c.campaignName')}>
              <input required maxLength={200} value={name} onChange={(e) => setName(e.target.value)} autoFocus />
            </Field>
          )}
        </section>
      )}
      {created && (
        <p role="status" className="ok">
          {t('c.campaignCreated', { name: created.name })} <Link to={`/campaigns/${created.id}`}>{t('c.openCampaign')}</Link>
        </p>
      )}
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
    </Dialog>
  );
}
