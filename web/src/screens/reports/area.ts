import { lazy } from 'react';
import { defineArea } from '../../area.ts';

export default defineArea({ path: 'reports', nav: 'nav.reports', order: 50, component: lazy(() => import('./ReportsArea.tsx')) });
