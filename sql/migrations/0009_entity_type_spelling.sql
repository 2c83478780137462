-- One spelling per entity type in every table: approvals used 'GLOBAL_METADATA',
-- 'KPI', ... while the profiling tables use 'metadata', 'kpi', ... (the spelling of
-- contracts/governance.h). Approvals move to the profiling tables' spelling.
ALTER TABLE mdm_approval DROP CONSTRAINT mdm_approval_entity_type_check;
UPDATE mdm_approval SET entity_type = CASE entity_type
  WHEN 'GLOBAL_METADATA' THEN 'metadata'
  WHEN 'KPI' THEN 'kpi'
  WHEN 'GLOSSARY' THEN 'glossary'
  WHEN 'BUSINESS_RULE' THEN 'business_rule'
  ELSE entity_type END;
ALTER TABLE mdm_approval ADD CONSTRAINT mdm_approval_entity_type_check
  CHECK (entity_type IN ('metadata', 'kpi', 'glossary', 'business_rule'));
