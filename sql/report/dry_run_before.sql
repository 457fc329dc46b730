-- First statement of a dry run: the ids each target table holds before the steps run, so that the
-- report can tell a row the steps inserted from one they updated (both carry the transaction's
-- xmin). Tables that do not exist yet hold nothing.
{% import "_common.sql" as c with context %}
CREATE TEMP TABLE dry_run_existing (
    target_table text NOT NULL,
    id text NOT NULL
) ON COMMIT DROP;

DO $$
DECLARE
    target text;
BEGIN
    FOREACH target IN ARRAY ARRAY[
        'tenants'{% for table in catalog %}, '{{ table.target_table }}'{% endfor %}
    ] LOOP
        IF to_regclass(format('%I.%I', {{ params.target_schema | sql_literal }}, target)) IS NOT NULL THEN
            EXECUTE format(
                'INSERT INTO dry_run_existing (target_table, id) SELECT %L, id::text FROM %I.%I',
                target, {{ params.target_schema | sql_literal }}, target
            );
        END IF;
    END LOOP;
END
$$;

ANALYZE dry_run_existing;
