import { useState, type FormEvent } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import { errorMessage, post } from '../../api.ts';
import { login, ME_KEY } from '../../auth.tsx';
import { Field } from '../../components/Status.tsx';
import { useT } from '../../i18n/index.tsx';
import { LanguageSelect } from '../../Layout.tsx';

/**
 * Log in; or, on a fresh server, create the first organisation and its owner (the API allows it once,
 * or always when ENVOI_ALLOW_SIGNUP is set, and says so otherwise) and log straight in.
 */
export function LoginScreen() {
  const t = useT();
  const qc = useQueryClient();
  const [mode, setMode] = useState<'login' | 'signup'>('login');
  const [orgName, setOrgName] = useState('');
  const [name, setName] = useState('');
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    let step: 'signup' | 'login' = mode;
    try {
      if (step === 'signup') {
        await post('/v1/organisations', { name: orgName, owner_email: email, owner_password: password, owner_name: name || undefined });
        step = 'login';
      }
      await login(email, password);
      await qc.invalidateQueries({ queryKey: ME_KEY });
    } catch (err) {
      setError(t(step === 'signup' ? 'signup.failed' : 'login.failed', { message: errorMessage(err) }));
      setBusy(false);
    }
  }

  const title = mode === 'login' ? t('login.title') : t('signup.title');
  return (
    <main className="login" id="main">
      <form className="card login-card" onSubmit={submit} aria-labelledby="login-title">
        <div className="login-head">
          <h1 id="login-title">{title}</h1>
          <LanguageSelect />
        </div>
        {mode === 'signup' && (
          <>
            <Field label={t('signup.org')}>
              <input required maxLength={200} value={orgName} onChange={(e) => setOrgName(e.target.value)} autoFocus />
            </Field>
            <Field label={t('signup.name')}>
              <input maxLength={200} autoComplete="name" value={name} onChange={(e) => setName(e.target.value)} />
            </Field>
          </>
        )}
        <Field label={t('login.email')}>
          <input type="email" name="email" autoComplete="username" required value={email} onChange={(e) => setEmail(e.target.value)} autoFocus={mode === 'login'} />
        </Field>
        <Field label={t('login.password')} hint={mode === 'signup' ? t('signup.passwordHint') : undefined}>
          <input
            type="password"
            name="password"
            autoComplete={mode === 'signup' ? 'new-password' : 'current-password'}
            required
            minLength={mode === 'signup' ? 10 : undefined}
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
        </Field>
        {error && (
          <p role="alert" className="error">
            {error}
          </p>
        )}
        <button type="submit" className="primary" disabled={busy}>
          {busy ? t('common.working') : mode === 'login' ? t('login.submit') : t('signup.submit')}
        </button>
        <p>
          <button
            type="button"
            className="link"
            onClick={() => {
              setMode(mode === 'login' ? 'signup' : 'login');
              setError(null);
            }}
          >
            {mode === 'login' ? t('login.firstTime') : t('login.haveAccount')}
          </button>
        </p>
      </form>
    </main>
  );
}
