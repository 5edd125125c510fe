import { post } from '../../api.ts';
import { QueryStatus } from '../../components/Status.tsx';
import { useToast } from '../../components/Toast.tsx';
import { useT } from '../../i18n/index.tsx';
import { useFields } from './data.ts';
import { messages } from './messages.ts';
import { builtinDefs, NewPersonDialog } from './person-form.tsx';

/** "Add a contact" in the grid: an email (required), the built-in fields and the audience's central fields. */
export function AddContactDialog({ audienceId, onAdded, onClose }: { audienceId: string; onAdded(): void; onClose(): void }) {
  const t = useT(messages);
  const toast = useToast();
  const fields = useFields(audienceId);
  if (!fields.data) return <QueryStatus query={fields} />;
  const central = fields.data.filter((f) => f.scope === 'audience');
  return (
    <NewPersonDialog
      title={t('p.addContact')}
      intro={t('p.contactIntro')}
      audienceId={audienceId}
      what="contact"
      emailRequired
      groups={[{ fields: builtinDefs() }, { title: t('p.centralFields'), fields: central }]}
      onClose={onClose}
      save={async (body) => {
        const c = await post<{ email: string }>(`/v1/audiences/${audienceId}/contacts`, body);
        onAdded();
        toast.success(t('p.contactAdded', { email: c.email }));
      }}
    />
  );
}
