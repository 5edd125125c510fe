import type { ReactNode } from 'react';
import { NavLink } from 'react-router-dom';
import { useAuth } from './auth.tsx';
import { LANGS, useLang, useT, type Lang } from './i18n/index.tsx';
import { AREAS } from './routes.tsx';

export function LanguageSelect() {
  const { lang, setLang } = useLang();
  const t = useT();
  return (
    <label className="lang">
      <span className="visually-hidden">{t('lang.label')}</span>
      <select value={lang} onChange={(e) => setLang(e.target.value as Lang)} aria-label={t('lang.label')}>
        {LANGS.map((l) => (
          <option key={l} value={l}>
            {l === 'fr' ? 'Français' : 'English'}
          </option>
        ))}
      </select>
    </label>
  );
}

export function Layout({ children }: { children: ReactNode }) {
  const { me, can, logout } = useAuth();
  const t = useT();
  return (
    <div className="shell">
      <a className="skip-link" href="#main">
        {t('app.skip')}
      </a>
      <header className="topbar">
        <span className="brand">{t('app.name')}</span>
        <nav aria-label={t('nav.label')}>
          <ul>
            {AREAS.filter((a) => a.nav && can(a.minRole ?? 'viewer')).map((a) => (
              <li key={a.path}>
                <NavLink to={`/${a.path}`}>{t(a.nav!)}</NavLink>
              </li>
            ))}
          </ul>
        </nav>
        <div className="topbar-end">
          <span className="org" title={me.organisation.name}>
            {me.organisation.name}
          </span>
          <span className="role">{t('user.role', { role: t(`role.${me.role}`) })}</span>
          <LanguageSelect />
          <button type="button" onClick={() => void logout()}>
            {t('user.logout')}
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {children}
      </main>
    </div>
  );
}
