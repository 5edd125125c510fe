import { describe, expect, it } from 'vitest';
import type { GridColumn } from './data.ts';
import { emptyFilter, filterCount, fromApiFilter, newCondition, toApiFilter, type FilterModel } from './filter-model.ts';

const col = (key: string, type: GridColumn['type'], operators: string[], options: string[] | null = null): GridColumn => ({
  key, label: key, type, options, source: 'contact', operators, sortable: true, default: true,
});
const COLUMNS = [
  col('last_name', 'text', ['equals', 'contains', 'in', 'empty']),
  col('score', 'number', ['equals', 'gt', 'between']),
  col('diet', 'choice', ['equals', 'in'], ['vegan', 'halal']),
  col('created_at', 'datetime', ['before', 'after', 'between']),
  col('account_locked', 'boolean', ['is_true', 'is_false']),
];
const E1 = '00000000-0000-4000-8000-000000000001';
const C1 = '00000000-0000-4000-8000-000000000002';

describe('the filter panel model', () => {
  it('is no filter at all when empty', () => {
    expect(toApiFilter(emptyFilter(), COLUMNS)).toBeNull();
    expect(filterCount(emptyFilter())).toBe(0);
  });

  it('joins events, communities and field conditions with "and", converting values by column type', () => {
    const m: FilterModel = {
      events: { mode: 'all', ids: [E1] },
      communities: { mode: 'not_in', ids: [C1] },
      conditions: [
        { field: 'last_name', op: 'in', value: 'Curie, Noether ,', value2: '', values: [] },
        { field: 'score', op: 'between', value: '3', value2: '7', values: [] },
        { field: 'diet', op: 'in', value: '', value2: '', values: ['vegan'] },
        { field: 'account_locked', op: 'is_true', value: 'ignored', value2: '', values: [] },
        { field: 'created_at', op: 'after', value: '2027-03-01T10:00', value2: '', values: [] },
      ],
      raw: null,
    };
    const f = toApiFilter(m, COLUMNS) as { and: unknown[] };
    expect(f.and.slice(0, 5)).toEqual([
      { event: { all: [E1] } },
      { community: { not_in: [C1] } },
      { field: 'last_name', op: 'in', value: ['Curie', 'Noether'] },
      { field: 'score', op: 'between', value: [3, 7] },
      { field: 'diet', op: 'in', value: ['vegan'] },
    ]);
    expect(f.and[5]).toEqual({ field: 'account_locked', op: 'is_true' });
    expect(f.and[6]).toEqual({ field: 'created_at', op: 'after', value: new Date('2027-03-01T10:00').toISOString() });
    expect(filterCount(m)).toBe(7);
  });

  it('reads back what it wrote, so a saved view opens in the panel as it was saved', () => {
    const m: FilterModel = {
      events: { mode: 'in', ids: [E1] },
      communities: { mode: 'in', ids: [] },
      conditions: [
        { field: 'last_name', op: 'contains', value: 'ada', value2: '', values: [] },
        { field: 'score', op: 'gt', value: '10', value2: '', values: [] },
        { field: 'created_at', op: 'before', value: '2027-03-01T10:00', value2: '', values: [] },
      ],
      raw: null,
    };
    expect(fromApiFilter(toApiFilter(m, COLUMNS), COLUMNS)).toEqual(m);
  });

  it('keeps what the panel cannot show (a filter written through the API) as it is, and sends it again', () => {
    const apiMade = { or: [{ field: 'last_name', op: 'empty' }, { not: { event: { in: [E1] } } }] };
    const m = fromApiFilter({ and: [apiMade, { field: 'diet', op: 'equals', value: 'halal' }] }, COLUMNS);
    expect(m.raw).toEqual(apiMade);
    expect(m.conditions).toEqual([{ field: 'diet', op: 'equals', value: 'halal', value2: '', values: [] }]);
    expect(toApiFilter(m, COLUMNS)).toEqual({ and: [apiMade, { field: 'diet', op: 'equals', value: 'halal' }] });
    // A lone raw filter goes back unwrapped.
    expect(toApiFilter(fromApiFilter(apiMade, COLUMNS), COLUMNS)).toEqual(apiMade);
    // A condition on a column the audience no longer has stays raw rather than being dropped.
    expect(fromApiFilter({ field: 'gone', op: 'equals', value: 'x' }, COLUMNS).raw).toEqual({ field: 'gone', op: 'equals', value: 'x' });
  });

  it('starts a new condition with the first operator of its column', () => {
    expect(newCondition(COLUMNS[1]!)).toEqual({ field: 'score', op: 'equals', value: '', value2: '', values: [] });
  });
});
