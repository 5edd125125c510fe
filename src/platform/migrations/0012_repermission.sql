-- Re-permission campaigns (reference: mailjet-gdpr-repermission): a campaign asking contacts whose
-- consent is unproven whether they want to keep receiving marketing mail, with YES / NO links and a
-- deadline. Answers are consent records carrying the campaign id; the results are read from them.
ALTER TABLE campaigns DROP CONSTRAINT campaigns_kind_check;
ALTER TABLE campaigns ADD CONSTRAINT campaigns_kind_check CHECK (kind IN ('marketing', 'event', 'repermission'));
ALTER TABLE campaigns ADD COLUMN deadline timestamptz;
ALTER TABLE campaigns ADD CONSTRAINT campaigns_repermission_deadline CHECK ((kind = 'repermission') = (deadline IS NOT NULL));

CREATE INDEX consent_records_campaign ON consent_records (campaign_id, seq) WHERE campaign_id IS NOT NULL;
