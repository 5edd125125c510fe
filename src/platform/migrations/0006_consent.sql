-- The consent ledger: every change of a contact's marketing consent, as an append-only record with its
-- proof (when, how, the wording shown and its version, IP and user agent, the message it came from).
--
-- Each record's `hash` covers the previous record's hash of the same audience and the record's own
-- content, so editing, removing or reordering a record breaks the chain at that point. Personal data
-- (address, IP, user agent) enters the hash only as SHA-256 digests: erasing a person nulls the clear
-- values and the chain still verifies, keeping the hashed address as proof of what was recorded.
CREATE TABLE consent_records (
  seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  id uuid NOT NULL DEFAULT gen_random_uuid() UNIQUE,
  org_id uuid NOT NULL REFERENCES organisations(id) ON DELETE CASCADE,
  audience_id uuid NOT NULL REFERENCES audiences(id) ON DELETE CASCADE,
  contact_id uuid REFERENCES contacts(id) ON DELETE SET NULL,
  email text,
  email_hash text NOT NULL,
  purpose text NOT NULL CHECK (purpose IN ('marketing')),
  action text NOT NULL CHECK (action IN ('requested', 'given', 'confirmed', 'withdrawn', 'repermission_yes', 'repermission_no', 'unsubscribed', 'excluded', 'restored')),
  method text NOT NULL,
  wording text,
  wording_version text,
  ip text,
  ip_hash text,
  user_agent text,
  user_agent_hash text,
  message_id uuid,
  delivery_id uuid,
  campaign_id uuid,
  -- 'key:<id>', 'user:<id>', 'contact' (the person themself), 'system'
  actor text NOT NULL,
  at timestamptz NOT NULL,
  prev_hash text NOT NULL,
  hash text NOT NULL
);
CREATE INDEX consent_records_contact ON consent_records (contact_id, seq);
CREATE INDEX consent_records_audience ON consent_records (audience_id, seq);

-- Append-only: only erasure may touch a record, and only to blank its clear personal values.
CREATE FUNCTION consent_records_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF (NEW.seq, NEW.id, NEW.org_id, NEW.audience_id, NEW.email_hash, NEW.purpose, NEW.action, NEW.method,
      NEW.wording, NEW.wording_version, NEW.ip_hash, NEW.user_agent_hash, NEW.message_id, NEW.delivery_id,
      NEW.campaign_id, NEW.actor, NEW.at, NEW.prev_hash, NEW.hash)
     IS DISTINCT FROM
     (OLD.seq, OLD.id, OLD.org_id, OLD.audience_id, OLD.email_hash, OLD.purpose, OLD.action, OLD.method,
      OLD.wording, OLD.wording_version, OLD.ip_hash, OLD.user_agent_hash, OLD.message_id, OLD.delivery_id,
      OLD.campaign_id, OLD.actor, OLD.at, OLD.prev_hash, OLD.hash)
     OR (NEW.email IS NOT NULL AND NEW.email IS DISTINCT FROM OLD.email)
     OR (NEW.ip IS NOT NULL AND NEW.ip IS DISTINCT FROM OLD.ip)
     OR (NEW.user_agent IS NOT NULL AND NEW.user_agent IS DISTINCT FROM OLD.user_agent)
     OR (NEW.contact_id IS NOT NULL AND NEW.contact_id IS DISTINCT FROM OLD.contact_id) THEN
    RAISE EXCEPTION 'consent records are append-only: only erasure may blank their personal values';
  END IF;
  -- The contact was deleted (erased): what identified them in clear goes with it; the digests stay.
  IF NEW.contact_id IS NULL AND OLD.contact_id IS NOT NULL THEN
    NEW.email := NULL;
    NEW.ip := NULL;
    NEW.user_agent := NULL;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER consent_records_append_only BEFORE UPDATE ON consent_records FOR EACH ROW EXECUTE FUNCTION consent_records_append_only();

-- The contact's current marketing state, derived from its latest record in the same transaction that
-- appends it (the grid column and the send-time policy read it without walking the ledger).
ALTER TABLE contacts ADD COLUMN marketing_withdrawn_at timestamptz;

-- The organisation's exclusion list: no marketing from any audience; transactional and event mail still go.
CREATE TABLE exclusions (
  org_id uuid NOT NULL REFERENCES organisations(id) ON DELETE CASCADE,
  email_lower text NOT NULL,
  reason text,
  source text NOT NULL,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL,
  PRIMARY KEY (org_id, email_lower)
);

-- Opens and clicks look up their delivery by id only; unsubscribes from a message by (message, contact).
CREATE INDEX message_events_delivery ON message_events (delivery_id, type) WHERE type IN ('opened', 'clicked', 'unsubscribed');

-- An instance secret for signed links when ENVOI_SECRET is not configured: created once, shared by
-- every process of the database, so links stay valid across restarts and workers.
CREATE TABLE instance_settings (
  name text PRIMARY KEY,
  value text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
