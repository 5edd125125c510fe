import { useRef, useState } from 'react';
import { keepPreviousData, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, apiUrl, del, get, post } from '../../api.ts';
import { IfRole } from '../../auth.tsx';
import { ConfirmDialog } from '../../components/ConfirmDialog.tsx';
import { FormDialog } from '../../components/FormDialog.tsx';
import { Field, QueryStatus } from '../../components/Status.tsx';
import { useToast } from '../../components/Toast.tsx';
import { useFormat, useT } from '../../i18n/index.tsx';
import { useDebounced } from '../templates/useDebounced.ts';
import { messages } from './messages.ts';

interface Exclusion {
  email_lower: string;
  reason: string | null;
  source: string;
  created_by: string;
  created_at: string;
}
interface ImportResult {
  rows: number;
  added: number;
  already_listed: number;
  errors: { line: number; message: string }[];
}

const PAGE = 50;
type SourceKey = Extract<keyof typeof messages.en, `cons.source.${string}`>;
const isSourceKey = (k: string): k is SourceKey => k in messages.en;
const KEY = ['consent', 'exclusions'] as const;

function AddDialog({ onClose }: { onClose(): void }) {
  const t = useT(messages);
  const qc = useQueryClient();
  const toast = useToast();
  const [emails, setEmails] = useState('');
  const [reason, setReason] = useState('');
  return (
    <FormDialog
      title={t('cons.ex.add')}
      submitLabel={t('common.add')}
      onClose={onClose}
      onSubmit={async () => {
        const list = emails.split(/[\s,;]+/).filter(Boolean);
        if (!list.length) throw new Error(t('cons.ex.noAddress'));
        const r = await post<{ added: number; already_listed: number }>('/v1/exclusions', { items: list.map((email) => ({ email, reason: reason.trim() || null })) });
        await qc.invalidateQueries({ queryKey: KEY });
        toast.success(t('cons.ex.added', { added: r.added, already: r.already_listed }));
      }}
    >
      <Field label={t('cons.ex.addresses')} hint={t('cons.ex.addressesHint')}>
        <textarea required rows={4} value={emails} onChange={(e) => setEmails(e.target.value)} />
      </Field>
      <Field label={t('cons.ex.reason')}>
        <input maxLength={500} value={reason} onChange={(e) => setReason(e.target.value)} />
      </Field>
    </FormDialog>
  );
}

function ImportButton({ onDone }: { onDone(r: ImportResult): void }) {
  const t = useT(messages);
  const toast = useToast();
  const input = useRef<HTMLInputElement>(null);
  const [busy, setBusy] = useState(false);
  return (
    <>
      <input
        ref={input}
        type="file"
        accept=".csv,text/csv"
        className="visually-hidden"
        aria-label={t('cons.ex.importFile')}
        tabIndex={-1}
        onChange={async (e) => {
          const file = e.target.files?.[0];
          e.target.value = '';
          if (!file) return;
          setBusy(true);
          try {
            onDone(await api<ImportResult>('POST', '/v1/exclusions/import', { body: file, contentType: 'text/csv' }));
          } catch (err) {
            toast.error(err instanceof Error ? err.message : String(err));
          } finally {
            setBusy(false);
          }
        }}
      />
      <button type="button" disabled={busy} onClick={() => input.current?.click()}>
        {busy ? t('common.working') : t('cons.ex.import')}
      </button>
    </>
  );
}

export function ExclusionsPanel() {
  const t = useT(messages);
  const fmt = useFormat();
  const qc = useQueryClient();
  const toast = useToast();
  const [q, setQ] = useState('');
  const [offset, setOffset] = useState(0);
  const [adding, setAdding] = useState(false);
  const [removing, setRemoving] = useState<string | null>(null);
  const [imported, setImported] = useState<ImportResult | null>(null);
  const search = useDebounced(q.trim(), 250);
  const sourceName = (source: string) => {
    const key = `cons.source.${source}`;
    return isSourceKey(key) ? t(key) : source;
  };
  const list = useQuery({
    queryKey: [...KEY, search, offset],
    queryFn: () => get<{ items: Exclusion[]; total: number }>('/v1/exclusions', { q: search, limit: PAGE, offset }),
    placeholderData: keepPreviousData,
  });
  return (
    <section className="card" aria-labelledby="cons-ex-title">
      <div className="card-head">
        <h2 id="cons-ex-title">{t('cons.ex.title')}</h2>
        <div className="toolbar">
          <a className="button" href={apiUrl('/v1/exclusions/export')} download>
            {t('cons.ex.export')}
          </a>
          <IfRole min="editor">
            <ImportButton
              onDone={async (r) => {
                setImported(r);
                await qc.invalidateQueries({ queryKey: KEY });
              }}
            />
            <button type="button" className="primary" onClick={() => setAdding(true)}>
              {t('cons.ex.add')}
            </button>
          </IfRole>
        </div>
      </div>
      <p className="muted">{t('cons.ex.explain')}</p>
      {imported && (
        <div role="status" className="import-result">
          <p>{t('cons.ex.imported', { rows: imported.rows, added: imported.added, already: imported.already_listed, errors: imported.errors.length })}</p>
          {imported.errors.length > 0 && (
            <ul className="plain-list" aria-label={t('cons.ex.importErrors')}>
              {imported.errors.slice(0, 50).map((e) => (
                <li key={e.line} className="error">
                  {t('cons.ex.lineError', { line: e.line, message: e.message })}
                </li>
              ))}
            </ul>
          )}
        </div>
      )}
      <div className="toolbar">
        <label className="grow">
          <span className="visually-hidden">{t('cons.ex.search')}</span>
          <input
            type="search"
            aria-label={t('cons.ex.search')}
            placeholder={t('cons.ex.search')}
            value={q}
            onChange={(e) => {
              setQ(e.target.value);
              setOffset(0);
            }}
          />
        </label>
        {list.data && <span className="muted">{t('cons.ex.total', { n: fmt.number(list.data.total) })}</span>}
      </div>
      <QueryStatus query={list}>
        {list.data?.items.length ? (
          <table className="simple" aria-label={t('cons.ex.title')}>
            <thead>
              <tr>
                <th scope="col">{t('cons.ex.email')}</th>
                <th scope="col">{t('cons.ex.reason')}</th>
                <th scope="col">{t('cons.ex.source')}</th>
                <th scope="col">{t('cons.ex.since')}</th>
                <th scope="col">
                  <span className="visually-hidden">{t('common.actions')}</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {list.data.items.map((x) => (
                <tr key={x.email_lower}>
                  <td>{x.email_lower}</td>
                  <td>{x.reason}</td>
                  <td>{sourceName(x.source)}</td>
                  <td>{fmt.dateTime(x.created_at)}</td>
                  <td>
                    <IfRole min="editor">
                      <button type="button" onClick={() => setRemoving(x.email_lower)} aria-label={t('cons.ex.removeOne', { email: x.email_lower })}>
                        {t('common.remove')}
                      </button>
                    </IfRole>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : (
          <p className="muted">{search ? t('cons.ex.noMatch') : t('cons.ex.empty')}</p>
        )}
      </QueryStatus>
      {list.data && list.data.total > PAGE && (
        <div className="toolbar">
          <button type="button" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - PAGE))}>
            {t('cons.previous')}
          </button>
          <span className="muted">{t('cons.pageOf', { from: offset + 1, to: Math.min(offset + PAGE, list.data.total), total: list.data.total })}</span>
          <button type="button" disabled={offset + PAGE >= list.data.total} onClick={() => setOffset(offset + PAGE)}>
            {t('cons.next')}
          </button>
        </div>
      )}
      {adding && <AddDialog onClose={() => setAdding(false)} />}
      {removing && (
        <ConfirmDialog
          title={t('cons.ex.removeTitle', { email: removing })}
          confirmLabel={t('common.remove')}
          onClose={() => setRemoving(null)}
          onConfirm={async () => {
            await del(`/v1/exclusions/${encodeURIComponent(removing)}`);
            await qc.invalidateQueries({ queryKey: KEY });
            toast.success(t('cons.ex.removed', { email: removing }));
          }}
        >
          {t('cons.ex.removeText')}
        </ConfirmDialog>
      )}
    </section>
  );
}
