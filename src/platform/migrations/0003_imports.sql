-- One row per CSV import: what was imported where, by whom, and its report (counts and bad rows), so a
-- report outlives the HTTP response (a long upload whose connection dropped can still be checked).
CREATE TABLE imports (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organisations(id) ON DELETE CASCADE,
  audience_id uuid NOT NULL REFERENCES audiences(id) ON DELETE CASCADE,
  event_id uuid REFERENCES events(id) ON DELETE SET NULL,
  community_id uuid REFERENCES communities(id) ON DELETE SET NULL,
  -- 'key:<id>', 'user:<id>' or 'cli': who ran it (no foreign key: keys and users can be deleted)
  created_by text NOT NULL,
  source text NOT NULL CHECK (source IN ('http', 'cli')),
  status text NOT NULL CHECK (status IN ('running', 'completed', 'failed')),
  delimiter text NOT NULL,
  -- header -> field key actually used, and the columns left out
  columns jsonb NOT NULL DEFAULT '[]'::jsonb,
  ignored_columns jsonb NOT NULL DEFAULT '[]'::jsonb,
  rows integer NOT NULL DEFAULT 0,
  created integer NOT NULL DEFAULT 0,
  updated integer NOT NULL DEFAULT 0,
  skipped integer NOT NULL DEFAULT 0,
  duplicates integer NOT NULL DEFAULT 0,
  records_created integer NOT NULL DEFAULT 0,
  records_updated integer NOT NULL DEFAULT 0,
  error_count integer NOT NULL DEFAULT 0,
  -- the first bad rows [{line, reason}] (capped; error_count has the full number)
  errors jsonb NOT NULL DEFAULT '[]'::jsonb,
  failure text,
  started_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz
);
CREATE INDEX imports_audience ON imports (audience_id, started_at DESC);
