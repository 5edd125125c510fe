-- Random against time-ordered primary keys for a deliveries-shaped table (BENCHMARKS.md, Campaign):
--   psql -h 127.0.0.1 -U postgres -c 'CREATE DATABASE idbench' && psql -h 127.0.0.1 -U postgres -d idbench -f bench/delivery-ids.sql
-- 1,000,000 inserted rows, then 300,000 non-HOT updates in due order (as the worker finishes them), for
-- each kind of id; run it twice, the second time with the two halves swapped, to rule out order effects.
\timing on
DROP TABLE IF EXISTS d_rand, d_seq, contacts_ids;
CREATE TABLE d_rand (id uuid PRIMARY KEY, message_id uuid NOT NULL, contact_id uuid, status text NOT NULL, due_at timestamptz NOT NULL);
CREATE UNIQUE INDEX ON d_rand (message_id, contact_id);
CREATE INDEX ON d_rand (contact_id, message_id);
CREATE INDEX ON d_rand (status, due_at) WHERE status IN ('queued', 'sending');
CREATE TABLE d_seq (LIKE d_rand INCLUDING ALL);
CREATE TABLE contacts_ids AS SELECT gen_random_uuid() AS cid FROM generate_series(1, 1000000) ORDER BY 1;
CHECKPOINT;
\echo random ids: insert
INSERT INTO d_rand SELECT gen_random_uuid(), '00000000-0000-0000-0000-000000000001', cid, 'queued', now() FROM contacts_ids ORDER BY cid;
\echo time-ordered ids: insert
INSERT INTO d_seq SELECT (lpad(to_hex(extract(epoch FROM clock_timestamp())::bigint), 12, '0') || lpad(to_hex(row_number() OVER ()), 20, '0'))::uuid,
  '00000000-0000-0000-0000-000000000001', cid, 'queued', now() FROM contacts_ids ORDER BY cid;
CHECKPOINT;
\echo random ids: update
UPDATE d_rand SET status = 'sent' WHERE id IN (SELECT id FROM d_rand WHERE status = 'queued' ORDER BY due_at, id LIMIT 300000);
\echo time-ordered ids: update
UPDATE d_seq SET status = 'sent' WHERE id IN (SELECT id FROM d_seq WHERE status = 'queued' ORDER BY due_at, id LIMIT 300000);
DROP TABLE d_rand, d_seq, contacts_ids;
