import { useEffect, useId, useRef, type FormEvent, type ReactNode } from 'react';
import { useT } from '../i18n/index.tsx';

export interface DialogProps {
  title: ReactNode;
  onClose(): void;
  children: ReactNode;
  /** buttons; inside the form when `onSubmit` is given, so Enter submits */
  footer?: ReactNode;
  onSubmit?(e: FormEvent<HTMLFormElement>): void;
  wide?: boolean;
  /** accessible description: the id of an element inside */
  describedBy?: string;
  /** the form checks its own values and explains them (no browser bubbles) */
  noValidate?: boolean;
}

/**
 * A modal dialog on the native <dialog> element: showModal() makes the rest of the page inert and
 * keeps keyboard focus inside, Escape closes it; focus returns to where it was when it closes.
 * Render it only while it is open.
 */
export function Dialog({ title, onClose, children, footer, onSubmit, wide, describedBy, noValidate }: DialogProps) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  const t = useT();
  const closeRef = useRef(onClose);
  closeRef.current = onClose;

  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    const before = document.activeElement as HTMLElement | null;
    dialog.showModal();
    const first = dialog.querySelector<HTMLElement>('[autofocus], [data-autofocus]') ?? dialog.querySelector<HTMLElement>('input, select, textarea, button:not(.dialog-close)');
    first?.focus();
    const onCancel = (e: Event) => {
      e.preventDefault();
      closeRef.current();
    };
    dialog.addEventListener('cancel', onCancel);
    return () => {
      dialog.removeEventListener('cancel', onCancel);
      if (dialog.open) dialog.close();
      if (before && document.contains(before)) before.focus();
    };
  }, []);

  const body = (
    <>
      <div className="dialog-body">{children}</div>
      {footer && <div className="dialog-footer">{footer}</div>}
    </>
  );
  return (
    <dialog ref={ref} className={wide ? 'dialog dialog-wide' : 'dialog'} aria-labelledby={titleId} aria-describedby={describedBy}>
      <div className="dialog-header">
        <h2 id={titleId}>{title}</h2>
        <button type="button" className="dialog-close icon-button" aria-label={t('common.close')} onClick={onClose}>
          ×
        </button>
      </div>
      {onSubmit ? (
        <form
          noValidate={noValidate}
          onSubmit={(e) => {
            e.preventDefault();
            onSubmit(e);
          }}
        >
          {body}
        </form>
      ) : (
        body
      )}
    </dialog>
  );
}
