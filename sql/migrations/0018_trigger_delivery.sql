-- Trigger deliveries (sluice-triggers): every match of an event with a trigger becomes a
-- row of trigger_delivery before the event's offset is committed, so a crash loses no
-- delivery; delivery workers claim due rows (a lease, SKIP LOCKED), POST them and record
-- each attempt in trigger_delivery_attempt. The CloudEvent body is fixed when the row is
-- written, so every retry sends the same bytes under the same idempotency key.

-- Set by sluice-triggers when a trigger failed too often within its window: until then no
-- delivery of it is attempted (matches are still queued). ResumeTrigger clears it.
ALTER TABLE event_trigger ADD COLUMN auto_paused_until timestamptz;

CREATE TABLE trigger_delivery (
  tenant_id       text NOT NULL,
  trigger_id      uuid NOT NULL,
  event_id        text NOT NULL,
  event_type      text NOT NULL,
  body            text NOT NULL,
  state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
  attempts        integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  -- While a worker holds the row: its attempt is in flight until this time.
  lease_until     timestamptz,
  created_at      timestamptz NOT NULL DEFAULT now(),
  finished_at     timestamptz,
  PRIMARY KEY (tenant_id, trigger_id, event_id),
  FOREIGN KEY (tenant_id, trigger_id) REFERENCES event_trigger (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX trigger_delivery_due ON trigger_delivery (next_attempt_at) WHERE state = 'pending';
CREATE INDEX trigger_delivery_finished ON trigger_delivery (finished_at) WHERE state <> 'pending';

CREATE TABLE trigger_delivery_attempt (
  tenant_id    text NOT NULL,
  trigger_id   uuid NOT NULL,
  event_id     text NOT NULL,
  attempt      integer NOT NULL CHECK (attempt >= 1),
  attempted_at timestamptz NOT NULL,
  -- The receiver's HTTP status; NULL when no answer came (error says why).
  status_code  integer,
  error        text NOT NULL DEFAULT '' CHECK (char_length(error) <= 300),
  latency_ms   integer NOT NULL CHECK (latency_ms >= 0),
  outcome      text NOT NULL CHECK (outcome IN ('delivered', 'retry', 'failed', 'interrupted')),
  PRIMARY KEY (tenant_id, trigger_id, event_id, attempt),
  FOREIGN KEY (tenant_id, trigger_id) REFERENCES event_trigger (tenant_id, id) ON DELETE CASCADE
);
-- The history API (a trigger's attempts, newest first) and the failure window.
CREATE INDEX trigger_delivery_attempt_history
  ON trigger_delivery_attempt (tenant_id, trigger_id, attempted_at DESC, event_id DESC, attempt DESC);
-- Retention.
CREATE INDEX trigger_delivery_attempt_age ON trigger_delivery_attempt (attempted_at);
-- A trigger's backlog (health).
CREATE INDEX trigger_delivery_pending ON trigger_delivery (tenant_id, trigger_id) WHERE state = 'pending';
