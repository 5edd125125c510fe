import { useMutation } from '@tanstack/react-query';
import { apiUrl, errorMessage, get } from '../../api.ts';
import { QueryStatus } from '../../components/Status.tsx';
import { useFormat, useT } from '../../i18n/index.tsx';
import { AudienceSelect, NoAudience, useAudienceChoice } from '../campaigns/shared/audience.tsx';
import { messages } from './messages.ts';

type Verification = { ok: true; checked: number; verified_at: string } | { ok: false; checked: number; broken_at: string; reason: string; verified_at: string };

/** Recomputing the hash chain reads the whole ledger: it runs when asked, not on every visit. */
function LedgerCheck({ audienceId }: { audienceId: string }) {
  const t = useT(messages);
  const fmt = useFormat();
  const verify = useMutation({ mutationFn: () => get<Verification>(`/v1/audiences/${audienceId}/consent-ledger/verify`) });
  const r = verify.data;
  return (
    <div className="ledger-check">
      <div className="subhead">
        <h3>{t('cons.pr.ledger')}</h3>
        <button type="button" onClick={() => verify.mutate()} disabled={verify.isPending}>
          {verify.isPending ? t('cons.pr.verifying') : r ? t('cons.pr.verifyAgain') : t('cons.pr.verify')}
        </button>
      </div>
      <p className="muted">{t('cons.pr.ledgerExplain')}</p>
      <div role="status" aria-live="polite">
        {verify.error && <p className="error">{errorMessage(verify.error)}</p>}
        {r?.ok === true && (
          <p className="ledger-ok">
            <span className="dot dot-on" aria-hidden="true" /> {t('cons.pr.valid', { n: fmt.number(r.checked), at: fmt.dateTime(r.verified_at) })}
          </p>
        )}
        {r?.ok === false && (
          <p className="ledger-broken">
            <span className="dot dot-locked dot-on" aria-hidden="true" /> {t('cons.pr.broken', { seq: r.broken_at, n: fmt.number(r.checked), reason: r.reason, at: fmt.dateTime(r.verified_at) })}
          </p>
        )}
      </div>
    </div>
  );
}

export function ProofsPanel() {
  const t = useT(messages);
  const choice = useAudienceChoice();
  const aid = choice.audienceId;
  return (
    <section className="card" aria-labelledby="cons-pr-title">
      <div className="card-head">
        <h2 id="cons-pr-title">{t('cons.pr.title')}</h2>
        <AudienceSelect value={aid} onChange={choice.setAudienceId} />
      </div>
      <QueryStatus query={choice}>
        {aid ? (
          <>
            <p className="muted">{t('cons.pr.explain')}</p>
            <div className="toolbar">
              <a className="button" href={apiUrl(`/v1/audiences/${aid}/consent-ledger/export`, { format: 'csv' })} download>
                {t('cons.pr.csv')}
              </a>
              <a className="button" href={apiUrl(`/v1/audiences/${aid}/consent-ledger/export`, { format: 'json' })} download>
                {t('cons.pr.json')}
              </a>
            </div>
            <LedgerCheck key={aid} audienceId={aid} />
          </>
        ) : (
          <NoAudience />
        )}
      </QueryStatus>
    </section>
  );
}
