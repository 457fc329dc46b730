-- Refuses to start, naming what is wrong, when the legacy schema does not exist, lacks a table or
-- column the mapping reads (the catalog's legacy_columns), or holds one of them with another type than
-- the mapping needs (its LEGACY_COLUMN_TYPES, read as legacy_column_types), or when an existing
-- target table cannot hold the mapping. Writes nothing. Each refusal raises SQLSTATE VA000, which the
-- operators make final (no retry: the same schema would be refused again). The run's window is
-- resolved first: a malformed one fails this first step for good, before anything runs.
-- Jinja loops over the catalog generate the per-table blocks below: sqlfluff cannot indent them.
-- noqa: disable=LT02
{%- set window = migration_window() %}
DO $$
DECLARE
    problems text;
    wrong_type boolean;
BEGIN
    -- information_schema.columns shows only what the connection's role may read: a schema it cannot
    -- see would look empty, so the schema's existence comes from the catalog, which everyone reads.
    IF NOT EXISTS (
        SELECT 1 FROM pg_catalog.pg_namespace
        WHERE nspname = {{ params.source_schema | sql_literal }}
    ) THEN
        RAISE EXCEPTION 'legacy schema % does not exist', {{ params.source_schema | sql_literal }}
            USING ERRCODE = 'VA000',
            HINT = 'check the source_schema param and the voice_agent_db connection';
    END IF;

    WITH wanted (table_name, column_name) AS (
        VALUES
            {%- for table_name, columns in legacy_columns().items() %}
            {%- set last_table = loop.last %}
            {%- for column_name in columns %}
            ('{{ table_name }}', '{{ column_name }}'){{ "," if not (last_table and loop.last) }}
            {%- endfor %}
            {%- endfor %}
    ),

    typed (table_name, column_name, kind) AS (
        VALUES
            {%- for (table_name, column_name), kind in legacy_column_types.items() %}
            ('{{ table_name }}', '{{ column_name }}', '{{ kind }}'){{ "," if not loop.last }}
            {%- endfor %}
    ),

    -- What each kind of LEGACY_COLUMN_TYPES accepts, and how a refusal names it.
    kinds (kind, data_types, expected) AS (
        VALUES
            ('timestamptz', ARRAY['timestamp with time zone'], 'timestamp with time zone'),
            ('uuid', ARRAY['uuid'], 'uuid'),
            ('integer', ARRAY['smallint', 'integer', 'bigint'], 'an integer type (smallint, integer or bigint)')
    ),

    found AS (
        SELECT
            col.table_name::text AS table_name,
            col.column_name::text AS column_name,
            CASE col.data_type
                WHEN 'USER-DEFINED' THEN format('%s.%s', col.udt_schema, col.udt_name)
                ELSE col.data_type
            END AS data_type
        FROM information_schema.columns AS col
        WHERE col.table_schema = {{ params.source_schema | sql_literal }}
    ),

    problem (table_name, column_name, is_type, line) AS (
        -- A missing table is named once, not once per column.
        SELECT DISTINCT
            w.table_name,
            '',
            FALSE,
            format('legacy table %s.%s does not exist', {{ params.source_schema | sql_literal }}, w.table_name)
        FROM wanted AS w
        WHERE NOT EXISTS (SELECT 1 FROM found AS f WHERE f.table_name = w.table_name)
        UNION ALL
        SELECT
            w.table_name,
            w.column_name,
            FALSE,
            format(
                'legacy column %s.%s.%s does not exist',
                {{ params.source_schema | sql_literal }}, w.table_name, w.column_name
            )
        FROM wanted AS w
        WHERE
            EXISTS (SELECT 1 FROM found AS f WHERE f.table_name = w.table_name)
            AND NOT EXISTS (
                SELECT 1 FROM found AS f
                WHERE f.table_name = w.table_name AND f.column_name = w.column_name
            )
        UNION ALL
        SELECT
            t.table_name,
            t.column_name,
            TRUE,
            format(
                'legacy column %s.%s.%s is %s, expected %s',
                {{ params.source_schema | sql_literal }}, t.table_name, t.column_name, f.data_type,
                coalesce(k.expected, format('%L, a kind the preflight does not know', t.kind))
            )
        FROM typed AS t
        INNER JOIN found AS f ON t.table_name = f.table_name AND t.column_name = f.column_name
        LEFT JOIN kinds AS k ON t.kind = k.kind
        WHERE k.kind IS NULL OR f.data_type <> ALL(k.data_types)
    )

    SELECT
        string_agg(p.line, E'\n' ORDER BY p.table_name, p.column_name),
        coalesce(bool_or(p.is_type), FALSE)
    INTO problems, wrong_type
    FROM problem AS p;

    IF wrong_type THEN
        RAISE EXCEPTION '%', problems
            USING ERRCODE = 'VA000',
            DETAIL = 'the mapping needs every instant as timestamp with time zone (a timestamp without '
            || 'time zone would shift each one by the database time zone''s offset), uuid keys as uuid '
            || 'and integer keys as integers',
            HINT = 'fix the legacy column types, or check the source_schema param and the voice_agent_db connection';
    ELSIF problems IS NOT NULL THEN
        RAISE EXCEPTION '%', problems
            USING ERRCODE = 'VA000',
            HINT = 'check the source_schema param and the voice_agent_db connection';
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
        RAISE EXCEPTION 'target table cannot hold the mapping: %', problems
            USING ERRCODE = 'VA000';
    END IF;
END
$$;
