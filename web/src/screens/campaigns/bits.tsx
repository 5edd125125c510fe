import { useFormat, useT } from '../../i18n/index.tsx';
import type { CampaignStatus, Target, View } from './data.ts';
import { messages } from './messages.ts';

export function StatusBadge({ status }: { status: CampaignStatus }) {
  const t = useT(messages);
  return <span className={`badge status-${status}`}>{t(`camp.status.${status}`)}</span>;
}

/** Who a campaign goes to, in words. */
export function TargetText({ target, views }: { target: Target; views?: View[] }) {
  const t = useT(messages);
  const fmt = useFormat();
  if ('view_id' in target) {
    const v = views?.find((x) => x.id === target.view_id);
    return <>{v ? t('camp.targetView', { name: v.name }) : t('camp.targetDeletedView')}</>;
  }
  if ('contact_ids' in target) return <>{t('camp.targetSelection', { n: fmt.number(target.contact_ids.length) })}</>;
  const filter = target.filter as { event?: unknown } | null;
  return <>{filter && typeof filter === 'object' && 'event' in filter ? t('camp.targetEvent') : t('camp.targetFilter')}</>;
}
