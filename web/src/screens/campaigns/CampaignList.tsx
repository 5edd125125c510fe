import { useState } from 'react';
import { Link } from 'react-router-dom';
import { IfRole } from '../../auth.tsx';
import { QueryStatus } from '../../components/Status.tsx';
import { useFormat, useT } from '../../i18n/index.tsx';
import { useTemplates } from '../templates/data.ts';
import { useCampaigns, useViews, type Campaign } from './data.ts';
import { messages } from './messages.ts';
import { NewCampaignDialog } from './NewCampaignDialog.tsx';
import { AudienceSelect, NoAudience, useAudienceChoice } from './shared/audience.tsx';
import { StatusBadge, TargetText } from './bits.tsx';

export function CampaignList() {
  const t = useT(messages);
  const fmt = useFormat();
  const choice = useAudienceChoice();
  const aid = choice.audienceId;
  const campaigns = useCampaigns(aid);
  const templates = useTemplates(aid);
  const views = useViews(aid);
  const [open, setOpen] = useState(false);
  const templateName = (c: Campaign) => templates.data?.find((x) => x.id === c.template_id)?.name ?? '';
  return (
    <div className="page">
      <div className="page-head">
        <h1>{t('camp.title')}</h1>
        <AudienceSelect value={aid} onChange={choice.setAudienceId} />
        <div className="toolbar">
          {aid && <Link to={`/campaigns/events?audience=${aid}`}>{t('camp.eventMail')}</Link>}
          {aid && (
            <IfRole min="editor">
              <button type="button" className="primary" onClick={() => setOpen(true)}>
                {t('camp.new')}
              </button>
            </IfRole>
          )}
        </div>
      </div>
      <QueryStatus query={choice}>
        {!aid ? (
          <NoAudience />
        ) : (
          <QueryStatus query={campaigns}>
            {campaigns.data?.length ? (
              <table className="simple card">
                <caption className="visually-hidden">{t('camp.title')}</caption>
                <thead>
                  <tr>
                    <th scope="col">{t('common.name')}</th>
                    <th scope="col">{t('camp.status')}</th>
                    <th scope="col">{t('camp.template')}</th>
                    <th scope="col">{t('camp.target')}</th>
                    <th scope="col" className="num">
                      {t('camp.sent')}
                    </th>
                    <th scope="col" className="num">
                      {t('camp.blocked')}
                    </th>
                    <th scope="col">{t('camp.created')}</th>
                  </tr>
                </thead>
                <tbody>
                  {campaigns.data.map((c) => (
                    <tr key={c.id}>
                      <td>
                        <Link to={`/campaigns/${c.id}`}>{c.name}</Link> {c.kind !== 'marketing' && <span className="badge">{t(`camp.kind.${c.kind}`)}</span>}
                        {c.every_minutes && <span className="badge">{t('camp.everyN', { n: c.every_minutes })}</span>}
                      </td>
                      <td>
                        <StatusBadge status={c.status} />
                      </td>
                      <td>{templateName(c)}</td>
                      <td>
                        <TargetText target={c.target} views={views.data} />
                      </td>
                      <td className="num">{fmt.number((c.all_runs ?? c.progress)?.sent ?? 0)}</td>
                      <td className="num">{fmt.number((c.all_runs ?? c.progress)?.blocked ?? 0)}</td>
                      <td>{fmt.dateTime(c.created_at)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            ) : (
              <p className="muted">{t('camp.none')}</p>
            )}
          </QueryStatus>
        )}
      </QueryStatus>
      {open && aid && <NewCampaignDialog audienceId={aid} onClose={() => setOpen(false)} />}
    </div>
  );
}
