import { useState } from 'react';
import { ApiError, errorMessage, post } from '../../api.ts';
import { Dialog } from '../../components/Dialog.tsx';
import { useFormat, useT } from '../../i18n/index.tsx';
import { messages } from './messages.ts';

export type AccountAction = 'unlock' | 'password-reset';

/**
 * Selection > Unlock / Password-reset email: one API call per selected contact (a few at a time);
 * contacts without an account are counted apart, not treated as failures.
 */
export function AccountActionDialog({ audienceId, action, contactIds, onDone, onClose }: { audienceId: string; action: AccountAction; contactIds: string[]; onDone(): void; onClose(): void }) {
  const t = useT(messages);
  const fmt = useFormat();
  const [state, setState] = useState<{ done: number; ok: number; noAccount: number; failed: string[] } | null>(null);
  const running = state !== null && state.done < contactIds.length;

  async function start() {
    const s = { done: 0, ok: 0, noAccount: 0, failed: [] as string[] };
    setState({ ...s });
    const queue = [...contactIds];
    const worker = async () => {
      for (let id = queue.shift(); id; id = queue.shift()) {
        try {
          await post(`/v1/audiences/${audienceId}/contacts/${id}/account/${action}`);
          s.ok++;
        } catch (e) {
          if (e instanceof ApiError && e.status === 404) s.noAccount++;
          else s.failed.push(errorMessage(e));
        }
        s.done++;
        setState({ ...s, failed: [...s.failed] });
      }
    };
    await Promise.all(Array.from({ length: 4 }, worker));
    onDone();
  }

  const title = action === 'unlock' ? t('c.unlockTitle') : t('c.resetTitle');
  return (
    <Dialog
      title={title}
      onClose={onClose}
      onSubmit={() => (state ? onClose() : void start())}
      footer={
        state && !running ? (
          <button type="submit" className="primary">
            {t('common.close')}
          </button>
        ) : (
          <>
            <button type="button" onClick={onClose} disabled={running}>
              {t('common.cancel')}
            </button>
            <button type="submit" className="primary" disabled={running}>
              {running ? t('common.working') : title}
            </button>
          </>
        )
      }
    >
      <p>{action === 'unlock' ? t('c.unlockIntro', { n: fmt.number(contactIds.length) }) : t('c.resetIntro', { n: fmt.number(contactIds.length) })}</p>
      {state && (
        <div role="status">
          <progress max={contactIds.length} value={state.done} aria-label={title} />
          <p>
            {action === 'unlock' ? t('c.unlockedN', { n: fmt.number(state.ok) }) : t('c.resetSentN', { n: fmt.number(state.ok) })}
            {state.noAccount > 0 && ` ${t('c.noAccountN', { n: fmt.number(state.noAccount) })}`}
          </p>
        </div>
      )}
      {state && state.failed.length > 0 && (
        <div role="alert" className="error">
          {state.failed.slice(0, 5).map((f, i) => (
            <p key={i}>{f}</p>
          ))}
        </div>
      )}
    </Dialog>
  );
}
