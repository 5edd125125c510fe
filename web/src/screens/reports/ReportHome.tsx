import { Link } from 'react-router-dom';
import { QueryStatus } from '../../components/Status.tsx';
import { useFormat, useT } from '../../i18n/index.tsx';
import { useCampaigns } from '../campaigns/data.ts';
import { AudienceSelect, NoAudience, useAudienceChoice } from '../campaigns/shared/audience.tsx';
import { useTemplates } from '../templates/data.ts';
import { messages } from './messages.ts';
import { ReportView } from './ReportView.tsx';

function AudienceReports({ audienceId }: { audienceId: string }) {
  const t = useT(messages);
  const fmt = useFormat();
  const campaigns = useCampaigns(audienceId);
  const templates = useTemplates(audienceId);
  return (
    <>
      <div className="columns-2">
        <section className="card" aria-labelledby="rep-campaigns-title">
          <h2 id="rep-campaigns-title">{t('rep.byCampaign')}</h2>
          <QueryStatus query={campaigns}>
            {campaigns.data?.filter((c) => c.message_id).length ? (
              <ul className="plain-list">
                {campaigns.data
                  .filter((c) => c.message_id)
                  .map((c) => (
                    <li key={c.id}>
                      <Link to={`/reports/campaigns/${c.id}`}>{c.name}</Link> <span className="muted">{fmt.dateTime(c.started_at ?? c.created_at)}</span>
                    </li>
                  ))}
              </ul>
            ) : (
              <p className="muted">{t('rep.noCampaign')}</p>
            )}
          </QueryStatus>
        </section>
        <section className="card" aria-labelledby="rep-templates-title">
          <h2 id="rep-templates-title">{t('rep.byTemplate')}</h2>
          <QueryStatus query={templates}>
            {templates.data?.length ? (
              <ul className="plain-list">
                {templates.data.map((x) => (
                  <li key={x.id}>
                    <Link to={`/reports/templates/${audienceId}/${x.id}`}>{x.name}</Link>
                  </li>
                ))}
              </ul>
            ) : (
              <p className="muted">{t('rep.noTemplate')}</p>
            )}
          </QueryStatus>
        </section>
      </div>
      <h2 className="section-title">{t('rep.wholeAudience')}</h2>
      <ReportView key={audienceId} scope={{ audience_id: audienceId }} />
    </>
  );
}

export function ReportHome() {
  const t = useT(messages);
  const choice = useAudienceChoice();
  return (
    <div className="page">
      <div className="page-head">
        <h1>{t('rep.title')}</h1>
        <AudienceSelect value={choice.audienceId} onChange={choice.setAudienceId} />
      </div>
      <QueryStatus query={choice}>{choice.audienceId ? <AudienceReports key={choice.audienceId} audienceId={choice.audienceId} /> : <NoAudience />}</QueryStatus>
    </div>
  );
}
