-- QualityService.ListProfiles over a whole tenant, newest first, paged by (profiled_at, id)
-- (one entity's history already has mdm_profile_latest).
CREATE INDEX mdm_profile_tenant_time ON mdm_profile (tenant_id, profiled_at DESC, id DESC);
