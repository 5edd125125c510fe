import { useEffect } from 'react';
import { useSearchParams } from 'react-router-dom';
import { Field } from '../../../components/Status.tsx';
import { useT } from '../../../i18n/index.tsx';
import { useAudiences } from '../../audiences/data.ts';
import { messages } from './messages.ts';
import './shared.css';

const STORAGE_KEY = 'envoi.audience';

/**
 * The audience a screen works on: `?audience=` in the address (so a link or a reload keeps it), else
 * the one chosen last on any screen, else the first. Null while audiences load or when there is none.
 */
export function useAudienceChoice(): { audienceId: string | null; setAudienceId(id: string): void; isPending: boolean; error: unknown; refetch(): unknown } {
  const audiences = useAudiences();
  const [params, setParams] = useSearchParams();
  const list = audiences.data ?? [];
  const asked = params.get('audience');
  const saved = globalThis.localStorage?.getItem(STORAGE_KEY);
  const audienceId = list.find((a) => a.id === asked)?.id ?? list.find((a) => a.id === saved)?.id ?? list[0]?.id ?? null;
  useEffect(() => {
    if (audienceId) localStorage.setItem(STORAGE_KEY, audienceId);
  }, [audienceId]);
  return {
    audienceId,
    isPending: audiences.isPending,
    error: audiences.error,
    refetch: audiences.refetch,
    setAudienceId(id) {
      localStorage.setItem(STORAGE_KEY, id);
      setParams(
        (p) => {
          const next = new URLSearchParams(p);
          next.set('audience', id);
          return next;
        },
        { replace: true },
      );
    },
  };
}

export function AudienceSelect({ value, onChange }: { value: string | null; onChange(id: string): void }) {
  const t = useT(messages);
  const audiences = useAudiences();
  if (!audiences.data?.length) return null;
  return (
    <Field label={t('shr.audience')}>
      <select value={value ?? ''} onChange={(e) => onChange(e.target.value)}>
        {audiences.data.map((a) => (
          <option key={a.id} value={a.id}>
            {a.name}
          </option>
        ))}
      </select>
    </Field>
  );
}

/** The audience picker of a page head, and a hint when there is no audience at all. */
export function NoAudience() {
  const t = useT(messages);
  return <p className="muted">{t('shr.noAudience')}</p>;
}
