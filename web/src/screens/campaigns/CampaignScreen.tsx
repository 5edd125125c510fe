import { useState } from 'react';
import { Link, useParams } from 'react-router-dom';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { errorMessage, post } from '../../api.ts';
import { IfRole } from '../../auth.tsx';
import { ConfirmDialog } from '../../components/ConfirmDialog.tsx';
import { QueryStatus } from '../../components/Status.tsx';
import { useToast } from '../../components/Toast.tsx';
import { useFormat, useT } from '../../i18n/index.tsx';
import { useTemplates } from '../templates/data.ts';
import { StatusBadge, TargetText } from './bits.tsx';
import { campKeys, useCampaign, useViews, type Campaign, type DryRun } from './data.ts';
import { messages } from './messages.ts';
import { RepermissionCard } from './RepermissionCard.tsx';
import { RuleCounts } from './shared/rules.tsx';

type Action = 'start' | 'pause' | 'resume' | 'cancel';

function DryRunCard({ campaign }: { campaign: Campaign }) {
  const t = useT(messages);
  const fmt = useFormat();
  const dry = useQuery({ queryKey: campKeys.dryRun(campaign.id), queryFn: () => post<DryRun>(`/v1/campaigns/${campaign.id}/dry-run`), staleTime: 0 });
  return (
    <section className="card" aria-labelledby="camp-dry-title">
      <div className="card-head">
        <h2 id="camp-dry-title">{t('camp.dryRun')}</h2>
        <button type="button" onClick={() => void dry.refetch()} disabled={dry.isFetching}>
          {dry.isFetching ? t('common.working') : t('camp.dryRunAgain')}
        </button>
      </div>
      <p className="muted">{t('camp.dryRunExplain')}</p>
      <QueryStatus query={dry}>
        {dry.data && (
          <>
            <dl className="figures" aria-label={t('camp.dryRun')}>
              <div>
                <dt>{t('camp.dryTotal')}</dt>
                <dd data-figure="total">{fmt.number(dry.data.total)}</dd>
              </div>
              <div>
                <dt>{t('camp.dryAllowed')}</dt>
                <dd data-figure="allowed">{fmt.number(dry.data.allowed)}</dd>
              </div>
              <div>
                <dt>{t('camp.dryBlocked')}</dt>
                <dd data-figure="blocked">{fmt.number(dry.data.total - dry.data.allowed)}</dd>
              </div>
            </dl>
            <h3 className="spaced">{t('camp.blockedByRule')}</h3>
            <RuleCounts blocked={dry.data.blocked} explanations={dry.data.explanations} label={t('camp.dryRunRules')} skipped={dry.data.skipped} audienceId={campaign.audience_id} />
          </>
        )}
      </QueryStatus>
    </section>
  );
}

function ProgressCard({ campaign }: { campaign: Campaign }) {
  const t = useT(messages);
  const fmt = useFormat();
  const p = campaign.progress;
  if (!p) return null;
  const cells: [string, number][] = [
    ['camp.p.recipients', p.recipients],
    ['camp.p.queued', p.queued + p.sending + p.deferred],
    ['camp.p.paused', p.paused],
    ['camp.p.sent', p.sent],
    ['camp.p.bounced', p.bounced],
    ['camp.p.failed', p.failed],
    ['camp.p.blocked', p.blocked],
  ];
  return (
    <section className="card" aria-labelledby="camp-progress-title">
      <div className="card-head">
        <h2 id="camp-progress-title">{campaign.every_minutes ? t('camp.progressRun', { n: campaign.runs }) : t('camp.progress')}</h2>
        <Link to={`/reports/campaigns/${campaign.id}`}>{t('camp.report')}</Link>
      </div>
      <label className="progress-line">
        <span>{t('camp.done', { pct: Math.round(p.done * 100) })}</span>
        <progress max={1} value={p.done} />
      </label>
      <dl className="figures" aria-label={t('camp.progress')}>
        {cells.map(([k, n]) => (
          <div key={k}>
            <dt>{t(k as 'camp.p.sent')}</dt>
            <dd data-figure={k.slice(7)}>{fmt.number(n)}</dd>
          </div>
        ))}
      </dl>
      <h3 className="spaced">{t('camp.blockedByRule')}</h3>
      <RuleCounts blocked={p.blocked_by_rule} label={t('camp.progressRules')} />
      {campaign.all_runs && (
        <p className="muted">{t('camp.allRuns', { sent: fmt.number(campaign.all_runs.sent), blocked: fmt.number(campaign.all_runs.blocked) })}</p>
      )}
    </section>
  );
}

function Actions({ campaign }: { campaign: Campaign }) {
  const t = useT(messages);
  const fmt = useFormat();
  const qc = useQueryClient();
  const toast = useToast();
  const [confirm, setConfirm] = useState<Action | null>(null);
  const act = async (action: Action) => {
    const c = await post<Campaign>(`/v1/campaigns/${campaign.id}/${action}`);
    qc.setQueryData(campKeys.one(c.id), c);
    await qc.invalidateQueries({ queryKey: campKeys.list(c.audience_id) });
    toast.success(t(`camp.did.${action}`, { name: c.name }));
  };
  const later = campaign.send_at && new Date(campaign.send_at).getTime() > Date.now();
  const startLabel = later ? t('camp.schedule', { at: fmt.dateTime(campaign.send_at) }) : t('camp.sendNow');
  const s = campaign.status;
  return (
    <IfRole min="editor">
      <div className="toolbar">
        {s === 'draft' && (
          <button type="button" className="primary" onClick={() => setConfirm('start')}>
            {startLabel}
          </button>
        )}
        {(s === 'scheduled' || s === 'resolving' || s === 'sending') && (
          <button type="button" onClick={() => void act('pause').catch((e) => toast.error(errorMessage(e)))}>
            {t('camp.pause')}
          </button>
        )}
        {s === 'paused' && (
          <button type="button" className="primary" onClick={() => void act('resume').catch((e) => toast.error(errorMessage(e)))}>
            {t('camp.resume')}
          </button>
        )}
        {s !== 'completed' && s !== 'cancelled' && (
          <button type="button" onClick={() => setConfirm('cancel')}>
            {t('camp.cancel')}
          </button>
        )}
      </div>
      {confirm === 'start' && (
        <ConfirmDialog title={startLabel} confirmLabel={startLabel} onClose={() => setConfirm(null)} onConfirm={() => act('start')}>
          {t(later ? 'camp.confirmSchedule' : 'camp.confirmSend', { name: campaign.name })}
        </ConfirmDialog>
      )}
      {confirm === 'cancel' && (
        <ConfirmDialog title={t('camp.cancelTitle', { name: campaign.name })} danger confirmLabel={t('camp.cancel')} onClose={() => setConfirm(null)} onConfirm={() => act('cancel')}>
          {t('camp.confirmCancel')}
        </ConfirmDialog>
      )}
    </IfRole>
  );
}

function CampaignView({ campaign }: { campaign: Campaign }) {
  const t = useT(messages);
  const fmt = useFormat();
  const templates = useTemplates(campaign.audience_id);
  const views = useViews(campaign.audience_id);
  const tpl = templates.data?.find((x) => x.id === campaign.template_id);
  const showDryRun = campaign.status === 'draft' || campaign.status === 'scheduled' || (campaign.every_minutes !== null && campaign.status !== 'cancelled');
  return (
    <div className="page">
      <div className="page-head">
        <Link to={`/campaigns?audience=${campaign.audience_id}`}>{t('camp.back')}</Link>
        <h1>{campaign.name}</h1>
        <StatusBadge status={campaign.status} />
        {campaign.kind !== 'marketing' && <span className="badge">{t(`camp.kind.${campaign.kind}`)}</span>}
        <Actions campaign={campaign} />
      </div>
      <section className="card" aria-label={t('camp.summary')}>
        <dl className="summary">
          <dt>{t('camp.template')}</dt>
          <dd>{tpl ? <Link to={`/templates/${campaign.audience_id}/${tpl.id}`}>{tpl.name}</Link> : '…'}</dd>
          <dt>{t('camp.target')}</dt>
          <dd>
            <TargetText target={campaign.target} views={views.data} />
          </dd>
          <dt>{t('camp.when')}</dt>
          <dd>{campaign.send_at ? fmt.dateTime(campaign.send_at) : t('camp.whenNow')}</dd>
          {campaign.every_minutes && (
            <>
              <dt>{t('camp.recurring')}</dt>
              <dd>
                {t('camp.everyN', { n: campaign.every_minutes })}, {t('camp.runs', { n: campaign.runs })}
                {campaign.next_run_at && <> · {t('camp.nextRun', { at: fmt.dateTime(campaign.next_run_at) })}</>}
              </dd>
            </>
          )}
          {campaign.deadline && (
            <>
              <dt>{t('camp.deadline')}</dt>
              <dd>{fmt.dateTime(campaign.deadline)}</dd>
            </>
          )}
          {campaign.status === 'scheduled' && campaign.next_run_at && !campaign.every_minutes && (
            <>
              <dt>{t('camp.startsAt')}</dt>
              <dd>{fmt.dateTime(campaign.next_run_at)}</dd>
            </>
          )}
        </dl>
        {campaign.last_error && (
          <p role="alert" className="error">
            {campaign.last_error}
          </p>
        )}
      </section>
      {showDryRun && <DryRunCard campaign={campaign} />}
      <ProgressCard campaign={campaign} />
      {campaign.kind === 'repermission' && campaign.message_id && <RepermissionCard campaign={campaign} />}
    </div>
  );
}

export function CampaignScreen() {
  const { id = '' } = useParams();
  const campaign = useCampaign(id);
  return <QueryStatus query={campaign}>{campaign.data && <CampaignView campaign={campaign.data} />}</QueryStatus>;
}
