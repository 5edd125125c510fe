-- Templates. `templates` holds what a template is about (audience, event or community, name) and its
-- current version number; every save writes a new immutable row in `template_versions`, so mail queued
-- before an edit still renders what was accepted, and a compiled form can be cached by (id, version)
-- for as long as a process lives.
CREATE TABLE templates (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organisations(id) ON DELETE CASCADE,
  audience_id uuid NOT NULL REFERENCES audiences(id) ON DELETE CASCADE,
  event_id uuid REFERENCES events(id) ON DELETE CASCADE,
  community_id uuid REFERENCES communities(id) ON DELETE CASCADE,
  name text NOT NULL,
  -- set when this template replaces one of envoi's built-in templates (password_reset...) in this audience
  builtin_kind text,
  language text NOT NULL,
  version integer NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  -- deleting keeps the versions that queued and sent messages point to
  deleted_at timestamptz,
  CHECK (event_id IS NULL OR community_id IS NULL)
);
CREATE INDEX templates_audience ON templates (audience_id, created_at) WHERE deleted_at IS NULL;
-- one override of a built-in per audience and language
CREATE UNIQUE INDEX templates_builtin ON templates (audience_id, builtin_kind, lower(language)) WHERE builtin_kind IS NOT NULL AND deleted_at IS NULL;

CREATE TABLE template_versions (
  template_id uuid NOT NULL REFERENCES templates(id) ON DELETE CASCADE,
  version integer NOT NULL,
  category text NOT NULL CHECK (category IN ('transactional', 'participation', 'marketing')),
  language text NOT NULL,
  subject text NOT NULL,
  preheader text,
  format text NOT NULL CHECK (format IN ('html', 'mjml')),
  body text NOT NULL,
  text_body text,
  tracking boolean NOT NULL DEFAULT true,
  from_name text,
  from_email text,
  reply_to text,
  -- 'key:<id>' or 'user:<id>'
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (template_id, version)
);

-- A message is one send decision (a triggered email, later a campaign); a delivery is one recipient of
-- it, and both the log line and the work item the workers claim.
CREATE TABLE messages (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organisations(id) ON DELETE CASCADE,
  audience_id uuid NOT NULL REFERENCES audiences(id) ON DELETE CASCADE,
  origin text NOT NULL CHECK (origin IN ('triggered', 'campaign', 'system')),
  category text NOT NULL CHECK (category IN ('transactional', 'participation', 'marketing')),
  template_id uuid,
  template_version integer,
  event_id uuid REFERENCES events(id) ON DELETE SET NULL,
  community_id uuid REFERENCES communities(id) ON DELETE SET NULL,
  -- {language, subject, preheader, format, html, text} of a transactional message sent without a stored
  -- template (given inline, or one of envoi's built-in templates)
  inline jsonb,
  variables jsonb NOT NULL DEFAULT '{}'::jsonb,
  -- the variables hold secrets (a password reset link): erased once the message is delivered or given up
  sensitive boolean NOT NULL DEFAULT false,
  idempotency_key text,
  -- SHA-256 of the request: the same key with another request is refused, not silently answered
  request_hash text,
  custom_id text,
  tags text[] NOT NULL DEFAULT '{}',
  send_at timestamptz,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (template_id, template_version) REFERENCES template_versions (template_id, version) ON DELETE SET NULL,
  CHECK ((template_id IS NULL) = (template_version IS NULL))
);
-- Concurrent duplicates of one request collide here: exactly one of them creates the message.
CREATE UNIQUE INDEX messages_idempotency ON messages (org_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX messages_org_created ON messages (org_id, created_at);

CREATE TABLE deliveries (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organisations(id) ON DELETE CASCADE,
  message_id uuid NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
  contact_id uuid REFERENCES contacts(id) ON DELETE SET NULL,
  email text NOT NULL,
  -- transactional mail has a lane of its own, claimed by its own loop, never behind bulk work
  lane text NOT NULL CHECK (lane IN ('transactional', 'bulk')),
  priority smallint NOT NULL DEFAULT 0,
  status text NOT NULL CHECK (status IN ('queued', 'sending', 'sent', 'deferred', 'bounced', 'blocked', 'failed')),
  -- the policy rule that blocked this recipient, and its detail
  rule text,
  rule_detail text,
  -- when the row is next due: the send time, the retry time, or (while sending) the lease end, so one
  -- index finds queued, deferred and abandoned rows alike
  due_at timestamptz NOT NULL,
  -- after this, a deferred delivery fails instead of being retried
  expires_at timestamptz NOT NULL,
  attempts integer NOT NULL DEFAULT 0,
  lease_until timestamptz,
  leased_by text,
  last_error text,
  smtp_response text,
  sent_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX deliveries_due ON deliveries (lane, priority, due_at) WHERE status IN ('queued', 'deferred', 'sending');
CREATE INDEX deliveries_message ON deliveries (message_id);

CREATE TABLE message_events (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  org_id uuid NOT NULL REFERENCES organisations(id) ON DELETE CASCADE,
  message_id uuid NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
  delivery_id uuid REFERENCES deliveries(id) ON DELETE CASCADE,
  type text NOT NULL,
  at timestamptz NOT NULL,
  detail jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX message_events_message ON message_events (message_id, id);

-- Addresses the organisation must not write to again. `email_lower` is the comparison key of
-- checkEmail (contacts.email_lower), so a suppression reaches the address in every audience.
CREATE TABLE suppressions (
  org_id uuid NOT NULL REFERENCES organisations(id) ON DELETE CASCADE,
  email_lower text NOT NULL,
  reason text NOT NULL CHECK (reason IN ('hard_bounce', 'complaint')),
  created_at timestamptz NOT NULL,
  delivery_id uuid REFERENCES deliveries(id) ON DELETE SET NULL,
  detail text,
  PRIMARY KEY (org_id, email_lower, reason)
);

-- Request counters of fixed one-minute windows, shared by every API process of one database.
CREATE TABLE rate_counters (
  key text NOT NULL,
  window_start timestamptz NOT NULL,
  count integer NOT NULL,
  PRIMARY KEY (key, window_start)
);

-- The development outbox: with no SMTP relay configured, every message is kept here, whole.
CREATE TABLE outbox (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organisations(id) ON DELETE CASCADE,
  message_id uuid NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
  delivery_id uuid NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
  envelope_from text NOT NULL,
  envelope_to text NOT NULL,
  subject text NOT NULL,
  raw text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_org_created ON outbox (org_id, created_at DESC);
