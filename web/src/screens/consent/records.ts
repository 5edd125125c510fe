import { useT } from '../../i18n/index.tsx';
import { messages } from './messages.ts';

/** A consent ledger record, as the API gives it (with its proof). */
export interface ConsentRecord {
  id: string;
  seq: string;
  contact_id: string | null;
  email: string | null;
  action: string;
  method: string;
  wording: string | null;
  message_id: string | null;
  campaign_id: string | null;
  actor: string;
  at: string;
}

type MethodKey = Extract<keyof typeof messages.en, `cons.method.${string}`>;
const isMethodKey = (k: string): k is MethodKey => k in messages.en;

/** How a consent change was collected, in words (the code when this version does not know it). */
export function useMethodName() {
  const t = useT(messages);
  return (method: string) => {
    const key = `cons.method.${method}`;
    return isMethodKey(key) ? t(key) : method;
  };
}
