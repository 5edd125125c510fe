-- The reports trigger (0008) on the events a send writes by the thousand: queued, blocked, sent,
-- deferred, failed (and any type without unique counting) are counted by scope, hour and type
-- straight from the statement's transition table. They used to go through report_roll_up like the
-- others, which first copies every row, detail included, into an array of message_events and then
-- joins it back to the firsts and click tables that only opens, clicks, bounces, complaints and
-- unsubscribes need; that made the trigger most of PostgreSQL's work during a campaign
-- (BENCHMARKS.md, Campaign). Those five types still go through report_roll_up, unchanged.
--
-- The counts are the same: for these types report_roll_up adds count(*) to total and nothing to uniq,
-- per (organisation, audience, template, campaign message, UTC hour, type). Rows are upserted in the
-- key order report_roll_up uses; the two statements touch disjoint types, and every transaction runs
-- them in the same order, so they cannot deadlock each other.
CREATE OR REPLACE FUNCTION report_on_message_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO report_hourly AS r (org_id, audience_id, template_id, message_id, hour, type, shard, total, uniq)
  SELECT n.org_id, m.audience_id, m.template_id, CASE WHEN m.origin = 'campaign' THEN m.id END,
         date_trunc('hour', n.at, 'UTC'), n.type, pg_backend_pid() % 8, count(*), 0
  FROM new_events AS n
  JOIN messages m ON m.id = n.message_id
  WHERE n.type NOT IN ('opened', 'clicked', 'bounced', 'complained', 'unsubscribed')
  GROUP BY n.org_id, m.audience_id, m.template_id, CASE WHEN m.origin = 'campaign' THEN m.id END, date_trunc('hour', n.at, 'UTC'), n.type
  ORDER BY 2, 5, 3, 4, 6
  ON CONFLICT ON CONSTRAINT report_hourly_key DO UPDATE SET total = r.total + excluded.total, uniq = r.uniq + excluded.uniq;

  IF EXISTS (SELECT 1 FROM new_events WHERE type IN ('opened', 'clicked', 'bounced', 'complained', 'unsubscribed')) THEN
    PERFORM report_roll_up(ARRAY(
      SELECT n::message_events FROM new_events AS n WHERE n.type IN ('opened', 'clicked', 'bounced', 'complained', 'unsubscribed')));
  END IF;
  RETURN NULL;
END $$;
