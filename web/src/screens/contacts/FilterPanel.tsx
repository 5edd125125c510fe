import { useEffect, useState } from 'react';
import { Field } from '../../components/Status.tsx';
import { useT } from '../../i18n/index.tsx';
import type { Community, EventRow } from '../audiences/data.ts';
import type { GridColumn } from './data.ts';
import { NO_VALUE_OPS, newCondition, type FieldCondition, type FilterModel, type Membership } from './filter-model.ts';
import { useColumnLabel } from './labels.ts';
import { messages } from './messages.ts';

function MembershipFilter({ legend, scopes, value, onChange, modes }: { legend: string; scopes: { id: string; name: string }[]; value: Membership; onChange(m: Membership): void; modes: Record<Membership['mode'], string> }) {
  const t = useT(messages);
  return (
    <fieldset className="filter-group">
      <legend>{legend}</legend>
      {scopes.length === 0 ? (
        <p className="muted">{t('c.nothingToFilter')}</p>
      ) : (
        <>
          <Field label={t('c.matchMode', { what: legend })}>
            <select value={value.mode} onChange={(e) => onChange({ ...value, mode: e.target.value as Membership['mode'] })}>
              {(Object.keys(modes) as Membership['mode'][]).map((m) => (
                <option key={m} value={m}>
                  {modes[m]}
                </option>
              ))}
            </select>
          </Field>
          <div className="check-list">
            {scopes.map((s) => (
              <label key={s.id} className="check">
                <input
                  type="checkbox"
                  checked={value.ids.includes(s.id)}
                  onChange={(e) => onChange({ ...value, ids: e.target.checked ? [...value.ids, s.id] : value.ids.filter((x) => x !== s.id) })}
                />
                {s.name}
              </label>
            ))}
          </div>
        </>
      )}
    </fieldset>
  );
}

const INPUT_TYPE: Partial<Record<GridColumn['type'], string>> = { number: 'number', day: 'date', datetime: 'datetime-local' };

function ConditionRow({ c, columns, onChange, onRemove, index }: { c: FieldCondition; columns: GridColumn[]; onChange(c: FieldCondition): void; onRemove(): void; index: number }) {
  const t = useT(messages);
  const label = useColumnLabel();
  const col = columns.find((x) => x.key === c.field);
  const opLabel = (op: string) => t(`op.${op}` as 'op.equals');
  const inputType = col ? (INPUT_TYPE[col.type] ?? 'text') : 'text';
  const n = index + 1;
  return (
    <div className="condition" role="group" aria-label={t('c.conditionN', { n })}>
      <select aria-label={t('c.conditionField', { n })} value={c.field} onChange={(e) => onChange(newCondition(columns.find((x) => x.key === e.target.value)!))}>
        {columns.map((x) => (
          <option key={x.key} value={x.key}>
            {label(x)}
          </option>
        ))}
      </select>
      <select aria-label={t('c.conditionOp', { n })} value={c.op} onChange={(e) => onChange({ ...c, op: e.target.value })}>
        {(col?.operators ?? []).map((op) => (
          <option key={op} value={op}>
            {opLabel(op)}
          </option>
        ))}
      </select>
      {!NO_VALUE_OPS.has(c.op) &&
        col &&
        (c.op === 'in' && col.options ? (
          <select multiple required aria-label={t('c.conditionValue', { n })} value={c.values} onChange={(e) => onChange({ ...c, values: Array.from(e.target.selectedOptions, (o) => o.value) })}>
            {col.options.map((o) => (
              <option key={o}>{o}</option>
            ))}
          </select>
        ) : col.type === 'choice' && c.op !== 'in' ? (
          <select required aria-label={t('c.conditionValue', { n })} value={c.value} onChange={(e) => onChange({ ...c, value: e.target.value })}>
            <option value="" />
            {(col.options ?? []).map((o) => (
              <option key={o}>{o}</option>
            ))}
          </select>
        ) : (
          <input
            required
            type={c.op === 'in' ? 'text' : inputType}
            aria-label={t('c.conditionValue', { n })}
            placeholder={c.op === 'in' ? t('c.commaSeparated') : undefined}
            value={c.value}
            onChange={(e) => onChange({ ...c, value: e.target.value })}
          />
        ))}
      {c.op === 'between' && col && <input required type={inputType} aria-label={t('c.conditionValue2', { n })} value={c.value2} onChange={(e) => onChange({ ...c, value2: e.target.value })} />}
      <button type="button" className="icon-button" aria-label={t('c.removeCondition', { n })} onClick={onRemove}>
        ×
      </button>
    </div>
  );
}

/**
 * The filter panel: participants of events, members of communities, and conditions on any
 * filterable column. Edits stay in the panel until Apply, so the grid does not reload at each keystroke.
 */
export function FilterPanel({
  value,
  columns,
  events,
  communities,
  onApply,
  onClose,
}: {
  value: FilterModel;
  columns: GridColumn[];
  events: EventRow[];
  communities: Community[];
  onApply(m: FilterModel): void;
  onClose(): void;
}) {
  const t = useT(messages);
  const [draft, setDraft] = useState<FilterModel>(value);
  useEffect(() => setDraft(value), [value]);
  const filterable = columns.filter((c) => c.operators.length > 0);
  return (
    <section className="card filter-panel" aria-labelledby="filter-title">
      <form
        onSubmit={(e) => {
          e.preventDefault();
          onApply(draft);
        }}
      >
        <div className="card-head">
          <h2 id="filter-title">{t('c.filters')}</h2>
          <button type="button" className="icon-button" aria-label={t('c.closeFilters')} onClick={onClose}>
            ×
          </button>
        </div>
        <MembershipFilter
          legend={t('c.eventFilter')}
          scopes={events}
          value={draft.events}
          onChange={(events) => setDraft({ ...draft, events })}
          modes={{ in: t('c.eventAny'), all: t('c.eventAll'), not_in: t('c.eventNone') }}
        />
        <MembershipFilter
          legend={t('c.communityFilter')}
          scopes={communities}
          value={draft.communities}
          onChange={(communities) => setDraft({ ...draft, communities })}
          modes={{ in: t('c.communityAny'), all: t('c.communityAll'), not_in: t('c.communityNone') }}
        />
        <fieldset className="filter-group">
          <legend>{t('c.fieldFilter')}</legend>
          {draft.raw !== null && (
            <p className="muted">
              {t('c.rawFilter')}{' '}
              <button type="button" className="link" onClick={() => setDraft({ ...draft, raw: null })}>
                {t('common.remove')}
              </button>
            </p>
          )}
          {draft.conditions.map((c, i) => (
            <ConditionRow
              key={i}
              index={i}
              c={c}
              columns={filterable}
              onChange={(nc) => setDraft({ ...draft, conditions: draft.conditions.map((x, j) => (j === i ? nc : x)) })}
              onRemove={() => setDraft({ ...draft, conditions: draft.conditions.filter((_, j) => j !== i) })}
            />
          ))}
          <button type="button" onClick={() => filterable[0] && setDraft({ ...draft, conditions: [...draft.conditions, newCondition(filterable[0])] })}>
            {t('c.addCondition')}
          </button>
        </fieldset>
        <div className="toolbar">
          <button type="submit" className="primary">
            {t('common.apply')}
          </button>
          <button type="button" onClick={() => onApply({ events: { mode: 'in', ids: [] }, communities: { mode: 'in', ids: [] }, conditions: [], raw: null })}>
            {t('c.clearFilters')}
          </button>
        </div>
      </form>
    </section>
  );
}
