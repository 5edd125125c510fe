-- Follow-up programs (src/programs/): a trigger (a message sent, opened or clicked; an external event
-- such as a purchase; a yearly date field such as a birthday), a wait, a condition checked at send
-- time, and a template. Each contact's passage is a row of program_entries with its due time: the
-- waiting step survives any restart, and UNIQUE (program_id, contact_id, trigger_key) keeps a contact
-- from passing through a program twice for one trigger, however often the trigger is reported.

CREATE TABLE programs (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organisations(id) ON DELETE CASCADE,
  audience_id uuid NOT NULL REFERENCES audiences(id) ON DELETE CASCADE,
  name text NOT NULL,
  -- the definition as checked by src/programs/rules.ts checkTrigger; the columns after it are its
  -- searchable parts, written with it (a trigger never changes: a new one is a new program)
  trigger jsonb NOT NULL,
  trigger_type text NOT NULL CHECK (trigger_type IN ('message_sent', 'message_opened', 'message_clicked', 'external_event', 'date_field')),
  trigger_template_id uuid REFERENCES templates(id),
  trigger_name text,
  wait_seconds integer NOT NULL CHECK (wait_seconds BETWEEN 0 AND 366 * 86400),
  -- null: always true
  condition jsonb,
  template_id uuid NOT NULL REFERENCES templates(id),
  enabled boolean NOT NULL DEFAULT true,
  -- date-field programs: the last local day scanned, when to look again, and the runner doing it
  scanned_through text,
  next_scan_at timestamptz,
  scan_leased_by text,
  scan_lease_until timestamptz,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CHECK ((trigger_template_id IS NOT NULL) = (trigger_type LIKE 'message_%')),
  CHECK ((trigger_name IS NOT NULL) = (trigger_type = 'external_event'))
);
CREATE INDEX programs_audience ON programs (audience_id, created_at);
CREATE INDEX programs_message_trigger ON programs (trigger_template_id) WHERE enabled AND trigger_template_id IS NOT NULL;
CREATE INDEX programs_external_trigger ON programs (audience_id, trigger_name) WHERE enabled AND trigger_name IS NOT NULL;
CREATE INDEX programs_date_scan ON programs (next_scan_at) WHERE enabled AND trigger_type = 'date_field';

-- What the organisation's other systems report a contact did (POST /v1/external-events): they start
-- programs, and programs' conditions count them.
CREATE TABLE external_events (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organisations(id) ON DELETE CASCADE,
  audience_id uuid NOT NULL REFERENCES audiences(id) ON DELETE CASCADE,
  contact_id uuid NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
  name text NOT NULL,
  occurred_at timestamptz NOT NULL,
  properties jsonb NOT NULL DEFAULT '{}'::jsonb,
  idempotency_key text,
  -- SHA-256 of the request: the same key with another request is refused, not silently answered
  request_hash text NOT NULL,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX external_events_idempotency ON external_events (org_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX external_events_contact ON external_events (contact_id, name, occurred_at);

CREATE TABLE program_entries (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organisations(id) ON DELETE CASCADE,
  program_id uuid NOT NULL REFERENCES programs(id) ON DELETE CASCADE,
  contact_id uuid NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
  -- what this passage answers: the message id, the external event id, or the date occurrence (2027-03-14)
  trigger_key text NOT NULL,
  trigger_at timestamptz NOT NULL,
  -- what the template gets as {{ vars.trigger }}: the event's name and properties, the message, the date
  context jsonb NOT NULL DEFAULT '{}'::jsonb,
  due_at timestamptz NOT NULL,
  status text NOT NULL DEFAULT 'waiting' CHECK (status IN ('waiting', 'sent', 'skipped', 'failed')),
  -- why it was skipped or failed (the condition as found, the policy rule, the error)
  reason text,
  message_id uuid REFERENCES messages(id) ON DELETE SET NULL,
  attempts integer NOT NULL DEFAULT 0,
  -- a runner sending it; after lease_until another may (lease_until alone also delays a retry)
  leased_by text,
  lease_until timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  UNIQUE (program_id, contact_id, trigger_key)
);
CREATE INDEX program_entries_due ON program_entries (due_at) WHERE status = 'waiting';
CREATE INDEX program_entries_list ON program_entries (program_id, status, created_at DESC, id);
CREATE INDEX program_entries_contact ON program_entries (contact_id);

-- Message triggers enter contacts from here, in the transaction that records the event: no cursor
-- over message_events (whose identity ids commit out of order) and nothing to catch up after a
-- restart. Statement-level, so a campaign's batch of 'sent' events costs one INSERT ... SELECT; an
-- instance without an enabled message-triggered program returns after one index probe. A contact
-- deleted while its event is written must not make the event fail: its entry is simply not made.
CREATE FUNCTION programs_on_message_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM programs WHERE enabled AND trigger_template_id IS NOT NULL) THEN
    RETURN NULL;
  END IF;
  BEGIN
    INSERT INTO program_entries (org_id, program_id, contact_id, trigger_key, trigger_at, context, due_at, created_at, updated_at)
    SELECT p.org_id, p.id, d.contact_id, n.message_id::text, n.at,
           jsonb_build_object('type', p.trigger_type, 'message_id', n.message_id, 'template_id', m.template_id, 'at', n.at),
           n.at + make_interval(secs => p.wait_seconds), n.at, n.at
    FROM new_events n
    JOIN messages m ON m.id = n.message_id
    JOIN programs p ON p.enabled AND p.trigger_template_id = m.template_id AND p.trigger_type = 'message_' || n.type AND p.org_id = n.org_id
    JOIN deliveries d ON d.id = n.delivery_id
    WHERE n.type IN ('sent', 'opened', 'clicked') AND d.contact_id IS NOT NULL
    ON CONFLICT (program_id, contact_id, trigger_key) DO NOTHING;
  EXCEPTION WHEN foreign_key_violation THEN
    NULL;
  END;
  RETURN NULL;
END $$;
CREATE TRIGGER message_events_programs AFTER INSERT ON message_events
  REFERENCING NEW TABLE AS new_events
  FOR EACH STATEMENT EXECUTE FUNCTION programs_on_message_events();
