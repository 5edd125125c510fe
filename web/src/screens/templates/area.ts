import { lazy } from 'react';
import { defineArea } from '../../area.ts';

export default defineArea({ path: 'templates', nav: 'nav.templates', order: 20, component: lazy(() => import('./TemplatesArea.tsx')) });
