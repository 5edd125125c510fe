import { createContext, useContext, useEffect, type ReactNode } from 'react';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { ApiError, get, post, setCsrfToken, setUnauthorizedHandler } from './api.ts';

export type Role = 'owner' | 'editor' | 'viewer';
const RANK: Record<Role, number> = { viewer: 0, editor: 1, owner: 2 };

export interface Me {
  kind: 'user' | 'key';
  id: string;
  role: Role;
  audience_ids: string[] | null;
  organisation: { id: string; name: string };
  csrf_token: string | null;
}

interface Auth {
  me: Me;
  /** whether the user's role reaches `role`: the UI hides what the API would refuse anyway */
  can(role: Role): boolean;
  logout(): Promise<void>;
}

const AuthContext = createContext<Auth | null>(null);
export const ME_KEY = ['me'] as const;

/** null when nobody is logged in (the API answered 401). */
export function useMeQuery() {
  return useQuery({
    queryKey: ME_KEY,
    queryFn: async () => {
      try {
        const me = await get<Me>('/v1/me');
        setCsrfToken(me.csrf_token);
        return me;
      } catch (e) {
        if (e instanceof ApiError && e.status === 401) return null;
        throw e;
      }
    },
    staleTime: 5 * 60_000,
    retry: false,
  });
}

export async function login(email: string, password: string) {
  const r = await post<{ csrf_token: string }>('/v1/auth/login', { email, password });
  setCsrfToken(r.csrf_token);
}

export function AuthProvider({ me, children }: { me: Me; children: ReactNode }) {
  const qc = useQueryClient();
  useEffect(() => {
    setUnauthorizedHandler(() => qc.setQueryData(ME_KEY, null));
    return () => setUnauthorizedHandler(null);
  }, [qc]);
  const value: Auth = {
    me,
    can: (role) => RANK[me.role] >= RANK[role],
    async logout() {
      try {
        await post('/v1/auth/logout');
      } finally {
        setCsrfToken(null);
        qc.setQueryData(ME_KEY, null);
        // Nothing of this session may show to the next user of the browser.
        qc.removeQueries({ predicate: (q) => q.queryKey[0] !== ME_KEY[0] });
      }
    },
  };
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): Auth {
  const a = useContext(AuthContext);
  if (!a) throw new Error('useAuth outside AuthProvider');
  return a;
}

/** Renders its children only for users whose role reaches `min` (write buttons: editor). */
export function IfRole({ min, children }: { min: Role; children: ReactNode }) {
  return useAuth().can(min) ? <>{children}</> : null;
}
