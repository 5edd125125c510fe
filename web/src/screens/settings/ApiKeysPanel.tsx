import { useRef, useState } from 'react';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { del, get, post } from '../../api.ts';
import type { Role } from '../../auth.tsx';
import { ConfirmDialog } from '../../components/ConfirmDialog.tsx';
import { Dialog } from '../../components/Dialog.tsx';
import { FormDialog } from '../../components/FormDialog.tsx';
import { Field, QueryStatus } from '../../components/Status.tsx';
import { useToast } from '../../components/Toast.tsx';
import { useFormat, useT } from '../../i18n/index.tsx';
import { useAudiences } from '../audiences/data.ts';
import { DEFAULT_RATE_LIMIT, explain, keys, type ApiKey } from './data.ts';
import { messages } from './messages.ts';
import { RoleSelect } from './TeamPanel.tsx';

type Created = ApiKey & { key: string };

function CreateKeyDialog({ onClose, onCreated }: { onClose(): void; onCreated(k: Created): void }) {
  const t = useT(messages);
  const fmt = useFormat();
  const qc = useQueryClient();
  const audiences = useAudiences();
  const [name, setName] = useState('');
  const [role, setRole] = useState<Role>('editor');
  const [limitTo, setLimitTo] = useState<string[]>([]);
  const [rate, setRate] = useState('');
  const [tried, setTried] = useState(false);
  // Shown once this dialog is gone: the secret's dialog then takes the focus, and gives it back to the page.
  const made = useRef<Created | null>(null);
  const rateValue = rate.trim() === '' ? null : Number(rate);
  const rateOk = rateValue === null || (Number.isInteger(rateValue) && rateValue >= 1 && rateValue <= 1_000_000);
  return (
    <FormDialog
      title={t('set.keys.create')}
      submitLabel={t('common.create')}
      onClose={() => {
        onClose();
        if (made.current) onCreated(made.current);
      }}
      onSubmit={async () => {
        setTried(true);
        if (!rateOk) throw new Error(t('set.keys.rateBad'));
        let created: Created;
        try {
          created = await post<Created>('/v1/api-keys', {
            name: name.trim(),
            role,
            ...(limitTo.length ? { audience_ids: limitTo } : {}),
            ...(rateValue !== null ? { rate_limit_per_minute: rateValue } : {}),
          });
        } catch (e) {
          throw explain(t, e);
        }
        made.current = created;
        await qc.invalidateQueries({ queryKey: keys.apiKeys });
      }}
    >
      <Field label={t('set.keys.name')} hint={t('set.keys.nameHint')}>
        <input required maxLength={200} autoComplete="off" value={name} onChange={(e) => setName(e.target.value)} />
      </Field>
      <Field label={t('set.role')} hint={t(`set.roleHelp.${role}`)}>
        <RoleSelect value={role} onChange={setRole} />
      </Field>
      <QueryStatus query={audiences}>
        {audiences.data?.length ? (
          <fieldset className="choice-group" aria-describedby="set-keys-limit-hint">
            <legend>{t('set.keys.limitTo')}</legend>
            {audiences.data.map((a) => (
              <label key={a.id} className="check">
                <input type="checkbox" checked={limitTo.includes(a.id)} onChange={(e) => setLimitTo((l) => (e.target.checked ? [...l, a.id] : l.filter((x) => x !== a.id)))} />
                {a.name}
              </label>
            ))}
            <span className="field-hint" id="set-keys-limit-hint">
              {t('set.keys.limitHint')}
            </span>
          </fieldset>
        ) : (
          <p className="muted">{t('set.keys.noAudience')}</p>
        )}
      </QueryStatus>
      <Field label={t('set.keys.rateField')} hint={t('set.keys.rateHint', { n: fmt.number(DEFAULT_RATE_LIMIT) })} error={tried && !rateOk ? t('set.keys.rateBad') : null}>
        <input type="number" inputMode="numeric" step={1} placeholder={String(DEFAULT_RATE_LIMIT)} value={rate} onChange={(e) => setRate(e.target.value)} />
      </Field>
    </FormDialog>
  );
}

/** The secret, shown this once: the API keeps only its hash. */
function SecretDialog({ created, onClose }: { created: Created; onClose(): void }) {
  const t = useT(messages);
  const toast = useToast();
  return (
    <Dialog
      title={t('set.keys.secretTitle', { name: created.name })}
      onClose={onClose}
      describedBy="set-keys-secret-warning"
      footer={
        <button type="button" className="primary" onClick={onClose}>
          {t('set.keys.copiedDone')}
        </button>
      }
    >
      <p className="notice secret-warning" id="set-keys-secret-warning" role="note">
        {t('set.keys.secretWarning')}
      </p>
      <label className="field-label" htmlFor="set-keys-secret">
        {t('set.keys.secretLabel')}
      </label>
      <div className="secret-box">
        <input id="set-keys-secret" readOnly value={created.key} onFocus={(e) => e.currentTarget.select()} spellCheck={false} autoComplete="off" />
        <button
          type="button"
          data-autofocus=""
          onClick={() =>
            void navigator.clipboard
              .writeText(created.key)
              .then(() => toast.success(t('set.keys.copied')))
              .catch(() => toast.error(t('set.keys.copyFailed')))
          }
        >
          {t('set.keys.copy')}
        </button>
      </div>
    </Dialog>
  );
}

export function ApiKeysPanel() {
  const t = useT(messages);
  const fmt = useFormat();
  const qc = useQueryClient();
  const toast = useToast();
  const audiences = useAudiences();
  const [creating, setCreating] = useState(false);
  const [created, setCreated] = useState<Created | null>(null);
  const [revoking, setRevoking] = useState<ApiKey | null>(null);
  const list = useQuery({ queryKey: keys.apiKeys, queryFn: async () => (await get<{ api_keys: ApiKey[] }>('/v1/api-keys')).api_keys });
  const audienceName = (id: string) => audiences.data?.find((a) => a.id === id)?.name ?? t('set.keys.unknownAudience');
  // Active keys first, newest first within each.
  const rows = [...(list.data ?? [])].sort((a, b) => Number(Boolean(a.revoked_at)) - Number(Boolean(b.revoked_at)) || b.created_at.localeCompare(a.created_at));
  return (
    <section className="card" aria-labelledby="set-keys-title">
      <div className="card-head">
        <h2 id="set-keys-title">{t('set.keys.title')}</h2>
        <div className="toolbar">
          <button type="button" className="primary" onClick={() => setCreating(true)}>
            {t('set.keys.create')}
          </button>
        </div>
      </div>
      <p className="muted">{t('set.keys.explain')}</p>
      <QueryStatus query={list}>
        {rows.length ? (
          <table className="simple" aria-label={t('set.keys.title')}>
            <thead>
              <tr>
                <th scope="col">{t('set.keys.name')}</th>
                <th scope="col">{t('set.keys.key')}</th>
                <th scope="col">{t('set.role')}</th>
                <th scope="col">{t('set.keys.audiences')}</th>
                <th scope="col">{t('set.keys.rate')}</th>
                <th scope="col">{t('set.created')}</th>
                <th scope="col">{t('set.keys.lastUsed')}</th>
                <th scope="col">{t('set.keys.status')}</th>
                <th scope="col">
                  <span className="visually-hidden">{t('common.actions')}</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {rows.map((k) => (
                <tr key={k.id} className={k.revoked_at ? 'revoked' : undefined}>
                  <td>{k.name}</td>
                  <td>
                    <span className="key-prefix">{k.prefix}…</span>
                  </td>
                  <td>
                    <span className="badge">{t(`role.${k.role}`)}</span>
                  </td>
                  <td>
                    {k.audience_ids?.length ? (
                      <span className="chips">
                        {k.audience_ids.map((id) => (
                          <span key={id} className="chip">
                            {audienceName(id)}
                          </span>
                        ))}
                      </span>
                    ) : (
                      t('set.keys.allAudiences')
                    )}
                  </td>
                  <td>{t('set.keys.perMinute', { n: fmt.number(k.rate_limit_per_minute) })}</td>
                  <td>{fmt.dateTime(k.created_at)}</td>
                  <td>{k.last_used_at ? fmt.dateTime(k.last_used_at) : t('set.keys.never')}</td>
                  <td>{k.revoked_at ? t('set.keys.revokedOn', { at: fmt.dateTime(k.revoked_at) }) : t('set.keys.active')}</td>
                  <td>
                    {!k.revoked_at && (
                      <button type="button" onClick={() => setRevoking(k)} aria-label={t('set.keys.revokeOne', { name: k.name })}>
                        {t('set.keys.revoke')}
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : (
          <p className="muted">{t('set.keys.empty')}</p>
        )}
      </QueryStatus>
      {creating && <CreateKeyDialog onClose={() => setCreating(false)} onCreated={setCreated} />}
      {created && <SecretDialog created={created} onClose={() => setCreated(null)} />}
      {revoking && (
        <ConfirmDialog
          danger
          title={t('set.keys.revokeTitle', { name: revoking.name })}
          confirmLabel={t('set.keys.revoke')}
          onClose={() => setRevoking(null)}
          onConfirm={async () => {
            await del(`/v1/api-keys/${revoking.id}`);
            toast.success(t('set.keys.revoked', { name: revoking.name }));
            await qc.invalidateQueries({ queryKey: keys.apiKeys });
          }}
        >
          <p>{t('set.keys.revokeText')}</p>
        </ConfirmDialog>
      )}
    </section>
  );
}
