import { useState } from 'react';
import { Dialog } from '../../components/Dialog.tsx';
import { useT } from '../../i18n/index.tsx';
import type { GridColumn } from './data.ts';
import { useColumnLabel } from './labels.ts';
import { messages } from './messages.ts';

/** Choose the grid's columns (in the audience's column order). */
export function ColumnsDialog({ columns, visible, onApply, onClose }: { columns: GridColumn[]; visible: string[]; onApply(keys: string[]): void; onClose(): void }) {
  const t = useT(messages);
  const label = useColumnLabel();
  const [chosen, setChosen] = useState(new Set(visible));
  const choosable = columns.filter((c) => c.key !== 'id');
  return (
    <Dialog
      title={t('c.chooseColumns')}
      onClose={onClose}
      onSubmit={() => {
        onApply(choosable.filter((c) => chosen.has(c.key)).map((c) => c.key));
        onClose();
      }}
      footer={
        <>
          <button type="button" onClick={() => setChosen(new Set(columns.filter((c) => c.default).map((c) => c.key)))}>
            {t('c.defaultColumns')}
          </button>
          <button type="button" onClick={onClose}>
            {t('common.cancel')}
          </button>
          <button type="submit" className="primary" disabled={chosen.size === 0}>
            {t('common.apply')}
          </button>
        </>
      }
    >
      <fieldset className="check-list columns-list">
        <legend className="visually-hidden">{t('c.chooseColumns')}</legend>
        {choosable.map((c) => (
          <label key={c.key} className="check">
            <input
              type="checkbox"
              checked={chosen.has(c.key)}
              onChange={(e) => {
                const next = new Set(chosen);
                if (e.target.checked) next.add(c.key);
                else next.delete(c.key);
                setChosen(next);
              }}
            />
            {label(c)}
            {c.source === 'field' && <span className="badge">{t('c.centralField')}</span>}
          </label>
        ))}
      </fieldset>
    </Dialog>
  );
}
