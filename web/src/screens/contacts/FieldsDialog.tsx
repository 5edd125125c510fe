import { useState } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import { post } from '../../api.ts';
import { Dialog } from '../../components/Dialog.tsx';
import { FormDialog } from '../../components/FormDialog.tsx';
import { Field } from '../../components/Status.tsx';
import { useToast } from '../../components/Toast.tsx';
import { useT } from '../../i18n/index.tsx';
import type { Community, EventRow } from '../audiences/data.ts';
import { gridKeys, scopeFieldKeys, useFields, useScopeFields, type FieldDef, type ScopeKind } from './data.ts';
import { messages } from './messages.ts';

const TYPES: FieldDef['type'][] = ['text', 'number', 'date', 'boolean', 'choice', 'multi_choice'];
type Scope = 'audience' | ScopeKind;

function FieldTable({ fields }: { fields: FieldDef[] }) {
  const t = useT(messages);
  return (
    <table className="simple">
      <thead>
        <tr>
          <th scope="col">{t('c.fieldKey')}</th>
          <th scope="col">{t('c.fieldLabel')}</th>
          <th scope="col">{t('c.fieldType')}</th>
        </tr>
      </thead>
      <tbody>
        {fields.map((f) => (
          <tr key={f.key}>
            <td>
              <code>{f.key}</code>
            </td>
            <td>{f.label}</td>
            <td>
              {t(`ftype.${f.type}` as 'ftype.text')}
              {f.options?.length ? ` (${f.options.join(', ')})` : ''}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/**
 * The wrench: the audience's central fields, and a form to create a field, central (shown at once
 * in every event and community of the audience) or only in one event or community.
 */
export function FieldsDialog({
  audienceId,
  canEdit,
  events = [],
  communities = [],
  preferEventId,
  onClose,
}: {
  audienceId: string;
  canEdit: boolean;
  events?: EventRow[];
  communities?: Community[];
  preferEventId?: string;
  onClose(): void;
}) {
  const t = useT(messages);
  const qc = useQueryClient();
  const toast = useToast();
  const fields = useFields(audienceId);
  const [key, setKey] = useState('');
  const [label, setLabel] = useState('');
  const [type, setType] = useState<FieldDef['type']>('text');
  const [options, setOptions] = useState('');
  const [scope, setScope] = useState<Scope>('audience');
  // Until one is chosen: the event the grid is filtered by, else the first (the lists may arrive after the dialog opens).
  const [eventChoice, setEventId] = useState('');
  const [communityChoice, setCommunityId] = useState('');
  const eventId = eventChoice || (preferEventId && events.some((e) => e.id === preferEventId) ? preferEventId : (events[0]?.id ?? ''));
  const communityId = communityChoice || (communities[0]?.id ?? '');
  const localKind: ScopeKind | null = scope === 'audience' ? null : scope;
  const localId = scope === 'event' ? eventId : scope === 'community' ? communityId : null;
  const local = useScopeFields(localKind ?? 'event', localId);
  const localName = scope === 'event' ? events.find((e) => e.id === eventId)?.name : communities.find((c) => c.id === communityId)?.name;
  const central = (fields.data ?? []).filter((f) => f.scope === 'audience');
  const own = (local.data ?? []).filter((f) => f.scope === scope);
  const withOptions = type === 'choice' || type === 'multi_choice';
  const list = (
    <>
      <h3>{t('c.centralFields')}</h3>
      {central.length === 0 ? <p className="muted">{t('c.noCentralFields')}</p> : <FieldTable fields={central} />}
      {localKind && localName && (
        <>
          <h3 className="spaced">{t('c.localFieldsOf', { name: localName })}</h3>
          {own.length === 0 ? <p className="muted">{t('c.noLocalFields')}</p> : <FieldTable fields={own} />}
        </>
      )}
    </>
  );
  if (!canEdit)
    return (
      <Dialog title={t('c.fieldsTitle')} onClose={onClose}>
        {list}
      </Dialog>
    );
  return (
    <FormDialog
      title={t('c.fieldsTitle')}
      submitLabel={t('c.createField')}
      wide
      onClose={onClose}
      onSubmit={async () => {
        const path = scope === 'event' ? `/v1/events/${eventId}/fields` : scope === 'community' ? `/v1/communities/${communityId}/fields` : `/v1/audiences/${audienceId}/fields`;
        await post(path, {
          key,
          label: label || undefined,
          type,
          options: withOptions ? options.split(/[\n,;]/).map((s) => s.trim()).filter(Boolean) : undefined,
        });
        await Promise.all([qc.invalidateQueries({ queryKey: gridKeys.all(audienceId) }), qc.invalidateQueries({ queryKey: scopeFieldKeys.all })]);
        toast.success(localName && scope !== 'audience' ? t('c.fieldCreatedIn', { name: label || key, scope: localName }) : t('c.fieldCreated', { name: label || key }));
      }}
    >
      {list}
      <h3 className="spaced">{t('c.newField')}</h3>
      <fieldset className="scope-choice">
        <legend>{t('c.fieldScope')}</legend>
        <label className="check">
          <input type="radio" name="field-scope" value="audience" checked={scope === 'audience'} onChange={() => setScope('audience')} />
          {t('c.scopeCentral')}
        </label>
        <label className="check">
          <input type="radio" name="field-scope" value="event" checked={scope === 'event'} disabled={!events.length} onChange={() => setScope('event')} />
          {t('c.scopeEvent')}
        </label>
        {scope === 'event' && (
          <select aria-label={t('c.scopeEventPick')} value={eventId} onChange={(e) => setEventId(e.target.value)}>
            {events.map((e) => (
              <option key={e.id} value={e.id}>
                {e.name}
              </option>
            ))}
          </select>
        )}
        <label className="check">
          <input type="radio" name="field-scope" value="community" checked={scope === 'community'} disabled={!communities.length} onChange={() => setScope('community')} />
          {t('c.scopeCommunity')}
        </label>
        {scope === 'community' && (
          <select aria-label={t('c.scopeCommunityPick')} value={communityId} onChange={(e) => setCommunityId(e.target.value)}>
            {communities.map((c) => (
              <option key={c.id} value={c.id}>
                {c.name}
              </option>
            ))}
          </select>
        )}
      </fieldset>
      <div className="row">
        <Field label={t('c.fieldKey')} hint={t('c.fieldKeyHint')}>
          <input required maxLength={63} pattern="[a-z][a-z0-9_]*" value={key} onChange={(e) => setKey(e.target.value)} />
        </Field>
        <Field label={t('c.fieldLabel')}>
          <input maxLength={200} value={label} onChange={(e) => setLabel(e.target.value)} />
        </Field>
        <Field label={t('c.fieldType')}>
          <select value={type} onChange={(e) => setType(e.target.value as FieldDef['type'])}>
            {TYPES.map((ty) => (
              <option key={ty} value={ty}>
                {t(`ftype.${ty}` as 'ftype.text')}
              </option>
            ))}
          </select>
        </Field>
      </div>
      {withOptions && (
        <Field label={t('c.fieldOptions')} hint={t('c.fieldOptionsHint')}>
          <textarea required value={options} onChange={(e) => setOptions(e.target.value)} />
        </Field>
      )}
    </FormDialog>
  );
}
