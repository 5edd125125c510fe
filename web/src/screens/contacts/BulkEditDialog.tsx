import { useState } from 'react';
import { post } from '../../api.ts';
import { FormDialog } from '../../components/FormDialog.tsx';
import { Field } from '../../components/Status.tsx';
import { useFormat, useT } from '../../i18n/index.tsx';
import { useFields, type FieldDef } from './data.ts';
import { messages } from './messages.ts';

export type Target = { view_id: string } | { filter: unknown } | { contact_ids: string[] };

const BUILTINS = ['first_name', 'last_name', 'company', 'job_title'];

function valueOf(f: FieldDef, raw: string, many: string[], clear: boolean): unknown {
  if (clear) return null;
  switch (f.type) {
    case 'number':
      return Number(raw);
    case 'boolean':
      return raw !== 'false';
    case 'multi_choice':
      return many;
    default:
      return raw;
  }
}

/** "Modify the whole view / the selection": one value set on every contact of the target, in one API call. */
export function BulkEditDialog({ audienceId, target, count, onDone, onClose }: { audienceId: string; target: Target; count: number | null; onDone(updated: number): void; onClose(): void }) {
  const t = useT(messages);
  const fmt = useFormat();
  const fields = useFields(audienceId);
  const editable = (fields.data ?? []).filter((f) => (f.scope === 'builtin' && BUILTINS.includes(f.key)) || f.scope === 'audience');
  const [key, setKey] = useState('');
  const [raw, setRaw] = useState('');
  const [many, setMany] = useState<string[]>([]);
  const [clear, setClear] = useState(false);
  const field = editable.find((f) => f.key === (key || editable[0]?.key));
  const label = (f: FieldDef) => (f.scope === 'builtin' ? t(`col.${f.key}` as 'col.email') : f.label || f.key);
  return (
    <FormDialog
      title={'contact_ids' in target ? t('c.modifySelection') : t('c.modifyView')}
      submitLabel={t('c.applyToN', { n: count === null ? '…' : fmt.number(count) })}
      onClose={onClose}
      onSubmit={async () => {
        if (!field) return;
        const value = valueOf(field, raw, many, clear);
        const set = field.scope === 'builtin' ? { [field.key]: value } : { fields: { [field.key]: value } };
        const r = await post<{ updated: number }>(`/v1/audiences/${audienceId}/contacts/bulk-update`, { target, set });
        onDone(r.updated);
      }}
    >
      <p>{t('c.modifyIntro', { n: count === null ? '…' : fmt.number(count) })}</p>
      <Field label={t('c.fieldToSet')}>
        <select
          value={field?.key ?? ''}
          onChange={(e) => {
            setKey(e.target.value);
            setRaw('');
            setMany([]);
          }}
        >
          {editable.map((f) => (
            <option key={f.key} value={f.key}>
              {label(f)}
            </option>
          ))}
        </select>
      </Field>
      {field && !clear && (
        <Field label={t('c.newValue')}>
          {field.type === 'choice' ? (
            <select required value={raw} onChange={(e) => setRaw(e.target.value)}>
              <option value="" />
              {(field.options ?? []).map((o) => (
                <option key={o}>{o}</option>
              ))}
            </select>
          ) : field.type === 'multi_choice' ? (
            <select multiple value={many} onChange={(e) => setMany(Array.from(e.target.selectedOptions, (o) => o.value))}>
              {(field.options ?? []).map((o) => (
                <option key={o}>{o}</option>
              ))}
            </select>
          ) : field.type === 'boolean' ? (
            <select value={raw || 'true'} onChange={(e) => setRaw(e.target.value)}>
              <option value="true">{t('common.yes')}</option>
              <option value="false">{t('common.no')}</option>
            </select>
          ) : (
            <input required type={field.type === 'number' ? 'number' : field.type === 'date' ? 'date' : 'text'} value={raw} onChange={(e) => setRaw(e.target.value)} />
          )}
        </Field>
      )}
      <label className="check">
        <input type="checkbox" checked={clear} onChange={(e) => setClear(e.target.checked)} />
        {t('c.clearValue')}
      </label>
    </FormDialog>
  );
}
