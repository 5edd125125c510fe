-- Campaigns: one template to a saved view, a filter or a selection of contacts, now, at a time, or
-- every N minutes to whoever newly matches. A run is a message; its recipients are resolved when it
-- starts, a page of contacts at a time, and `resolved_after` (the last contact id written) lets a run
-- interrupted by a crash carry on where it stopped instead of starting over.
CREATE TABLE campaigns (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organisations(id) ON DELETE CASCADE,
  audience_id uuid NOT NULL REFERENCES audiences(id) ON DELETE CASCADE,
  name text NOT NULL,
  -- 'marketing' to a view or a selection; 'event': participation mail of one event to its current
  -- participants (reminder, thank-you, practical information, badge, new content)
  kind text NOT NULL DEFAULT 'marketing' CHECK (kind IN ('marketing', 'event')),
  event_mail text CHECK (event_mail IN ('reminder', 'thank_you', 'practical_info', 'badge', 'new_content')),
  event_id uuid REFERENCES events(id) ON DELETE CASCADE,
  template_id uuid NOT NULL REFERENCES templates(id),
  -- {view_id} | {filter} | {contact_ids}
  target jsonb NOT NULL,
  status text NOT NULL CHECK (status IN ('draft', 'scheduled', 'resolving', 'sending', 'paused', 'completed', 'cancelled')),
  send_at timestamptz,
  -- recurring: every N minutes, to the contacts who newly match since the last run
  every_minutes integer CHECK (every_minutes IS NULL OR every_minutes BETWEEN 5 AND 10080),
  next_run_at timestamptz,
  -- the run being resolved or sent, and how far its resolution got
  message_id uuid REFERENCES messages(id) ON DELETE SET NULL,
  resolved_after uuid,
  runs integer NOT NULL DEFAULT 0,
  -- what a paused campaign goes back to when resumed
  paused_from text,
  -- a scheduler holding the campaign while it resolves recipients; another takes over after the lease
  leased_by text,
  lease_until timestamptz,
  last_error text,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  started_at timestamptz,
  completed_at timestamptz
);
CREATE INDEX campaigns_audience ON campaigns (audience_id, created_at);
CREATE INDEX campaigns_event ON campaigns (event_id, send_at) WHERE event_id IS NOT NULL;
CREATE INDEX campaigns_due ON campaigns (next_run_at) WHERE status IN ('scheduled', 'resolving');

ALTER TABLE messages ADD COLUMN campaign_id uuid REFERENCES campaigns(id) ON DELETE SET NULL;
CREATE INDEX messages_campaign ON messages (campaign_id) WHERE campaign_id IS NOT NULL;

-- Each contact gets at most one copy of a message, whatever retries of the resolution happen.
CREATE UNIQUE INDEX deliveries_message_contact ON deliveries (message_id, contact_id) WHERE contact_id IS NOT NULL;
-- A recurring campaign skips the contacts any earlier run already wrote to.
CREATE INDEX deliveries_contact ON deliveries (contact_id, message_id);

-- A paused campaign's pending deliveries wait in their own status, outside the claim index.
ALTER TABLE deliveries DROP CONSTRAINT deliveries_status_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_status_check CHECK (status IN ('queued', 'sending', 'sent', 'deferred', 'bounced', 'blocked', 'failed', 'paused'));
