-- Bounce and complaint intake looks up the bounce and complaint events of one delivery to stay
-- idempotent (the same DSN delivered twice records once). Partial: those events are few, and every
-- other event of a large send stays out of this index.
CREATE INDEX message_events_delivery_bounces ON message_events (delivery_id, type) WHERE type IN ('bounced', 'delayed', 'complained');
