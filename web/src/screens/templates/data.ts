import { useQuery } from '@tanstack/react-query';
import { get } from '../../api.ts';

export type Category = 'transactional' | 'participation' | 'marketing';
export const CATEGORIES: Category[] = ['marketing', 'participation', 'transactional'];
export const BUILTINS = ['re_permission', 'double_opt_in', 'registration_confirmation', 'account_confirmation', 'password_reset'] as const;
export type Builtin = (typeof BUILTINS)[number];

export interface Template {
  id: string;
  audience_id: string;
  builtin_kind: Builtin | null;
  event_id: string | null;
  community_id: string | null;
  name: string;
  category: Category;
  language: string;
  subject: string;
  preheader: string | null;
  format: 'html' | 'mjml';
  body: string;
  text: string | null;
  tracking: boolean;
  from_name: string | null;
  from_email: string | null;
  reply_to: string | null;
  version: number;
  created_at: string;
  updated_at: string;
}

export interface Rendered {
  subject: string;
  preheader: string;
  html: string;
  text: string;
  html_url: string;
}

export interface ContactHit {
  id: string;
  email: string;
  first_name: string | null;
  last_name: string | null;
}

export const tplKeys = {
  list: (audienceId: string) => ['templates', audienceId] as const,
  one: (audienceId: string, id: string) => ['templates', audienceId, id] as const,
};

export const useTemplates = (audienceId: string | null) =>
  useQuery({
    queryKey: tplKeys.list(audienceId ?? ''),
    queryFn: async () => (await get<{ templates: Template[] }>(`/v1/audiences/${audienceId}/templates`)).templates,
    enabled: !!audienceId,
  });

export const useTemplate = (audienceId: string, id: string | undefined) =>
  useQuery({ queryKey: tplKeys.one(audienceId, id ?? ''), queryFn: () => get<Template>(`/v1/audiences/${audienceId}/templates/${id}`), enabled: !!id });

/** Contacts matching a quick search, to preview a template for one of them. */
export const useContactSearch = (audienceId: string, q: string) =>
  useQuery({
    queryKey: ['templates', audienceId, 'contact-search', q],
    queryFn: async () => (await get<{ items: ContactHit[] }>(`/v1/audiences/${audienceId}/contacts`, { q, limit: 8 })).items,
    enabled: q.trim().length > 0,
    staleTime: 30_000,
  });
