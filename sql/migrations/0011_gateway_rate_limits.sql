-- Per-source rate limits (--rate-limits) counted for the whole cluster of gateways: each
-- replica takes blocks of tokens from its (tenant, source) row with one atomic upsert
-- (gateway/shared_rate_limiter.cc) and admits events from them locally, so with N
-- replicas a source still gets `limit` events per window, not N times that. Times are the
-- database's clock (now()), so replicas' clocks do not matter.
CREATE TABLE gateway_rate_window (
  tenant_id     text NOT NULL,
  source        text NOT NULL,
  -- The current window began here; after a pause, a fresh window begins when it ends.
  window_start  timestamptz NOT NULL,
  -- Tokens handed out in the current window (events admitted, or held by a replica).
  used          bigint NOT NULL CHECK (used >= 0),
  -- The event over the limit pauses the source until then, on every replica.
  paused_until  timestamptz NOT NULL DEFAULT '-infinity',
  -- Tokens the last statement on the row handed out: what RETURNING reports, since it
  -- cannot see the row as it was before the update (PostgreSQL < 18).
  granted       bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (tenant_id, source)
);
-- GetEventHealth asks for the pairs paused now.
CREATE INDEX gateway_rate_window_paused ON gateway_rate_window (paused_until);
