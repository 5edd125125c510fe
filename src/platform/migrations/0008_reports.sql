-- Reports: hourly rollups of message_events, kept by a trigger as events arrive, so a trend report
-- reads a few thousand rollup rows instead of scanning millions of events. message_events stays the
-- record; these tables are derived from it (emptied, they are rebuilt by report_roll_up over it, as
-- the end of this file does for the events written before it).
--
-- Grain: one row per (audience, template, campaign message, UTC hour, type, shard).
--  * message_id is the message of a campaign, and NULL for triggered and system mail. The triggered
--    API makes one message per recipient: a row per such message would make the rollup as large as
--    the events it sums. Triggered mail is reported by template and by audience.
--  * template_id is NULL for inline and built-in messages. UNIQUE NULLS NOT DISTINCT (PostgreSQL 15
--    and later) lets both NULLs be part of the upsert key.
--  * shard: each connection writes its own copy of a row (pg_backend_pid() % 8). One hot row (this
--    hour's 'queued' of a busy template) would otherwise be locked by every transaction writing such
--    an event, from its trigger until its commit, and concurrent API requests would queue behind it.
--    Readers sum over shards as they sum over hours.
--  * hour is the UTC hour (date_trunc with 'UTC', whatever the session's TimeZone); days in a time
--    zone are sums of hours, computed by the reader.
--
-- type: the event types as written (queued, blocked, sent, deferred, failed, bounced, complained,
-- opened, clicked, unsubscribed, and any later one), plus two kinds of bounce that keep
-- "delivered = sent - bounced" true in every bucket:
--  * 'bounced:unsent'    a bounce of a delivery with no sent_at (the relay refused it at RCPT):
--                        it counts as sent, in a report's sense, at the hour it bounced;
--  * 'bounced:sent_hour' a bounce of mail that had been sent (a DSN hours later), counted at the hour
--                        of the send: it lowers delivered where the mail was sent, instead of making
--                        the bucket it arrives in negative.
--
-- Unique counts: `uniq` counts deliveries seen with a type for the first time. report_firsts holds one
-- row per (delivery, type) for the types people repeat or services send twice (opened, clicked,
-- bounced, complained, unsubscribed), and uniq only counts the rows this trigger managed to insert
-- there (INSERT .. ON CONFLICT DO NOTHING RETURNING): a repeat, in the same statement or a year later,
-- finds its row and adds to total only. Two transactions recording a first open of one delivery at
-- once also count it once: the second waits on the primary key until the first commits, then inserts
-- nothing. A bucket's uniq are the deliveries first seen in it, so buckets add up to the range's total.
-- The other types skip report_firsts (queued and sent would put two rows per recipient there for
-- nothing): their uniq is 0 and reports use their total.
--
-- Cost: one statement-level trigger per INSERT, whatever its size: the inserted rows are aggregated per
-- (scope, hour, type) and upserted once. Rows are upserted in key order, so that two statements
-- touching the same rows lock them in the same order instead of deadlocking.

CREATE TABLE report_hourly (
  org_id uuid NOT NULL,
  audience_id uuid NOT NULL REFERENCES audiences(id) ON DELETE CASCADE,
  template_id uuid,
  message_id uuid REFERENCES messages(id) ON DELETE CASCADE,
  hour timestamptz NOT NULL,
  type text NOT NULL,
  shard smallint NOT NULL,
  total bigint NOT NULL,
  uniq bigint NOT NULL,
  CONSTRAINT report_hourly_key UNIQUE NULLS NOT DISTINCT (audience_id, hour, template_id, message_id, type, shard)
) WITH (fillfactor = 80); -- room on the page keeps the counter updates HOT (no index change)
CREATE INDEX report_hourly_template ON report_hourly (template_id, hour) WHERE template_id IS NOT NULL;
CREATE INDEX report_hourly_message ON report_hourly (message_id, hour) WHERE message_id IS NOT NULL;

-- Clicks per link, same grain. Links are keyed by md5 of the URL: a URL has no length limit and a
-- btree entry does.
CREATE TABLE report_link_hourly (
  org_id uuid NOT NULL,
  audience_id uuid NOT NULL REFERENCES audiences(id) ON DELETE CASCADE,
  template_id uuid,
  message_id uuid REFERENCES messages(id) ON DELETE CASCADE,
  url_hash uuid NOT NULL,
  url text NOT NULL,
  hour timestamptz NOT NULL,
  shard smallint NOT NULL,
  total bigint NOT NULL,
  uniq bigint NOT NULL,
  CONSTRAINT report_link_hourly_key UNIQUE NULLS NOT DISTINCT (audience_id, hour, template_id, message_id, url_hash, shard)
) WITH (fillfactor = 80);
CREATE INDEX report_link_hourly_template ON report_link_hourly (template_id, hour) WHERE template_id IS NOT NULL;
CREATE INDEX report_link_hourly_message ON report_link_hourly (message_id, hour) WHERE message_id IS NOT NULL;

-- The first time each delivery was seen with a repeatable type (see "Unique counts").
CREATE TABLE report_firsts (
  delivery_id uuid NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
  type text NOT NULL,
  at timestamptz NOT NULL,
  PRIMARY KEY (delivery_id, type)
);

-- Who clicked which link of a message: the clicker list and its export, and the unique clickers of a
-- link (a pair inserted here for the first time). Kept for every message, triggered ones included:
-- there is a row per person who clicked, not per person written to.
CREATE TABLE report_link_clicks (
  delivery_id uuid NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
  url_hash uuid NOT NULL,
  org_id uuid NOT NULL,
  message_id uuid NOT NULL,
  url text NOT NULL,
  first_at timestamptz NOT NULL,
  last_at timestamptz NOT NULL,
  clicks bigint NOT NULL,
  PRIMARY KEY (delivery_id, url_hash)
);
CREATE INDEX report_link_clicks_link ON report_link_clicks (message_id, url_hash, first_at, delivery_id);
CREATE INDEX report_link_clicks_message ON report_link_clicks (message_id, first_at, delivery_id, url_hash);

-- Adds a set of events to the rollups. Called by the trigger with the rows of one INSERT, and once at
-- the end of this file for the events written before it.
CREATE FUNCTION report_roll_up(events message_events[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  v_shard smallint := pg_backend_pid() % 8;
  fresh_deliveries uuid[];
  fresh_urls uuid[];
BEGIN
  IF cardinality(events) = 0 THEN
    RETURN;
  END IF;

  WITH ev AS (
    SELECT e.org_id, e.message_id, e.delivery_id, e.type, e.at, date_trunc('hour', e.at, 'UTC') AS hour,
           m.audience_id, m.template_id, CASE WHEN m.origin = 'campaign' THEN m.id END AS campaign_id,
           CASE WHEN e.type = 'clicked' AND e.delivery_id IS NOT NULL THEN e.detail->>'url' END AS url
    FROM unnest(events) AS e
    JOIN messages m ON m.id = e.message_id
  ),
  -- a delivery belongs to one message: its scope, once
  scope AS (
    SELECT DISTINCT ON (delivery_id) delivery_id, org_id, message_id, audience_id, template_id, campaign_id
    FROM ev WHERE delivery_id IS NOT NULL
  ),
  firsts AS (
    INSERT INTO report_firsts (delivery_id, type, at)
    SELECT delivery_id, type, min(at) FROM ev
    WHERE delivery_id IS NOT NULL AND type IN ('opened', 'clicked', 'bounced', 'complained', 'unsubscribed')
    GROUP BY delivery_id, type
    ORDER BY delivery_id, type
    ON CONFLICT DO NOTHING
    RETURNING delivery_id, type, at
  ),
  counts AS (
    SELECT org_id, audience_id, template_id, campaign_id, hour, type, count(*) AS total, 0::bigint AS uniq
    FROM ev GROUP BY org_id, audience_id, template_id, campaign_id, hour, type
    UNION ALL
    SELECT s.org_id, s.audience_id, s.template_id, s.campaign_id, date_trunc('hour', f.at, 'UTC'), f.type, 0, count(*)
    FROM firsts f JOIN scope s USING (delivery_id)
    GROUP BY 1, 2, 3, 4, 5, 6
    UNION ALL
    SELECT s.org_id, s.audience_id, s.template_id, s.campaign_id,
           date_trunc('hour', coalesce(d.sent_at, f.at), 'UTC'),
           CASE WHEN d.sent_at IS NULL THEN 'bounced:unsent' ELSE 'bounced:sent_hour' END,
           count(*), count(*)
    FROM firsts f JOIN scope s USING (delivery_id) JOIN deliveries d ON d.id = f.delivery_id
    WHERE f.type = 'bounced'
    GROUP BY 1, 2, 3, 4, 5, 6
  ),
  rolled AS (
    INSERT INTO report_hourly AS r (org_id, audience_id, template_id, message_id, hour, type, shard, total, uniq)
    SELECT org_id, audience_id, template_id, campaign_id, hour, type, v_shard, sum(total), sum(uniq)
    FROM counts
    GROUP BY org_id, audience_id, template_id, campaign_id, hour, type
    ORDER BY audience_id, hour, template_id, campaign_id, type
    ON CONFLICT ON CONSTRAINT report_hourly_key DO UPDATE SET total = r.total + excluded.total, uniq = r.uniq + excluded.uniq
  ),
  clicks AS (
    SELECT delivery_id, md5(url)::uuid AS url_hash, min(url) AS url, min(at) AS first_at, max(at) AS last_at, count(*) AS n
    FROM ev WHERE url IS NOT NULL
    GROUP BY delivery_id, md5(url)::uuid
  ),
  new_pairs AS (
    INSERT INTO report_link_clicks (delivery_id, url_hash, org_id, message_id, url, first_at, last_at, clicks)
    SELECT c.delivery_id, c.url_hash, s.org_id, s.message_id, left(c.url, 8000), c.first_at, c.last_at, c.n
    FROM clicks c JOIN scope s USING (delivery_id)
    ORDER BY c.delivery_id, c.url_hash
    ON CONFLICT DO NOTHING
    RETURNING delivery_id, url_hash, first_at
  ),
  link_counts AS (
    SELECT s.org_id, s.audience_id, s.template_id, s.campaign_id, md5(e.url)::uuid AS url_hash, e.hour, count(*) AS total, 0::bigint AS uniq
    FROM ev e JOIN scope s USING (delivery_id)
    WHERE e.url IS NOT NULL
    GROUP BY 1, 2, 3, 4, 5, 6
    UNION ALL
    SELECT s.org_id, s.audience_id, s.template_id, s.campaign_id, p.url_hash, date_trunc('hour', p.first_at, 'UTC'), 0, count(*)
    FROM new_pairs p JOIN scope s USING (delivery_id)
    GROUP BY 1, 2, 3, 4, 5, 6
  ),
  links_rolled AS (
    INSERT INTO report_link_hourly AS r (org_id, audience_id, template_id, message_id, url_hash, url, hour, shard, total, uniq)
    SELECT l.org_id, l.audience_id, l.template_id, l.campaign_id, l.url_hash, left(u.url, 8000), l.hour, v_shard, sum(l.total), sum(l.uniq)
    FROM link_counts l JOIN (SELECT DISTINCT ON (url_hash) url_hash, url FROM clicks) u USING (url_hash)
    GROUP BY l.org_id, l.audience_id, l.template_id, l.campaign_id, l.url_hash, u.url, l.hour
    ORDER BY l.audience_id, l.hour, l.template_id, l.campaign_id, l.url_hash
    ON CONFLICT ON CONSTRAINT report_link_hourly_key DO UPDATE SET total = r.total + excluded.total, uniq = r.uniq + excluded.uniq
  )
  SELECT array_agg(delivery_id), array_agg(url_hash) INTO fresh_deliveries, fresh_urls FROM new_pairs;

  IF NOT EXISTS (SELECT 1 FROM unnest(events) AS e WHERE e.type = 'clicked') THEN
    RETURN;
  END IF;
  -- Clicks on links a person had clicked before: the pair already has its row. A separate statement,
  -- so that it sees rows committed by concurrent transactions the insert above waited for.
  UPDATE report_link_clicks r
  SET clicks = r.clicks + c.n, first_at = least(r.first_at, c.first_at), last_at = greatest(r.last_at, c.last_at)
  FROM (
    SELECT e.delivery_id, md5(e.detail->>'url')::uuid AS url_hash, min(e.at) AS first_at, max(e.at) AS last_at, count(*) AS n
    FROM unnest(events) AS e
    WHERE e.type = 'clicked' AND e.delivery_id IS NOT NULL AND e.detail->>'url' IS NOT NULL
    GROUP BY 1, 2
  ) c
  WHERE r.delivery_id = c.delivery_id AND r.url_hash = c.url_hash
    AND NOT EXISTS (SELECT 1 FROM unnest(fresh_deliveries, fresh_urls) AS f(delivery_id, url_hash) WHERE f.delivery_id = c.delivery_id AND f.url_hash = c.url_hash);
END $$;

CREATE FUNCTION report_on_message_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM report_roll_up(ARRAY(SELECT n::message_events FROM new_events AS n));
  RETURN NULL;
END $$;

-- Created before the backfill below: it locks message_events, so no event can commit between the two
-- and be missed or counted twice.
CREATE TRIGGER message_events_report AFTER INSERT ON message_events
  REFERENCING NEW TABLE AS new_events
  FOR EACH STATEMENT EXECUTE FUNCTION report_on_message_events();

-- Events written before this migration.
DO $$
DECLARE
  lo bigint;
  hi bigint;
BEGIN
  SELECT min(id), max(id) INTO lo, hi FROM message_events;
  WHILE lo <= hi LOOP
    PERFORM report_roll_up(ARRAY(SELECT e FROM message_events AS e WHERE e.id >= lo AND e.id < lo + 50000 ORDER BY e.id));
    lo := lo + 50000;
  END LOOP;
END $$;
