import type { ComponentType, LazyExoticComponent } from 'react';
import type { CommonKey } from './i18n/en.ts';
import type { Role } from './auth.tsx';

/**
 * One area of the back office (Audiences, Templates, ...): a folder `screens/<name>/` whose
 * `area.ts` default-exports `defineArea({...})`. routes.tsx finds every such file by itself, so
 * adding an area touches no shared file.
 */
export interface Area {
  /** the first URL segment: the area owns `/<path>` and everything below it */
  path: string;
  /** the navigation label (a shared i18n key), or null for an area outside the navigation */
  nav: CommonKey | null;
  /** place in the navigation, small first: audiences 10, templates 20, campaigns 30, consent 40, reports 50, outbox 60, settings 70 */
  order: number;
  /** lowest role that sees the area (default viewer); a lower role opening its address is told who it is for */
  minRole?: Role;
  /** the area's screens: render its own <Routes> with paths relative to `/<path>/` */
  component: LazyExoticComponent<ComponentType>;
}

export function defineArea(a: Area): Area {
  return a;
}
