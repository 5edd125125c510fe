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
 */
export function Field({ label, children, hint }: { label: ReactNode; children: ReactElement<{ id?: string; 'aria-describedby'?: string }>; hint?: ReactNode }) {
  const id = useId();
  const hintId = `${id}-hint`;
  const control = isValidElement(children) ? cloneElement(children, { id: children.props.id ?? id, 'aria-describedby': hint ? hintId : undefined }) : children;
  return (
    <div className="field">
      <label className="field-label" htmlFor={children.props.id ?? id}>
        {label}
      </label>
      {control}
      {hint && (
        <span className="field-hint" id={hintId}>
          {hint}
        </span>
      )}
    </div>
  );
}

/** A coloured dot with its meaning as text for screen readers (and as a tooltip). */
export function Dot({ on, label }: { on: boolean | null | undefined; label: string }) {
  return <span className={`dot ${on ? 'dot-on' : 'dot-off'}`} role="img" aria-label={label} title={label} />;
}
