import { lazy } from 'react';
import { defineArea } from '../../area.ts';

export default defineArea({ path: 'outbox', nav: 'nav.outbox', order: 60, component: lazy(() => import('./OutboxArea.tsx')) });
