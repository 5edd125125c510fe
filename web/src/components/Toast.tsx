import { createContext, useCallback, useContext, useMemo, useRef, useState, type ReactNode } from 'react';
import { useT } from '../i18n/index.tsx';

type Kind = 'success' | 'error' | 'info';
interface Notice {
  id: number;
  kind: Kind;
  message: string;
}
interface ToastApi {
  show(message: string, kind?: Kind): void;
  success(message: string): void;
  error(message: string): void;
}

const ToastContext = createContext<ToastApi | null>(null);

/**
 * Short notices after an action. Successes fade after a few seconds (read out politely by screen
 * readers); errors stay until dismissed and are announced at once.
 */
export function ToastProvider({ children }: { children: ReactNode }) {
  const [notices, setNotices] = useState<Notice[]>([]);
  const next = useRef(1);
  const t = useT();
  const dismiss = useCallback((id: number) => setNotices((n) => n.filter((x) => x.id !== id)), []);
  const show = useCallback(
    (message: string, kind: Kind = 'info') => {
      const id = next.current++;
      setNotices((n) => [...n.slice(-4), { id, kind, message }]);
      if (kind !== 'error') setTimeout(() => dismiss(id), 6000);
    },
    [dismiss],
  );
  const api = useMemo<ToastApi>(() => ({ show, success: (m) => show(m, 'success'), error: (m) => show(m, 'error') }), [show]);
  const list = (kinds: Kind[]) =>
    notices
      .filter((n) => kinds.includes(n.kind))
      .map((n) => (
        <div key={n.id} className={`toast toast-${n.kind}`}>
          <span>{n.message}</span>
          <button type="button" className="icon-button" aria-label={t('common.dismiss')} onClick={() => dismiss(n.id)}>
            ×
          </button>
        </div>
      ));
  return (
    <ToastContext.Provider value={api}>
      {children}
      <div className="toasts">
        <div role="status" aria-live="polite">
          {list(['success', 'info'])}
        </div>
        <div role="alert" aria-live="assertive">
          {list(['error'])}
        </div>
      </div>
    </ToastContext.Provider>
  );
}

export function useToast(): ToastApi {
  const t = useContext(ToastContext);
  if (!t) throw new Error('useToast outside ToastProvider');
  return t;
}
