-- Saved views of the Explorer (EventQueryService.CreateSavedView and friends): a named
-- event filter of one tenant, private to its owner (the token's principal name) or shared
-- read-only with the tenant. The filter is stored as its protobuf JSON (EventFilter).
CREATE TABLE event_saved_view (
  tenant_id    text NOT NULL,
  id           uuid NOT NULL,
  owner        text NOT NULL,
  name         text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
  description  text NOT NULL DEFAULT '' CHECK (char_length(description) <= 1000),
  filter       jsonb NOT NULL,
  shared       boolean NOT NULL DEFAULT false,
  created_at   timestamptz NOT NULL DEFAULT now(),
  use_count    bigint NOT NULL DEFAULT 0,
  last_used_at timestamptz,
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, owner, name)
);
CREATE INDEX event_saved_view_shared ON event_saved_view (tenant_id, name) WHERE shared;
