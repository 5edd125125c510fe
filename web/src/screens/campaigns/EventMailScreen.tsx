import { useState } from 'react';
import { Link } from 'react-router-dom';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { ApiError, get, post } from '../../api.ts';
import { IfRole } from '../../auth.tsx';
import { FormDialog } from '../../components/FormDialog.tsx';
import { Field, QueryStatus } from '../../components/Status.tsx';
import { useFormat, useLang, useT } from '../../i18n/index.tsx';
import { useEvents, type EventRow } from '../audiences/data.ts';
import { useTemplates } from '../templates/data.ts';
import { StatusBadge } from './bits.tsx';
import { campKeys, EVENT_MAIL_KINDS, isActive, type Campaign, type EventMailKind } from './data.ts';
import { messages } from './messages.ts';
import { AudienceSelect, NoAudience, useAudienceChoice } from './shared/audience.tsx';
import type { Explanation } from './shared/rules.tsx';
import { zonedInputToIso } from '../../time-zone.ts';

function ScheduleDialog({ event, onClose }: { event: EventRow; onClose(): void }) {
  const t = useT(messages);
  const { lang } = useLang();
  const qc = useQueryClient();
  const templates = useTemplates(event.audience_id);
  const usable = (templates.data ?? []).filter((x) => x.category === 'participation' && x.event_id === event.id);
  const [kind, setKind] = useState<EventMailKind>('reminder');
  const [templateId, setTemplateId] = useState('');
  const [sendAt, setSendAt] = useState('');
  const [name, setName] = useState('');
  const tpl = templateId || usable[0]?.id || '';
  // Named in the interface language when left empty (the API's own default is English: "reminder: …").
  const defaultName = t('camp.ev.defaultName', { kind: t(`camp.ev.kind.${kind}`), event: event.name }).slice(0, 200);
  return (
    <FormDialog
      title={t('camp.ev.schedule')}
      submitLabel={t('camp.ev.schedule')}
      onClose={onClose}
      onSubmit={async () => {
        try {
          await post<Campaign>(`/v1/events/${event.id}/mail`, { kind, template_id: tpl, ...(sendAt ? { send_at: zonedInputToIso(sendAt, event.time_zone) } : {}), name: name.trim() || defaultName });
        } catch (e) {
          // The refusal after the event's window says why in the interface language, with the API's precise dates.
          const why = e instanceof ApiError ? (e.details as { explanation?: Explanation } | undefined)?.explanation : undefined;
          if (why) throw new Error(t('camp.ev.refused', { why: why[lang], message: e instanceof Error ? e.message : '' }));
          throw e;
        }
        await qc.invalidateQueries({ queryKey: campKeys.eventMail(event.id) });
      }}
    >
      <Field label={t('camp.ev.kind')} hint={t(`camp.ev.timing.${kind}`)}>
        <select value={kind} onChange={(e) => setKind(e.target.value as EventMailKind)}>
          {EVENT_MAIL_KINDS.map((k) => (
            <option key={k} value={k}>
              {t(`camp.ev.kind.${k}`)}
            </option>
          ))}
        </select>
      </Field>
      <Field label={t('camp.template')} hint={usable.length ? undefined : t('camp.ev.noTemplate')}>
        <select required value={tpl} onChange={(e) => setTemplateId(e.target.value)}>
          {usable.map((x) => (
            <option key={x.id} value={x.id}>
              {x.name}
            </option>
          ))}
        </select>
      </Field>
      <Field label={t('camp.ev.sendAtZone', { zone: event.time_zone })} hint={t('camp.ev.sendAtHint')}>
        <input type="datetime-local" value={sendAt} onChange={(e) => setSendAt(e.target.value)} />
      </Field>
      <Field label={t('camp.ev.nameOptional')}>
        <input maxLength={200} value={name} placeholder={defaultName} onChange={(e) => setName(e.target.value)} />
      </Field>
    </FormDialog>
  );
}

function EventMailCard({ event }: { event: EventRow }) {
  const t = useT(messages);
  const fmt = useFormat();
  const [open, setOpen] = useState(false);
  const mail = useQuery({
    queryKey: campKeys.eventMail(event.id),
    queryFn: async () => (await get<{ campaigns: Campaign[] }>(`/v1/events/${event.id}/mail`)).campaigns,
    refetchInterval: (q) => (q.state.data?.some(isActive) ? 3000 : false),
  });
  const headingId = `ev-${event.id}`;
  return (
    <section className="card" aria-labelledby={headingId}>
      <div className="card-head">
        <div>
          <h2 id={headingId}>{event.name}</h2>
          <span className="muted">
            {fmt.dateTimeIn(event.starts_at, event.time_zone)} – {fmt.dateTimeIn(event.ends_at, event.time_zone)} ({event.time_zone})
          </span>
        </div>
        <IfRole min="editor">
          <button type="button" onClick={() => setOpen(true)} aria-label={t('camp.ev.scheduleFor', { name: event.name })}>
            {t('camp.ev.schedule')}
          </button>
        </IfRole>
      </div>
      <QueryStatus query={mail}>
        {mail.data?.length ? (
          <table className="simple" aria-label={t('camp.ev.listOf', { name: event.name })}>
            <thead>
              <tr>
                <th scope="col">{t('camp.ev.kind')}</th>
                <th scope="col">{t('common.name')}</th>
                <th scope="col">{t('camp.status')}</th>
                <th scope="col">{t('camp.ev.sendAtZone', { zone: event.time_zone })}</th>
                <th scope="col" className="num">
                  {t('camp.sent')}
                </th>
              </tr>
            </thead>
            <tbody>
              {mail.data.map((c) => (
                <tr key={c.id}>
                  <td>{c.event_mail ? t(`camp.ev.kind.${c.event_mail}`) : ''}</td>
                  <td>
                    <Link to={`/campaigns/${c.id}`}>{c.name}</Link>
                  </td>
                  <td>
                    <StatusBadge status={c.status} />
                  </td>
                  <td>{c.send_at ? fmt.dateTimeIn(c.send_at, event.time_zone) : ''}</td>
                  <td className="num">{fmt.number(c.progress?.sent ?? 0)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : (
          <p className="muted">{t('camp.ev.none')}</p>
        )}
      </QueryStatus>
      {open && <ScheduleDialog event={event} onClose={() => setOpen(false)} />}
    </section>
  );
}

function EventsOf({ audienceId }: { audienceId: string }) {
  const t = useT(messages);
  const events = useEvents(audienceId);
  return (
    <QueryStatus query={events}>
      {events.data?.length ? events.data.map((e) => <EventMailCard key={e.id} event={e} />) : <p className="muted">{t('camp.ev.noEvent')}</p>}
    </QueryStatus>
  );
}

/** Event mail: the reminder the day before, the thank-you the day after, and the others, event by event. */
export function EventMailScreen() {
  const t = useT(messages);
  const choice = useAudienceChoice();
  return (
    <div className="page">
      <div className="page-head">
        <Link to={`/campaigns${choice.audienceId ? `?audience=${choice.audienceId}` : ''}`}>{t('camp.back')}</Link>
        <h1>{t('camp.eventMail')}</h1>
        <AudienceSelect value={choice.audienceId} onChange={choice.setAudienceId} />
      </div>
      <p className="muted">{t('camp.ev.explain')}</p>
      <QueryStatus query={choice}>
        {choice.audienceId ? <EventsOf key={choice.audienceId} audienceId={choice.audienceId} /> : <NoAudience />}
      </QueryStatus>
    </div>
  );
}
