-- A trigger whose action publishes a derived event instead of calling a webhook: for each
-- matching event sluice-triggers publishes one event of publish_type (a type the catalog
-- lets "sluice.triggers" emit) whose payload is publish_template (protobuf JSON) with its
-- placeholders filled from the matching event. Its webhook columns stay empty; the
-- timeout bounds the wait for the broker's acknowledgement.
ALTER TABLE event_trigger DROP CONSTRAINT event_trigger_kind_check;
ALTER TABLE event_trigger
  ADD CONSTRAINT event_trigger_kind_check CHECK (kind IN ('webhook', 'publish', 'notify_webhook', 'notify_slack')),
  ADD COLUMN publish_type text NOT NULL DEFAULT '',
  ADD COLUMN publish_template text NOT NULL DEFAULT '' CHECK (octet_length(publish_template) <= 4096),
  ADD CONSTRAINT event_trigger_publish_check CHECK ((kind = 'publish') = (publish_type <> ''));
