-- The id of each approval's approval.created event: the cause of the events its decision emits.
ALTER TABLE mdm_approval ADD COLUMN created_event_id uuid;
