/**
 * What accepting a triggered message reads, looked up for all the requests of one event-loop turn at
 * once: one query per kind of fact for the whole cohort instead of one per request (see Loader). Each
 * key carries its organisation and every query is scoped by it.
 */
import type { Kysely } from 'kysely';
import type { DB } from '../platform/schema.ts';
import type { TemplateWithContent } from '../mail/template-store.ts';
import { contactsForSending } from '../audience/service.ts';
import { excludedAmong } from '../consent/service.ts';
import { Loader } from './accept-batch.ts';
import { preparing } from './accept-prepared.ts';
import * as store from './store.ts';

export type SendingContact = Awaited<ReturnType<typeof contactsForSending>>[number];
export type AcceptEvent = Awaited<ReturnType<typeof store.eventsByIds>>[number];
type Suppression = { hardBouncedAt: Date | null; complainedAt: Date | null };

export interface OrgScoped {
  orgId: string;
  id: string;
}

const scoped = (k: OrgScoped) => `${k.orgId}|${k.id}`;
const contextKey = (k: ContextKey) => `${k.orgId}|${k.templateId}|${k.contactId}|${k.key === null ? '-' : `k:${k.key}`}`;

/** Runs `fetch` once per organisation among `keys` (usually one). */
async function perOrg<V>(keys: OrgScoped[], fetch: (orgId: string, ids: string[]) => Promise<[string, V][]>): Promise<Map<string, V>> {
  const byOrg = new Map<string, string[]>();
  for (const k of keys) {
    const ids = byOrg.get(k.orgId);
    if (ids) ids.push(k.id);
    else byOrg.set(k.orgId, [k.id]);
  }
  const out = new Map<string, V>();
  await Promise.all(
    [...byOrg].map(async ([orgId, ids]) => {
      for (const [id, v] of await fetch(orgId, ids)) out.set(`${orgId}|${id}`, v);
    }),
  );
  return out;
}

export interface ContextKey {
  orgId: string;
  templateId: string;
  contactId: string;
  key: string | null;
}

export interface AcceptLookups {
  /** the whole accept context of a message from a stored template to a contact id, in one query for the cohort */
  context: Loader<ContextKey, store.AcceptContextRow>;
  /** the message holding an idempotency key (`id` is the key) */
  messageByKey: Loader<OrgScoped, { id: string; request_hash: string | null }>;
  template: Loader<OrgScoped, TemplateWithContent>;
  organisation: Loader<string, { name: string; settings: unknown }>;
  event: Loader<OrgScoped, AcceptEvent>;
  /** a contact with what the policy and the renderer need (any audience of the organisation: callers check which) */
  contact: Loader<OrgScoped, SendingContact>;
  /** by email_lower */
  suppression: Loader<OrgScoped, Suppression>;
  /** by email_lower: present when the address is on the organisation's exclusion list */
  exclusion: Loader<OrgScoped, true>;
  /** custom field keys of an audience (`id` is the audience id) */
  fieldKeys: Loader<OrgScoped, string[]>;
}

function build(db: Kysely<DB>, prepared: boolean): AcceptLookups {
  // The lookup of the common request runs for every cohort: prepared once per connection.
  const contextDb = preparing(db, 'envoi_accept_context', prepared);
  return {
    context: new Loader(async (keys) => {
      const rows = await store.acceptContexts(contextDb, keys);
      return new Map(rows.map((r) => [contextKey(keys[r.i]!), r]));
    }, contextKey),
    messageByKey: new Loader(async (keys) => {
      const rows = await store.messagesByKeys(db, keys.map((k) => ({ orgId: k.orgId, key: k.id })));
      return new Map(rows.map((r) => [`${r.org_id}|${r.idempotency_key}`, { id: r.id, request_hash: r.request_hash }]));
    }, scoped),
    template: new Loader(async (keys) => new Map((await store.templatesByIds(db, keys)).map((t) => [`${t.org_id}|${t.id}`, t])), scoped),
    organisation: new Loader(
      async (ids) => new Map((await store.organisationsByIds(db, ids)).map((o) => [o.id, { name: o.name, settings: o.settings as unknown }])),
      (id) => id,
    ),
    event: new Loader(async (keys) => new Map((await store.eventsByIds(db, keys)).map((e) => [`${e.org_id}|${e.id}`, e])), scoped),
    contact: new Loader((keys) => perOrg(keys, async (orgId, ids) => (await contactsForSending(db, orgId, ids)).map((c) => [c.id, c])), scoped),
    suppression: new Loader((keys) => perOrg(keys, async (orgId, emails) => [...(await store.suppressionsFor(db, orgId, emails))]), scoped),
    exclusion: new Loader((keys) => perOrg(keys, async (orgId, emails) => [...(await excludedAmong(db, orgId, emails))].map((e) => [e, true as const])), scoped),
    fieldKeys: new Loader(async (keys) => {
      const out = new Map<string, string[]>(keys.map((k) => [scoped(k), []]));
      for (const r of await store.audienceFieldKeysOf(db, keys.map((k) => ({ orgId: k.orgId, audienceId: k.id })))) {
        for (const k of keys) if (k.id === r.audience_id) out.get(scoped(k))!.push(r.key);
      }
      return out;
    }, scoped),
  };
}

const lookups = new WeakMap<Kysely<DB>, AcceptLookups>();

/** The loaders of one database handle; `prepared` (node-postgres only) for named statements, decided by the first call. */
export function lookupsFor(db: Kysely<DB>, opts: { prepared?: boolean } = {}): AcceptLookups {
  let l = lookups.get(db);
  if (!l) lookups.set(db, (l = build(db, opts.prepared ?? false)));
  return l;
}
