import { useInfiniteQuery, useQuery } from '@tanstack/react-query';
import { get, post } from '../../api.ts';

export type ColumnType = 'text' | 'number' | 'day' | 'datetime' | 'boolean' | 'choice' | 'multi_choice' | 'list' | 'id';
export interface GridColumn {
  key: string;
  label: string;
  type: ColumnType;
  options: string[] | null;
  source: 'contact' | 'field' | 'related';
  operators: string[];
  sortable: boolean;
  default: boolean;
}
export interface SavedView {
  id: string;
  name: string;
  filter: unknown;
  columns: string[] | null;
  sort: { field: string; dir: 'asc' | 'desc' } | string | null;
  created_at: string;
  updated_at: string;
}
export type GridRow = { id: string } & Record<string, unknown>;
export interface GridPage {
  items: GridRow[];
  total: number | null;
  next_cursor: string | null;
}
export interface FieldDef {
  id?: string;
  key: string;
  label: string;
  type: 'text' | 'number' | 'date' | 'boolean' | 'choice' | 'multi_choice';
  options: string[] | null;
  scope: 'builtin' | 'audience' | 'event' | 'community';
  central: boolean;
}
export interface Sort {
  field: string;
  dir: 'asc' | 'desc';
}
export interface GridQuery {
  filter: unknown;
  sort: Sort | null;
  columns: string[];
}

export const PAGE_SIZE = 100;

export const gridKeys = {
  all: (audienceId: string) => ['grid', audienceId] as const,
  rows: (audienceId: string, q: GridQuery) => ['grid', audienceId, 'rows', q] as const,
  columns: (audienceId: string) => ['grid', audienceId, 'columns'] as const,
  views: (audienceId: string) => ['grid', audienceId, 'views'] as const,
  fields: (audienceId: string) => ['grid', audienceId, 'fields'] as const,
  contact: (audienceId: string, contactId: string) => ['contact', audienceId, contactId] as const,
};

export const useColumns = (audienceId: string) =>
  useQuery({ queryKey: gridKeys.columns(audienceId), queryFn: async () => (await get<{ columns: GridColumn[] }>(`/v1/audiences/${audienceId}/contacts/columns`)).columns });
export const useViews = (audienceId: string) =>
  useQuery({ queryKey: gridKeys.views(audienceId), queryFn: async () => (await get<{ views: SavedView[] }>(`/v1/audiences/${audienceId}/views`)).views });
export const useFields = (audienceId: string) =>
  useQuery({ queryKey: gridKeys.fields(audienceId), queryFn: async () => (await get<{ fields: FieldDef[] }>(`/v1/audiences/${audienceId}/fields`)).fields });

/**
 * The grid's rows, a page at a time with the keyset cursor: scrolling loads the next page, nothing
 * else is fetched, so a million contacts cost what the visible pages cost. The total is a separate
 * query (useGridTotal), so that counting a large filtered set never holds back the first rows.
 */
export function useGridRows(audienceId: string, q: GridQuery, enabled: boolean) {
  return useInfiniteQuery({
    queryKey: gridKeys.rows(audienceId, q),
    enabled,
    initialPageParam: null as string | null,
    queryFn: ({ pageParam, signal }) =>
      post<GridPage>(`/v1/audiences/${audienceId}/contacts/query`, {
        filter: q.filter ?? undefined,
        sort: q.sort ?? undefined,
        columns: q.columns,
        limit: PAGE_SIZE,
        cursor: pageParam,
        count: false,
      }).then((page) => {
        signal.throwIfAborted();
        return page;
      }),
    getNextPageParam: (last) => last.next_cursor,
    staleTime: 10_000,
  });
}

/** How many contacts the query matches: one counting request, apart from the rows. */
export function useGridTotal(audienceId: string, q: GridQuery, enabled: boolean) {
  return useQuery({
    queryKey: [...gridKeys.rows(audienceId, q), 'total'],
    enabled,
    queryFn: async () => (await post<GridPage>(`/v1/audiences/${audienceId}/contacts/query`, { filter: q.filter ?? undefined, columns: ['email'], limit: 1, count: true })).total,
    staleTime: 10_000,
  });
}

export interface ContactDetail {
  id: string;
  email: string | null;
  first_name: string | null;
  last_name: string | null;
  company: string | null;
  job_title: string | null;
  company_id: string | null;
  fields: Record<string, unknown>;
  marketing_authorized_at: string | null;
  created_at: string;
  updated_at: string;
  company_entity: { id: string; name: string } | null;
  /** `data`: the participant record, with the values of the event's own fields */
  events: { participant_id: string; id: string; name: string; starts_at: string; ends_at: string; data?: Record<string, unknown> }[];
  communities: { member_id: string; id: string; name: string; data?: Record<string, unknown> }[];
  account: { confirmed: boolean; locked: boolean; failed_attempts: number; lock_end: string | null; created_at?: string } | null;
}

export const useContact = (audienceId: string, contactId: string | null) =>
  useQuery({
    queryKey: gridKeys.contact(audienceId, contactId ?? ''),
    enabled: contactId !== null,
    queryFn: () => get<ContactDetail>(`/v1/audiences/${audienceId}/contacts/${contactId}`),
  });

export type ScopeKind = 'event' | 'community';
/** Query keys of an event's or a community's fields (built-ins, central, and its own). */
export const scopeFieldKeys = {
  all: ['scope-fields'] as const,
  one: (kind: ScopeKind, id: string) => ['scope-fields', kind, id] as const,
};
export const useScopeFields = (kind: ScopeKind, id: string | null) =>
  useQuery({
    queryKey: scopeFieldKeys.one(kind, id ?? ''),
    enabled: Boolean(id),
    queryFn: async () => (await get<{ fields: FieldDef[] }>(`/v1/${kind === 'event' ? 'events' : 'communities'}/${id}/fields`)).fields,
  });
