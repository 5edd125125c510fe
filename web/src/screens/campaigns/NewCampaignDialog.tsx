import { useState } from 'react';
import { useNavigate } from 'react-router-dom';
import { useQueryClient } from '@tanstack/react-query';
import { post } from '../../api.ts';
import { FormDialog } from '../../components/FormDialog.tsx';
import { Field } from '../../components/Status.tsx';
import { useT } from '../../i18n/index.tsx';
import { useTemplates } from '../templates/data.ts';
import { campKeys, useViews, type Campaign } from './data.ts';
import { messages } from './messages.ts';
import { fromLocalInput, toLocalInput } from './shared/time.ts';

/**
 * A new campaign, saved as a draft: its screen then shows the dry run (who would get it, who each
 * rule blocks and why) before anyone presses "Send now" or "Schedule".
 */
export function NewCampaignDialog({ audienceId, onClose }: { audienceId: string; onClose(): void }) {
  const t = useT(messages);
  const qc = useQueryClient();
  const navigate = useNavigate();
  const templates = useTemplates(audienceId);
  const views = useViews(audienceId);
  const usable = (templates.data ?? []).filter((x) => x.category !== 'transactional');
  const [name, setName] = useState('');
  const [templateId, setTemplateId] = useState('');
  const [viewId, setViewId] = useState('');
  const [when, setWhen] = useState<'now' | 'later'>('now');
  const [sendAt, setSendAt] = useState(toLocalInput(new Date(Date.now() + 86_400_000)));
  const [recurring, setRecurring] = useState(false);
  const [every, setEvery] = useState(60);
  const [repermission, setRepermission] = useState(false);
  const [deadline, setDeadline] = useState(toLocalInput(new Date(Date.now() + 14 * 86_400_000)));
  const tpl = templateId || usable[0]?.id || '';
  const view = viewId || views.data?.[0]?.id || '';
  return (
    <FormDialog
      title={t('camp.new')}
      submitLabel={t('camp.createDraft')}
      wide
      onClose={onClose}
      onSubmit={async () => {
        const c = await post<Campaign>(`/v1/audiences/${audienceId}/campaigns`, {
          name,
          template_id: tpl,
          target: { view_id: view },
          ...(when === 'later' ? { send_at: fromLocalInput(sendAt) } : {}),
          ...(recurring && !repermission ? { every_minutes: every } : {}),
          ...(repermission ? { repermission: { deadline: fromLocalInput(deadline) } } : {}),
        });
        await qc.invalidateQueries({ queryKey: campKeys.list(audienceId) });
        navigate(`/campaigns/${c.id}`);
      }}
    >
      <Field label={t('common.name')}>
        <input required maxLength={200} value={name} onChange={(e) => setName(e.target.value)} />
      </Field>
      <div className="row">
        <Field label={t('camp.template')} hint={usable.length ? undefined : t('camp.noTemplate')}>
          <select required value={tpl} onChange={(e) => setTemplateId(e.target.value)}>
            {usable.map((x) => (
              <option key={x.id} value={x.id}>
                {x.name} ({x.category})
              </option>
            ))}
          </select>
        </Field>
        <Field label={t('camp.view')} hint={views.data?.length ? t('camp.viewHint') : t('camp.noView')}>
          <select required value={view} onChange={(e) => setViewId(e.target.value)}>
            {(views.data ?? []).map((v) => (
              <option key={v.id} value={v.id}>
                {v.name}
              </option>
            ))}
          </select>
        </Field>
      </div>
      <fieldset className="choice">
        <legend>{t('camp.when')}</legend>
        <label>
          <input type="radio" name="when" checked={when === 'now'} onChange={() => setWhen('now')} /> {t('camp.whenNow')}
        </label>
        <label>
          <input type="radio" name="when" checked={when === 'later'} onChange={() => setWhen('later')} /> {t('camp.whenLater')}
        </label>
        {when === 'later' && (
          <Field label={t('camp.sendAt')}>
            <input type="datetime-local" required value={sendAt} onChange={(e) => setSendAt(e.target.value)} />
          </Field>
        )}
      </fieldset>
      <fieldset className="choice">
        <legend>{t('camp.kind')}</legend>
        <label>
          <input type="checkbox" checked={recurring} disabled={repermission} onChange={(e) => setRecurring(e.target.checked)} /> {t('camp.recurring')}
        </label>
        {recurring && !repermission && (
          <Field label={t('camp.everyMinutes')} hint={t('camp.recurringHint')}>
            <input type="number" min={5} max={10080} required value={every} onChange={(e) => setEvery(Number(e.target.value))} />
          </Field>
        )}
        <label>
          <input type="checkbox" checked={repermission} onChange={(e) => setRepermission(e.target.checked)} /> {t('camp.repermission')}
        </label>
        {repermission && (
          <Field label={t('camp.deadline')} hint={t('camp.repermissionHint')}>
            <input type="datetime-local" required value={deadline} onChange={(e) => setDeadline(e.target.value)} />
          </Field>
        )}
      </fieldset>
    </FormDialog>
  );
}
