-- After an approved tier1 metadata change: the approval, the entry it wrote and the
-- profile that followed. The reference's three verification queries, on Sluice's schema.
--
--   psql "$SLUICE_PG_DSN" -v ON_ERROR_STOP=1 -v tenant_id=acme -v approval_id=UUID \
--        -v canonical_key=KEY -v entity_urn=URN -f sql/verify/approval_chain.sql
--
-- Where Sluice differs: every row belongs to a tenant, so each query also filters by
-- tenant_id (the same key or URN may exist in another tenant); mdm_profile has no
-- entity_urn (it is joined from the entry through entity_id) and records its time as
-- profiled_at, not created_at. Run it with search_path set to the governance schema when
-- it is not public (options='-c search_path=SCHEMA' in the DSN).

-- 1. The approval's status. Expected: approved, decided_by the approver, decided_at set.
SELECT status, decided_by, decided_at
FROM mdm_approval
WHERE tenant_id = :'tenant_id' AND id = :'approval_id';

-- 2. The metadata entry created or updated. Expected: one row, tier1, active.
SELECT id, canonical_key, label, tier, status
FROM mdm_global_metadata
WHERE tenant_id = :'tenant_id' AND canonical_key = :'canonical_key';

-- 3. The latest profile of that entry. Expected: a row with the quality figures.
SELECT p.id, m.entity_urn, p.completeness, p.uniqueness, p.validity, p.quality_score
FROM mdm_profile p
JOIN mdm_global_metadata m ON m.tenant_id = p.tenant_id AND m.id = p.entity_id
WHERE m.tenant_id = :'tenant_id' AND m.entity_urn = :'entity_urn'
ORDER BY p.profiled_at DESC
LIMIT 1;
