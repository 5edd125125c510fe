/**
 * Rendered drafts wait for the editor's preview frame to load them, by an unguessable token, for ten
 * minutes (0016_template_previews.sql). In the database so that any API process behind a load
 * balancer can serve the frame; a principal has PREVIEW_SLOTS rows at most, overwritten in turn (a
 * preview is worth nothing after the next keystroke).
 */
import { createHash, randomBytes, randomInt } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { DB } from '../platform/schema.ts';

export const PREVIEW_TTL_MS = 10 * 60_000;
const PREVIEW_SLOTS = 8;
/** A sweep of every organisation's expired rows, on about one render in SWEEP_EVERY. */
const SWEEP_EVERY = 50;

const hashOf = (token: string) => createHash('sha256').update(token).digest();

export async function keepPreview(db: Kysely<DB>, o: { orgId: string; principal: string; audienceId: string; html: string; now: Date }): Promise<string> {
  const token = randomBytes(16).toString('base64url');
  const row = {
    org_id: o.orgId,
    principal: o.principal,
    // A random slot, not a counter: API processes share no counter, and the frame loads the preview at once.
    slot: randomInt(PREVIEW_SLOTS),
    token_hash: hashOf(token),
    audience_id: o.audienceId,
    html: o.html,
    expires_at: new Date(o.now.getTime() + PREVIEW_TTL_MS),
  };
  await db
    .insertInto('template_previews')
    .values(row)
    .onConflict((oc) => oc.columns(['org_id', 'principal', 'slot']).doUpdateSet({ token_hash: row.token_hash, audience_id: row.audience_id, html: row.html, expires_at: row.expires_at }))
    .execute();
  if (randomInt(SWEEP_EVERY) === 0) await db.deleteFrom('template_previews').where('expires_at', '<=', o.now).execute();
  return token;
}

/** The HTML of a preview of this organisation and audience, or null when unknown, expired or someone else's. */
export async function findPreview(db: Kysely<DB>, o: { orgId: string; audienceId: string; token: string; now: Date }): Promise<string | null> {
  const row = await db
    .selectFrom('template_previews')
    .select('html')
    .where('token_hash', '=', hashOf(o.token))
    .where('org_id', '=', o.orgId)
    .where('audience_id', '=', o.audienceId)
    .where('expires_at', '>', o.now)
    .executeTakeFirst();
  return row?.html ?? null;
}
