-- Outgoing webhooks (src/webhooks/). Triggers on the tables whose changes are announced write an
-- outbox of events, and one delivery row per (subscribed endpoint, event): the log and the work item
-- the dispatchers claim, as deliveries are for mail. No service code has to remember to emit.
--
-- Cost: every trigger is statement-level, so a bulk statement (a campaign's thousands of events, a
-- 100,000-contact bulk edit) costs one INSERT ... SELECT over its transition table, not one per row.
-- For an organisation with one subscribed endpoint, an event and its delivery cost about 70 us a
-- row on PostgreSQL here (a 20,000-contact bulk edit: 0.8 s alone, 2.2 s with the webhook), three
-- times that on PGlite.
-- Rows are written only for organisations with an enabled endpoint subscribed to the type: on an
-- instance without any enabled endpoint a trigger returns after one look at this small table,
-- before reading its transition table; an organisation without endpoints gets no outbox row.

CREATE TABLE webhook_endpoints (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organisations(id) ON DELETE CASCADE,
  url text NOT NULL,
  description text NOT NULL DEFAULT '',
  -- types of src/webhooks/rules.ts EVENT_TYPES, or '*' for every type
  event_types text[] NOT NULL CHECK (cardinality(event_types) > 0),
  -- the HMAC key, in clear because signing needs the key itself (a digest could only check one); the
  -- API shows it once, in the answer that creates the endpoint
  secret text NOT NULL,
  enabled boolean NOT NULL DEFAULT true,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_endpoints_org ON webhook_endpoints (org_id, created_at);

-- The outbox. The payload is what was true when it happened (a deleted contact's address included,
-- so that the receiver can erase it too); never a password, a token or a message's variables.
CREATE TABLE webhook_events (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organisations(id) ON DELETE CASCADE,
  type text NOT NULL,
  payload jsonb NOT NULL,
  occurred_at timestamptz NOT NULL
);
-- the retention sweep (src/webhooks/store.ts pruneEvents)
CREATE INDEX webhook_events_occurred ON webhook_events (occurred_at);

CREATE TABLE webhook_deliveries (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  -- no foreign key: a delivery goes with its endpoint, which goes with its organisation, and each
  -- check costs every row of a bulk statement (about a sixth of the trigger's time)
  org_id uuid NOT NULL,
  endpoint_id uuid NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
  event_id uuid NOT NULL REFERENCES webhook_events(id) ON DELETE CASCADE,
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
  -- every attempt ever made, replays included
  attempts integer NOT NULL DEFAULT 0,
  -- `attempts` when the current series began (0, or the count at the last replay): the backoff
  -- grows with the attempts of the series, so a replay starts again from a short delay
  series_base integer NOT NULL DEFAULT 0,
  -- when a pending row is next due: '-infinity' until its first attempt (due at once, on whatever
  -- clock the claiming process keeps: the triggers run on the database's), then the retry time or,
  -- while a dispatcher holds it, its lease end, so one index finds due and abandoned rows alike
  next_attempt_at timestamptz NOT NULL DEFAULT '-infinity',
  -- end of the current series' 24 hours of retries, set by its first attempt
  retry_until timestamptz,
  leased_by text,
  lease_until timestamptz,
  last_attempt_at timestamptz,
  last_status_code integer,
  last_error text,
  response_snippet text,
  -- the latest attempts [{at, status_code, error, duration_ms}], oldest first, capped at 25
  attempt_log jsonb NOT NULL DEFAULT '[]'::jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  delivered_at timestamptz,
  failed_at timestamptz
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (endpoint_id, next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (endpoint_id, created_at DESC, id DESC);
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id);

-- Organisations among `orgs` with an enabled endpoint subscribed to `event_type`. Joining
-- organisations leaves out one being deleted: its cascade deletes its contacts, whose trigger must
-- not write events that point to an organisation that is gone.
CREATE FUNCTION webhook_subscribed_orgs(event_type text, orgs uuid[]) RETURNS uuid[] LANGUAGE sql STABLE AS $$
  SELECT ARRAY(
    SELECT DISTINCT e.org_id FROM webhook_endpoints e JOIN organisations o ON o.id = e.org_id
    WHERE e.enabled AND e.org_id = ANY(orgs) AND e.event_types && ARRAY[event_type, '*'])
$$;

-- Fan-out: one delivery per enabled endpoint subscribed to the event. Pings are written with their
-- one delivery by the service (POST /v1/webhooks/{id}/test) and fan out to nobody else.
CREATE FUNCTION webhook_fan_out() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO webhook_deliveries (org_id, endpoint_id, event_id)
  SELECT n.org_id, e.id, n.id
  FROM new_webhook_events n
  JOIN webhook_endpoints e ON e.org_id = n.org_id AND e.enabled AND e.event_types && ARRAY[n.type, '*']
  WHERE n.type <> 'ping';
  RETURN NULL;
END $$;
CREATE TRIGGER webhook_events_fan_out AFTER INSERT ON webhook_events
  REFERENCING NEW TABLE AS new_webhook_events
  FOR EACH STATEMENT EXECUTE FUNCTION webhook_fan_out();

-- ---- contacts ----

CREATE FUNCTION webhook_on_contacts_insert() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  subs uuid[];
BEGIN
  IF NOT EXISTS (SELECT 1 FROM webhook_endpoints WHERE enabled) THEN
    RETURN NULL;
  END IF;
  subs := webhook_subscribed_orgs('contact.created', ARRAY(SELECT DISTINCT org_id FROM new_contacts));
  IF cardinality(subs) = 0 THEN
    RETURN NULL;
  END IF;
  INSERT INTO webhook_events (org_id, type, payload, occurred_at)
  SELECT n.org_id, 'contact.created', jsonb_build_object('contact_id', n.id, 'audience_id', n.audience_id, 'email', n.email), now()
  FROM new_contacts n
  WHERE n.org_id = ANY(subs);
  RETURN NULL;
END $$;
CREATE TRIGGER contacts_webhook_insert AFTER INSERT ON contacts
  REFERENCING NEW TABLE AS new_contacts
  FOR EACH STATEMENT EXECUTE FUNCTION webhook_on_contacts_insert();

-- contact.updated names the columns that changed, and each changed custom field as `fields.<key>`;
-- an update that changed nothing but updated_at (and email_lower, which follows email) is not one.
-- The columns are named one by one: comparing whole rows as jsonb cost four times as much on a bulk
-- edit. A column added to contacts needs its line here (test/webhooks.test.ts checks the list).
CREATE FUNCTION webhook_on_contacts_update() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  subs uuid[];
BEGIN
  IF NOT EXISTS (SELECT 1 FROM webhook_endpoints WHERE enabled) THEN
    RETURN NULL;
  END IF;
  subs := webhook_subscribed_orgs('contact.updated', ARRAY(SELECT DISTINCT org_id FROM new_contacts));
  IF cardinality(subs) = 0 THEN
    RETURN NULL;
  END IF;
  INSERT INTO webhook_events (org_id, type, payload, occurred_at)
  SELECT c.org_id, 'contact.updated', jsonb_build_object('contact_id', c.id, 'audience_id', c.audience_id, 'email', c.email, 'changed', to_jsonb(c.changed)), now()
  FROM (
    SELECT n.org_id, n.id, n.audience_id, n.email,
           array_remove(ARRAY[
             CASE WHEN n.audience_id IS DISTINCT FROM o.audience_id THEN 'audience_id' END,
             CASE WHEN n.company IS DISTINCT FROM o.company THEN 'company' END,
             CASE WHEN n.company_id IS DISTINCT FROM o.company_id THEN 'company_id' END,
             CASE WHEN n.email IS DISTINCT FROM o.email THEN 'email' END
           ], NULL)
           || CASE WHEN n.fields IS DISTINCT FROM o.fields THEN ARRAY(
                SELECT 'fields.' || f.key
                FROM (SELECT jsonb_object_keys(n.fields) AS key UNION SELECT jsonb_object_keys(o.fields)) f
                WHERE n.fields -> f.key IS DISTINCT FROM o.fields -> f.key
                ORDER BY 1) ELSE '{}' END
           || array_remove(ARRAY[
             CASE WHEN n.first_name IS DISTINCT FROM o.first_name THEN 'first_name' END,
             CASE WHEN n.job_title IS DISTINCT FROM o.job_title THEN 'job_title' END,
             CASE WHEN n.last_name IS DISTINCT FROM o.last_name THEN 'last_name' END,
             CASE WHEN n.marketing_authorized_at IS DISTINCT FROM o.marketing_authorized_at THEN 'marketing_authorized_at' END,
             CASE WHEN n.marketing_withdrawn_at IS DISTINCT FROM o.marketing_withdrawn_at THEN 'marketing_withdrawn_at' END
           ], NULL) AS changed
    FROM new_contacts n
    JOIN old_contacts o ON o.id = n.id
    WHERE n.org_id = ANY(subs)
  ) c
  WHERE cardinality(c.changed) > 0;
  RETURN NULL;
END $$;
CREATE TRIGGER contacts_webhook_update AFTER UPDATE ON contacts
  REFERENCING OLD TABLE AS old_contacts NEW TABLE AS new_contacts
  FOR EACH STATEMENT EXECUTE FUNCTION webhook_on_contacts_update();

CREATE FUNCTION webhook_on_contacts_delete() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  subs uuid[];
BEGIN
  IF NOT EXISTS (SELECT 1 FROM webhook_endpoints WHERE enabled) THEN
    RETURN NULL;
  END IF;
  subs := webhook_subscribed_orgs('contact.deleted', ARRAY(SELECT DISTINCT org_id FROM old_contacts));
  IF cardinality(subs) = 0 THEN
    RETURN NULL;
  END IF;
  INSERT INTO webhook_events (org_id, type, payload, occurred_at)
  SELECT o.org_id, 'contact.deleted', jsonb_build_object('contact_id', o.id, 'audience_id', o.audience_id, 'email', o.email), now()
  FROM old_contacts o
  WHERE o.org_id = ANY(subs);
  RETURN NULL;
END $$;
CREATE TRIGGER contacts_webhook_delete AFTER DELETE ON contacts
  REFERENCING OLD TABLE AS old_contacts
  FOR EACH STATEMENT EXECUTE FUNCTION webhook_on_contacts_delete();

-- ---- consent ----

CREATE FUNCTION webhook_on_consent_records() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  subs uuid[];
BEGIN
  IF NOT EXISTS (SELECT 1 FROM webhook_endpoints WHERE enabled) THEN
    RETURN NULL;
  END IF;
  subs := webhook_subscribed_orgs('consent.changed', ARRAY(SELECT DISTINCT org_id FROM new_records));
  IF cardinality(subs) = 0 THEN
    RETURN NULL;
  END IF;
  INSERT INTO webhook_events (org_id, type, payload, occurred_at)
  SELECT n.org_id, 'consent.changed',
         jsonb_build_object('consent_record_id', n.id, 'contact_id', n.contact_id, 'audience_id', n.audience_id, 'email', n.email,
                            'purpose', n.purpose, 'action', n.action, 'method', n.method, 'at', n.at),
         n.at
  FROM new_records n
  WHERE n.org_id = ANY(subs);
  RETURN NULL;
END $$;
CREATE TRIGGER consent_records_webhook AFTER INSERT ON consent_records
  REFERENCING NEW TABLE AS new_records
  FOR EACH STATEMENT EXECUTE FUNCTION webhook_on_consent_records();

-- ---- message events ----

-- queued, deferred and failed stay internal: they describe envoi's queue, not what happened to the mail.
CREATE FUNCTION webhook_on_message_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  orgs uuid[];
BEGIN
  IF NOT EXISTS (SELECT 1 FROM webhook_endpoints WHERE enabled) THEN
    RETURN NULL;
  END IF;
  orgs := ARRAY(SELECT DISTINCT org_id FROM new_events
                WHERE type IN ('sent', 'bounced', 'delayed', 'complained', 'opened', 'clicked', 'unsubscribed', 'blocked'));
  IF cardinality(orgs) = 0 THEN
    RETURN NULL;
  END IF;
  -- (organisation, type) pairs with a subscriber, so that an organisation that only follows clicks
  -- does not get an outbox row for every mail sent
  WITH subs AS (
    SELECT DISTINCT e.org_id, t.type
    FROM webhook_endpoints e
    JOIN organisations o ON o.id = e.org_id
    CROSS JOIN unnest(ARRAY['message.sent', 'message.bounced', 'message.delayed', 'message.complained', 'message.opened', 'message.clicked', 'message.unsubscribed', 'message.blocked']) AS t(type)
    WHERE e.enabled AND e.org_id = ANY(orgs) AND e.event_types && ARRAY[t.type, '*']
  )
  INSERT INTO webhook_events (org_id, type, payload, occurred_at)
  SELECT n.org_id, s.type,
         jsonb_build_object('message_id', n.message_id, 'delivery_id', n.delivery_id, 'audience_id', m.audience_id, 'campaign_id', m.campaign_id,
                            'contact_id', d.contact_id, 'email', d.email, 'at', n.at, 'detail', n.detail),
         n.at
  FROM new_events n
  JOIN subs s ON s.org_id = n.org_id AND s.type = 'message.' || n.type
  JOIN messages m ON m.id = n.message_id
  LEFT JOIN deliveries d ON d.id = n.delivery_id;
  RETURN NULL;
END $$;
CREATE TRIGGER message_events_webhook AFTER INSERT ON message_events
  REFERENCING NEW TABLE AS new_events
  FOR EACH STATEMENT EXECUTE FUNCTION webhook_on_message_events();
