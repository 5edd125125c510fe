-- Fewer index entries and foreign-key checks per delivery (BENCHMARKS.md, Campaign). A delivery row is
-- written three times (inserted, claimed, finished), and neither update can be HOT (the claim moves
-- due_at, the outcome changes status, both in deliveries_due): each write adds an entry to every index
-- whose predicate the new row satisfies.
--
-- deliveries_message (message_id) duplicated the leading column of deliveries_message_contact. That
-- one was partial (contact_id IS NOT NULL) and so could not serve the lookups by message alone; a full
-- unique index enforces the same rule (NULLs are distinct: rows without a contact never collide) and
-- serves both. `ON CONFLICT (message_id, contact_id) WHERE contact_id IS NOT NULL` still infers it:
-- a non-partial unique index satisfies any predicate.
CREATE UNIQUE INDEX deliveries_message_contact_all ON deliveries (message_id, contact_id);
DROP INDEX deliveries_message_contact;
ALTER INDEX deliveries_message_contact_all RENAME TO deliveries_message_contact;
DROP INDEX deliveries_message;

-- Whether a campaign message still has work is asked every second by every scheduler: through the
-- message's whole index that read every row already finished before the first pending one (200 ms a
-- pass at 1,000,000 recipients). Only pending rows are in this one, and a row enters it twice at most
-- (queued, then claimed); the outcome takes it out without writing to it.
CREATE INDEX deliveries_pending ON deliveries (message_id) WHERE status IN ('queued', 'sending', 'deferred', 'paused');

-- The organisation of a delivery and of an event is that of its message, whose own foreign key
-- (ON DELETE CASCADE, as is messages.org_id) already removes them with the organisation: the direct
-- keys were a second check of the same fact on every row of the two largest tables (a third of the
-- foreign-key work of an outcome write).
ALTER TABLE message_events DROP CONSTRAINT message_events_org_id_fkey;
ALTER TABLE deliveries DROP CONSTRAINT deliveries_org_id_fkey;
