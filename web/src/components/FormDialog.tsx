import { useState, type ReactNode } from 'react';
import { errorMessage } from '../api.ts';
import { useT } from '../i18n/index.tsx';
import { Dialog } from './Dialog.tsx';

/**
 * A dialog around a form: submit runs `onSubmit`; on failure the API's message shows in the dialog
 * (role=alert) and the form stays filled; on success it closes.
 */
export function FormDialog({
  title,
  submitLabel,
  onSubmit,
  onClose,
  children,
  wide,
}: {
  title: ReactNode;
  submitLabel?: string;
  onSubmit(): Promise<unknown>;
  onClose(): void;
  children: ReactNode;
  wide?: boolean;
}) {
  const t = useT();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  return (
    <Dialog
      title={title}
      wide={wide}
      onClose={onClose}
      onSubmit={async () => {
        setBusy(true);
        setError(null);
        try {
          await onSubmit();
          onClose();
        } catch (e) {
          setError(errorMessage(e));
          setBusy(false);
        }
      }}
      footer={
        <>
          <button type="button" onClick={onClose}>
            {t('common.cancel')}
          </button>
          <button type="submit" className="primary" disabled={busy}>
            {busy ? t('common.working') : (submitLabel ?? t('common.save'))}
          </button>
        </>
      }
    >
      {children}
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
    </Dialog>
  );
}
