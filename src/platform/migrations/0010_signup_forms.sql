-- Newsletter signup forms with double opt-in. A form holds the exact wording the person agrees to
-- (and its version): what the ledger records as the proof of their consent. The hosted page and the
-- embeddable HTML post to the same public endpoint.
CREATE TABLE signup_forms (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organisations(id) ON DELETE CASCADE,
  audience_id uuid NOT NULL REFERENCES audiences(id) ON DELETE CASCADE,
  name text NOT NULL,
  language text NOT NULL CHECK (language IN ('fr', 'en')),
  wording text NOT NULL,
  wording_version text NOT NULL,
  -- where the person lands after confirming (the organiser's site); envoi's own page when null
  success_url text,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  disabled_at timestamptz
);
CREATE INDEX signup_forms_audience ON signup_forms (audience_id, created_at);
