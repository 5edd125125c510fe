import type { AppContext } from '../platform/context.ts';
import type { Principal } from '../organisations/service.ts';
import { contactFor } from './service.ts';

export const MAX_MESSAGES_PAGE = 200;

/**
 * The mail one contact received (one row per delivery, newest first), each with its message's
 * template, campaign and event names and its tracking history (sent, opened, clicked, bounced...).
 * Walks the deliveries_contact index, then one query for the events of the page.
 */
export async function contactMessages(ctx: AppContext, p: Principal, audienceId: string, contactId: string, page: { limit?: number; offset?: number }) {
  await contactFor(ctx, p, audienceId, contactId);
  const limit = Math.min(Math.max(Math.trunc(page.limit ?? 50), 1), MAX_MESSAGES_PAGE);
  const offset = Math.max(Math.trunc(page.offset ?? 0), 0);
  const rows = await ctx.db
    .selectFrom('deliveries as d')
    .innerJoin('messages as m', 'm.id', 'd.message_id')
    .leftJoin('templates as t', 't.id', 'm.template_id')
    .leftJoin('campaigns as c', 'c.id', 'm.campaign_id')
    .leftJoin('events as e', 'e.id', 'm.event_id')
    .leftJoin('communities as k', 'k.id', 'm.community_id')
    .select([
      'd.id as delivery_id',
      'm.id as message_id',
      'd.email',
      'd.status',
      'd.rule',
      'd.sent_at',
      'd.created_at',
      'm.category',
      'm.origin',
      'm.template_id',
      't.name as template_name',
      'm.campaign_id',
      'c.name as campaign_name',
      'm.event_id',
      'e.name as event_name',
      'm.community_id',
      'k.name as community_name',
    ])
    .where('d.org_id', '=', p.orgId)
    .where('d.contact_id', '=', contactId)
    .where('m.audience_id', '=', audienceId)
    .orderBy('d.created_at', 'desc')
    .orderBy('d.id', 'desc')
    .limit(limit + 1)
    .offset(offset)
    .execute();
  const items = rows.slice(0, limit);
  const events = items.length
    ? await ctx.db
        .selectFrom('message_events')
        .select(['delivery_id', 'type', 'at', 'detail'])
        .where('org_id', '=', p.orgId)
        .where('message_id', 'in', [...new Set(items.map((r) => r.message_id))])
        .where('delivery_id', 'in', items.map((r) => r.delivery_id))
        .orderBy('at')
        .orderBy('id')
        .execute()
    : [];
  const byDelivery = new Map<string, { type: string; at: Date; detail: unknown }[]>();
  for (const ev of events) {
    const list = byDelivery.get(ev.delivery_id!) ?? [];
    list.push({ type: ev.type, at: ev.at, detail: ev.detail });
    byDelivery.set(ev.delivery_id!, list);
  }
  return {
    items: items.map((r) => ({ ...r, events: byDelivery.get(r.delivery_id) ?? [] })),
    has_more: rows.length > limit,
  };
}
