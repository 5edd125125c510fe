import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  bulkSetProblem,
  checkColumns,
  checkFilter,
  checkSort,
  checkView,
  decodeCursor,
  encodeCursor,
  gridColumns,
  excludesMissing,
  keysetBranches,
  numberMatches,
  operatorsFor,
  parseInstant,
  scopeIdCandidates,
  MAX_SCOPE_CANDIDATES,
  type Condition,
  type CursorPosition,
  type Sort,
} from './grid-rules.ts';

const COLUMNS = gridColumns([
  { key: 'diet', type: 'choice', options: ['none', 'vegetarian', 'vegan'], label: 'Diet' },
  { key: 'tags', type: 'multi_choice', options: ['a', 'b', 'c'] },
  { key: 'score', type: 'number', options: null },
  { key: 'birthday', type: 'date', options: null },
  { key: 'vip', type: 'boolean', options: null },
  { key: 'notes', type: 'text', options: null },
]);
const E1 = '11111111-1111-4111-8111-111111111111';
const E2 = '22222222-2222-4222-8222-222222222222';

function ok(input: unknown) {
  const r = checkFilter(input, COLUMNS);
  if (!r.ok) throw new Error(r.problems.join('\n'));
  return r.value;
}
function problems(input: unknown): string[] {
  const r = checkFilter(input, COLUMNS);
  if (r.ok) throw new Error(`expected problems for ${JSON.stringify(input)}`);
  return r.problems;
}
const leafOf = (input: unknown) => ok(input).condition as Extract<Condition, { kind: 'leaf' }>;

describe('grid columns', () => {
  it('puts built-ins, central fields, then computed columns', () => {
    const keys = COLUMNS.map((c) => c.key);
    expect(keys.slice(0, 5)).toEqual(['last_name', 'first_name', 'email', 'company', 'job_title']);
    expect(keys.slice(5, 11)).toEqual(['diet', 'tags', 'score', 'birthday', 'vip', 'notes']);
    for (const k of ['events_count', 'events', 'communities_count', 'communities', 'company_name', 'account_confirmed', 'account_locked', 'failed_attempts', 'lock_end', 'created_at', 'marketing_authorized_at']) {
      expect(keys).toContain(k);
    }
  });

  it('offers emptiness tests only where a value can be missing', () => {
    const col = (k: string) => COLUMNS.find((c) => c.key === k)!;
    expect(operatorsFor(col('email'))).not.toContain('empty');
    expect(operatorsFor(col('last_name'))).toContain('empty');
    expect(operatorsFor(col('account_locked'))).toEqual(['is_true', 'is_false']);
    expect(operatorsFor(col('vip'))).toEqual(['is_true', 'is_false', 'empty', 'not_empty']);
    expect(operatorsFor(col('events'))).toEqual([]);
  });
});

describe('checkFilter', () => {
  it('takes no filter as every contact', () => {
    expect(ok(undefined).condition).toBeNull();
    expect(ok(null).condition).toBeNull();
    expect(ok({ and: [] }).condition).toEqual({ kind: 'and', items: [] });
  });

  it.each([
    [{ field: 'last_name', op: 'equals', value: 'Lovelace' }, { kind: 'eq', value: 'Lovelace' }],
    [{ field: 'last_name', op: 'not_equals', value: 'Lovelace' }, { kind: 'ne', value: 'Lovelace' }],
    [{ field: 'first_name', op: 'contains', value: '50%_' }, { kind: 'contains', text: '50%_' }],
    [{ field: 'job_title', op: 'starts_with', value: 'Dir' }, { kind: 'starts_with', text: 'Dir' }],
    [{ field: 'company', op: 'in', value: ['A', 'B', 'A'] }, { kind: 'in', values: ['A', 'B'] }],
    [{ field: 'notes', op: 'empty' }, { kind: 'empty' }],
    [{ field: 'company_name', op: 'not_empty', value: null }, { kind: 'not_empty' }],
    [{ field: 'email', op: 'equals', value: ' Ada@EXAMPLE.com ' }, { kind: 'eq', value: 'ada@example.com' }],
    [{ field: 'email', op: 'in', value: ['user@Bücher.de'] }, { kind: 'in', values: ['user@xn--bcher-kva.de'] }],
    [{ field: 'score', op: 'gt', value: 3 }, { kind: 'range', lower: { value: 3, inclusive: false }, upper: null }],
    [{ field: 'score', op: 'lte', value: '2.5' }, { kind: 'range', lower: null, upper: { value: 2.5, inclusive: true } }],
    [{ field: 'events_count', op: 'between', value: [1, 3] }, { kind: 'range', lower: { value: 1, inclusive: true }, upper: { value: 3, inclusive: true } }],
    [{ field: 'score', op: 'equals', value: 0 }, { kind: 'eq', value: 0 }],
    [{ field: 'birthday', op: 'before', value: '1900-01-01' }, { kind: 'range', lower: null, upper: { value: '1900-01-01', inclusive: false } }],
    [{ field: 'birthday', op: 'equals', value: '10/12/1815' }, { kind: 'eq', value: '1815-12-10' }],
    [{ field: 'diet', op: 'in', value: ['vegan'] }, { kind: 'in', values: ['vegan'] }],
    [{ field: 'diet', op: 'not_equals', value: 'vegan' }, { kind: 'ne', value: 'vegan' }],
    [{ field: 'tags', op: 'in', value: ['a', 'c'] }, { kind: 'in', values: ['a', 'c'] }],
    [{ field: 'vip', op: 'is_false' }, { kind: 'is_false' }],
    [{ field: 'company_id', op: 'equals', value: E1.toUpperCase() }, { kind: 'eq', value: E1 }],
  ])('normalises %j', (input, pred) => {
    expect(leafOf(input).pred).toEqual(pred);
  });

  it('reads a bare day on a date-time column as that whole UTC day', () => {
    expect(leafOf({ field: 'created_at', op: 'before', value: '2026-03-01' }).pred).toEqual({
      kind: 'range', lower: null, upper: { value: '2026-03-01T00:00:00.000Z', inclusive: false },
    });
    expect(leafOf({ field: 'created_at', op: 'after', value: '2026-03-01' }).pred).toEqual({
      kind: 'range', lower: { value: '2026-03-02T00:00:00.000Z', inclusive: true }, upper: null,
    });
    expect(leafOf({ field: 'marketing_authorized_at', op: 'between', value: ['2026-02-28', '2026-03-01'] }).pred).toEqual({
      kind: 'range', lower: { value: '2026-02-28T00:00:00.000Z', inclusive: true }, upper: { value: '2026-03-02T00:00:00.000Z', inclusive: false },
    });
    expect(leafOf({ field: 'created_at', op: 'after', value: '2026-03-01T10:00:00+02:00' }).pred).toEqual({
      kind: 'range', lower: { value: '2026-03-01T08:00:00.000Z', inclusive: false }, upper: null,
    });
    expect(leafOf({ field: 'lock_end', op: 'between', value: ['2026-03-01T10:00:00Z', '2026-03-01T10:00:00Z'] }).pred.kind).toBe('range');
  });

  it('parses instants strictly', () => {
    expect(parseInstant('2026-02-30')).toBeNull();
    expect(parseInstant('2026-02-03T25:00:00Z')).toBeNull();
    expect(parseInstant('yesterday')).toBeNull();
    expect(parseInstant('2026-02-03 10:00')).toEqual({ kind: 'instant', at: '2026-02-03T10:00:00.000Z' });
  });

  it('builds and / or / not trees and event and community conditions', () => {
    const f = ok({
      and: [
        { or: [{ event: { in: [E1, E2, E1] } }, { community: { not_in: [E2] } }] },
        { not: { field: 'diet', op: 'equals', value: 'vegan' } },
        { event: { all: [E2.toUpperCase()] } },
      ],
    });
    expect(f.eventIds.sort()).toEqual([E1, E2]);
    expect(f.communityIds).toEqual([E2]);
    const c = f.condition as { kind: 'and'; items: Condition[] };
    expect(c.items[0]).toEqual({
      kind: 'or',
      items: [
        { kind: 'membership', of: 'event', mode: 'any', ids: [E1, E2] },
        { kind: 'membership', of: 'community', mode: 'none', ids: [E2] },
      ],
    });
    expect(c.items[1]!.kind).toBe('not');
    expect(c.items[2]).toEqual({ kind: 'membership', of: 'event', mode: 'all', ids: [E2] });
  });

  it.each([
    [{ field: 'nope', op: 'equals', value: 'x' }, /unknown column "nope"/],
    [{ field: 'last_name; DROP TABLE contacts;--', op: 'equals', value: 'x' }, /unknown column "last_name; DROP TABLE contacts;--"/],
    [{ field: 'fields', op: 'equals', value: 'x' }, /unknown column "fields"/],
    [{ field: 'diet', op: 'contains', value: 'veg' }, /"diet" is a choice column; "contains" is not one of its operators \(equals, not_equals, in, empty, not_empty\)/],
    [{ field: 'score', op: 'before', value: 3 }, /"score" is a number column; "before"/],
    [{ field: 'created_at', op: 'equals', value: '2026-01-01' }, /date-time column; "equals"/],
    [{ field: 'vip', op: 'lt', value: 1 }, /boolean column/],
    [{ field: 'email', op: 'empty' }, /"email" is a text column; "empty" is not one of its operators/],
    [{ field: 'last_name', op: 'like', value: 'x' }, /unknown operator "like"/],
    [{ field: 'last_name', value: 'x' }, /filter.op: expected an operator for "last_name"/],
    [{ field: 'score', op: 'gt', value: 'abc' }, /score gt: expected a number, got "abc"/],
    [{ field: 'score', op: 'gt' }, /score gt: needs a value/],
    [{ field: 'score', op: 'between', value: [5, 1] }, /first bound 5 is after the second 1/],
    [{ field: 'score', op: 'between', value: 5 }, /expected \[from, to\]/],
    [{ field: 'created_at', op: 'between', value: ['2026-03-02', '2026-03-01'] }, /after the second/],
    [{ field: 'birthday', op: 'after', value: '31/02/2000' }, /expected a date as YYYY-MM-DD/],
    [{ field: 'created_at', op: 'after', value: 'soon' }, /expected a date \(YYYY-MM-DD\) or a date-time/],
    [{ field: 'diet', op: 'equals', value: 'carnivore' }, /"carnivore" is not an option of diet \(options: "none", "vegetarian", "vegan"\)/],
    [{ field: 'tags', op: 'in', value: ['a', 'z'] }, /"z" is not an option of tags/],
    [{ field: 'diet', op: 'in', value: [] }, /expected a list of 1 to 1000 values/],
    [{ field: 'last_name', op: 'equals', value: 42 }, /expected text, got 42/],
    [{ field: 'last_name', op: 'contains', value: '' }, /use "empty"/],
    [{ field: 'last_name', op: 'equals', value: 'a\0b' }, /NUL/],
    [{ field: 'vip', op: 'is_true', value: true }, /vip is_true: takes no value/],
    [{ field: 'company_id', op: 'equals', value: 'initech' }, /expected an id/],
    [{ field: 'events', op: 'in', value: [E1] }, /"events" is a list; filter with \{"event": \{"in": \[event ids\]\}\} or on "events_count"/],
    [{ event: { in: ['not-an-id'] } }, /filter.event.in: "not-an-id" is not an event id/],
    [{ event: { in: [] } }, /expected a list of 1 to 1000 event ids/],
    [{ event: { any: [E1] } }, /expected \{"in": \[event ids\]\}/],
    [{ community: [E1] }, /filter.community: expected \{"in": \[community ids\]\}/],
    [{ or: [] }, /an empty "or" matches nothing/],
    [{ and: {} }, /filter.and: expected a list of conditions/],
    [{ and: [{ field: 'score', op: 'gt', value: 1 }], or: [] }, /combines and and or/],
    [{ field: 'score', op: 'gt', value: 1, extra: true }, /unexpected key "extra"/],
    [{}, /expected one of the keys/],
    ['last_name = 1', /filter: expected an object/],
    [[{ field: 'score', op: 'gt', value: 1 }], /filter: expected an object/],
  ])('refuses %j', (input, message) => {
    expect(problems(input).join('\n')).toMatch(message);
  });

  it('reports every problem with its path', () => {
    const p = problems({ and: [{ field: 'score', op: 'gt', value: 'x' }, { or: [{ field: 'nope', op: 'empty' }, { not: { field: 'diet', op: 'lt', value: 1 } }] }] });
    expect(p).toHaveLength(3);
    expect(p[0]).toMatch(/^filter\.and\[0\]: /);
    expect(p[1]).toMatch(/^filter\.and\[1\]\.or\[0\]: /);
    expect(p[2]).toMatch(/^filter\.and\[1\]\.or\[1\]\.not: /);
  });

  it('bounds the size of a filter', () => {
    let deep: unknown = { field: 'score', op: 'gt', value: 1 };
    for (let i = 0; i < 20; i++) deep = { not: deep };
    expect(problems(deep).join()).toMatch(/nested deeper than 12 levels/);
    const wide = { or: Array.from({ length: 400 }, () => ({ field: 'score', op: 'gt', value: 1 })) };
    expect(problems(wide).join()).toMatch(/more than 300 conditions/);
    expect(problems({ field: 'last_name', op: 'in', value: Array.from({ length: 1001 }, (_, i) => `n${i}`) }).join()).toMatch(/1 to 1000 values/);
  });

  it('never throws, whatever JSON it is given', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), (input) => {
        const r = checkFilter(input, COLUMNS);
        if (!r.ok) expect(r.problems.length).toBeGreaterThan(0);
      }),
      { numRuns: 500 },
    );
  });
});

describe('checkSort and checkColumns', () => {
  it('accepts {field, dir}, "field" and "-field", with last_name ascending by default', () => {
    const s = (input: unknown) => {
      const r = checkSort(input, COLUMNS);
      if (!r.ok) throw new Error(r.problems.join());
      return `${r.value.column.key}:${r.value.dir}`;
    };
    expect(s(undefined)).toBe('last_name:asc');
    expect(s({ field: 'score', dir: 'desc' })).toBe('score:desc');
    expect(s({ field: 'events_count' })).toBe('events_count:asc');
    expect(s('-created_at')).toBe('created_at:desc');
    expect(s('diet')).toBe('diet:asc');
  });

  it.each([
    [{ field: 'nope' }, /sort.field: unknown column "nope"/],
    [{ field: 'events' }, /sort by "events_count"/],
    [{ field: 'score', dir: 'up' }, /sort.dir: expected "asc" or "desc"/],
    [{ field: 'score', nulls: 'first' }, /unexpected key "nulls"/],
    [42, /sort: expected/],
  ])('refuses the sort %j', (input, message) => {
    const r = checkSort(input, COLUMNS);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problems.join()).toMatch(message);
  });

  it('returns the default columns, or the ones asked for in order', () => {
    const def = checkColumns(undefined, COLUMNS);
    expect(def.ok && def.value.map((c) => c.key)).not.toContain('updated_at');
    expect(def.ok && def.value.map((c) => c.key)).toContain('diet');
    const some = checkColumns(['email', 'id', 'diet', 'email', 'has_account'], COLUMNS);
    expect(some.ok && some.value.map((c) => c.key)).toEqual(['email', 'diet', 'has_account']);
    const bad = checkColumns(['email', 'password_hash'], COLUMNS);
    expect(!bad.ok && bad.problems).toEqual(['columns[1]: unknown column "password_hash"']);
  });

  it('checks a view as a whole', () => {
    const r = checkView({ filter: { field: 'nope', op: 'empty' }, columns: ['x'], sort: 'y' }, COLUMNS);
    expect(!r.ok && r.problems.length).toBe(3);
    const good = checkView({ filter: { field: 'diet', op: 'equals', value: 'vegan' }, sort: '-score' }, COLUMNS);
    expect(good.ok && good.value.definition).toEqual({ filter: { field: 'diet', op: 'equals', value: 'vegan' }, columns: null, sort: { field: 'score', dir: 'desc' } });
  });
});

describe('cursors', () => {
  const sortBy = (key: string, dir: 'asc' | 'desc'): Sort => ({ column: COLUMNS.find((c) => c.key === key)!, dir });

  it('round-trips and belongs to its sort', () => {
    const s = sortBy('score', 'desc');
    const pos = { value: '12.5', id: E1 };
    const raw = encodeCursor(s, pos);
    expect(decodeCursor(raw, s)).toEqual({ ok: true, value: pos });
    const other = decodeCursor(raw, sortBy('score', 'asc'));
    expect(!other.ok && other.problems[0]).toMatch(/made for the sort "score:desc", not "score:asc"/);
    expect(decodeCursor('garbage!', s).ok).toBe(false);
    expect(decodeCursor(Buffer.from('{"s":"score:desc","v":1,"i":"x"}').toString('base64url'), s).ok).toBe(false);
    // a column that always has a value cannot be at a null position
    expect(decodeCursor(encodeCursor(sortBy('created_at', 'asc'), { value: null, id: E1 }), sortBy('created_at', 'asc')).ok).toBe(false);
  });

  // The keyset branches, evaluated in memory, must walk every row once in the order
  // "values by (value, id) in the sort direction, then missing values by id".
  it('walks every row exactly once in order, for any data and page size', () => {
    type Row = { id: string; v: number | null };
    const cmp = (a: Row, b: Row, dir: 1 | -1) => {
      if (a.v === null && b.v !== null) return 1;
      if (b.v === null && a.v !== null) return -1;
      if (a.v !== null && b.v !== null && a.v !== b.v) return (a.v - b.v) * dir;
      return a.id < b.id ? -dir : a.id > b.id ? dir : 0;
    };
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.record({ id: fc.uuid(), v: fc.option(fc.integer({ min: 0, max: 5 }), { nil: null }) }), { selector: (r) => r.id, maxLength: 40 }),
        fc.integer({ min: 1, max: 7 }),
        fc.boolean(),
        (rows, size, asc) => {
          const dir = asc ? 1 : -1;
          const nullable = rows.some((r) => r.v === null);
          const expected = [...rows].sort((a, b) => cmp(a, b, dir));
          const seen: Row[] = [];
          let cursor: CursorPosition | null = null;
          for (let guard = 0; guard < 100; guard++) {
            const candidates: Row[] = keysetBranches(nullable, cursor).flatMap((b) =>
              rows.filter((r) => {
                if (b.nulls) return r.v === null && (b.afterId === null || (asc ? r.id > b.afterId : r.id < b.afterId));
                if (r.v === null) return false;
                if (!b.after) return true;
                const v = Number(b.after.value);
                return asc ? r.v > v || (r.v === v && r.id > b.after.id) : r.v < v || (r.v === v && r.id < b.after.id);
              }),
            );
            const page: Row[] = candidates.sort((a, b) => cmp(a, b, dir)).slice(0, size);
            seen.push(...page);
            if (page.length < size) break;
            const last: Row = page[page.length - 1]!;
            cursor = { value: last.v === null ? null : String(last.v), id: last.id };
          }
          expect(seen.map((r) => r.id)).toEqual(expected.map((r) => r.id));
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('numberMatches and excludesMissing', () => {
  const pred = (op: string, value?: unknown) => leafOf({ field: 'events_count', op, value }).pred;

  it('evaluates number predicates on a count', () => {
    expect(numberMatches(pred('equals', 0), 0)).toBe(true);
    expect(numberMatches(pred('not_equals', 0), 0)).toBe(false);
    expect(numberMatches(pred('lt', 2), 0)).toBe(true);
    expect(numberMatches(pred('gte', 1), 0)).toBe(false);
    expect(numberMatches(pred('gt', 0.5), 1)).toBe(true);
    expect(numberMatches(pred('between', [0, 2]), 2)).toBe(true);
    expect(numberMatches(pred('between', [1, 2]), 0)).toBe(false);
  });

  it('knows when a filter leaves no contact without a value in the sort column', () => {
    const cond = (f: unknown) => ok(f).condition;
    expect(excludesMissing(cond({ field: 'score', op: 'gt', value: 1 }), 'score')).toBe(true);
    expect(excludesMissing(cond({ field: 'score', op: 'not_empty' }), 'score')).toBe(true);
    expect(excludesMissing(cond({ and: [{ event: { in: [E1] } }, { field: 'vip', op: 'is_false' }] }), 'vip')).toBe(true);
    expect(excludesMissing(cond({ or: [{ field: 'score', op: 'gt', value: 1 }, { field: 'score', op: 'lt', value: -1 }] }), 'score')).toBe(true);
    expect(excludesMissing(cond({ or: [{ field: 'score', op: 'gt', value: 1 }, { field: 'diet', op: 'empty' }] }), 'score')).toBe(false);
    expect(excludesMissing(cond({ field: 'score', op: 'not_equals', value: 1 }), 'score')).toBe(false);
    expect(excludesMissing(cond({ not: { field: 'score', op: 'empty' } }), 'score')).toBe(false);
    expect(excludesMissing(cond({ field: 'score', op: 'gt', value: 1 }), 'diet')).toBe(false);
    expect(excludesMissing(null, 'score')).toBe(false);
  });
});

describe('bulkSetProblem', () => {
  it('refuses email, unknown keys and an empty set', () => {
    expect(bulkSetProblem({ email: 'a@b.co' })).toMatch(/email cannot be bulk-set/);
    expect(bulkSetProblem({ password_hash: 'x' })).toMatch(/set.password_hash: cannot be bulk-set/);
    expect(bulkSetProblem({})).toMatch(/nothing to change/);
    expect(bulkSetProblem({ fields: {} })).toMatch(/nothing to change/);
    expect(bulkSetProblem({ fields: [] })).toMatch(/expected an object/);
    expect(bulkSetProblem({ job_title: null })).toBeNull();
    expect(bulkSetProblem({ fields: { diet: 'vegan' } })).toBeNull();
  });
});

describe('re-permission answers as a filter', () => {
  const cols = gridColumns([]);
  const id = '2f0c9a52-6f3e-4a55-9d3c-1b2a3c4d5e6f';
  it('accepts a campaign id and an answer, and refuses anything else', () => {
    expect(checkFilter({ repermission: { campaign_id: id.toUpperCase(), answer: 'yes' } }, cols)).toEqual({ ok: true, value: { condition: { kind: 'repermission', campaignId: id, answer: 'yes' }, eventIds: [], communityIds: [] } });
    for (const bad of [{ campaign_id: 'nope', answer: 'yes' }, { campaign_id: id, answer: 'maybe' }, { campaign_id: id }, { campaign_id: id, answer: 'no', extra: 1 }, 'yes']) {
      const r = checkFilter({ repermission: bad }, cols);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.problems[0]).toMatch(/filter\.repermission: expected/);
    }
  });
});

describe('scopeIdCandidates', () => {
  // Filters as clients write them, membership conditions among the rest, ids in either case.
  const tree = fc.letrec((t) => ({
    node: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      fc.constant({ event: { in: 'not a list' } }),
      fc
        .tuple(fc.constantFrom('event', 'community'), fc.constantFrom('in', 'all', 'not_in'), fc.array(fc.oneof(fc.uuid(), fc.uuid().map((u) => u.toUpperCase())), { minLength: 1, maxLength: 4 }))
        .map(([of, mode, ids]) => ({ [of]: { [mode]: ids } })),
      fc.constant({ field: 'score', op: 'gt', value: 1 }),
      fc.record({ and: fc.array(t('node'), { maxLength: 4 }) }),
      fc.record({ or: fc.array(t('node'), { minLength: 1, maxLength: 4 }) }),
      fc.record({ not: t('node') }),
    ),
  })).node;

  it('names every event and community id the checked filter does', () => {
    fc.assert(
      fc.property(tree, (input) => {
        const c = scopeIdCandidates(input);
        expect(c).not.toBeNull();
        const r = checkFilter(input, COLUMNS);
        if (!r.ok) return;
        for (const id of r.value.eventIds) expect(c!.events).toContain(id);
        for (const id of r.value.communityIds) expect(c!.communities).toContain(id);
      }),
      { numRuns: 500 },
    );
  });

  it('keeps events and communities apart, lower-cased, and skips what is no id', () => {
    const c = scopeIdCandidates({ and: [{ event: { in: [E1.toUpperCase(), 'Summit'] } }, { not: { community: { all: [E2] } } }, { field: 'id', op: 'in', value: [E2] }] });
    expect(c).toEqual({ events: [E1], communities: [E2] });
    expect(scopeIdCandidates(undefined)).toEqual({ events: [], communities: [] });
  });

  it('gives up (null) past its limit, rather than sending thousands of ids along', () => {
    const ids = (n: number, k: number) => Array.from({ length: n }, (_, i) => `${String(i + k * 1000).padStart(8, '0')}-0000-4000-8000-000000000000`);
    expect(scopeIdCandidates({ or: [{ event: { in: ids(1000, 0) } }, { event: { in: ids(1000, 1) } }, { community: { in: ids(1, 2) } }] })).toBeNull();
    expect(scopeIdCandidates({ event: { in: ids(MAX_SCOPE_CANDIDATES / 2, 0) } })?.events).toHaveLength(MAX_SCOPE_CANDIDATES / 2);
  });

  it('never throws, whatever JSON it is given', () => {
    fc.assert(fc.property(fc.jsonValue({ maxDepth: 6 }), (input) => void scopeIdCandidates(input)), { numRuns: 500 });
  });
});
