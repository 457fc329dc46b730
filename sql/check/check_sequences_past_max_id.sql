-- Passes when every sequence owned by a target-schema column stands at or past that column's max,
-- so the application's next insert cannot collide with a migrated id.
{% import "_common.sql" as c with context %}
WITH owned AS (
    SELECT
        seq.oid::regclass AS sequence_name,
        tbl.oid::regclass AS table_name,
        att.attname AS column_name
    FROM pg_depend AS dep
    INNER JOIN pg_class AS seq ON dep.objid = seq.oid AND seq.relkind = 'S'
    INNER JOIN pg_class AS tbl ON dep.refobjid = tbl.oid
    INNER JOIN pg_namespace AS ns ON tbl.relnamespace = ns.oid
    INNER JOIN pg_attribute AS att ON tbl.oid = att.attrelid AND dep.refobjsubid = att.attnum
    WHERE
        dep.classid = 'pg_class'::regclass
        AND dep.refclassid = 'pg_class'::regclass
        AND dep.deptype IN ('a', 'i')
        AND ns.nspname = {{ params.target_schema | sql_literal }}
),

measured AS (
    SELECT
        owned.*,
        coalesce(pg_sequence_last_value(owned.sequence_name), 0) AS last_value,
        {{ c.tgt }}.migration_column_max(owned.table_name, owned.column_name) AS max_id
    FROM owned
)

SELECT
    coalesce(bool_and(max_id IS NULL OR last_value >= max_id), TRUE) AS sequences_ahead,
    coalesce(
        string_agg(
            format('%s at %s behind max(%s.%s) = %s', sequence_name, last_value, table_name, column_name, max_id),
            '; '
        ) FILTER (WHERE max_id > last_value),
        format('%s sequences at or past their max id', count(*))
    ) AS detail
FROM measured
