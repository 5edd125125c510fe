// The organisation, API key, audience, events, communities and central fields the grid benches start from.
import type { Database } from '../src/platform/database.ts';
import { loadConfig } from '../src/platform/config.ts';
import { migrate } from '../src/platform/migrate.ts';
import { createContext } from '../src/platform/context.ts';
import * as orgs from '../src/organisations/service.ts';
import * as audience from '../src/audience/service.ts';
import { DIETS } from './dataset.ts';

export async function gridAudience(database: Database, url: string) {
  await migrate(database);
  const config = { ...loadConfig({}), databaseUrl: url };
  const ctx = createContext(config, database);
  const org = await orgs.createOrganisation(ctx, { name: 'Bench', ownerEmail: 'bench@example.com', ownerPassword: 'bench bench bench' });
  const key = await orgs.createApiKey(ctx, org.organisation.id, { name: 'bench', role: 'owner' });
  const p = (await orgs.authenticate(ctx, key.key))!;
  const aud = await audience.createAudience(ctx, p, 'Bench audience');
  const events: Awaited<ReturnType<typeof audience.createEvent>>[] = [];
  for (const [i, name] of ['Summit', 'Meetup', 'Workshop'].entries()) {
    events.push(await audience.createEvent(ctx, p, aud.id, { name, starts_at: `2026-0${i + 3}-01T09:00:00Z`, ends_at: `2026-0${i + 3}-02T18:00:00Z`, time_zone: 'Europe/Paris' }));
  }
  const communities = [await audience.createCommunity(ctx, p, aud.id, 'Alumni'), await audience.createCommunity(ctx, p, aud.id, 'Partners')];
  await audience.createField(ctx, p, { audienceId: aud.id }, { key: 'diet', type: 'choice', options: DIETS });
  await audience.createField(ctx, p, { audienceId: aud.id }, { key: 'score', type: 'number' });
  await audience.createField(ctx, p, { audienceId: aud.id }, { key: 'birthday', type: 'date' });
  return { config, ctx, key, p, aud, events, communities };
}
