import { lazy } from 'react';
import { defineArea } from '../../area.ts';

export default defineArea({ path: 'settings', nav: 'nav.settings', order: 70, minRole: 'owner', component: lazy(() => import('./SettingsArea.tsx')) });
