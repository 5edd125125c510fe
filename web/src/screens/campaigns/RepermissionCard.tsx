import { Link } from 'react-router-dom';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { apiUrl, errorMessage, get, post } from '../../api.ts';
import { IfRole } from '../../auth.tsx';
import { QueryStatus } from '../../components/Status.tsx';
import { useToast } from '../../components/Toast.tsx';
import { useFormat, useT } from '../../i18n/index.tsx';
import { campKeys, isActive, type Answer, type Campaign, type RepermissionResults, type View } from './data.ts';
import { messages } from './messages.ts';

function AnswerTable({ label, answers }: { label: string; answers: Answer[] }) {
  const t = useT(messages);
  const fmt = useFormat();
  if (!answers.length) return <p className="muted">{t('camp.rp.nobody')}</p>;
  return (
    <table className="simple" aria-label={label}>
      <thead>
        <tr>
          <th scope="col">{t('camp.rp.email')}</th>
          <th scope="col">{t('camp.rp.answeredAt')}</th>
          <th scope="col">{t('camp.rp.late')}</th>
        </tr>
      </thead>
      <tbody>
        {answers.map((a, i) => (
          <tr key={a.contact_id ?? i}>
            <td>{a.email ?? t('camp.rp.erased')}</td>
            <td>{fmt.dateTime(a.answered_at)}</td>
            <td>{a.late ? <span className="badge warn">{t('camp.rp.lateBadge')}</span> : ''}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** The answers of a re-permission campaign: the YES list (the new consenting list), the NO list, late answers, exports. */
export function RepermissionCard({ campaign }: { campaign: Campaign }) {
  const t = useT(messages);
  const fmt = useFormat();
  const toast = useToast();
  const qc = useQueryClient();
  const results = useQuery({
    queryKey: campKeys.repermission(campaign.id),
    queryFn: () => get<RepermissionResults>(`/v1/campaigns/${campaign.id}/repermission`),
    // Answers keep arriving for days: refresh while the screen is open.
    refetchInterval: isActive(campaign) ? 3000 : 30_000,
  });
  const r = results.data;
  return (
    <section className="card" aria-labelledby="camp-rp-title">
      <div className="card-head">
        <h2 id="camp-rp-title">{t('camp.rp.title')}</h2>
        <IfRole min="editor">
          <button
            type="button"
            onClick={() =>
              void post<View>(`/v1/campaigns/${campaign.id}/repermission/view`)
                .then((v) => {
                  toast.success(t('camp.rp.viewSaved', { name: v.name }));
                  return qc.invalidateQueries({ queryKey: campKeys.views(campaign.audience_id) });
                })
                .catch((e) => toast.error(errorMessage(e)))
            }
          >
            {t('camp.rp.saveView')}
          </button>
        </IfRole>
      </div>
      <QueryStatus query={results}>
        {r && (
          <>
            <p>{r.closed ? t('camp.rp.closed', { at: fmt.dateTime(r.deadline) }) : t('camp.rp.open', { at: fmt.dateTime(r.deadline) })}</p>
            <dl className="figures" aria-label={t('camp.rp.title')}>
              <div>
                <dt>{t('camp.rp.sent')}</dt>
                <dd data-figure="sent">{fmt.number(r.sent)}</dd>
              </div>
              <div>
                <dt>{t('camp.rp.yes')}</dt>
                <dd data-figure="yes">
                  {fmt.number(r.yes)}
                  {r.yes_late > 0 && <small>{t('camp.rp.ofWhichLate', { n: fmt.number(r.yes_late) })}</small>}
                </dd>
              </div>
              <div>
                <dt>{t('camp.rp.no')}</dt>
                <dd data-figure="no">{fmt.number(r.no)}</dd>
              </div>
              <div>
                <dt>{t('camp.rp.unanswered')}</dt>
                <dd data-figure="unanswered">{fmt.number(r.unanswered)}</dd>
              </div>
            </dl>
            <div className="columns-2 spaced">
              <div>
                <div className="subhead">
                  <h3>{t('camp.rp.yesList')}</h3>
                  <a href={apiUrl(`/v1/campaigns/${campaign.id}/repermission`, { format: 'csv' })} download>
                    {t('camp.rp.exportYes')}
                  </a>
                </div>
                <AnswerTable label={t('camp.rp.yesList')} answers={r.consenting} />
              </div>
              <div>
                <div className="subhead">
                  <h3>{t('camp.rp.noList')}</h3>
                  <a href={apiUrl(`/v1/campaigns/${campaign.id}/repermission`, { format: 'csv', answer: 'no' })} download>
                    {t('camp.rp.exportNo')}
                  </a>
                </div>
                <AnswerTable label={t('camp.rp.noList')} answers={r.refusing} />
              </div>
            </div>
            <p className="muted">
              {t('camp.rp.viewHint')} <Link to={`/audiences/${campaign.audience_id}/contacts`}>{t('camp.rp.openContacts')}</Link>
            </p>
          </>
        )}
      </QueryStatus>
    </section>
  );
}
