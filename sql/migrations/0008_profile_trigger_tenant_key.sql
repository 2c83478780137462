-- Trigger events are remembered per tenant: event ids are chosen by producers, and one
-- tenant's id must not make another tenant's trigger look like a redelivery.
ALTER TABLE mdm_profile_trigger DROP CONSTRAINT mdm_profile_trigger_pkey, ADD PRIMARY KEY (tenant_id, event_id);
