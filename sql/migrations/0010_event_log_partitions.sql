-- event_log partitioned by month of occurred_at, so retention drops whole partitions
-- (no DELETE of millions of rows, no bloat, no long vacuum). Monthly because occurred_at is
-- producer-chosen within [2000-01-01, now + 5 min] (contracts::Validate, applied by the
-- sink): even hostile producers reach at most ~330 partitions, and a year of retention is
-- ~13. Partitions are named event_log_pYYYY_MM (UTC months) and made on demand by
-- event_log_ensure_partition, which sluice-audit calls before storing a month it has not
-- seen; event_log_drop_expired drops the ones wholly older than a horizon.
--
-- The primary key must hold the partition key: (tenant_id, id, occurred_at). A redelivered
-- or replayed envelope carries the same occurred_at, so redeliveries still merge.
--
-- Schema-agnostic like every migration: the functions capture the migration's search_path
-- (SET search_path FROM CURRENT) and qualify every relation with current_schema(), so they
-- work on the event_log of the schema they were created in, whatever the caller's path.
-- They are SECURITY DEFINER (creating and dropping partitions needs the owner of
-- event_log) and therefore not executable by PUBLIC: a service running as another role
-- than the migrator needs GRANT EXECUTE on event_log_ensure_partition and
-- event_log_drop_expired.

-- The partition holding `ts` (NULL when there is none).
CREATE FUNCTION event_log_partition(ts timestamptz) RETURNS regclass
LANGUAGE sql STABLE SET search_path FROM CURRENT
AS $$
  SELECT to_regclass(format('%I.%I', current_schema(), 'event_log_p' || to_char(ts AT TIME ZONE 'UTC', 'YYYY_MM')))
$$;

-- The partition holding `ts`, created when missing. Safe when several callers ask for the
-- same month at once (an advisory lock per schema serializes creators; duplicate_table is
-- caught for partitions made by hand). The partition is made apart and then attached:
-- ATTACH takes only SHARE UPDATE EXCLUSIVE on event_log, so it neither waits for nor
-- blocks the writers and readers of other months (CREATE ... PARTITION OF would take
-- ACCESS EXCLUSIVE).
CREATE FUNCTION event_log_ensure_partition(ts timestamptz) RETURNS regclass
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path FROM CURRENT
AS $$
DECLARE
  nsp constant text := current_schema();
  month_start constant timestamp := date_trunc('month', ts AT TIME ZONE 'UTC');
  part constant text := 'event_log_p' || to_char(month_start, 'YYYY_MM');
  found regclass := event_log_partition(ts);
BEGIN
  IF ts IS NULL THEN
    RAISE EXCEPTION 'event_log_ensure_partition: ts is NULL';
  END IF;
  IF found IS NOT NULL THEN
    RETURN found;
  END IF;
  PERFORM pg_advisory_xact_lock(hashtext(nsp || '.event_log_partitions'));
  found := event_log_partition(ts);
  IF found IS NOT NULL THEN
    RETURN found;
  END IF;
  BEGIN
    EXECUTE format('CREATE TABLE %I.%I (LIKE %I.event_log INCLUDING ALL)', nsp, part, nsp);
    -- Bounds spelled in ISO 8601 UTC, whatever the session's DateStyle and TimeZone.
    EXECUTE format('ALTER TABLE %I.event_log ATTACH PARTITION %I.%I FOR VALUES FROM (%L) TO (%L)', nsp, nsp, part,
                   to_char(month_start, 'YYYY-MM-DD"T00:00:00Z"'),
                   to_char(month_start + interval '1 month', 'YYYY-MM-DD"T00:00:00Z"'));
  EXCEPTION WHEN duplicate_table THEN
    NULL;  -- made meanwhile outside this function
  END;
  RETURN format('%I.%I', nsp, part)::regclass;
END
$$;

-- The partitions of event_log (named event_log_pYYYY_MM) whose upper bound is at or before
-- `horizon`: every row in them occurred before it. Oldest first.
CREATE FUNCTION event_log_expired_partitions(horizon timestamptz) RETURNS SETOF text
LANGUAGE sql STABLE SET search_path FROM CURRENT
AS $$
  SELECT p.name FROM (
    SELECT c.relname::text AS name,
           (make_timestamp(substr(c.relname, 12, 4)::int, substr(c.relname, 17, 2)::int, 1, 0, 0, 0)
              + interval '1 month') AT TIME ZONE 'UTC' AS upper_bound
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = to_regclass(format('%I.event_log', current_schema()))
      AND c.relname ~ '^event_log_p[0-9]{4}_(0[1-9]|1[0-2])$'
  ) p
  WHERE p.upper_bound <= horizon
  ORDER BY p.name
$$;

-- Drops the partitions event_log_expired_partitions(horizon) names and returns their
-- names. Several sweepers at once are safe: the advisory lock serializes them, and a later
-- one finds nothing left to drop. DROP takes ACCESS EXCLUSIVE on event_log for a moment;
-- callers set a lock_timeout so a long query delays the sweep rather than every query.
CREATE FUNCTION event_log_drop_expired(horizon timestamptz) RETURNS SETOF text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path FROM CURRENT
AS $$
DECLARE
  nsp constant text := current_schema();
  part text;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext(nsp || '.event_log_partitions'));
  FOR part IN SELECT event_log_expired_partitions(horizon) LOOP
    EXECUTE format('DROP TABLE %I.%I', nsp, part);
    RETURN NEXT part;
  END LOOP;
END
$$;

REVOKE EXECUTE ON FUNCTION event_log_ensure_partition(timestamptz) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION event_log_drop_expired(timestamptz) FROM PUBLIC;

-- The rows move in this transaction: the old table is renamed, the new one filled month by
-- month, then keyed and indexed (one index build per partition, faster than maintaining
-- the indexes row by row), and the old table dropped. Columns, order and defaults as
-- 0005-0007 left them.
ALTER TABLE event_log RENAME TO event_log_unpartitioned;
CREATE TABLE event_log (
  id             uuid NOT NULL,
  type           text NOT NULL,
  source         text NOT NULL,
  tenant_id      text NOT NULL,
  occurred_at    timestamptz NOT NULL,
  received_at    timestamptz NOT NULL DEFAULT now(),
  payload        jsonb NOT NULL,
  correlation_id text,
  causation_id   text,
  ttl_ms         bigint,
  metadata       jsonb NOT NULL DEFAULT '{}'::jsonb,
  topic          text NOT NULL,
  "partition"    integer NOT NULL,
  "offset"       bigint NOT NULL,
  version        text,
  traceparent    text
) PARTITION BY RANGE (occurred_at);

SELECT event_log_ensure_partition(m)
FROM (SELECT DISTINCT date_trunc('month', occurred_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS m
      FROM event_log_unpartitioned) months;

INSERT INTO event_log (id, type, source, tenant_id, occurred_at, received_at, payload, correlation_id, causation_id,
                       ttl_ms, metadata, topic, "partition", "offset", version, traceparent)
SELECT id, type, source, tenant_id, occurred_at, received_at, payload, correlation_id, causation_id,
       ttl_ms, metadata, topic, "partition", "offset", version, traceparent
FROM event_log_unpartitioned;

DROP TABLE event_log_unpartitioned;

ALTER TABLE event_log ADD PRIMARY KEY (tenant_id, id, occurred_at);
-- Time-ordered listing per tenant (keyset: occurred_at, id), optionally by type or source.
CREATE INDEX event_log_tenant_time ON event_log (tenant_id, occurred_at, id);
CREATE INDEX event_log_tenant_type_time ON event_log (tenant_id, type, occurred_at, id);
CREATE INDEX event_log_tenant_source_time ON event_log (tenant_id, source, occurred_at, id);
CREATE INDEX event_log_correlation ON event_log (correlation_id) WHERE correlation_id IS NOT NULL;
