import { Link, useParams } from 'react-router-dom';
import { QueryStatus } from '../../components/Status.tsx';
import { useT } from '../../i18n/index.tsx';
import { useCampaign } from '../campaigns/data.ts';
import { useTemplate } from '../templates/data.ts';
import { messages } from './messages.ts';
import { ReportView } from './ReportView.tsx';

export function CampaignReport() {
  const t = useT(messages);
  const { campaignId = '' } = useParams();
  const campaign = useCampaign(campaignId);
  const c = campaign.data;
  const recent = c && Date.now() - new Date(c.started_at ?? c.created_at).getTime() < 48 * 3_600_000;
  return (
    <div className="page">
      <QueryStatus query={campaign}>
        {c && (
          <>
            <div className="page-head">
              <Link to={`/reports?audience=${c.audience_id}`}>{t('rep.back')}</Link>
              <h1>{t('rep.campaignTitle', { name: c.name })}</h1>
              <Link to={`/campaigns/${c.id}`}>{t('rep.openCampaign')}</Link>
            </div>
            {c.every_minutes && <p className="muted">{t('rep.lastRun', { n: c.runs })}</p>}
            {c.message_id ? (
              <ReportView scope={{ campaign_id: c.id }} clickersOf={{ campaign_id: c.id }} defaultRange={recent ? '48h' : '30d'} />
            ) : (
              <p className="muted">{t('rep.notSent')}</p>
            )}
          </>
        )}
      </QueryStatus>
    </div>
  );
}

export function TemplateReport() {
  const t = useT(messages);
  const { audienceId = '', templateId = '' } = useParams();
  const template = useTemplate(audienceId, templateId);
  return (
    <div className="page">
      <QueryStatus query={template}>
        {template.data && (
          <>
            <div className="page-head">
              <Link to={`/reports?audience=${audienceId}`}>{t('rep.back')}</Link>
              <h1>{t('rep.templateTitle', { name: template.data.name })}</h1>
              <Link to={`/templates/${audienceId}/${templateId}`}>{t('rep.openTemplate')}</Link>
            </div>
            <p className="muted">{t('rep.templateExplain')}</p>
            <ReportView scope={{ template_id: templateId }} />
          </>
        )}
      </QueryStatus>
    </div>
  );
}
