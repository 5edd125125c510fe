import { useEffect, useRef, useState } from 'react';
import { Link, useNavigate, useParams } from 'react-router-dom';
import { useInfiniteQuery, useQuery, useQueryClient } from '@tanstack/react-query';
import { apiUrl, errorMessage, get, post } from '../../api.ts';
import { useAuth } from '../../auth.tsx';
import { Dot, QueryStatus } from '../../components/Status.tsx';
import { useToast } from '../../components/Toast.tsx';
import { useFormat, useT } from '../../i18n/index.tsx';
import { useAudience } from '../audiences/data.ts';
import { gridKeys, useContact, useFields, useScopeFields, type FieldDef, type ScopeKind } from './data.ts';
import { ContactEditForm } from './ContactEditForm.tsx';
import { DeleteContactDialog } from './DeleteContactDialog.tsx';
import { messages } from './messages.ts';
import './contacts.css';

/**
 * The values of an event's (a community's) own fields on this person's record there: they live on the
 * participant (member), not on the audience contact, so the contact's fields above do not show them.
 */
function OwnFields({ kind, id, name, data, show }: { kind: ScopeKind; id: string; name: string; data?: Record<string, unknown>; show(f: FieldDef, v: unknown): string }) {
  const t = useT(messages);
  const fields = useScopeFields(kind, id);
  const own = (fields.data ?? []).filter((f) => f.scope === kind && show(f, data?.[f.key]) !== '');
  if (!own.length) return null;
  return (
    <dl className="own-fields" aria-label={t('c.ownFieldsOf', { name })}>
      {own.map((f) => (
        <div key={f.key}>
          <dt>{f.label}</dt>
          <dd>{show(f, data?.[f.key])}</dd>
        </div>
      ))}
    </dl>
  );
}

interface ConsentRecord {
  id: string;
  seq: string;
  purpose: string;
  action: string;
  method: string;
  wording: string | null;
  wording_version: string | null;
  ip: string | null;
  user_agent: string | null;
  campaign_id: string | null;
  actor: string | null;
  at: string;
  hash: string;
}
interface ConsentHistory {
  marketing_authorized_at: string | null;
  marketing_withdrawn_at: string | null;
  excluded: boolean;
  records: ConsentRecord[];
}
interface ReceivedMessage {
  delivery_id: string;
  message_id: string;
  email: string;
  status: string;
  rule: string | null;
  sent_at: string | null;
  created_at: string;
  category: string;
  template_name: string | null;
  campaign_id: string | null;
  campaign_name: string | null;
  event_name: string | null;
  community_name: string | null;
  events: { type: string; at: string; detail: Record<string, unknown> | null }[];
}

const MESSAGES_PAGE = 50;

type Key = keyof typeof messages.en;
const known = (k: string): k is Key => k in messages.en;

export function ContactDetailScreen() {
  const { audienceId = '', contactId = '' } = useParams();
  const t = useT(messages);
  const fmt = useFormat();
  const qc = useQueryClient();
  const toast = useToast();
  const navigate = useNavigate();
  const { can } = useAuth();
  const audience = useAudience(audienceId);
  const contact = useContact(audienceId, contactId);
  const fields = useFields(audienceId);
  const consents = useQuery({ queryKey: ['contact', audienceId, contactId, 'consents'], queryFn: () => get<ConsentHistory>(`/v1/audiences/${audienceId}/contacts/${contactId}/consents`) });
  const mail = useInfiniteQuery({
    queryKey: ['contact', audienceId, contactId, 'messages'],
    initialPageParam: 0,
    queryFn: ({ pageParam }) => get<{ items: ReceivedMessage[]; has_more: boolean }>(`/v1/audiences/${audienceId}/contacts/${contactId}/messages`, { limit: MESSAGES_PAGE, offset: pageParam }),
    getNextPageParam: (last, all) => (last.has_more ? all.length * MESSAGES_PAGE : undefined),
  });
  const received = mail.data?.pages.flatMap((p) => p.items) ?? [];
  const [deleting, setDeleting] = useState(false);
  const [editing, setEditing] = useState(false);
  // Leaving the form (saved or not) puts the focus back on the button that opened it.
  const editButton = useRef<HTMLButtonElement>(null);
  const wasEditing = useRef(false);
  useEffect(() => {
    if (wasEditing.current && !editing) editButton.current?.focus();
    wasEditing.current = editing;
  }, [editing]);
  const c = contact.data;
  const name = c ? [c.first_name, c.last_name].filter(Boolean).join(' ') || c.email || c.id : '…';

  async function accountAction(action: 'unlock' | 'password-reset') {
    try {
      await post(`/v1/audiences/${audienceId}/contacts/${contactId}/account/${action}`);
      toast.success(action === 'unlock' ? t('c.unlockedOne') : t('c.resetSentOne'));
      await qc.invalidateQueries({ queryKey: gridKeys.contact(audienceId, contactId) });
      void qc.invalidateQueries({ queryKey: gridKeys.all(audienceId) });
    } catch (e) {
      toast.error(errorMessage(e));
    }
  }

  // Codes from the API (consent actions and methods, categories, delivery states) in the interface language; the code itself when this version does not know it.
  const word = (prefix: string, code: string) => {
    const k = `${prefix}${code}`;
    return known(k) ? t(k) : code;
  };
  // A central field's value as the grid shows it: yes/no, dates and numbers in the interface language.
  const show = (f: FieldDef, v: unknown): string => {
    if (v === null || v === undefined || v === '') return '';
    if (Array.isArray(v)) return v.join(', ');
    if (f.type === 'boolean') return v ? t('common.yes') : t('common.no');
    // A date field is a calendar day ("2027-07-01"), not an instant: formatted in UTC so no time zone moves it.
    if (f.type === 'date' && typeof v === 'string') return new Intl.DateTimeFormat(fmt.locale, { dateStyle: 'medium', timeZone: 'UTC' }).format(new Date(`${v.slice(0, 10)}T00:00:00Z`));
    if (f.type === 'number' && typeof v === 'number') return fmt.number(v);
    if (typeof v === 'object') return JSON.stringify(v);
    return String(v);
  };
  const central = (fields.data ?? []).filter((f) => f.scope === 'audience');
  return (
    <div className="page contact-detail">
      <div className="page-head">
        <div>
          <Link to="/audiences">{t('nav.audiences')}</Link> <span aria-hidden="true">›</span>{' '}
          <Link to={`/audiences/${audienceId}/contacts`}>{t('c.title', { name: audience.data?.name ?? '…' })}</Link>
          <h1>{name}</h1>
        </div>
        {can('editor') && c && (
          <button type="button" className="danger" onClick={() => setDeleting(true)}>
            {t('c.deleteContact')}
          </button>
        )}
      </div>
      <QueryStatus query={contact}>
        {c && (
          <>
            <div className="columns-2">
              <section className="card" aria-labelledby="sec-fields">
                <div className="card-head">
                  <h2 id="sec-fields">{t('c.secFields')}</h2>
                  {can('editor') && !editing && (
                    <button type="button" ref={editButton} onClick={() => setEditing(true)}>
                      {t('p.edit')}
                    </button>
                  )}
                </div>
                {editing ? (
                  <ContactEditForm audienceId={audienceId} contact={c} central={central} onDone={() => setEditing(false)} />
                ) : (
                  <table className="simple">
                    <tbody>
                      {(['last_name', 'first_name', 'email', 'company', 'job_title'] as const).map((k) => (
                        <tr key={k}>
                          <th scope="row">{t(`col.${k}`)}</th>
                          <td>{c[k] ?? ''}</td>
                        </tr>
                      ))}
                      <tr>
                        <th scope="row">{t('col.company_name')}</th>
                        <td>{c.company_entity?.name ?? ''}</td>
                      </tr>
                      {central.map((f) => (
                        <tr key={f.key}>
                          <th scope="row">{f.label || f.key}</th>
                          <td>{show(f, c.fields?.[f.key])}</td>
                        </tr>
                      ))}
                      <tr>
                        <th scope="row">{t('col.created_at')}</th>
                        <td>{fmt.dateTime(c.created_at)}</td>
                      </tr>
                      <tr>
                        <th scope="row">{t('col.marketing_authorized_at')}</th>
                        <td>{c.marketing_authorized_at ? fmt.dateTime(c.marketing_authorized_at) : t('c.noMarketing')}</td>
                      </tr>
                    </tbody>
                  </table>
                )}
              </section>
              <section className="card" aria-labelledby="sec-account">
                <h2 id="sec-account">{t('c.secAccount')}</h2>
                {c.account ? (
                  <>
                    <table className="simple">
                      <tbody>
                        <tr>
                          <th scope="row">{t('col.account_confirmed')}</th>
                          <td>
                            <Dot on={c.account.confirmed} label={c.account.confirmed ? t('c.confirmedYes') : t('c.confirmedNo')} /> {c.account.confirmed ? t('common.yes') : t('common.no')}
                          </td>
                        </tr>
                        <tr>
                          <th scope="row">{t('col.account_locked')}</th>
                          <td>
                            <span className={c.account.locked ? 'dot-locked' : ''}>
                              <Dot on={c.account.locked} label={c.account.locked ? t('c.lockedYes') : t('c.lockedNo')} />
                            </span>{' '}
                            {c.account.locked ? t('c.lockedUntil', { at: fmt.dateTime(c.account.lock_end) }) : t('common.no')}
                          </td>
                        </tr>
                        <tr>
                          <th scope="row">{t('col.failed_attempts')}</th>
                          <td>{c.account.failed_attempts}</td>
                        </tr>
                      </tbody>
                    </table>
                    {can('editor') && (
                      <div className="toolbar">
                        <button type="button" onClick={() => accountAction('unlock')} disabled={!c.account.locked && c.account.failed_attempts === 0}>
                          {t('c.unlock')}
                        </button>
                        <button type="button" onClick={() => accountAction('password-reset')}>
                          {t('c.passwordReset')}
                        </button>
                      </div>
                    )}
                  </>
                ) : (
                  <p className="muted">{t('c.noAccount')}</p>
                )}
                <h3>{t('c.secParticipations')}</h3>
                {c.events.length ? (
                  <ul className="plain-list" aria-label={t('c.secParticipations')}>
                    {c.events.map((e) => (
                      <li key={e.participant_id}>
                        {e.name} <span className="muted">{fmt.date(e.starts_at)}</span>
                        <OwnFields kind="event" id={e.id} name={e.name} data={e.data} show={show} />
                      </li>
                    ))}
                  </ul>
                ) : (
                  <p className="muted">{t('c.eraseNoParticipation')}</p>
                )}
                <h3>{t('c.secMemberships')}</h3>
                {c.communities.length ? (
                  <ul className="plain-list" aria-label={t('c.secMemberships')}>
                    {c.communities.map((m) => (
                      <li key={m.member_id}>
                        {m.name}
                        <OwnFields kind="community" id={m.id} name={m.name} data={m.data} show={show} />
                      </li>
                    ))}
                  </ul>
                ) : (
                  <p className="muted">{t('c.eraseNoMembership')}</p>
                )}
              </section>
            </div>

            <section className="card" aria-labelledby="sec-consent">
              <div className="card-head">
                <h2 id="sec-consent">{t('c.secConsent')}</h2>
                <a className="button" href={apiUrl(`/v1/audiences/${audienceId}/consent-ledger/export`, { contact_id: contactId, format: 'csv' })} download>
                  {t('c.exportProofs')}
                </a>
              </div>
              <QueryStatus query={consents}>
                {consents.data && (
                  <>
                    <p>
                      {consents.data.marketing_authorized_at ? t('c.consentNow', { at: fmt.dateTime(consents.data.marketing_authorized_at) }) : t('c.noMarketing')}
                      {consents.data.excluded && <strong> {t('c.excluded')}</strong>}
                    </p>
                    {consents.data.records.length === 0 ? (
                      <p className="muted">{t('c.noConsentRecord')}</p>
                    ) : (
                      <table className="simple" aria-label={t('c.secConsent')}>
                        <thead>
                          <tr>
                            <th scope="col">{t('c.at')}</th>
                            <th scope="col">{t('c.action')}</th>
                            <th scope="col">{t('c.method')}</th>
                            <th scope="col">{t('c.proof')}</th>
                          </tr>
                        </thead>
                        <tbody>
                          {consents.data.records.map((r) => (
                            <tr key={r.id}>
                              <td>{fmt.dateTime(r.at)}</td>
                              <td>{word('c.ledger.', r.action)}</td>
                              <td>{word('c.how.', r.method)}</td>
                              <td className="proof">
                                {r.wording && <div>« {r.wording} » {r.wording_version && <span className="muted">v{r.wording_version}</span>}</div>}
                                {(r.ip || r.user_agent) && <div className="muted">{[r.ip, r.user_agent].filter(Boolean).join(' · ')}</div>}
                                <div className="muted small">
                                  #{r.seq} {r.hash.slice(0, 16)}…
                                </div>
                              </td>
                            </tr>
                          ))}
                        </tbody>
                      </table>
                    )}
                  </>
                )}
              </QueryStatus>
            </section>

            <section className="card" aria-labelledby="sec-messages">
              <h2 id="sec-messages">{t('c.secMessages')}</h2>
              <QueryStatus query={mail}>
                {received.length === 0 ? (
                  <p className="muted">{t('c.noMessages')}</p>
                ) : (
                  <table className="simple" aria-label={t('c.secMessages')}>
                    <thead>
                      <tr>
                        <th scope="col">{t('c.at')}</th>
                        <th scope="col">{t('c.template')}</th>
                        <th scope="col">{t('c.category')}</th>
                        <th scope="col">{t('c.status')}</th>
                        <th scope="col">{t('c.history')}</th>
                      </tr>
                    </thead>
                    <tbody>
                      {received.map((m) => (
                        <tr key={m.delivery_id}>
                          <td>{fmt.dateTime(m.sent_at ?? m.created_at)}</td>
                          <td>
                            {m.template_name ?? '–'}
                            {m.campaign_id && (
                              <div>
                                <Link to={`/campaigns/${m.campaign_id}`}>{m.campaign_name}</Link>
                              </div>
                            )}
                            {(m.event_name || m.community_name) && <div className="muted">{m.event_name ?? m.community_name}</div>}
                          </td>
                          <td>{word('c.cat.', m.category)}</td>
                          <td>
                            {word('c.dst.', m.status)}
                            {m.rule && <div className="muted">{m.rule}</div>}
                          </td>
                          <td>
                            <ul className="events-list">
                              {m.events.map((e, i) => (
                                <li key={i}>
                                  <span className="chip">{word('c.dst.', e.type)}</span> {fmt.dateTime(e.at)}
                                  {typeof e.detail?.url === 'string' && <span className="muted"> {e.detail.url}</span>}
                                </li>
                              ))}
                            </ul>
                          </td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                )}
                {mail.hasNextPage && (
                  <button type="button" onClick={() => void mail.fetchNextPage()} disabled={mail.isFetchingNextPage}>
                    {t('c.moreMessages')}
                  </button>
                )}
              </QueryStatus>
            </section>
          </>
        )}
      </QueryStatus>
      {deleting && (
        <DeleteContactDialog
          audienceId={audienceId}
          contactId={contactId}
          onClose={() => setDeleting(false)}
          onDeleted={() => {
            toast.success(t('c.contactDeleted'));
            void qc.invalidateQueries({ queryKey: gridKeys.all(audienceId) });
            qc.removeQueries({ queryKey: ['contact', audienceId, contactId] });
            navigate(`/audiences/${audienceId}/contacts`);
          }}
        />
      )}
    </div>
  );
}
