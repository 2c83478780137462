-- The audit log: every event sluice-audit read from Kafka, once per event id, queryable
-- by tenant, type, source, correlation and time.
CREATE TABLE event_log (
  id             uuid PRIMARY KEY,
  type           text NOT NULL,
  source         text NOT NULL,
  tenant_id      text NOT NULL,
  occurred_at    timestamptz NOT NULL,
  received_at    timestamptz NOT NULL DEFAULT now(),
  -- The typed payload in protobuf's JSON mapping (camelCase keys, enums by name).
  payload        jsonb NOT NULL,
  correlation_id text,
  causation_id   text,
  ttl_ms         bigint,
  metadata       jsonb NOT NULL DEFAULT '{}'::jsonb,
  topic          text NOT NULL,
  "partition"    integer NOT NULL,
  "offset"       bigint NOT NULL
);
-- Time-ordered listing per tenant (keyset: occurred_at, id), optionally by type or source.
CREATE INDEX event_log_tenant_time ON event_log (tenant_id, occurred_at, id);
CREATE INDEX event_log_tenant_type_time ON event_log (tenant_id, type, occurred_at, id);
CREATE INDEX event_log_tenant_source_time ON event_log (tenant_id, source, occurred_at, id);
CREATE INDEX event_log_correlation ON event_log (correlation_id) WHERE correlation_id IS NOT NULL;
