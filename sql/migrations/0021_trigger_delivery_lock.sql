-- trigger_delivery without its foreign key to event_trigger: checking it cost a lookup and
-- a row lock per queued delivery, about half the time of queueing. What it guaranteed is
-- kept another way: a statement that queues deliveries locks each trigger it queues for
-- once (FOR KEY SHARE) and queues only for triggers that exist, and deleting a trigger
-- deletes its deliveries in the same transaction, after the trigger row (so it waits for
-- any queueing that holds the lock and then sees what it queued).
ALTER TABLE trigger_delivery DROP CONSTRAINT trigger_delivery_tenant_id_trigger_id_fkey;
