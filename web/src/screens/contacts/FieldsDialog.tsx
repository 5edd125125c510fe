import { useState } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import { post } from '../../api.ts';
import { Dialog } from '../../components/Dialog.tsx';
import { FormDialog } from '../../components/FormDialog.tsx';
import { Field } from '../../components/Status.tsx';
import { useToast } from '../../components/Toast.tsx';
import { useT } from '../../i18n/index.tsx';
import { gridKeys, useFields, type FieldDef } from './data.ts';
import { messages } from './messages.ts';

const TYPES: FieldDef['type'][] = ['text', 'number', 'date', 'boolean', 'choice', 'multi_choice'];

/** The wrench: the audience's central fields, and a form to create one. */
export function FieldsDialog({ audienceId, canEdit, onClose }: { audienceId: string; canEdit: boolean; onClose(): void }) {
  const t = useT(messages);
  const qc = useQueryClient();
  const toast = useToast();
  const fields = useFields(audienceId);
  const [key, setKey] = useState('');
  const [label, setLabel] = useState('');
  const [type, setType] = useState<FieldDef['type']>('text');
  const [options, setOptions] = useState('');
  const central = (fields.data ?? []).filter((f) => f.scope === 'audience');
  const withOptions = type === 'choice' || type === 'multi_choice';
  const list = (
    <>
      <h3>{t('c.centralFields')}</h3>
      {central.length === 0 ? (
        <p className="muted">{t('c.noCentralFields')}</p>
      ) : (
        <table className="simple">
          <thead>
            <tr>
              <th scope="col">{t('c.fieldKey')}</th>
              <th scope="col">{t('c.fieldLabel')}</th>
              <th scope="col">{t('c.fieldType')}</th>
            </tr>
          </thead>
          <tbody>
            {central.map((f) => (
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
        await post(`/v1/audiences/${audienceId}/fields`, {
          key,
          label: label || undefined,
          type,
          options: withOptions ? options.split(/[\n,;]/).map((s) => s.trim()).filter(Boolean) : undefined,
        });
        await qc.invalidateQueries({ queryKey: gridKeys.all(audienceId) });
        toast.success(t('c.fieldCreated', { name: label || key }));
      }}
    >
      {list}
      <h3>{t('c.newField')}</h3>
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
