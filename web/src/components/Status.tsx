import { cloneElement, isValidElement, useId, type ReactElement, type ReactNode } from 'react';
import { errorMessage } from '../api.ts';
import { useT } from '../i18n/index.tsx';

/** Loading and error states of a query, the same on every screen. */
export function QueryStatus({ query, children }: { query: { isPending: boolean; error: unknown; refetch(): unknown }; children?: ReactNode }) {
  const t = useT();
  if (query.isPending) return <p role="status">{t('app.loading')}</p>;
  if (query.error)
    return (
      <div role="alert" className="error">
        {t('common.error', { message: errorMessage(query.error) })}{' '}
        <button type="button" onClick={() => query.refetch()}>
          {t('common.retry')}
        </button>
      </div>
    );
  return <>{children}</>;
}

/**
 * A labelled form control. The label points at the control by id rather than wrapping it, so the
 * control's accessible name is the label alone (a wrapped <select> would add its chosen option).
 * An `error` shows under the control, which then reads as invalid and is described by it.
 */
export function Field({
  label,
  children,
  hint,
  error,
}: {
  label: ReactNode;
  children: ReactElement<{ id?: string; 'aria-describedby'?: string; 'aria-invalid'?: boolean }>;
  hint?: ReactNode;
  error?: ReactNode;
}) {
  const id = useId();
  const hintId = `${id}-hint`;
  const errorId = `${id}-error`;
  const describedBy = [hint ? hintId : null, error ? errorId : null].filter(Boolean).join(' ') || undefined;
  const control = isValidElement(children)
    ? cloneElement(children, { id: children.props.id ?? id, 'aria-describedby': describedBy, ...(error ? { 'aria-invalid': true } : {}) })
    : children;
  return (
    <div className={error ? 'field field-invalid' : 'field'}>
      <label className="field-label" htmlFor={children.props.id ?? id}>
        {label}
      </label>
      {control}
      {hint && (
        <span className="field-hint" id={hintId}>
          {hint}
        </span>
      )}
      {error && (
        <span className="field-error" id={errorId}>
          {error}
        </span>
      )}
    </div>
  );
}

/** A coloured dot with its meaning as text for screen readers (and as a tooltip). */
export function Dot({ on, label }: { on: boolean | null | undefined; label: string }) {
  return <span className={`dot ${on ? 'dot-on' : 'dot-off'}`} role="img" aria-label={label} title={label} />;
}
