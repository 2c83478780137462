-- Governed entities, approval requests and the transactional outbox.
-- Tenant ids are Sluice tenant ids (lower-case slugs; UUIDs qualify), hence text.

CREATE TABLE mdm_approval (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id       text NOT NULL,
  entity_type     text NOT NULL CHECK (entity_type IN ('GLOBAL_METADATA', 'KPI', 'GLOSSARY', 'BUSINESS_RULE')),
  entity_id       uuid,                 -- NULL when the approval creates the entity
  entity_key      text,                 -- canonical key
  tier            text NOT NULL CHECK (tier IN ('tier1', 'tier2', 'tier3', 'tier4', 'tier5')),
  lane            text NOT NULL CHECK (lane IN ('kernel', 'governed', 'draft')),
  payload         jsonb NOT NULL,       -- the requested change
  current_state   jsonb,                -- the entity before the change, for the diff
  status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'rejected', 'cancelled')),
  decision_reason text,
  requested_by    text NOT NULL,
  decided_by      text,
  requested_at    timestamptz NOT NULL DEFAULT now(),
  decided_at      timestamptz,
  required_role   text NOT NULL
);
CREATE INDEX mdm_approval_tenant_status_idx ON mdm_approval (tenant_id, status);
CREATE INDEX mdm_approval_tenant_entity_idx ON mdm_approval (tenant_id, entity_type, entity_key);
-- Newest-first listing with a keyset cursor.
CREATE INDEX mdm_approval_tenant_requested_idx ON mdm_approval (tenant_id, requested_at DESC, id DESC);

CREATE TABLE mdm_global_metadata (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id        text NOT NULL,
  canonical_key    text NOT NULL,
  label            text NOT NULL,
  description      text,
  domain           text,
  module           text,
  entity_urn       text,
  tier             text NOT NULL CHECK (tier IN ('tier1', 'tier2', 'tier3', 'tier4', 'tier5')),
  standard_pack_id text,
  data_type        text,
  format           text,
  owner_id         text,
  steward_id       text,
  status           text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'draft', 'deprecated')),
  -- Physical binding profiled by sluice-profiler.
  binding_schema   text,
  binding_table    text,
  -- [{"column": "amount", "not_null": true, "unique": false, "regex": "...", "min": 0, "max": 1e9,
  --   "allowed_values": ["EUR", "USD"], "max_length": 3}, ...]
  column_rules     jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(column_rules) = 'array'),
  version          integer NOT NULL DEFAULT 1,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  UNIQUE (tenant_id, canonical_key),
  CHECK ((binding_schema IS NULL) = (binding_table IS NULL))
);

CREATE TABLE mdm_kpi_definition (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id     text NOT NULL,
  canonical_key text NOT NULL,
  name          text NOT NULL,
  description   text,
  formula       text,
  unit          text,
  tier          text NOT NULL CHECK (tier IN ('tier1', 'tier2', 'tier3', 'tier4', 'tier5')),
  owner_id      text,
  status        text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'draft', 'deprecated')),
  version       integer NOT NULL DEFAULT 1,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  UNIQUE (tenant_id, canonical_key)
);

CREATE TABLE mdm_glossary_term (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id     text NOT NULL,
  canonical_key text NOT NULL,
  term          text NOT NULL,
  definition    text NOT NULL,
  synonyms      text[] NOT NULL DEFAULT '{}',
  status        text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'draft', 'deprecated')),
  version       integer NOT NULL DEFAULT 1,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  UNIQUE (tenant_id, canonical_key)
);

CREATE TABLE mdm_business_rule (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id     text NOT NULL,
  canonical_key text NOT NULL,
  name          text NOT NULL,
  description   text,
  expression    text NOT NULL,
  severity      text NOT NULL DEFAULT 'error' CHECK (severity IN ('info', 'warning', 'error')),
  status        text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'draft', 'deprecated')),
  version       integer NOT NULL DEFAULT 1,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  UNIQUE (tenant_id, canonical_key)
);

-- Events written in the same transaction as the state change they describe, published
-- by sluice-relay. Within a tenant, writers serialise (advisory lock), so id order is
-- commit order; the relay publishes a tenant's rows in id order.
CREATE TABLE event_outbox (
  id              bigserial PRIMARY KEY,
  event_id        uuid NOT NULL UNIQUE,
  tenant_id       text NOT NULL,
  event_type      text NOT NULL,
  envelope        bytea NOT NULL,        -- the encoded sluice.v1.Envelope
  created_at      timestamptz NOT NULL DEFAULT now(),
  attempts        integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  last_error      text,
  sent_at         timestamptz,
  sent_topic      text,
  sent_partition  integer,
  sent_offset     bigint
);
CREATE INDEX event_outbox_pending_idx ON event_outbox (tenant_id, id) WHERE sent_at IS NULL;
CREATE INDEX event_outbox_sent_idx ON event_outbox (sent_at) WHERE sent_at IS NOT NULL;

-- Wakes relays (LISTEN event_outbox) when rows commit; they also poll.
CREATE FUNCTION event_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('event_outbox', '');
  RETURN NULL;
END
$$;
CREATE TRIGGER event_outbox_notify AFTER INSERT ON event_outbox
  FOR EACH STATEMENT EXECUTE FUNCTION event_outbox_notify();
