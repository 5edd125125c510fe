import { ConfirmDialog } from '../../components/ConfirmDialog.tsx';
import { QueryStatus } from '../../components/Status.tsx';
import { useT } from '../../i18n/index.tsx';
import { del } from '../../api.ts';
import { useContact } from './data.ts';
import { messages } from './messages.ts';

/**
 * Deleting a contact erases it everywhere in the audience, so the confirmation lists what goes:
 * the participations (with the events), the memberships (with the communities) and the account.
 */
export function DeleteContactDialog({ audienceId, contactId, onDeleted, onClose }: { audienceId: string; contactId: string; onDeleted(): void; onClose(): void }) {
  const t = useT(messages);
  const contact = useContact(audienceId, contactId);
  const c = contact.data;
  const name = c ? [c.first_name, c.last_name].filter(Boolean).join(' ') || c.email || c.id : '';
  return (
    <ConfirmDialog
      title={t('c.deleteTitle')}
      danger
      confirmLabel={t('c.deleteConfirm')}
      onClose={onClose}
      onConfirm={async () => {
        if (!c) throw new Error(t('app.loading'));
        await del(`/v1/audiences/${audienceId}/contacts/${contactId}`);
        onDeleted();
      }}
    >
      <QueryStatus query={contact}>
        {c && (
          <>
            <p>{t('c.deleteIntro', { name, email: c.email ?? '' })}</p>
            <ul className="erase-list">
              <li>{t('c.eraseFields')}</li>
              <li>
                {c.events.length ? t('c.eraseParticipations', { n: c.events.length }) : t('c.eraseNoParticipation')}
                {c.events.length > 0 && (
                  <ul>
                    {c.events.map((e) => (
                      <li key={e.participant_id}>{e.name}</li>
                    ))}
                  </ul>
                )}
              </li>
              <li>
                {c.communities.length ? t('c.eraseMemberships', { n: c.communities.length }) : t('c.eraseNoMembership')}
                {c.communities.length > 0 && (
                  <ul>
                    {c.communities.map((m) => (
                      <li key={m.member_id}>{m.name}</li>
                    ))}
                  </ul>
                )}
              </li>
              <li>{c.account ? t('c.eraseAccount') : t('c.eraseNoAccount')}</li>
            </ul>
            <p className="muted">{t('c.deleteKept')}</p>
            <p>
              <strong>{t('c.deleteIrreversible')}</strong>
            </p>
          </>
        )}
      </QueryStatus>
    </ConfirmDialog>
  );
}
