import { lazy } from 'react';
import { defineArea } from '../../area.ts';

export default defineArea({ path: 'consent', nav: 'nav.consent', order: 40, component: lazy(() => import('./ConsentArea.tsx')) });
