import { NavLink, Route, Routes, useLocation } from 'react-router-dom';
import { useT } from '../../i18n/index.tsx';
import { ExclusionsPanel } from './ExclusionsPanel.tsx';
import { messages } from './messages.ts';
import { ProofsPanel } from './ProofsPanel.tsx';
import { SignupFormsPanel } from './SignupFormsPanel.tsx';
import { UnsubscribesPanel } from './UnsubscribesPanel.tsx';
import './consent.css';

/** The consent center: the organisation's exclusion list, and per audience its unsubscribes, proofs and ledger, and signup forms. */
export default function ConsentArea() {
  const t = useT(messages);
  // The chosen audience follows from one section to the next.
  const { search } = useLocation();
  const tabs = [
    ['', 'cons.tab.exclusions'],
    ['unsubscribes', 'cons.tab.unsubscribes'],
    ['proofs', 'cons.tab.proofs'],
    ['forms', 'cons.tab.forms'],
  ] as const;
  return (
    <div className="page">
      <div className="page-head">
        <h1>{t('cons.title')}</h1>
        <span className="spacer" />
      </div>
      <nav className="sub-nav" aria-label={t('cons.sections')}>
        <ul>
          {tabs.map(([path, key]) => (
            <li key={path}>
              <NavLink end to={{ pathname: `/consent${path ? `/${path}` : ''}`, search }}>
                {t(key)}
              </NavLink>
            </li>
          ))}
        </ul>
      </nav>
      <Routes>
        <Route index element={<ExclusionsPanel />} />
        <Route path="unsubscribes" element={<UnsubscribesPanel />} />
        <Route path="proofs" element={<ProofsPanel />} />
        <Route path="forms" element={<SignupFormsPanel />} />
      </Routes>
    </div>
  );
}
