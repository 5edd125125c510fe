import { sql, type Kysely, type Selectable } from 'kysely';
import type { DB, TemplateVersionsTable, TemplatesTable } from '../platform/schema.ts';

type Q = Kysely<DB>;

export type TemplateRow = Selectable<TemplatesTable>;
export type TemplateVersionRow = Selectable<TemplateVersionsTable>;
export type VersionContent = Omit<TemplateVersionRow, 'template_id' | 'version' | 'created_at' | 'created_by'>;

/** A template with the content of its current version (`language` is the version's; the template row mirrors it for the override index). */
export type TemplateWithContent = Omit<TemplateRow, 'language'> & VersionContent;

const CONTENT = [
  'v.category',
  'v.language',
  'v.subject',
  'v.preheader',
  'v.format',
  'v.body',
  'v.text_body',
  'v.tracking',
  'v.from_name',
  'v.from_email',
  'v.reply_to',
] as const;

function withContent(db: Q) {
  return db
    .selectFrom('templates as t')
    .innerJoin('template_versions as v', (j) => j.onRef('v.template_id', '=', 't.id').onRef('v.version', '=', 't.version'))
    .select(['t.id', 't.org_id', 't.audience_id', 't.event_id', 't.community_id', 't.name', 't.builtin_kind', 't.version', 't.created_at', 't.updated_at', 't.deleted_at'])
    .select(CONTENT)
    .where('t.deleted_at', 'is', null);
}

export function findTemplate(db: Q, orgId: string, templateId: string): Promise<TemplateWithContent | undefined> {
  return withContent(db).where('t.org_id', '=', orgId).where('t.id', '=', templateId).executeTakeFirst();
}

export function listTemplates(db: Q, audienceId: string): Promise<TemplateWithContent[]> {
  return withContent(db).where('t.audience_id', '=', audienceId).orderBy('t.created_at').orderBy('t.id').execute();
}

export async function insertTemplate(
  db: Q,
  row: { orgId: string; audienceId: string; eventId: string | null; communityId: string | null; name: string; builtinKind: string | null; createdBy: string; content: VersionContent; now: Date },
) {
  const t = await db
    .insertInto('templates')
    .values({
      org_id: row.orgId,
      audience_id: row.audienceId,
      event_id: row.eventId,
      community_id: row.communityId,
      name: row.name,
      builtin_kind: row.builtinKind,
      language: row.content.language,
      version: 1,
      created_at: row.now,
      updated_at: row.now,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  await db.insertInto('template_versions').values({ template_id: t.id, version: 1, created_by: row.createdBy, created_at: row.now, ...row.content }).execute();
  return t.id;
}

/**
 * Writes version `base + 1`, only if `base` is still the current version: of two concurrent edits
 * of one version, the second gets `false` instead of silently replacing the first.
 */
export async function insertNextVersion(
  db: Q,
  row: { templateId: string; base: number; name: string; eventId: string | null; communityId: string | null; builtinKind: string | null; createdBy: string; content: VersionContent; now: Date },
): Promise<boolean> {
  const bumped = await db
    .updateTable('templates')
    .set({ version: row.base + 1, name: row.name, event_id: row.eventId, community_id: row.communityId, builtin_kind: row.builtinKind, language: row.content.language, updated_at: row.now })
    .where('id', '=', row.templateId)
    .where('version', '=', row.base)
    .where('deleted_at', 'is', null)
    .executeTakeFirst();
  if (Number(bumped.numUpdatedRows) === 0) return false;
  await db.insertInto('template_versions').values({ template_id: row.templateId, version: row.base + 1, created_by: row.createdBy, created_at: row.now, ...row.content }).execute();
  return true;
}

/** The audience's override of a built-in template: the exact language first, else the same primary language. */
export function findBuiltinOverride(db: Q, audienceId: string, kind: string, language: string): Promise<TemplateWithContent | undefined> {
  const primary = language.toLowerCase().split('-')[0]!;
  return withContent(db)
    .where('t.audience_id', '=', audienceId)
    .where('t.builtin_kind', '=', kind)
    .where((eb) => eb.or([eb(eb.fn('lower', ['t.language']), '=', language.toLowerCase()), eb(eb.fn('split_part', [eb.fn('lower', ['t.language']), eb.val('-'), eb.val(1)]), '=', primary)]))
    .orderBy(sql`lower(t.language) = ${language.toLowerCase()}`, 'desc')
    .executeTakeFirst();
}

export async function softDeleteTemplate(db: Q, templateId: string, now: Date): Promise<boolean> {
  const r = await db.updateTable('templates').set({ deleted_at: now }).where('id', '=', templateId).where('deleted_at', 'is', null).executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

/** One version, whatever became of its template since: what queued mail renders. */
export function findVersion(db: Q, templateId: string, version: number): Promise<TemplateVersionRow | undefined> {
  return db.selectFrom('template_versions').selectAll().where('template_id', '=', templateId).where('version', '=', version).executeTakeFirst();
}
