-- Fewer foreign-key checks on the rows a send writes most (BENCHMARKS.md, Campaign). A foreign key is
-- checked row by row: for 2,000 recipients of a campaign page, the checks of message_events'
-- message_id and delivery_id took 12 of the 21 ms of the event insert, and that of deliveries'
-- contact_id 9 of the 30 ms of the delivery insert. Every one of those rows is written by envoi itself,
-- in the transaction that wrote or claimed the row it points to: the checks only ever re-read what
-- that transaction had just written.
--
-- What the keys did on delete is kept, by statement triggers (one pass per DELETE, however many rows):
--  * deleting a message or a delivery deletes its events (was ON DELETE CASCADE);
--  * deleting a contact keeps its deliveries, the record of what was sent, without the contact
--    (was ON DELETE SET NULL; the address goes with the data-subject erasure, not here).
-- A contact deleted while a page of its campaign is being written can leave that page's delivery
-- pointing at no contact: the worker then finds no contact and fails the delivery ("the contact was
-- deleted before the message was sent"), as it would have had the delete come a moment later.

ALTER TABLE message_events DROP CONSTRAINT message_events_message_id_fkey;
ALTER TABLE message_events DROP CONSTRAINT message_events_delivery_id_fkey;
ALTER TABLE deliveries DROP CONSTRAINT deliveries_contact_id_fkey;

CREATE FUNCTION message_events_of_deleted_messages() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM message_events e USING old_rows o WHERE e.message_id = o.id;
  RETURN NULL;
END $$;
CREATE TRIGGER messages_delete_events AFTER DELETE ON messages
  REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION message_events_of_deleted_messages();

-- A delivery's events are found by message (message_events_message): a delivery is deleted with its
-- message, and the partial indexes by delivery hold only some types.
CREATE FUNCTION message_events_of_deleted_deliveries() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM message_events e USING old_rows o WHERE e.message_id = o.message_id AND e.delivery_id = o.id;
  RETURN NULL;
END $$;
CREATE TRIGGER deliveries_delete_events AFTER DELETE ON deliveries
  REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION message_events_of_deleted_deliveries();

CREATE FUNCTION deliveries_of_deleted_contacts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE deliveries d SET contact_id = NULL FROM old_rows o WHERE d.contact_id = o.id;
  RETURN NULL;
END $$;
CREATE TRIGGER contacts_delete_deliveries AFTER DELETE ON contacts
  REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION deliveries_of_deleted_contacts();
