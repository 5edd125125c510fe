import { useQuery } from '@tanstack/react-query';
import { get } from '../../api.ts';

export interface Audience {
  id: string;
  name: string;
  created_at: string;
}
export interface EventRow {
  id: string;
  audience_id: string;
  name: string;
  starts_at: string;
  ends_at: string;
  time_zone: string;
}
export interface Community {
  id: string;
  audience_id: string;
  name: string;
}

/** Query keys of the audience data, shared so that a write can refresh what shows it. */
export const keys = {
  audiences: ['audiences'] as const,
  audience: (id: string) => ['audiences', id] as const,
  events: (audienceId: string) => ['audiences', audienceId, 'events'] as const,
  communities: (audienceId: string) => ['audiences', audienceId, 'communities'] as const,
};

export const useAudiences = () => useQuery({ queryKey: keys.audiences, queryFn: async () => (await get<{ audiences: Audience[] }>('/v1/audiences')).audiences });
export const useAudience = (id: string) => useQuery({ queryKey: keys.audience(id), queryFn: () => get<Audience>(`/v1/audiences/${id}`) });
export const useEvents = (audienceId: string) =>
  useQuery({ queryKey: keys.events(audienceId), queryFn: async () => (await get<{ events: EventRow[] }>(`/v1/audiences/${audienceId}/events`)).events });
export const useCommunities = (audienceId: string) =>
  useQuery({ queryKey: keys.communities(audienceId), queryFn: async () => (await get<{ communities: Community[] }>(`/v1/audiences/${audienceId}/communities`)).communities });
