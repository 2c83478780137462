-- What each profile measured: a digest of the entity's binding and column rules at the
-- time of the scan (the same expression as the profiler's kDefinitionSql). A trigger for
-- an entity whose definition no longer matches its last profile's is a structural change
-- and always profiles. NULL for profiles stored before this column existed (treated as
-- a different definition).
ALTER TABLE mdm_profile ADD COLUMN definition_sha256 text;
