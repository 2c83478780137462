-- Baseline: the schema Sluice's services share. Later migrations add the approval,
-- profiling and audit tables. gen_random_uuid() is built into PostgreSQL 13+.
COMMENT ON TABLE schema_migrations IS 'Applied Sluice migrations (sluicectl migrate)';
