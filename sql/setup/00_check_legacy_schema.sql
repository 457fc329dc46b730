-- Refuses to start, naming what is missing, when the legacy schema lacks a table or column the
-- mapping reads (the catalog's legacy_columns), or when an existing target table cannot hold the
-- mapping. Writes nothing. The run's window is resolved first: a malformed one fails this first step
-- for good, before anything runs.
-- Jinja loops over the catalog generate the per-table blocks below: sqlfluff cannot indent them.
-- noqa: disable=LT02
{%- set window = migration_window() %}
DO $$
DECLARE
    problems text;
BEGIN
    SELECT string_agg(format('%s.%s.%s', req.table_schema, req.table_name, req.column_name), ', '
        ORDER BY req.table_name, req.column_name)
    INTO problems
    FROM (
        SELECT {{ params.source_schema | sql_literal }} AS table_schema, wanted.table_name, wanted.column_name
        FROM (VALUES
            {%- for table_name, columns in legacy_columns().items() %}
            {%- set last_table = loop.last %}
            {%- for column_name in columns %}
            ('{{ table_name }}', '{{ column_name }}'){{ "," if not (last_table and loop.last) }}
            {%- endfor %}
            {%- endfor %}
        ) AS wanted (table_name, column_name)
    ) AS req
    WHERE NOT EXISTS (
        SELECT 1 FROM information_schema.columns AS col
        WHERE col.table_schema = req.table_schema
            AND col.table_name = req.table_name
            AND col.column_name = req.column_name
    );
    IF problems IS NOT NULL THEN
        RAISE EXCEPTION 'legacy schema is missing: %', problems
            USING HINT = 'check the source_schema param and the voice_agent_db connection';
    END IF;

    -- voice_calls.lead_id is a uuid: an existing main leads table must be keyed by uuid.
    SELECT format('%s.leads.id is %s, expected uuid', col.table_schema, col.data_type)
    INTO problems
    FROM information_schema.columns AS col
    WHERE col.table_schema = {{ params.target_schema | sql_literal }}
        AND col.table_name = 'leads'
        AND col.column_name = 'id'
        AND col.data_type <> 'uuid';
    IF problems IS NOT NULL THEN
        RAISE EXCEPTION 'target table cannot hold the mapping: %', problems;
    END IF;
END
$$;
