import { lazy } from 'react';
import { defineArea } from '../../area.ts';

export default defineArea({ path: 'campaigns', nav: 'nav.campaigns', order: 30, component: lazy(() => import('./CampaignsArea.tsx')) });
