-- event_log is keyed by tenant: event ids are chosen by producers, and an id one tenant
-- used must not make another tenant's event a "duplicate" that is silently dropped.
-- sluice-audit merges redeliveries with ON CONFLICT (tenant_id, id). The old key is
-- dropped and the new one built in this migration's transaction (one index build).
ALTER TABLE event_log DROP CONSTRAINT event_log_pkey, ADD PRIMARY KEY (tenant_id, id);

-- Records sluice-audit read but could not store in event_log: rather than stall its
-- partition (and every tenant behind it) or skip the record without trace, it keeps the
-- record here with the reason, in the same transaction that stores the rest of its batch.
-- One row per Kafka record: a redelivered record is dead-lettered once.
CREATE TABLE event_dead_letter (
  topic            text NOT NULL,
  "partition"      integer NOT NULL,
  "offset"         bigint NOT NULL,
  -- The envelope's fields as read, C-escaped when not printable ASCII and cut to 256
  -- bytes (they are what failed, so they may be anything); tenant_id NULL when empty.
  event_id         text NOT NULL,
  tenant_id        text,
  type             text NOT NULL,
  source           text NOT NULL,
  -- The closed set of the sluice_audit_dead_letter_total{reason} label: invalid (fails
  -- contracts::Validate), unencodable (cannot be written as a row), unstorable
  -- (PostgreSQL refused the row with a data error; sqlstate says which).
  category         text NOT NULL,
  sqlstate         text,
  -- Short and readable: the field and the bound, or the SQLSTATE and PostgreSQL's first
  -- message line; never the row's contents.
  reason           text NOT NULL,
  -- The record exactly as read (key: the partition key; value: the encoded envelope),
  -- so it can be re-produced once whatever refused it is fixed.
  record_key       bytea,
  record_value     bytea NOT NULL,
  dead_lettered_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (topic, "partition", "offset")
);
CREATE INDEX event_dead_letter_time ON event_dead_letter (dead_lettered_at);
CREATE INDEX event_dead_letter_tenant_time ON event_dead_letter (tenant_id, dead_lettered_at);
