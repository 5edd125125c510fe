import { useCallback, useEffect, useMemo, useState } from 'react';
import { Link, useParams, useSearchParams } from 'react-router-dom';
import { useQueryClient } from '@tanstack/react-query';
import type { RowSelectionState } from '@tanstack/react-table';
import { apiUrl, del, patch, post } from '../../api.ts';
import { useAuth } from '../../auth.tsx';
import { ConfirmDialog } from '../../components/ConfirmDialog.tsx';
import { FormDialog } from '../../components/FormDialog.tsx';
import { Menu } from '../../components/Menu.tsx';
import { Field, QueryStatus } from '../../components/Status.tsx';
import { useToast } from '../../components/Toast.tsx';
import { useFormat, useT } from '../../i18n/index.tsx';
import { useAudience, useCommunities, useEvents } from '../audiences/data.ts';
import { AccountActionDialog, type AccountAction } from './AccountActionDialog.tsx';
import { AddContactDialog } from './AddContactDialog.tsx';
import { BulkEditDialog, type Target } from './BulkEditDialog.tsx';
import { ColumnsDialog } from './ColumnsDialog.tsx';
import { ContactsGrid } from './ContactsGrid.tsx';
import { gridKeys, useColumns, useGridRows, useGridTotal, useViews, type GridColumn, type GridRow, type SavedView, type Sort } from './data.ts';
import { DeleteContactDialog } from './DeleteContactDialog.tsx';
import { EmailDialog } from './EmailDialog.tsx';
import { FieldsDialog } from './FieldsDialog.tsx';
import { FilterPanel } from './FilterPanel.tsx';
import { emptyFilter, filterCount, fromApiFilter, sameFilter, toApiFilter, type FilterModel } from './filter-model.ts';
import { ImportDialog } from './ImportDialog.tsx';
import { messages } from './messages.ts';
import './contacts.css';

type Open =
  | { kind: 'columns' | 'fields' | 'import' | 'saveView' | 'renameView' | 'deleteView' | 'add' }
  | { kind: 'bulk' | 'email'; target: Target; count: number | null }
  | { kind: 'account'; action: AccountAction; ids: string[] }
  | { kind: 'delete'; contactId: string }
  | null;

// Always fetched, shown or not: the row's accessible names ("Select Ada Lovelace") and its link use them.
const ALWAYS = ['email', 'first_name', 'last_name'];

function viewSort(s: SavedView['sort']): Sort | null {
  if (!s) return null;
  if (typeof s === 'string') return s.startsWith('-') ? { field: s.slice(1), dir: 'desc' } : { field: s, dir: 'asc' };
  return s;
}
const defaultColumns = (cols: GridColumn[]) => cols.filter((c) => c.default).map((c) => c.key);

export function ContactsScreen() {
  const { audienceId = '' } = useParams();
  const t = useT(messages);
  const fmt = useFormat();
  const qc = useQueryClient();
  const toast = useToast();
  const { can } = useAuth();
  const canEdit = can('editor');
  const [search, setSearch] = useSearchParams();
  const viewId = search.get('view');

  const audience = useAudience(audienceId);
  const columnsQ = useColumns(audienceId);
  const viewsQ = useViews(audienceId);
  const events = useEvents(audienceId);
  const communities = useCommunities(audienceId);
  const columns = columnsQ.data ?? [];
  const view = viewsQ.data?.find((v) => v.id === viewId) ?? null;

  const [filter, setFilter] = useState<FilterModel>(emptyFilter);
  const [sort, setSort] = useState<Sort | null>(null);
  const [visible, setVisible] = useState<string[] | null>(null);
  const [selection, setSelection] = useState<RowSelectionState>({});
  const [filtersOpen, setFiltersOpen] = useState(false);
  const [open, setOpen] = useState<Open>(null);

  // Choosing a view puts its filter, columns and sort in place; they can then be changed and saved
  // back. Keyed on the view (not on the column list), so creating a field keeps the filter on screen.
  const loaded = Boolean(columnsQ.data && viewsQ.data);
  // Which view the state on screen was taken from: no rows are asked for a view not yet applied.
  const [appliedView, setAppliedView] = useState<string | null>(null);
  useEffect(() => {
    if (!loaded) return;
    setFilter(view ? fromApiFilter(view.filter, columnsQ.data ?? []) : emptyFilter());
    setSort(view ? viewSort(view.sort) : null);
    // null: the default columns, which then include a central field created later.
    setVisible(view?.columns ?? null);
    setSelection({});
    setAppliedView(view?.id ?? '');
  }, [view?.id, view?.updated_at, loaded]); // eslint-disable-line react-hooks/exhaustive-deps

  const shown = visible ?? defaultColumns(columns);
  const apiFilter = useMemo(() => toApiFilter(filter, columns), [filter, columns]);
  const requested = useMemo(() => {
    const keys = new Set([...shown, ...ALWAYS]);
    if (keys.has('account_confirmed')) keys.add('has_account');
    return columns.filter((c) => keys.has(c.key)).map((c) => c.key);
  }, [shown, columns]);
  const query = useMemo(() => ({ filter: apiFilter, sort, columns: requested }), [apiFilter, sort, requested]);
  const applied = loaded && appliedView === (view?.id ?? '');
  const rowsQ = useGridRows(audienceId, query, applied);
  // The count ignores sort and columns: changing those keeps the total already known.
  const totalQ = useGridTotal(audienceId, { filter: apiFilter, sort: null, columns: [] }, applied);
  const rows = useMemo(() => rowsQ.data?.pages.flatMap((p) => p.items) ?? [], [rowsQ.data]);
  const total = totalQ.data ?? null;
  const selectedIds = Object.keys(selection).filter((id) => selection[id]);

  const dirty = view
    ? !sameFilter(apiFilter, view.filter) || JSON.stringify(sort) !== JSON.stringify(viewSort(view.sort)) || JSON.stringify(shown) !== JSON.stringify(view.columns ?? defaultColumns(columns))
    : false;
  // The saved view itself when nothing changed since it was chosen; otherwise the filter on screen.
  const viewTarget: Target = view && !dirty ? { view_id: view.id } : { filter: apiFilter ?? { and: [] } };

  const refresh = useCallback(() => qc.invalidateQueries({ queryKey: gridKeys.all(audienceId) }), [qc, audienceId]);
  const loadMore = useCallback(() => void rowsQ.fetchNextPage(), [rowsQ.fetchNextPage]); // eslint-disable-line react-hooks/exhaustive-deps
  const onDelete = useCallback((row: GridRow) => setOpen({ kind: 'delete', contactId: row.id }), []);

  const chooseView = (id: string) => {
    const next = new URLSearchParams(search);
    if (id) next.set('view', id);
    else next.delete('view');
    setSearch(next);
  };
  const definition = () => ({ filter: apiFilter, columns: shown, sort: sort ?? null });
  const n = filterCount(filter);
  // What is on screen is what is exported: the saved view as it is, or the filter, sort and columns shown.
  const exportsScreen = view ? dirty : n > 0 || sort !== null || visible !== null;
  const exportHref = apiUrl(
    `/v1/audiences/${audienceId}/contacts/export.csv`,
    exportsScreen
      ? { filter: apiFilter ? JSON.stringify(apiFilter) : undefined, sort: sort ? JSON.stringify(sort) : undefined, columns: JSON.stringify(shown), bom: true }
      : { view_id: view?.id, bom: true },
  );

  return (
    <div className="page contacts-page">
      <div className="page-head">
        <div>
          <Link to="/audiences">{t('nav.audiences')}</Link> <span aria-hidden="true">›</span>
          <h1>{t('c.title', { name: audience.data?.name ?? '…' })}</h1>
        </div>
        <span className="badge" role="status" aria-live="polite">
          {total !== null ? t('c.count', { n: fmt.number(total) }) : totalQ.isError ? t('c.countFailed') : '…'}
        </span>
      </div>

      <div className="toolbar" role="toolbar" aria-label={t('c.toolbar')}>
        <label className="inline-field" htmlFor="view-select">
          {t('c.view')}
        </label>
        <select id="view-select" value={view?.id ?? ''} onChange={(e) => chooseView(e.target.value)}>
            <option value="">{t('c.allContacts')}</option>
            {(viewsQ.data ?? []).map((v) => (
              <option key={v.id} value={v.id}>
                {v.name}
              </option>
            ))}
        </select>
        {dirty && <span className="badge">{t('c.modified')}</span>}
        {canEdit && (
          <>
            {view && dirty && (
              <button
                type="button"
                onClick={async () => {
                  try {
                    await patch(`/v1/audiences/${audienceId}/views/${view.id}`, definition());
                    await qc.invalidateQueries({ queryKey: gridKeys.views(audienceId) });
                    toast.success(t('c.viewSaved', { name: view.name }));
                  } catch (e) {
                    toast.error(String((e as Error).message));
                  }
                }}
              >
                {t('c.saveChanges')}
              </button>
            )}
            <button type="button" onClick={() => setOpen({ kind: 'saveView' })}>
              {t('c.saveAsView')}
            </button>
            {view && (
              <>
                <button type="button" onClick={() => setOpen({ kind: 'renameView' })}>
                  {t('c.renameView')}
                </button>
                <button type="button" onClick={() => setOpen({ kind: 'deleteView' })}>
                  {t('c.deleteView')}
                </button>
              </>
            )}
          </>
        )}
        <span className="grow" />
        <button type="button" aria-expanded={filtersOpen} aria-controls="filter-panel" onClick={() => setFiltersOpen((o) => !o)}>
          {n ? t('c.filtersN', { n }) : t('c.filters')}
        </button>
        <button type="button" onClick={() => setOpen({ kind: 'columns' })}>
          {t('c.columns')}
        </button>
        <button type="button" onClick={() => setOpen({ kind: 'fields' })} aria-label={t('c.fieldsTitle')} title={t('c.fieldsTitle')}>
          <svg aria-hidden="true" width="16" height="16" viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth="2" strokeLinecap="round" strokeLinejoin="round">
            <path d="M14.7 6.3a1 1 0 0 0 0 1.4l1.6 1.6a1 1 0 0 0 1.4 0l3.77-3.77a6 6 0 0 1-7.94 7.94l-6.91 6.91a2.12 2.12 0 0 1-3-3l6.91-6.91a6 6 0 0 1 7.94-7.94l-3.76 3.76z" />
          </svg>
        </button>
        {canEdit && (
          <button type="button" onClick={() => setOpen({ kind: 'add' })}>
            {t('p.addContact')}
          </button>
        )}
        {canEdit && (
          <button type="button" onClick={() => setOpen({ kind: 'import' })}>
            {t('c.import')}
          </button>
        )}
        <a className="button" href={exportHref} download>
          {exportsScreen ? t('c.exportShown') : view ? t('c.exportView') : t('c.exportAll')}
        </a>
        {canEdit && (
          <Menu
            label={t('common.more')}
            buttonContent="…"
            groups={[
              {
                label: t('c.currentView'),
                items: [
                  { label: t('c.emailView'), onSelect: () => setOpen({ kind: 'email', target: viewTarget, count: total }) },
                  { label: t('c.modifyView'), onSelect: () => setOpen({ kind: 'bulk', target: viewTarget, count: total }) },
                ],
              },
              {
                label: t('c.selectionN', { n: selectedIds.length }),
                items: [
                  { label: t('c.emailSelection'), disabled: !selectedIds.length, onSelect: () => setOpen({ kind: 'email', target: { contact_ids: selectedIds }, count: selectedIds.length }) },
                  { label: t('c.modifySelection'), disabled: !selectedIds.length, onSelect: () => setOpen({ kind: 'bulk', target: { contact_ids: selectedIds }, count: selectedIds.length }) },
                  // One contact at a time, as in the reference back office: these act on a person's account or erase them.
                  { label: t('c.unlock'), disabled: selectedIds.length !== 1, onSelect: () => setOpen({ kind: 'account', action: 'unlock', ids: selectedIds }) },
                  { label: t('c.passwordReset'), disabled: selectedIds.length !== 1, onSelect: () => setOpen({ kind: 'account', action: 'password-reset', ids: selectedIds }) },
                  { label: t('c.deleteSelected'), disabled: selectedIds.length !== 1, onSelect: () => setOpen({ kind: 'delete', contactId: selectedIds[0]! }) },
                ],
              },
            ]}
          />
        )}
      </div>

      <div className={filtersOpen ? 'contacts-body with-filters' : 'contacts-body'}>
        {filtersOpen && (
          <div id="filter-panel">
            <FilterPanel
              value={filter}
              columns={columns}
              events={events.data ?? []}
              communities={communities.data ?? []}
              onApply={(m) => {
                setFilter(m);
                setSelection({});
              }}
              onClose={() => setFiltersOpen(false)}
            />
          </div>
        )}
        <div className="grid-area">
          {selectedIds.length > 0 && (
            <p className="selection-bar" role="status">
              {t('c.selectedN', { n: fmt.number(selectedIds.length) })}{' '}
              <button type="button" className="link" onClick={() => setSelection({})}>
                {t('c.clearSelection')}
              </button>
            </p>
          )}
          <QueryStatus query={columnsQ}>
            {rowsQ.error ? (
              <QueryStatus query={rowsQ} />
            ) : (
              <ContactsGrid
                audienceId={audienceId}
                columns={columns}
                visible={shown}
                rows={rows}
                total={total}
                hasMore={Boolean(rowsQ.hasNextPage) || rowsQ.isPending}
                loadingMore={rowsQ.isFetchingNextPage || rowsQ.isPending}
                loadMore={loadMore}
                sort={sort}
                onSort={setSort}
                selection={selection}
                onSelection={setSelection}
                canEdit={canEdit}
                onDelete={onDelete}
              />
            )}
          </QueryStatus>
        </div>
      </div>

      {open?.kind === 'columns' && <ColumnsDialog columns={columns} visible={shown} onApply={setVisible} onClose={() => setOpen(null)} />}
      {open?.kind === 'fields' && (
        <FieldsDialog
          audienceId={audienceId}
          canEdit={canEdit}
          events={events.data ?? []}
          communities={communities.data ?? []}
          // Filtered by one event: "only this event" means that one.
          preferEventId={filter.events.mode === 'in' && filter.events.ids.length === 1 ? filter.events.ids[0] : undefined}
          onClose={() => setOpen(null)}
        />
      )}
      {open?.kind === 'add' && <AddContactDialog audienceId={audienceId} onAdded={() => void refresh()} onClose={() => setOpen(null)} />}
      {open?.kind === 'import' && (
        <ImportDialog audienceId={audienceId} events={events.data ?? []} communities={communities.data ?? []} onImported={() => void refresh()} onClose={() => setOpen(null)} />
      )}
      {open?.kind === 'saveView' && <ViewNameDialog title={t('c.saveAsView')} initial="" onClose={() => setOpen(null)} onSave={async (name) => {
        const v = await post<SavedView>(`/v1/audiences/${audienceId}/views`, { name, ...definition() });
        await qc.invalidateQueries({ queryKey: gridKeys.views(audienceId) });
        chooseView(v.id);
        toast.success(t('c.viewSaved', { name }));
      }} />}
      {open?.kind === 'renameView' && view && <ViewNameDialog title={t('c.renameView')} initial={view.name} onClose={() => setOpen(null)} onSave={async (name) => {
        await patch(`/v1/audiences/${audienceId}/views/${view.id}`, { name });
        await qc.invalidateQueries({ queryKey: gridKeys.views(audienceId) });
        toast.success(t('c.viewRenamed', { name }));
      }} />}
      {open?.kind === 'deleteView' && view && (
        <ConfirmDialog title={t('c.deleteViewTitle')} danger confirmLabel={t('common.delete')} onClose={() => setOpen(null)} onConfirm={async () => {
          await del(`/v1/audiences/${audienceId}/views/${view.id}`);
          chooseView('');
          await qc.invalidateQueries({ queryKey: gridKeys.views(audienceId) });
          toast.success(t('c.viewDeleted', { name: view.name }));
        }}>
          <p>{t('c.deleteViewText', { name: view.name })}</p>
        </ConfirmDialog>
      )}
      {open?.kind === 'bulk' && (
        <BulkEditDialog audienceId={audienceId} target={open.target} count={open.count} onClose={() => setOpen(null)} onDone={(updated) => {
          toast.success(t('c.updatedN', { n: fmt.number(updated) }));
          void refresh();
        }} />
      )}
      {open?.kind === 'email' && <EmailDialog audienceId={audienceId} target={open.target} onClose={() => setOpen(null)} />}
      {open?.kind === 'account' && <AccountActionDialog audienceId={audienceId} action={open.action} contactIds={open.ids} onClose={() => setOpen(null)} onDone={() => void refresh()} />}
      {open?.kind === 'delete' && (
        <DeleteContactDialog audienceId={audienceId} contactId={open.contactId} onClose={() => setOpen(null)} onDeleted={() => {
          const { [open.contactId]: _gone, ...rest } = selection;
          setSelection(rest);
          toast.success(t('c.contactDeleted'));
          void refresh();
          void qc.invalidateQueries({ queryKey: ['audiences', audienceId] });
        }} />
      )}
    </div>
  );
}

function ViewNameDialog({ title, initial, onSave, onClose }: { title: string; initial: string; onSave(name: string): Promise<void>; onClose(): void }) {
  const t = useT(messages);
  const [name, setName] = useState(initial);
  return (
    <FormDialog title={title} onClose={onClose} onSubmit={() => onSave(name.trim())}>
      <Field label={t('c.viewName')}>
        <input required maxLength={200} value={name} onChange={(e) => setName(e.target.value)} />
      </Field>
    </FormDialog>
  );
}
