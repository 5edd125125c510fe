import { NavLink, Route, Routes } from 'react-router-dom';
import { useT } from '../../i18n/index.tsx';
import { ApiKeysPanel } from './ApiKeysPanel.tsx';
import { messages } from './messages.ts';
import { TeamPanel } from './TeamPanel.tsx';
import '../campaigns/shared/shared.css';
import './settings.css';

/** The organisation's settings, for its owners: the team of back-office users, and the API keys. */
export default function SettingsArea() {
  const t = useT(messages);
  const tabs = [
    ['', 'set.tab.team'],
    ['api-keys', 'set.tab.keys'],
  ] as const;
  return (
    <div className="page">
      <div className="page-head">
        <h1>{t('set.title')}</h1>
        <span className="spacer" />
      </div>
      <nav className="sub-nav" aria-label={t('set.sections')}>
        <ul>
          {tabs.map(([path, key]) => (
            <li key={path}>
              <NavLink end to={`/settings${path ? `/${path}` : ''}`}>
                {t(key)}
              </NavLink>
            </li>
          ))}
        </ul>
      </nav>
      <Routes>
        <Route index element={<TeamPanel />} />
        <Route path="api-keys" element={<ApiKeysPanel />} />
      </Routes>
    </div>
  );
}
