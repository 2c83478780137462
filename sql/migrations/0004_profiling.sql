-- Profiling: the job table that deduplicates profile work, the stored profiles, every
-- trigger event the profiler handled (and why it skipped), and the scheduler's record
-- of what it emitted.

-- One row per profile job. History is kept: finished jobs stay, and at most one job per
-- entity is pending or running (the partial unique index below).
CREATE TABLE mdm_profile_job (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id        text NOT NULL,
  entity_type      text NOT NULL,
  entity_id        uuid NOT NULL,
  canonical_key    text NOT NULL,
  tier             text NOT NULL CHECK (tier IN ('tier1', 'tier2', 'tier3', 'tier4', 'tier5')),
  reason           text NOT NULL,
  priority         text NOT NULL,
  status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'succeeded', 'failed')),
  -- The event that created the job; its correlation id is carried by the outcome events.
  trigger_event_id text NOT NULL,
  trigger_type     text NOT NULL,
  correlation_id   text NOT NULL,
  actor_id         text NOT NULL,
  actor_type       text NOT NULL,
  attempts         integer NOT NULL DEFAULT 0,
  max_attempts     integer NOT NULL CHECK (max_attempts > 0),
  next_attempt_at  timestamptz NOT NULL DEFAULT now(),
  -- The lease of a running job: renewed by its worker's heartbeats; once expired, any
  -- worker may take the job over (a new lease_token fences the old worker out).
  worker_id        text,
  lease_token      uuid,
  lease_expires_at timestamptz,
  heartbeat_at     timestamptz,
  last_error_code  text,
  last_error       text,
  profile_id       uuid,
  created_at       timestamptz NOT NULL DEFAULT now(),
  started_at       timestamptz,
  finished_at      timestamptz,
  CHECK ((status = 'running') = (lease_token IS NOT NULL))
);
CREATE UNIQUE INDEX mdm_profile_job_one_active ON mdm_profile_job (tenant_id, entity_type, entity_id)
  WHERE status IN ('pending', 'running');
CREATE INDEX mdm_profile_job_ready ON mdm_profile_job (next_attempt_at) WHERE status = 'pending';
CREATE INDEX mdm_profile_job_leases ON mdm_profile_job (lease_expires_at) WHERE status = 'running';
CREATE INDEX mdm_profile_job_entity ON mdm_profile_job (tenant_id, entity_type, entity_id, created_at DESC);

-- One row per successful profile run.
CREATE TABLE mdm_profile (
  id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id      text NOT NULL,
  entity_type    text NOT NULL,
  entity_id      uuid NOT NULL,
  canonical_key  text NOT NULL,
  job_id         uuid NOT NULL UNIQUE REFERENCES mdm_profile_job (id),
  binding_schema text NOT NULL,
  binding_table  text NOT NULL,
  row_count      bigint NOT NULL,
  completeness   double precision NOT NULL,
  uniqueness     double precision NOT NULL,
  validity       double precision NOT NULL,
  quality_score  double precision NOT NULL,
  quality_grade  text NOT NULL CHECK (quality_grade IN ('A', 'B', 'C', 'D', 'F')),
  duration_ms    bigint NOT NULL,
  method         text NOT NULL,
  -- {"columns": [{"column": ..., "type": ..., "null_count": ..., ...}], "weights": {...}}
  details        jsonb NOT NULL,
  profiled_at    timestamptz NOT NULL DEFAULT now()
);
-- The latest profile of an entity is the first entry of this index.
CREATE INDEX mdm_profile_latest ON mdm_profile (tenant_id, entity_type, entity_id, profiled_at DESC);

-- Every trigger event the profiler handled, keyed by event id: a redelivered event finds
-- its row and does nothing. Skips keep their reason.
CREATE TABLE mdm_profile_trigger (
  event_id      text PRIMARY KEY,
  tenant_id     text NOT NULL,
  event_type    text NOT NULL,
  entity_type   text,
  entity_id     uuid,
  decision      text NOT NULL CHECK (decision IN ('queued', 'skipped')),
  skip_reason   text,
  detail        text,
  job_id        uuid REFERENCES mdm_profile_job (id),
  handled_at    timestamptz NOT NULL DEFAULT now(),
  CHECK ((decision = 'skipped') = (skip_reason IS NOT NULL))
);
CREATE INDEX mdm_profile_trigger_entity ON mdm_profile_trigger (tenant_id, entity_type, entity_id, handled_at DESC);

-- The scheduler's emitted profile.due events, keyed by their derived id: a second run in
-- the same cadence window inserts nothing and so emits nothing.
CREATE TABLE mdm_profile_schedule (
  event_id      text PRIMARY KEY,
  tenant_id     text NOT NULL,
  entity_type   text NOT NULL,
  entity_id     uuid NOT NULL,
  tier          text NOT NULL,
  priority      text NOT NULL,
  window_start  timestamptz NOT NULL,
  emitted_at    timestamptz NOT NULL DEFAULT now()
);
