import { useState } from 'react';
import { Link } from 'react-router-dom';
import { useQueryClient } from '@tanstack/react-query';
import { post } from '../../api.ts';
import { IfRole } from '../../auth.tsx';
import { FormDialog } from '../../components/FormDialog.tsx';
import { Field, QueryStatus } from '../../components/Status.tsx';
import { useToast } from '../../components/Toast.tsx';
import { useFormat, useT } from '../../i18n/index.tsx';
import { zonedInputToIso } from '../../time-zone.ts';
import { AddRecordDialog } from '../contacts/AddRecordDialog.tsx';
import { keys, useAudiences, useCommunities, useEvents, type Audience } from './data.ts';
import { messages } from './messages.ts';

type Open =
  | { kind: 'audience' }
  | { kind: 'event' | 'community'; audience: Audience }
  | { kind: 'participant' | 'member'; audience: Audience; scope: { id: string; name: string } }
  | null;

function localInput(d: Date) {
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function NameDialog({ title, label, onCreate, onClose }: { title: string; label: string; onCreate(name: string): Promise<unknown>; onClose(): void }) {
  const [name, setName] = useState('');
  return (
    <FormDialog title={title} submitLabel={title} onSubmit={() => onCreate(name)} onClose={onClose}>
      <Field label={label}>
        <input required maxLength={200} value={name} onChange={(e) => setName(e.target.value)} />
      </Field>
    </FormDialog>
  );
}

function EventDialog({ audience, onClose }: { audience: Audience; onClose(): void }) {
  const t = useT(messages);
  const qc = useQueryClient();
  const toast = useToast();
  const start = new Date(Date.now() + 30 * 86_400_000);
  start.setHours(9, 0, 0, 0);
  const [name, setName] = useState('');
  const [startsAt, setStartsAt] = useState(localInput(start));
  const [endsAt, setEndsAt] = useState(localInput(new Date(start.getTime() + 9 * 3_600_000)));
  const [tz, setTz] = useState(Intl.DateTimeFormat().resolvedOptions().timeZone || 'Europe/Paris');
  return (
    <FormDialog
      title={t('aud.newEvent')}
      submitLabel={t('common.create')}
      onClose={onClose}
      onSubmit={async () => {
        await post(`/v1/audiences/${audience.id}/events`, { name, starts_at: zonedInputToIso(startsAt, tz), ends_at: zonedInputToIso(endsAt, tz), time_zone: tz });
        await qc.invalidateQueries({ queryKey: keys.events(audience.id) });
        toast.success(t('aud.eventCreated', { name }));
      }}
    >
      <Field label={t('aud.eventName')}>
        <input required maxLength={200} value={name} onChange={(e) => setName(e.target.value)} />
      </Field>
      <div className="row">
        <Field label={t('aud.startsAt')}>
          <input type="datetime-local" required value={startsAt} onChange={(e) => setStartsAt(e.target.value)} />
        </Field>
        <Field label={t('aud.endsAt')}>
          <input type="datetime-local" required value={endsAt} onChange={(e) => setEndsAt(e.target.value)} />
        </Field>
      </div>
      <Field label={t('aud.timeZone')}>
        <input required value={tz} onChange={(e) => setTz(e.target.value)} />
      </Field>
    </FormDialog>
  );
}

function AudienceCard({ audience, onNew, onAdd }: { audience: Audience; onNew(kind: 'event' | 'community'): void; onAdd(kind: 'participant' | 'member', scope: { id: string; name: string }): void }) {
  const t = useT(messages);
  const fmt = useFormat();
  const events = useEvents(audience.id);
  const communities = useCommunities(audience.id);
  const headingId = `aud-${audience.id}`;
  return (
    <section className="card" aria-labelledby={headingId}>
      <div className="card-head">
        <h2 id={headingId}>{audience.name}</h2>
        <Link className="button primary" to={`/audiences/${audience.id}/contacts`} aria-label={t('aud.openContacts', { name: audience.name })}>
          {t('aud.contacts')}
        </Link>
      </div>
      <div className="columns-2">
        <div>
          <div className="subhead">
            <h3>{t('aud.events')}</h3>
            <IfRole min="editor">
              <button type="button" onClick={() => onNew('event')}>
                {t('aud.newEvent')}
              </button>
            </IfRole>
          </div>
          <QueryStatus query={events}>
            {events.data?.length ? (
              <ul className="plain-list" aria-label={`${t('aud.events')} – ${audience.name}`}>
                {events.data.map((e) => (
                  <li key={e.id} className="with-action">
                    <span>
                      <strong>{e.name}</strong>{' '}
                      <span className="muted">{t('aud.eventDates', { start: fmt.dateTimeIn(e.starts_at, e.time_zone), end: fmt.dateTimeIn(e.ends_at, e.time_zone), tz: e.time_zone })}</span>
                    </span>
                    <IfRole min="editor">
                      <button type="button" aria-label={t('aud.addParticipantTo', { name: e.name })} onClick={() => onAdd('participant', e)}>
                        {t('aud.addParticipant')}
                      </button>
                    </IfRole>
                  </li>
                ))}
              </ul>
            ) : (
              <p className="muted">{t('aud.noEvents')}</p>
            )}
          </QueryStatus>
        </div>
        <div>
          <div className="subhead">
            <h3>{t('aud.communities')}</h3>
            <IfRole min="editor">
              <button type="button" onClick={() => onNew('community')}>
                {t('aud.newCommunity')}
              </button>
            </IfRole>
          </div>
          <QueryStatus query={communities}>
            {communities.data?.length ? (
              <ul className="plain-list" aria-label={`${t('aud.communities')} – ${audience.name}`}>
                {communities.data.map((c) => (
                  <li key={c.id} className="with-action">
                    <span>{c.name}</span>
                    <IfRole min="editor">
                      <button type="button" aria-label={t('aud.addMemberTo', { name: c.name })} onClick={() => onAdd('member', c)}>
                        {t('aud.addMember')}
                      </button>
                    </IfRole>
                  </li>
                ))}
              </ul>
            ) : (
              <p className="muted">{t('aud.noCommunities')}</p>
            )}
          </QueryStatus>
        </div>
      </div>
    </section>
  );
}

export function AudiencesScreen() {
  const t = useT(messages);
  const qc = useQueryClient();
  const toast = useToast();
  const audiences = useAudiences();
  const [open, setOpen] = useState<Open>(null);
  return (
    <div className="page">
      <div className="page-head">
        <h1>{t('aud.title')}</h1>
        <IfRole min="editor">
          <button type="button" className="primary" onClick={() => setOpen({ kind: 'audience' })}>
            {t('aud.new')}
          </button>
        </IfRole>
      </div>
      <p className="muted">{t('aud.intro')}</p>
      <QueryStatus query={audiences}>
        {audiences.data?.length === 0 && <p>{t('aud.none')}</p>}
        {audiences.data?.map((a) => <AudienceCard key={a.id} audience={a} onNew={(kind) => setOpen({ kind, audience: a })} onAdd={(kind, scope) => setOpen({ kind, audience: a, scope })} />)}
      </QueryStatus>
      {open?.kind === 'audience' && (
        <NameDialog
          title={t('aud.new')}
          label={t('common.name')}
          onClose={() => setOpen(null)}
          onCreate={async (name) => {
            await post('/v1/audiences', { name });
            await qc.invalidateQueries({ queryKey: keys.audiences });
            toast.success(t('aud.created', { name }));
          }}
        />
      )}
      {open?.kind === 'community' && (
        <NameDialog
          title={t('aud.newCommunity')}
          label={t('common.name')}
          onClose={() => setOpen(null)}
          onCreate={async (name) => {
            await post(`/v1/audiences/${open.audience.id}/communities`, { name });
            await qc.invalidateQueries({ queryKey: keys.communities(open.audience.id) });
            toast.success(t('aud.communityCreated', { name }));
          }}
        />
      )}
      {open?.kind === 'event' && <EventDialog audience={open.audience} onClose={() => setOpen(null)} />}
      {(open?.kind === 'participant' || open?.kind === 'member') && (
        <AddRecordDialog kind={open.kind === 'participant' ? 'event' : 'community'} scope={open.scope} audienceId={open.audience.id} onClose={() => setOpen(null)} />
      )}
    </div>
  );
}
