import { Suspense } from 'react';
import { Navigate, Route, Routes } from 'react-router-dom';
import type { Area } from './area.ts';
import { useAuth } from './auth.tsx';
import { useT } from './i18n/index.tsx';

// Every screens/<name>/area.ts, found at build time: an area registers itself by existing.
const found = import.meta.glob<{ default: Area }>('./screens/*/area.ts', { eager: true });
export const AREAS: Area[] = Object.values(found)
  .map((m) => m.default)
  .sort((a, b) => a.order - b.order);

function NotFound() {
  const t = useT();
  return <p role="alert">{t('app.notFound')}</p>;
}

/** An area the user's role does not reach, opened by its address: say so rather than "does not exist". */
function RoleRequired({ role }: { role: 'owner' | 'editor' }) {
  const t = useT();
  const { me } = useAuth();
  return (
    <p role="alert" className="notice">
      {t(`app.onlyRole.${role}`, { role: t(`role.${me.role}`) })}
    </p>
  );
}

export function AppRoutes() {
  const { can } = useAuth();
  const t = useT();
  const areas = AREAS.filter((a) => can(a.minRole ?? 'viewer'));
  const closed = AREAS.filter((a) => !can(a.minRole ?? 'viewer'));
  return (
    <Suspense fallback={<p role="status">{t('app.loading')}</p>}>
      <Routes>
        <Route index element={<Navigate to={`/${areas[0]?.path ?? 'audiences'}`} replace />} />
        {areas.map((a) => (
          <Route key={a.path} path={`${a.path}/*`} element={<a.component />} />
        ))}
        {closed.map((a) => (
          <Route key={a.path} path={`${a.path}/*`} element={<RoleRequired role={a.minRole === 'owner' ? 'owner' : 'editor'} />} />
        ))}
        <Route path="*" element={<NotFound />} />
      </Routes>
    </Suspense>
  );
}
