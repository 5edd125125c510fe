import { useEffect, useMemo, useRef, type KeyboardEvent } from 'react';
import { Link } from 'react-router-dom';
import { flexRender, getCoreRowModel, useReactTable, type ColumnDef, type RowSelectionState, type SortingState } from '@tanstack/react-table';
import { useVirtualizer } from '@tanstack/react-virtual';
import { Dot } from '../../components/Status.tsx';
import { useFormat, useT } from '../../i18n/index.tsx';
import type { GridColumn, GridRow, Sort } from './data.ts';
import { messages } from './messages.ts';
import { useColumnLabel } from './labels.ts';

const ROW_HEIGHT = 36;

interface Props {
  audienceId: string;
  columns: GridColumn[];
  visible: string[];
  rows: GridRow[];
  total: number | null;
  hasMore: boolean;
  loadingMore: boolean;
  loadMore(): void;
  sort: Sort | null;
  onSort(sort: Sort | null): void;
  selection: RowSelectionState;
  onSelection(s: RowSelectionState): void;
  canEdit: boolean;
  onDelete(row: GridRow): void;
}

const nameOf = (row: GridRow) => [row.first_name, row.last_name].filter((x) => typeof x === 'string' && x).join(' ') || String(row.email ?? row.id);

/**
 * The contacts table: TanStack Table in manual mode (the server sorts, filters and pages) and only
 * the rows in sight rendered (TanStack Virtual), with spacer rows above and below so the scrollbar
 * stays true. Reaching the last loaded row asks for the next page.
 */
export function ContactsGrid(p: Props) {
  const t = useT(messages);
  const fmt = useFormat();
  const label = useColumnLabel();
  const byKey = useMemo(() => new Map(p.columns.map((c) => [c.key, c])), [p.columns]);

  const dayFormat = useMemo(() => new Intl.DateTimeFormat(fmt.locale, { dateStyle: 'medium', timeZone: 'UTC' }), [fmt.locale]);

  const columnDefs = useMemo<ColumnDef<GridRow>[]>(() => {
    const cell = (col: GridColumn, row: GridRow) => {
      const v = row[col.key];
      if (col.key === 'account_confirmed') return row.has_account === false && v === false ? <span className="muted">–</span> : <Dot on={Boolean(v)} label={v ? t('c.confirmedYes') : t('c.confirmedNo')} />;
      if (col.key === 'account_locked')
        return (
          <span className={v ? 'dot-locked' : ''}>
            <Dot on={Boolean(v)} label={v ? t('c.lockedYes') : t('c.lockedNo')} />
          </span>
        );
      if (v === null || v === undefined || v === '') return null;
      if (col.key === 'email')
        return (
          <Link to={`/audiences/${p.audienceId}/contacts/${row.id}`} title={t('c.openContact', { name: nameOf(row) })}>
            {String(v)}
          </Link>
        );
      switch (col.type) {
        case 'list':
          return (
            <span className="chips">
              {(v as { id: string; name: string }[]).map((x) => (
                <span className="chip" key={x.id}>
                  {x.name}
                </span>
              ))}
            </span>
          );
        case 'datetime':
          return fmt.dateTime(v);
        case 'day':
          // A calendar day ("2027-07-01"), not an instant: formatted in UTC, or west of Greenwich it shows the day before.
          return typeof v === 'string' ? dayFormat.format(new Date(`${v.slice(0, 10)}T00:00:00Z`)) : fmt.date(v);
        case 'boolean':
          return <Dot on={Boolean(v)} label={v ? t('common.yes') : t('common.no')} />;
        case 'number':
          return fmt.number(Number(v));
        case 'multi_choice':
          return Array.isArray(v) ? v.join(', ') : String(v);
        default:
          return typeof v === 'object' ? JSON.stringify(v) : String(v);
      }
    };
    const defs: ColumnDef<GridRow>[] = [
      {
        id: '_select',
        enableSorting: false,
        header: ({ table }) => (
          <input
            type="checkbox"
            aria-label={t('c.selectAllLoaded')}
            checked={table.getIsAllRowsSelected()}
            ref={(el) => {
              if (el) el.indeterminate = table.getIsSomeRowsSelected();
            }}
            onChange={table.getToggleAllRowsSelectedHandler()}
          />
        ),
        cell: ({ row }) => (
          <input type="checkbox" aria-label={t('c.selectRow', { name: nameOf(row.original) })} checked={row.getIsSelected()} onChange={row.getToggleSelectedHandler()} />
        ),
      },
    ];
    for (const key of p.visible) {
      const col = byKey.get(key);
      if (!col) continue;
      // An accessor makes the column sortable in TanStack's eyes; the sorting itself is the server's.
      defs.push({ id: col.key, accessorFn: (r) => r[col.key], header: label(col), enableSorting: col.sortable, cell: ({ row }) => cell(col, row.original) });
    }
    if (p.canEdit)
      defs.push({
        id: '_actions',
        enableSorting: false,
        header: () => <span className="visually-hidden">{t('common.actions')}</span>,
        cell: ({ row }) => (
          <button type="button" className="link" onClick={() => p.onDelete(row.original)} aria-label={t('c.deleteContactOf', { name: nameOf(row.original) })}>
            {t('common.delete')}
          </button>
        ),
      });
    return defs;
  }, [p.visible, byKey, p.canEdit, p.audienceId, p.onDelete, t, fmt, dayFormat, label]);

  const sorting: SortingState = p.sort ? [{ id: p.sort.field, desc: p.sort.dir === 'desc' }] : [];
  const table = useReactTable({
    data: p.rows,
    columns: columnDefs,
    getRowId: (r) => r.id,
    getCoreRowModel: getCoreRowModel(),
    manualSorting: true,
    manualFiltering: true,
    manualPagination: true,
    enableMultiSort: false,
    enableRowSelection: true,
    state: { sorting, rowSelection: p.selection },
    onSortingChange: (updater) => {
      const next = typeof updater === 'function' ? updater(sorting) : updater;
      p.onSort(next[0] ? { field: next[0].id, dir: next[0].desc ? 'desc' : 'asc' } : null);
    },
    onRowSelectionChange: (updater) => p.onSelection(typeof updater === 'function' ? updater(p.selection) : updater),
  });

  const scroller = useRef<HTMLDivElement>(null);
  const rows = table.getRowModel().rows;
  const virtualizer = useVirtualizer({
    count: rows.length + (p.hasMore ? 1 : 0),
    getScrollElement: () => scroller.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 12,
  });
  const items = virtualizer.getVirtualItems();
  const lastIndex = items[items.length - 1]?.index ?? -1;
  useEffect(() => {
    if (p.hasMore && !p.loadingMore && lastIndex >= rows.length - 1) p.loadMore();
  }, [lastIndex, rows.length, p.hasMore, p.loadingMore, p.loadMore]);

  // Up and down arrows move focus to the same control (checkbox, link, button) of the row above or
  // below, scrolling it into view first when the virtualiser has not rendered it yet.
  function onKeyDown(e: KeyboardEvent<HTMLTableSectionElement>) {
    if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp') return;
    const target = e.target as HTMLElement;
    const cell = target.closest('td');
    const tr = cell?.closest<HTMLTableRowElement>('tr[data-index]');
    if (!cell || !tr) return;
    const next = Number(tr.dataset.index) + (e.key === 'ArrowDown' ? 1 : -1);
    if (next < 0 || next >= rows.length) return;
    e.preventDefault();
    const column = cell.cellIndex;
    const focus = () => scroller.current?.querySelector<HTMLElement>(`tr[data-index="${next}"] > td:nth-child(${column + 1}) :is(input, a, button)`)?.focus();
    virtualizer.scrollToIndex(next);
    requestAnimationFrame(() => requestAnimationFrame(focus));
  }

  const before = items[0]?.start ?? 0;
  const after = virtualizer.getTotalSize() - (items[items.length - 1]?.end ?? 0);
  const colCount = table.getVisibleLeafColumns().length;

  return (
    <div className="grid-scroll" ref={scroller} tabIndex={-1}>
      <table className="grid" aria-label={t('c.gridLabel')} aria-rowcount={(p.total ?? rows.length) + 1}>
        <thead>
          {table.getHeaderGroups().map((hg) => (
            <tr key={hg.id} aria-rowindex={1}>
              {hg.headers.map((h) => {
                const sorted = h.column.getIsSorted();
                const canSort = h.column.getCanSort();
                return (
                  <th key={h.id} scope="col" aria-sort={sorted === 'asc' ? 'ascending' : sorted === 'desc' ? 'descending' : canSort ? 'none' : undefined} className={h.id.startsWith('_') ? 'narrow' : undefined}>
                    {canSort ? (
                      <button type="button" className="sort-button" onClick={h.column.getToggleSortingHandler()}>
                        {flexRender(h.column.columnDef.header, h.getContext())}
                        <span aria-hidden="true" className="sort-mark">
                          {sorted === 'asc' ? '▲' : sorted === 'desc' ? '▼' : ''}
                        </span>
                      </button>
                    ) : (
                      flexRender(h.column.columnDef.header, h.getContext())
                    )}
                  </th>
                );
              })}
            </tr>
          ))}
        </thead>
        <tbody onKeyDown={onKeyDown}>
          {before > 0 && (
            <tr aria-hidden="true" className="spacer">
              <td colSpan={colCount} style={{ height: before }} />
            </tr>
          )}
          {items.map((vi) => {
            const row = rows[vi.index];
            if (!row)
              return (
                <tr key="loading" className="loading-row">
                  <td colSpan={colCount}>{t('app.loading')}</td>
                </tr>
              );
            return (
              <tr key={row.id} data-index={vi.index} aria-rowindex={vi.index + 2} aria-selected={row.getIsSelected()} className={row.getIsSelected() ? 'selected' : undefined} style={{ height: ROW_HEIGHT }}>
                {row.getVisibleCells().map((c) => (
                  <td key={c.id}>{flexRender(c.column.columnDef.cell, c.getContext())}</td>
                ))}
              </tr>
            );
          })}
          {after > 0 && (
            <tr aria-hidden="true" className="spacer">
              <td colSpan={colCount} style={{ height: after }} />
            </tr>
          )}
          {rows.length === 0 && !p.hasMore && (
            <tr>
              <td colSpan={colCount} className="muted">
                {t('c.noContacts')}
              </td>
            </tr>
          )}
        </tbody>
      </table>
    </div>
  );
}
