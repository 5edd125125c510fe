import { useState } from 'react';
import { ApiError, apiUrl, csrfHeaders, errorMessage } from '../../api.ts';
import { Dialog } from '../../components/Dialog.tsx';
import { Field } from '../../components/Status.tsx';
import { useFormat, useT } from '../../i18n/index.tsx';
import type { Community, EventRow } from '../audiences/data.ts';
import { messages } from './messages.ts';

interface ImportReport {
  id: string;
  status: string;
  rows: number;
  created: number;
  updated: number;
  skipped: number;
  duplicates: number;
  records: { kind: string; created: number; updated: number } | null;
  columns: Record<string, string> | string[];
  ignored_columns: string[];
  error_count?: number;
  errors?: { line: number; message?: string; reason?: string }[];
}

/** Sends the file with XMLHttpRequest, which (unlike fetch) reports upload progress. */
function upload(url: string, file: File, onProgress: (fraction: number) => void): Promise<ImportReport> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', url);
    xhr.setRequestHeader('content-type', 'text/csv');
    xhr.setRequestHeader('accept', 'application/json');
    for (const [k, v] of Object.entries(csrfHeaders())) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded / e.total);
    xhr.onerror = () => reject(new Error('network error'));
    xhr.onload = () => {
      let body: { error?: { code: string; message: string; details?: unknown } } & Partial<ImportReport> = {};
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        /* not JSON */
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(body as ImportReport);
      else reject(new ApiError(xhr.status, body.error?.code ?? `http_${xhr.status}`, body.error?.message ?? xhr.statusText, body.error?.details));
    };
    xhr.send(file);
  });
}

/** CSV import: upload with progress, then the report with the refused lines and why. */
export function ImportDialog({ audienceId, events, communities, onImported, onClose }: { audienceId: string; events: EventRow[]; communities: Community[]; onImported(): void; onClose(): void }) {
  const t = useT(messages);
  const fmt = useFormat();
  const [file, setFile] = useState<File | null>(null);
  const [into, setInto] = useState('');
  const [emptyCells, setEmptyCells] = useState<'keep' | 'clear'>('keep');
  const [progress, setProgress] = useState<number | null>(null);
  const [report, setReport] = useState<ImportReport | null>(null);
  const [error, setError] = useState<string | null>(null);

  async function submit() {
    if (report) return onClose();
    if (!file) return;
    setError(null);
    setProgress(0);
    const [kind, id] = into.split(':');
    const url = apiUrl(`/v1/audiences/${audienceId}/imports`, { event_id: kind === 'event' ? id : undefined, community_id: kind === 'community' ? id : undefined, empty_cells: emptyCells });
    try {
      const r = await upload(url, file, setProgress);
      setReport(r);
      onImported();
    } catch (e) {
      setError(errorMessage(e));
    } finally {
      setProgress(null);
    }
  }

  const errors = report?.errors ?? [];
  return (
    <Dialog
      title={t('c.importTitle')}
      wide
      onClose={onClose}
      onSubmit={submit}
      footer={
        report ? (
          <button type="submit" className="primary">
            {t('common.close')}
          </button>
        ) : (
          <>
            <button type="button" onClick={onClose}>
              {t('common.cancel')}
            </button>
            <button type="submit" className="primary" disabled={!file || progress !== null}>
              {progress !== null ? t('common.working') : t('c.importSubmit')}
            </button>
          </>
        )
      }
    >
      {!report && (
        <>
          <p className="muted">{t('c.importIntro')}</p>
          <Field label={t('c.csvFile')}>
            <input type="file" accept=".csv,text/csv" required onChange={(e) => setFile(e.target.files?.[0] ?? null)} />
          </Field>
          <div className="row">
            <Field label={t('c.importInto')}>
              <select value={into} onChange={(e) => setInto(e.target.value)}>
                <option value="">{t('c.importAudienceOnly')}</option>
                {events.map((ev) => (
                  <option key={ev.id} value={`event:${ev.id}`}>
                    {t('c.importEvent', { name: ev.name })}
                  </option>
                ))}
                {communities.map((c) => (
                  <option key={c.id} value={`community:${c.id}`}>
                    {t('c.importCommunity', { name: c.name })}
                  </option>
                ))}
              </select>
            </Field>
            <Field label={t('c.emptyCells')}>
              <select value={emptyCells} onChange={(e) => setEmptyCells(e.target.value as 'keep' | 'clear')}>
                <option value="keep">{t('c.emptyKeep')}</option>
                <option value="clear">{t('c.emptyClear')}</option>
              </select>
            </Field>
          </div>
          {progress !== null && (
            <div>
              <progress max={1} value={progress} aria-label={t('c.uploadProgress')} />{' '}
              <span>{progress >= 1 ? t('c.importProcessing') : `${Math.round(progress * 100)} %`}</span>
            </div>
          )}
        </>
      )}
      {report && (
        <section aria-labelledby="import-result">
          <h3 id="import-result">{t('c.importDone')}</h3>
          <p role="status">
            {/* "skipped" is the count of refused lines (each refusal skips its line): shown once, as refused. */}
            {t('c.importCounts', { rows: fmt.number(report.rows), created: fmt.number(report.created), updated: fmt.number(report.updated), refused: fmt.number(report.error_count ?? report.skipped) })}
          </p>
          {report.duplicates > 0 && <p className="muted">{t('c.importDuplicates', { n: fmt.number(report.duplicates) })}</p>}
          {report.ignored_columns?.length > 0 && <p className="muted">{t('c.importIgnored', { columns: report.ignored_columns.join(', ') })}</p>}
          {errors.length > 0 && (
            <table className="simple" aria-label={t('c.importErrors')}>
              <thead>
                <tr>
                  <th scope="col">{t('c.line')}</th>
                  <th scope="col">{t('c.problem')}</th>
                </tr>
              </thead>
              <tbody>
                {errors.slice(0, 200).map((e, i) => (
                  <tr key={i}>
                    <td>{e.line}</td>
                    <td>{e.message ?? e.reason ?? JSON.stringify(e)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </section>
      )}
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
    </Dialog>
  );
}
