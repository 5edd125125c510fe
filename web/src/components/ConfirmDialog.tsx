import { useId, useState, type ReactNode } from 'react';
import { errorMessage } from '../api.ts';
import { useT } from '../i18n/index.tsx';
import { Dialog } from './Dialog.tsx';

export interface ConfirmDialogProps {
  title: ReactNode;
  children: ReactNode;
  confirmLabel?: string;
  /** a destructive action: the button is red and focus starts on Cancel */
  danger?: boolean;
  onConfirm(): Promise<unknown> | unknown;
  onClose(): void;
}

/** Asks before acting; shows the API's error in place when the action fails, and closes when it succeeds. */
export function ConfirmDialog({ title, children, confirmLabel, danger, onConfirm, onClose }: ConfirmDialogProps) {
  const t = useT();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const descId = useId();
  async function confirm() {
    setBusy(true);
    setError(null);
    try {
      await onConfirm();
      onClose();
    } catch (e) {
      setError(errorMessage(e));
      setBusy(false);
    }
  }
  return (
    <Dialog
      title={title}
      onClose={onClose}
      describedBy={descId}
      footer={
        <>
          <button type="button" onClick={onClose} data-autofocus={danger ? '' : undefined}>
            {t('common.cancel')}
          </button>
          <button type="button" className={danger ? 'danger' : 'primary'} disabled={busy} onClick={confirm} data-autofocus={danger ? undefined : ''}>
            {busy ? t('common.working') : (confirmLabel ?? t('common.confirm'))}
          </button>
        </>
      }
    >
      <div id={descId}>{children}</div>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
    </Dialog>
  );
}
