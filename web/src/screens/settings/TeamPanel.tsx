import { useState } from 'react';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { del, get, patch, post } from '../../api.ts';
import { ME_KEY, useAuth, type Role } from '../../auth.tsx';
import { ConfirmDialog } from '../../components/ConfirmDialog.tsx';
import { FormDialog } from '../../components/FormDialog.tsx';
import { Field, QueryStatus } from '../../components/Status.tsx';
import { useToast } from '../../components/Toast.tsx';
import { useFormat, useT } from '../../i18n/index.tsx';
import { explain, keys, MAX_PASSWORD, MIN_PASSWORD, ROLES, type User } from './data.ts';
import { messages } from './messages.ts';

const label = (u: User) => u.name || u.email;

/** A role picker; Field gives it its id and description. */
export function RoleSelect({ value, onChange, ...aria }: { value: Role; onChange(r: Role): void; id?: string; 'aria-describedby'?: string }) {
  const t = useT(messages);
  return (
    <select {...aria} value={value} onChange={(e) => onChange(e.target.value as Role)}>
      {ROLES.map((r) => (
        <option key={r} value={r}>
          {t(`role.${r}`)}
        </option>
      ))}
    </select>
  );
}

function AddUserDialog({ onClose }: { onClose(): void }) {
  const t = useT(messages);
  const qc = useQueryClient();
  const toast = useToast();
  const [email, setEmail] = useState('');
  const [name, setName] = useState('');
  const [role, setRole] = useState<Role>('editor');
  const [password, setPassword] = useState('');
  const [tried, setTried] = useState(false);
  const passwordError = tried && password.length < MIN_PASSWORD ? t('set.err.password', { min: MIN_PASSWORD }) : null;
  return (
    <FormDialog
      title={t('set.team.add')}
      submitLabel={t('common.add')}
      onClose={onClose}
      onSubmit={async () => {
        setTried(true);
        if (password.length < MIN_PASSWORD) throw new Error(t('set.err.password', { min: MIN_PASSWORD }));
        try {
          await post('/v1/users', { email: email.trim(), name: name.trim(), role, password });
        } catch (e) {
          throw explain(t, e);
        }
        await qc.invalidateQueries({ queryKey: keys.users });
        toast.success(t('set.team.added', { email: email.trim() }));
      }}
    >
      <Field label={t('set.team.email')}>
        <input type="email" required maxLength={254} autoComplete="off" value={email} onChange={(e) => setEmail(e.target.value)} />
      </Field>
      <Field label={t('set.team.name')}>
        <input maxLength={200} autoComplete="off" value={name} onChange={(e) => setName(e.target.value)} />
      </Field>
      <Field label={t('set.role')} hint={t(`set.roleHelp.${role}`)}>
        <RoleSelect value={role} onChange={setRole} />
      </Field>
      <Field label={t('set.team.password')} hint={t('set.team.passwordHint', { min: MIN_PASSWORD })} error={passwordError}>
        <input type="password" required maxLength={MAX_PASSWORD} autoComplete="new-password" value={password} onChange={(e) => setPassword(e.target.value)} />
      </Field>
    </FormDialog>
  );
}

function EditUserDialog({ user, isMe, onClose }: { user: User; isMe: boolean; onClose(): void }) {
  const t = useT(messages);
  const qc = useQueryClient();
  const toast = useToast();
  const [name, setName] = useState(user.name);
  const [role, setRole] = useState<Role>(user.role);
  return (
    <FormDialog
      title={t('set.team.editTitle', { who: user.email })}
      onClose={onClose}
      onSubmit={async () => {
        const body: { name?: string; role?: Role } = {};
        if (name.trim() !== user.name) body.name = name.trim();
        if (role !== user.role) body.role = role;
        if (!Object.keys(body).length) return;
        try {
          await patch(`/v1/users/${user.id}`, body);
        } catch (e) {
          throw explain(t, e, user.email);
        }
        toast.success(t('set.team.saved', { who: user.email }));
        // A new role of one's own changes what the back office shows.
        if (isMe) await qc.invalidateQueries({ queryKey: ME_KEY });
        await qc.invalidateQueries({ queryKey: keys.users });
      }}
    >
      <Field label={t('set.team.name')}>
        <input maxLength={200} autoComplete="off" value={name} onChange={(e) => setName(e.target.value)} />
      </Field>
      <Field label={t('set.role')} hint={t(`set.roleHelp.${role}`)}>
        <RoleSelect value={role} onChange={setRole} />
      </Field>
      {isMe && role !== 'owner' && <p className="notice secret-warning">{t('set.team.selfDemote')}</p>}
    </FormDialog>
  );
}

export function TeamPanel() {
  const t = useT(messages);
  const fmt = useFormat();
  const qc = useQueryClient();
  const toast = useToast();
  const { me } = useAuth();
  const [adding, setAdding] = useState(false);
  const [editing, setEditing] = useState<User | null>(null);
  const [removing, setRemoving] = useState<User | null>(null);
  const users = useQuery({ queryKey: keys.users, queryFn: async () => (await get<{ users: User[] }>('/v1/users')).users });
  const isMe = (u: User) => me.kind === 'user' && u.id === me.id;
  return (
    <section className="card" aria-labelledby="set-team-title">
      <div className="card-head">
        <h2 id="set-team-title">{t('set.team.title')}</h2>
        <div className="toolbar">
          <button type="button" className="primary" onClick={() => setAdding(true)}>
            {t('set.team.add')}
          </button>
        </div>
      </div>
      <p className="muted">{t('set.team.explain')}</p>
      <QueryStatus query={users}>
        {users.data?.length ? (
          <table className="simple" aria-label={t('set.team.title')}>
            <thead>
              <tr>
                <th scope="col">{t('set.team.email')}</th>
                <th scope="col">{t('set.team.name')}</th>
                <th scope="col">{t('set.role')}</th>
                <th scope="col">{t('set.created')}</th>
                <th scope="col">
                  <span className="visually-hidden">{t('common.actions')}</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {users.data.map((u) => (
                <tr key={u.id}>
                  <td>
                    {u.email} {isMe(u) && <span className="muted">{t('set.team.you')}</span>}
                  </td>
                  <td>{u.name}</td>
                  <td>
                    <span className="badge">{t(`role.${u.role}`)}</span>
                  </td>
                  <td>{fmt.dateTime(u.created_at)}</td>
                  <td>
                    <div className="toolbar">
                      <button type="button" onClick={() => setEditing(u)} aria-label={t('set.team.editOne', { who: u.email })}>
                        {t('set.team.edit')}
                      </button>
                      <button type="button" onClick={() => setRemoving(u)} aria-label={t('set.team.removeOne', { who: u.email })}>
                        {t('common.remove')}
                      </button>
                    </div>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : (
          <p className="muted">{t('set.team.empty')}</p>
        )}
      </QueryStatus>
      <p className="muted settings-note">{t('set.team.lastOwnerNote')}</p>
      {adding && <AddUserDialog onClose={() => setAdding(false)} />}
      {editing && <EditUserDialog user={editing} isMe={isMe(editing)} onClose={() => setEditing(null)} />}
      {removing && (
        <ConfirmDialog
          danger
          title={t('set.team.removeTitle', { who: label(removing) === removing.email ? removing.email : `${removing.name} (${removing.email})` })}
          confirmLabel={t('common.remove')}
          onClose={() => setRemoving(null)}
          onConfirm={async () => {
            try {
              await del(`/v1/users/${removing.id}`);
            } catch (e) {
              throw explain(t, e, removing.email);
            }
            toast.success(t('set.team.removed', { who: removing.email }));
            await qc.invalidateQueries({ queryKey: keys.users });
          }}
        >
          <p>{t('set.team.removeText', { who: label(removing) })}</p>
          {isMe(removing) && <p className="notice secret-warning">{t('set.team.removeSelf')}</p>}
        </ConfirmDialog>
      )}
    </section>
  );
}
