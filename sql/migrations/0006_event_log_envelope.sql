-- The rest of the envelope, so event_log gives back whole envelopes (EventQueryService):
-- the payload's schema version and the W3C trace context. NULL for rows stored before.
ALTER TABLE event_log ADD COLUMN version text, ADD COLUMN traceparent text;
