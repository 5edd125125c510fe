import { useQueryClient } from '@tanstack/react-query';
import { post } from '../../api.ts';
import { QueryStatus } from '../../components/Status.tsx';
import { useToast } from '../../components/Toast.tsx';
import { useT } from '../../i18n/index.tsx';
import { gridKeys, useScopeFields, type ScopeKind } from './data.ts';
import { messages } from './messages.ts';
import { builtinDefs, NewPersonDialog } from './person-form.tsx';

/**
 * Registers a participant in an event or a member in a community: the built-in fields, the audience's
 * central fields and the event's (community's) own fields. With an email the person is also a
 * contact of the audience (the API joins an existing contact and brings the values up to it).
 */
export function AddRecordDialog({ kind, scope, audienceId, onClose }: { kind: ScopeKind; scope: { id: string; name: string }; audienceId: string; onClose(): void }) {
  const t = useT(messages);
  const qc = useQueryClient();
  const toast = useToast();
  const fields = useScopeFields(kind, scope.id);
  if (!fields.data) return <QueryStatus query={fields} />;
  const central = fields.data.filter((f) => f.scope === 'audience');
  const own = fields.data.filter((f) => f.scope === kind);
  const event = kind === 'event';
  return (
    <NewPersonDialog
      title={t(event ? 'p.addParticipant' : 'p.addMember', { name: scope.name })}
      intro={t('p.recordIntro')}
      audienceId={audienceId}
      what={event ? 'participant' : 'member'}
      emailRequired={false}
      groups={[
        { fields: builtinDefs() },
        { title: t('p.centralFields'), fields: central },
        { title: t(event ? 'p.eventFields' : 'p.communityFields'), fields: own },
      ]}
      onClose={onClose}
      save={async (body) => {
        await post(`/v1/${event ? 'events' : 'communities'}/${scope.id}/${event ? 'participants' : 'members'}`, body);
        await Promise.all([qc.invalidateQueries({ queryKey: gridKeys.all(audienceId) }), qc.invalidateQueries({ queryKey: ['contact', audienceId] })]);
        toast.success(t(event ? 'p.participantAdded' : 'p.memberAdded', { name: scope.name }));
      }}
    />
  );
}
