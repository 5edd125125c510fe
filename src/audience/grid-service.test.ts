import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { loadConfig } from '../platform/config.ts';
import { openPGlite, type Database } from '../platform/database.ts';
import { migrate } from '../platform/migrate.ts';
import { createContext, type AppContext } from '../platform/context.ts';
import * as orgs from '../organisations/service.ts';
import type { Principal } from '../organisations/service.ts';
import * as audience from './service.ts';
import { queryGrid } from './grid-service.ts';

// A page may start on the fields this process saw last, alongside the lookup of the fields now. These
// tests change the fields behind the service's back (as another API process would) and check that
// every answer is that of the fields as they are, never of the guess.
describe('grid pages when another process changed the fields', () => {
  let database: Database;
  let ctx: AppContext;
  let p: Principal;
  let audienceId: string;
  const key = () => ({ ...p }); // a principal per request, as HTTP gives

  beforeAll(async () => {
    database = await openPGlite('memory://');
    await migrate(database);
    ctx = createContext(loadConfig({}), database);
    const org = await orgs.createOrganisation(ctx, { name: 'Guess', ownerEmail: 'guess@example.com', ownerPassword: 'guess guess guess' });
    const k = await orgs.createApiKey(ctx, org.organisation.id, { name: 'k', role: 'owner' });
    p = (await orgs.authenticate(ctx, k.key))!;
    audienceId = (await audience.createAudience(ctx, p, 'A')).id;
    await audience.createField(ctx, p, { audienceId }, { key: 'diet', type: 'choice', options: ['vegan', 'none'] });
    for (const [i, diet] of ['vegan', 'none', 'vegan'].entries()) {
      await audience.createContact(ctx, p, audienceId, { builtins: { email: `c${i}@example.com` }, custom: { diet } });
    }
  }, 60_000);
  afterAll(() => database?.close());

  const vegan = { filter: { field: 'diet', op: 'in', value: ['vegan'] }, sort: 'email', count: true };

  it('answers from the fields as they are now', async () => {
    const first = await queryGrid(ctx, key(), audienceId, vegan);
    expect(first.total).toBe(2);
    expect(first.items[0]).toHaveProperty('diet', 'vegan');
    // the same query again runs on the guess, and must give the same page
    expect(await queryGrid(ctx, key(), audienceId, vegan)).toEqual(first);

    // Another process turns diet into a number field: the filter fits the guess, not the field now.
    await sql`UPDATE fields SET type = 'number', options = NULL WHERE audience_id = ${audienceId} AND key = 'diet'`.execute(ctx.db);
    await expect(queryGrid(ctx, key(), audienceId, vegan)).rejects.toMatchObject({ code: 'invalid_filter' });
    // a filter that fits both reads the values as numbers now: "vegan" is no number, so missing
    const empty = await queryGrid(ctx, key(), audienceId, { filter: { field: 'diet', op: 'empty' }, count: true });
    expect(empty.total).toBe(3);
    expect(await queryGrid(ctx, key(), audienceId, { filter: { field: 'diet', op: 'empty' }, count: true })).toEqual(empty);

    // ... and then removes it: the page no longer shows it, although the guess had it.
    await sql`DELETE FROM fields WHERE audience_id = ${audienceId} AND key = 'diet'`.execute(ctx.db);
    const all = await queryGrid(ctx, key(), audienceId, { sort: 'email', count: true });
    expect(all.total).toBe(3);
    expect(all.items[0]).not.toHaveProperty('diet');
    await expect(queryGrid(ctx, key(), audienceId, vegan)).rejects.toMatchObject({ code: 'invalid_filter' });
  });

  it('gives the checks their errors first, whatever the page started on the guess did', async () => {
    await queryGrid(ctx, key(), audienceId, { sort: 'email' });
    // a bad cursor fails the guessed page; an unknown event fails the checks
    const event = '11111111-1111-4111-8111-111111111111';
    await expect(queryGrid(ctx, key(), audienceId, { filter: { event: { in: [event] } }, cursor: 'nonsense' })).rejects.toMatchObject({ code: 'invalid_filter' });
    await expect(queryGrid(ctx, key(), audienceId, { sort: 'email', cursor: 'nonsense' })).rejects.toMatchObject({ code: 'invalid_cursor' });
    // a key of another organisation gets a 404, not the page
    const other = await orgs.createOrganisation(ctx, { name: 'Other', ownerEmail: 'other@example.com', ownerPassword: 'other other other' });
    const ok = await orgs.createApiKey(ctx, other.organisation.id, { name: 'o', role: 'owner' });
    const q = (await orgs.authenticate(ctx, ok.key))!;
    await expect(queryGrid(ctx, q, audienceId, { sort: 'email' })).rejects.toMatchObject({ status: 404 });
    // the audience gone: 404, although this process had seen it
    await sql`DELETE FROM audiences WHERE id = ${audienceId}`.execute(ctx.db);
    await expect(queryGrid(ctx, key(), audienceId, { sort: 'email' })).rejects.toMatchObject({ status: 404 });
  });
});
