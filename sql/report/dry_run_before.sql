-- First statement of a dry run: the tenants that exist before the steps run, so that the report can
-- tell a tenant the steps inserted from one they updated (both carry the transaction's xmin). The
-- legacy tables' account needs no such copy: the run's upserts count their own writes.
CREATE TEMP TABLE dry_run_tenants_before (id uuid PRIMARY KEY) ON COMMIT DROP;

DO $$
BEGIN
    IF to_regclass(format('%I.tenants', {{ params.target_schema | sql_literal }})) IS NOT NULL THEN
        EXECUTE format('INSERT INTO dry_run_tenants_before SELECT id FROM %I.tenants', {{ params.target_schema | sql_literal }});
    END IF;
END
$$;
