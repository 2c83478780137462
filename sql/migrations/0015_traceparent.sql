-- Trace continuity: the W3C traceparent of the call or event that caused each row, so the
-- events it causes later (through the outbox, from an approval decision, from a profile
-- job) carry a child span of the same trace. NULL when the cause carried none.
ALTER TABLE mdm_approval ADD COLUMN traceparent text;   -- the CreateApproval call's
ALTER TABLE mdm_profile_job ADD COLUMN traceparent text; -- the trigger event's
ALTER TABLE event_outbox ADD COLUMN traceparent text;   -- the envelope's, for queries (the envelope holds it too)
