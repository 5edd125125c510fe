import type { Kysely } from 'kysely';
import type { Config } from './config.ts';
import type { DB } from './schema.ts';
import { randomToken } from './secrets.ts';

/**
 * Links in emails (tracking, unsubscribe, consent) are signed. Without ENVOI_SECRET the key is made
 * once and kept in the database, so every process of the instance signs alike and links sent
 * yesterday still work after a restart.
 */
export async function withSigningSecret(db: Kysely<DB>, config: Config): Promise<Config & { secret: string }> {
  if (config.secret) return config as Config & { secret: string };
  await db
    .insertInto('instance_settings')
    .values({ name: 'link_secret', value: randomToken('', 32) })
    .onConflict((oc) => oc.column('name').doNothing())
    .execute();
  const row = await db.selectFrom('instance_settings').select('value').where('name', '=', 'link_secret').executeTakeFirstOrThrow();
  return { ...config, secret: row.value };
}
