import { useState } from 'react';
import { Link, useParams } from 'react-router-dom';
import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { get } from '../../api.ts';
import { QueryStatus } from '../../components/Status.tsx';
import { useFormat, useT } from '../../i18n/index.tsx';
import { messages } from './messages.ts';

interface OutboxItem {
  id: string;
  message_id: string;
  envelope_to: string;
  subject: string;
  created_at: string;
}
interface OutboxMessage {
  id: string;
  message_id: string;
  envelope_from: string;
  envelope_to: string;
  created_at: string;
  subject: string;
  from: string | null;
  to: string | null;
  date: string | null;
  headers: { name: string; value: string }[];
  text: string | null;
  html_url: string | null;
}

const PAGE = 50;

function MessageView({ id }: { id: string }) {
  const t = useT(messages);
  const fmt = useFormat();
  const [part, setPart] = useState<'html' | 'text'>('html');
  const [showRaw, setShowRaw] = useState(false);
  const msg = useQuery({ queryKey: ['outbox', id], queryFn: () => get<OutboxMessage>(`/v1/outbox/${id}/message`) });
  const raw = useQuery({ queryKey: ['outbox', id, 'raw'], queryFn: async () => (await get<{ raw: string }>(`/v1/outbox/${id}`)).raw, enabled: showRaw });
  const m = msg.data;
  const shown = m?.html_url ? part : 'text';
  return (
    <QueryStatus query={msg}>
      {m && (
        <article className="card mail" aria-labelledby="out-subject">
          <h2 id="out-subject">{m.subject}</h2>
          <dl className="mail-head">
            <dt>{t('out.from')}</dt>
            <dd>{m.from ?? m.envelope_from}</dd>
            <dt>{t('out.to')}</dt>
            <dd>{m.to ?? m.envelope_to}</dd>
            <dt>{t('out.date')}</dt>
            <dd>{fmt.dateTime(m.date ?? m.created_at)}</dd>
          </dl>
          <div className="toolbar" role="group" aria-label={t('out.part')}>
            {m.html_url && (
              <button type="button" aria-pressed={shown === 'html'} onClick={() => setPart('html')}>
                {t('out.html')}
              </button>
            )}
            <button type="button" aria-pressed={shown === 'text'} onClick={() => setPart('text')}>
              {t('out.text')}
            </button>
          </div>
          {shown === 'html' && m.html_url ? (
            <iframe key={m.id} className="mail-frame" sandbox="" referrerPolicy="no-referrer" title={t('out.frame', { subject: m.subject })} src={m.html_url} />
          ) : (
            <pre className="mail-text">{m.text ?? ''}</pre>
          )}
          <details>
            <summary>{t('out.headers')}</summary>
            <table className="simple headers">
              <tbody>
                {m.headers.map((h, i) => (
                  <tr key={i}>
                    <th scope="row">{h.name}</th>
                    <td>{h.value}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </details>
          <details onToggle={(e) => setShowRaw((e.target as HTMLDetailsElement).open)}>
            <summary>{t('out.raw')}</summary>
            <QueryStatus query={raw}>
              <pre className="mail-text">{raw.data}</pre>
            </QueryStatus>
          </details>
          <p className="muted">
            <Link to={`/outbox`}>{t('out.close')}</Link>
          </p>
        </article>
      )}
    </QueryStatus>
  );
}

/** The development outbox as a mailbox: what envoi would have sent, newest first, one message open beside the list. */
export function OutboxScreen() {
  const t = useT(messages);
  const fmt = useFormat();
  const { id } = useParams();
  const [offset, setOffset] = useState(0);
  const list = useQuery({
    queryKey: ['outbox', 'list', offset],
    queryFn: () => get<{ items: OutboxItem[]; smtp_configured: boolean }>('/v1/outbox', { limit: PAGE, offset }),
    placeholderData: keepPreviousData,
    refetchInterval: 5000,
  });
  return (
    <div className="page">
      <div className="page-head">
        <h1>{t('out.title')}</h1>
        <span className="spacer" />
      </div>
      {list.data?.smtp_configured ? <p className="notice">{t('out.smtpConfigured')}</p> : <p className="muted">{t('out.explain')}</p>}
      <div className="mailbox">
        <section className="card mail-list" aria-labelledby="out-list-title">
          <h2 id="out-list-title" className="visually-hidden">
            {t('out.messages')}
          </h2>
          <QueryStatus query={list}>
            {list.data?.items.length ? (
              <ul className="plain-list" aria-label={t('out.messages')}>
                {list.data.items.map((m) => (
                  <li key={m.id} className={m.id === id ? 'selected' : undefined}>
                    <Link to={`/outbox/${m.id}`} aria-current={m.id === id ? 'true' : undefined}>
                      <span className="mail-subject">{m.subject}</span>
                      <span className="muted">
                        {m.envelope_to} · {fmt.dateTime(m.created_at)}
                      </span>
                    </Link>
                  </li>
                ))}
              </ul>
            ) : (
              <p className="muted">{t('out.empty')}</p>
            )}
            {list.data && (offset > 0 || list.data.items.length === PAGE) && (
              <div className="toolbar">
                <button type="button" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - PAGE))}>
                  {t('out.newer')}
                </button>
                <button type="button" disabled={list.data.items.length < PAGE} onClick={() => setOffset(offset + PAGE)}>
                  {t('out.older')}
                </button>
              </div>
            )}
          </QueryStatus>
        </section>
        <div className="mail-pane">{id ? <MessageView key={id} id={id} /> : <p className="muted">{t('out.pick')}</p>}</div>
      </div>
    </div>
  );
}
