-- Triggers (TriggerService): a tenant's predicate over its events (types, sources, a
-- JSONPath over the payload) and the webhook each match is delivered to. The webhook's
-- secret is the HMAC key deliveries are signed with, so it is kept as given (the gateway
-- never returns or logs it); restrict reads of this table to the gateway's role.
CREATE TABLE event_trigger (
  tenant_id          text NOT NULL,
  id                 uuid NOT NULL,
  name               text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
  description        text NOT NULL DEFAULT '' CHECK (char_length(description) <= 1000),
  types              text[] NOT NULL DEFAULT '{}',
  sources            text[] NOT NULL DEFAULT '{}',
  json_path          text NOT NULL DEFAULT '',
  webhook_url        text NOT NULL,
  webhook_secret     text NOT NULL,
  webhook_timeout_ms integer NOT NULL CHECK (webhook_timeout_ms BETWEEN 100 AND 30000),
  paused             boolean NOT NULL DEFAULT false,
  created_by         text NOT NULL,
  updated_by         text NOT NULL,
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now(),
  version            bigint NOT NULL DEFAULT 1,
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, name)
);
