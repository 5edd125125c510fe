import { lazy } from 'react';
import { defineArea } from '../../area.ts';

export default defineArea({ path: 'audiences', nav: 'nav.audiences', order: 10, component: lazy(() => import('./AudiencesArea.tsx')) });
