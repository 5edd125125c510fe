import { useState } from 'react';
import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { get } from '../../api.ts';
import { QueryStatus } from '../../components/Status.tsx';
import { useFormat, useT } from '../../i18n/index.tsx';
import { AudienceSelect, NoAudience, useAudienceChoice } from '../campaigns/shared/audience.tsx';
import { messages } from './messages.ts';
import { useMethodName, type ConsentRecord } from './records.ts';

const PAGE = 50;

function Unsubscribes({ audienceId }: { audienceId: string }) {
  const t = useT(messages);
  const fmt = useFormat();
  const methodName = useMethodName();
  const [offset, setOffset] = useState(0);
  const list = useQuery({
    queryKey: ['consent', 'unsubscribes', audienceId, offset],
    queryFn: () => get<{ items: ConsentRecord[]; has_more: boolean }>(`/v1/audiences/${audienceId}/unsubscribes`, { limit: PAGE, offset }),
    placeholderData: keepPreviousData,
  });
  return (
    <QueryStatus query={list}>
      {list.data?.items.length ? (
        <>
          <table className="simple" aria-label={t('cons.un.title')}>
            <thead>
              <tr>
                <th scope="col">{t('cons.un.at')}</th>
                <th scope="col">{t('cons.ex.email')}</th>
                <th scope="col">{t('cons.un.what')}</th>
                <th scope="col">{t('cons.un.how')}</th>
              </tr>
            </thead>
            <tbody>
              {list.data.items.map((r) => (
                <tr key={r.id}>
                  <td>{fmt.dateTime(r.at)}</td>
                  <td>{r.email ?? <span className="muted">{t('cons.erased')}</span>}</td>
                  <td>{t(`cons.action.${r.action as 'unsubscribed' | 'withdrawn' | 'repermission_no'}`)}</td>
                  <td>{methodName(r.method)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <div className="toolbar">
            <button type="button" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - PAGE))}>
              {t('cons.previous')}
            </button>
            <button type="button" disabled={!list.data.has_more} onClick={() => setOffset(offset + PAGE)}>
              {t('cons.next')}
            </button>
          </div>
        </>
      ) : (
        <p className="muted">{t('cons.un.none')}</p>
      )}
    </QueryStatus>
  );
}

export function UnsubscribesPanel() {
  const t = useT(messages);
  const choice = useAudienceChoice();
  return (
    <section className="card" aria-labelledby="cons-un-title">
      <div className="card-head">
        <h2 id="cons-un-title">{t('cons.un.title')}</h2>
        <AudienceSelect value={choice.audienceId} onChange={choice.setAudienceId} />
      </div>
      <p className="muted">{t('cons.un.explain')}</p>
      <QueryStatus query={choice}>{choice.audienceId ? <Unsubscribes key={choice.audienceId} audienceId={choice.audienceId} /> : <NoAudience />}</QueryStatus>
    </section>
  );
}
