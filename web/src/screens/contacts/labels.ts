import { useCallback } from 'react';
import { useT } from '../../i18n/index.tsx';
import type { GridColumn } from './data.ts';
import { messages } from './messages.ts';

const BUILTIN = new Set([
  'last_name', 'first_name', 'email', 'company', 'job_title', 'company_name', 'events_count', 'events', 'communities_count', 'communities',
  'account_confirmed', 'account_locked', 'failed_attempts', 'lock_end', 'created_at', 'marketing_authorized_at', 'company_id', 'has_account', 'updated_at',
]);

/** Built-in columns in the interface language; central fields by the label their creator gave. */
export function useColumnLabel() {
  const t = useT(messages);
  return useCallback((col: Pick<GridColumn, 'key' | 'label' | 'source'>) => (col.source !== 'field' && BUILTIN.has(col.key) ? t(`col.${col.key}` as 'col.email') : col.label || col.key), [t]);
}
