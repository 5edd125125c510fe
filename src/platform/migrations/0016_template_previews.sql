-- Rendered previews wait here for the editor's frame to load them (template-routes.ts). In the database
-- rather than in the process, so that behind a load balancer the frame may reach any API process.
-- A principal (user session or API key) has a few slots, overwritten in turn: an editor rendering at
-- every pause of the keyboard keeps a handful of rows, not one per keystroke.
CREATE TABLE template_previews (
  org_id uuid NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
  principal text NOT NULL,
  slot smallint NOT NULL,
  -- sha256 of the token in the URL: the table alone does not give the URL away
  token_hash bytea NOT NULL,
  audience_id uuid NOT NULL REFERENCES audiences (id) ON DELETE CASCADE,
  html text NOT NULL,
  expires_at timestamptz NOT NULL,
  PRIMARY KEY (org_id, principal, slot)
);
CREATE UNIQUE INDEX template_previews_token ON template_previews (token_hash);
CREATE INDEX template_previews_expiry ON template_previews (expires_at);
