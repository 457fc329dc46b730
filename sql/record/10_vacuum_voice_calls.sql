-- After a bulk load: sets hint bits and the visibility map once, so the findings and the checks
-- read the call table without writing to it and can answer id lookups from its primary key alone.
-- VACUUM cannot run inside a transaction: this step runs in autocommit.
VACUUM (ANALYZE) {{ params.target_schema | ident }}.voice_calls;
