-- Creates the multi-tenant target schema, the lineage and the quarantine; safe to run again.
{% import "_common.sql" as c with context %}
{%- set window = migration_window() %}
{{ c.serialize_step() }}

-- Only when missing: CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when the schema
-- exists, which the least-privilege role (sql/admin/create_migration_role.sql) does not have.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = {{ params.target_schema | sql_literal }}) THEN
        CREATE SCHEMA {{ c.tgt }};
    END IF;
END
$$;

CREATE TABLE IF NOT EXISTS {{ c.tgt }}.tenants (
    id uuid PRIMARY KEY,
    name varchar(255) NOT NULL,
    plan varchar(50) DEFAULT 'pro',
    is_active boolean DEFAULT TRUE,
    metadata jsonb DEFAULT '{}',
    created_at timestamp DEFAULT (now() AT TIME ZONE 'UTC'),
    updated_at timestamp DEFAULT (now() AT TIME ZONE 'UTC')
);

CREATE TABLE IF NOT EXISTS {{ c.tgt }}.voices (
    id varchar(255) PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES {{ c.tgt }}.tenants (id),
    voice_name varchar(255),
    description text,
    voice_sample_url text,
    provider varchar(50),
    language varchar(10) DEFAULT 'en',
    gender varchar(20),
    is_active boolean DEFAULT TRUE,
    metadata jsonb DEFAULT '{}',
    created_at timestamp DEFAULT (now() AT TIME ZONE 'UTC'),
    updated_at timestamp DEFAULT (now() AT TIME ZONE 'UTC')
);

CREATE TABLE IF NOT EXISTS {{ c.tgt }}.phone_numbers (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES {{ c.tgt }}.tenants (id),
    phone_number varchar(50) NOT NULL UNIQUE,
    provider varchar(50),
    number_type varchar(50),
    capabilities jsonb DEFAULT '["voice"]',
    is_active boolean DEFAULT TRUE,
    metadata jsonb DEFAULT '{}',
    created_at timestamp DEFAULT (now() AT TIME ZONE 'UTC'),
    updated_at timestamp DEFAULT (now() AT TIME ZONE 'UTC')
);

CREATE TABLE IF NOT EXISTS {{ c.tgt }}.voice_agents (
    id serial PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES {{ c.tgt }}.tenants (id),
    agent_name varchar(255),
    agent_language varchar(10),
    voice_id varchar(255),
    is_active boolean DEFAULT TRUE,
    metadata jsonb DEFAULT '{}',
    created_at timestamp DEFAULT (now() AT TIME ZONE 'UTC'),
    updated_at timestamp DEFAULT (now() AT TIME ZONE 'UTC')
);

-- The main application's leads table may already exist, with or without tenant_id: its rows are
-- never touched; only the columns the migration writes are added when missing.
CREATE TABLE IF NOT EXISTS {{ c.tgt }}.leads (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid,
    name varchar(255),
    phone varchar(50),
    source varchar(50),
    status varchar(50),
    metadata jsonb DEFAULT '{}',
    created_at timestamp DEFAULT (now() AT TIME ZONE 'UTC'),
    updated_at timestamp DEFAULT (now() AT TIME ZONE 'UTC')
);
-- ALTER TABLE locks the application's table even when the column exists: only alter what is missing.
DO $$
DECLARE
    missing record;
BEGIN
    FOR missing IN
        SELECT wanted.column_name, wanted.column_type
        FROM (VALUES
            ('tenant_id', 'uuid'),
            ('name', 'varchar(255)'),
            ('phone', 'varchar(50)'),
            ('source', 'varchar(50)'),
            ('status', 'varchar(50)'),
            ('metadata', 'jsonb')
        ) AS wanted (column_name, column_type)
        WHERE NOT EXISTS (
            SELECT 1 FROM information_schema.columns AS col
            WHERE col.table_schema = {{ params.target_schema | sql_literal }}
                AND col.table_name = 'leads'
                AND col.column_name = wanted.column_name
        )
    LOOP
        EXECUTE format(
            'ALTER TABLE %I.leads ADD COLUMN %I %s',
            {{ params.target_schema | sql_literal }}, missing.column_name, missing.column_type
        );
    END LOOP;
END
$$;

-- No foreign key on the big table: the orphan check proves tenant_id instead of a per-row trigger.
CREATE TABLE IF NOT EXISTS {{ c.tgt }}.voice_calls (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    voice_id varchar(255),
    agent_id integer,
    from_number varchar(50),
    to_number varchar(50),
    status varchar(50),
    added_context text,
    lead_id uuid,
    initiated_by varchar(255),
    recording_url text,
    started_at timestamp,
    ended_at timestamp,
    created_at timestamp,
    updated_at timestamp DEFAULT (now() AT TIME ZONE 'UTC'),
    metadata jsonb DEFAULT '{}'
);

CREATE TABLE IF NOT EXISTS {{ c.tgt }}.resource_permissions (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES {{ c.tgt }}.tenants (id),
    resource_type varchar(20) NOT NULL,
    resource_id varchar(100) NOT NULL,
    access_level varchar(20) DEFAULT 'use',
    granted_at timestamp DEFAULT (now() AT TIME ZONE 'UTC'),
    granted_by varchar(100),
    expires_at timestamp,
    is_active boolean DEFAULT TRUE
);

-- Lineage of the small tables, one row per legacy row. Calls keep their uuid, so their lineage is
-- derived in the migration_id_map view below instead of copying the biggest table.
CREATE TABLE IF NOT EXISTS {{ c.tgt }}.migration_lineage (
    source_table text NOT NULL,
    source_id text NOT NULL,
    target_table text NOT NULL,
    target_id text NOT NULL,
    PRIMARY KEY (source_table, source_id)
);

-- Added when the migration learnt to tell its own rows from the application's (a target created before
-- gets them once, from what it holds). `linked`: the legacy row was linked to a row the migration did not
-- write (a legacy lead onto the application's lead with its tenant and phone), which the migration never
-- changes nor removes; `detail`: what of the legacy row such a link would lose (its name and notes).
-- `written_digest`: the target row as the migration last wrote it, so that a row the application has
-- changed since (taken over) is reported instead of removed when its legacy row goes.
-- noqa: disable=LT02
DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM information_schema.columns
        WHERE
            table_schema = {{ params.target_schema | sql_literal }}
            AND table_name = 'migration_lineage'
            AND column_name = 'linked'
    ) THEN
        ALTER TABLE {{ c.tgt }}.migration_lineage
        ADD COLUMN linked boolean NOT NULL DEFAULT FALSE,
        ADD COLUMN detail jsonb,
        ADD COLUMN written_digest text;
        {%- for table in catalog if table.application_rows %}
        UPDATE {{ c.tgt }}.migration_lineage AS m
        SET linked = TRUE
        WHERE
            m.source_table = '{{ table.source_table }}'
            AND NOT EXISTS (
                SELECT 1 FROM {{ c.tgt }}.{{ table.target_table }} AS t
                WHERE t.id::text = m.target_id AND {{ table.rollback_only }}
            );
        {%- endfor %}
    END IF;
END
$$;
-- noqa: enable=LT02

CREATE INDEX IF NOT EXISTS migration_lineage_target ON {{ c.tgt }}.migration_lineage (target_table, target_id);

-- The calls the migration wrote (a call keeps its legacy uuid, so its id is its lineage): only these
-- are ever updated or removed by it; the application's own calls are never touched. A target created
-- before gets the landed calls that have a legacy call.
DO $$
BEGIN
    IF to_regclass({{ (params.target_schema ~ ".migration_calls") | text_literal }}) IS NULL THEN
        CREATE TABLE {{ c.tgt }}.migration_calls (id uuid PRIMARY KEY);
        INSERT INTO {{ c.tgt }}.migration_calls (id)
        SELECT vc.id
        FROM {{ c.tgt }}.voice_calls AS vc
        INNER JOIN {{ c.src }}.call_logs_voiceagent AS cl ON vc.id = cl.id;
    END IF;
END
$$;

-- The call step's chunks (see _incremental.sql): ranges of call ids [lower_id, upper_id] tiling the
-- whole uuid space, each with the sum of the hashes of every input of its calls' mapping and how many
-- of them land, as the last full run left them (NULL: not built yet). A re-run rebuilds only the
-- chunks whose inputs changed. (They replace the buckets of earlier versions.)
DROP TABLE IF EXISTS {{ c.tgt }}.migration_call_buckets;

CREATE TABLE IF NOT EXISTS {{ c.tgt }}.migration_call_chunks (
    lower_id uuid PRIMARY KEY,
    upper_id uuid NOT NULL CHECK (upper_id >= lower_id),
    fingerprint numeric,
    landable_calls bigint
);

-- Each run's chunks, planned once, and the checkpoint of each: committed_at is set in the chunk's own
-- transaction, so a retried task does only the chunks left (calls: how many it read; seconds: how
-- long its transaction took).
CREATE TABLE IF NOT EXISTS {{ c.tgt }}.migration_run_chunks (
    run_id text NOT NULL,
    chunk_number integer NOT NULL,
    lower_id uuid NOT NULL,
    upper_id uuid NOT NULL,
    calls bigint,
    seconds numeric,
    committed_at timestamptz,
    PRIMARY KEY (run_id, chunk_number)
);

CREATE TABLE IF NOT EXISTS {{ c.tgt }}.migration_rejects (
    source_table text NOT NULL,
    source_id text NOT NULL,
    reason text NOT NULL CHECK (reason <> ''),
    source_row jsonb NOT NULL,
    rejected_at timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    PRIMARY KEY (source_table, source_id)
);

-- Before per-run records, the reconciliation table held only the latest run: it is derived data,
-- recomputed by every run, so the old shape is dropped.
DO $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM information_schema.tables
        WHERE table_schema = {{ params.target_schema | sql_literal }} AND table_name = 'migration_reconciliation'
    ) AND NOT EXISTS (
        SELECT 1 FROM information_schema.columns
        WHERE
            table_schema = {{ params.target_schema | sql_literal }}
            AND table_name = 'migration_reconciliation'
            AND column_name = 'run_id'
    ) THEN
        DROP TABLE {{ c.tgt }}.migration_reconciliation;
    END IF;
END
$$;

-- The reconciliation of each run, one row per legacy table (see record_run_account); keyed by
-- run so that concurrent runs (a backfill beside a manual run) each check their own numbers.
CREATE TABLE IF NOT EXISTS {{ c.tgt }}.migration_reconciliation (
    run_id text NOT NULL,
    window_start timestamptz,
    window_end timestamptz,
    recorded_at timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    position integer NOT NULL,
    source_table text NOT NULL,
    target_table text NOT NULL,
    legacy_rows bigint NOT NULL,
    landed bigint NOT NULL,
    rejected bigint NOT NULL,
    missing bigint NOT NULL,
    doubled bigint NOT NULL,
    unbalanced_ids text NOT NULL,
    rejected_by_reason text NOT NULL,
    PRIMARY KEY (run_id, source_table)
);

-- Every run records itself (outcome set by its final report_run task) ...
CREATE TABLE IF NOT EXISTS {{ c.tgt }}.migration_runs (
    run_id text PRIMARY KEY,
    run_type text NOT NULL,
    window_start timestamptz,
    window_end timestamptz,
    params jsonb NOT NULL,
    started_at timestamp NOT NULL,
    ended_at timestamp,
    outcome text NOT NULL DEFAULT 'running' CHECK (outcome IN ('running', 'success', 'failed')),
    failed_tasks text[] NOT NULL DEFAULT '{}'
);

-- ... what its steps wrote, per legacy table and tenant (counted by the upserts themselves; one
-- counter row per partition of the call step) ...
CREATE TABLE IF NOT EXISTS {{ c.tgt }}.migration_run_writes (
    run_id text NOT NULL,
    source_table text NOT NULL,
    tenant_id uuid NOT NULL,
    part integer NOT NULL,
    inserted bigint NOT NULL,
    updated bigint NOT NULL,
    PRIMARY KEY (run_id, source_table, tenant_id, part)
);

-- ... and its account per legacy table and tenant (record_run_account): in scope = inserted + updated +
-- unchanged + rejected, and = landed + rejected - doubled + missing; its sum per table is the
-- run's reconciliation. tenant_id is NULL for rows whose tenant cannot be known (their owner has no
-- organization).
CREATE TABLE IF NOT EXISTS {{ c.tgt }}.migration_run_tables (
    run_id text NOT NULL,
    source_table text NOT NULL,
    target_table text NOT NULL,
    tenant_id uuid,
    in_scope bigint NOT NULL,
    inserted bigint NOT NULL,
    updated bigint NOT NULL,
    unchanged bigint NOT NULL,
    rejected bigint NOT NULL,
    rejected_by_reason jsonb NOT NULL,
    cross_tenant_findings bigint NOT NULL
);

-- Added when the reconciliation became the sum of this account (a target created before keeps its rows),
-- then when runs learnt to remove what the legacy database no longer holds (`deleted`: target rows
-- removed) and to tell rows written after the run's snapshot (`pending`: taken by the next run).
ALTER TABLE {{ c.tgt }}.migration_run_tables
ADD COLUMN IF NOT EXISTS landed bigint NOT NULL DEFAULT 0,
ADD COLUMN IF NOT EXISTS missing bigint NOT NULL DEFAULT 0,
ADD COLUMN IF NOT EXISTS doubled bigint NOT NULL DEFAULT 0,
ADD COLUMN IF NOT EXISTS unbalanced_ids text NOT NULL DEFAULT '',
ADD COLUMN IF NOT EXISTS deleted bigint NOT NULL DEFAULT 0,
ADD COLUMN IF NOT EXISTS pending bigint NOT NULL DEFAULT 0;

ALTER TABLE {{ c.tgt }}.migration_run_writes
ADD COLUMN IF NOT EXISTS deleted bigint NOT NULL DEFAULT 0;

ALTER TABLE {{ c.tgt }}.migration_reconciliation
ADD COLUMN IF NOT EXISTS deleted bigint NOT NULL DEFAULT 0,
ADD COLUMN IF NOT EXISTS pending bigint NOT NULL DEFAULT 0;

-- The legacy database as this run first saw it: a legacy row written after it (its xmin not visible in
-- this snapshot) that no step took is pending for the next run, not missing.
ALTER TABLE {{ c.tgt }}.migration_runs
ADD COLUMN IF NOT EXISTS legacy_snapshot text;

-- ... the rows each step had in scope, per tenant and reason, counted in its own transaction (the
-- account's first half: see record_scope in _common.sql) ...
CREATE TABLE IF NOT EXISTS {{ c.tgt }}.migration_run_scope (
    run_id text NOT NULL,
    source_table text NOT NULL,
    part integer NOT NULL,
    tenant_id uuid,
    reason text,
    in_scope bigint NOT NULL,
    landed bigint NOT NULL,
    rejected bigint NOT NULL,
    missing bigint NOT NULL,
    doubled bigint NOT NULL,
    unbalanced_ids text NOT NULL
);

CREATE INDEX IF NOT EXISTS migration_run_scope_run_id ON {{ c.tgt }}.migration_run_scope (run_id, source_table, part);

-- ... and what each step found, in its own transaction (so the legacy application's later writes cannot
-- blur it), of the lineage it leaves: rows whose legacy row is gone (orphaned: must be none), with a
-- few ids. Read by check_lineage_matches_legacy.
CREATE TABLE IF NOT EXISTS {{ c.tgt }}.migration_run_lineage (
    run_id text NOT NULL,
    source_table text NOT NULL,
    part integer NOT NULL,
    orphaned bigint NOT NULL,
    example_ids text NOT NULL,
    PRIMARY KEY (run_id, source_table, part)
);

CREATE INDEX IF NOT EXISTS migration_run_tables_run_id ON {{ c.tgt }}.migration_run_tables (run_id);

INSERT INTO {{ c.tgt }}.migration_runs AS r (
    run_id, run_type, window_start, window_end, params, started_at, legacy_snapshot
)
VALUES (
    {{ c.run }},
    {{ migration_run_type() | text_literal }},
    {{ window.start_sql if window else "NULL" }},
    {{ window.end_sql if window else "NULL" }},
    {{ params | tojson | text_literal }}::jsonb,
    (now() AT TIME ZONE 'UTC'),
    pg_current_snapshot()::text
)
ON CONFLICT (run_id) DO UPDATE SET  -- a cleared and re-run run is running again
    outcome = 'running',
    ended_at = NULL,
    failed_tasks = '{}',
    legacy_snapshot = excluded.legacy_snapshot;

-- Findings are not failures: references the cutover must decide on (cross-tenant, dangling).
CREATE TABLE IF NOT EXISTS {{ c.tgt }}.migration_findings (
    kind text NOT NULL,
    source_table text NOT NULL,
    source_id text NOT NULL,
    tenant_id uuid,
    referenced_id text,
    referenced_tenant_id uuid,
    covered_by_grant boolean NOT NULL DEFAULT FALSE,
    PRIMARY KEY (kind, source_table, source_id)
);

-- The calls' findings, summed: per kind, tenant of the call, tenant of what it references and grant,
-- how many calls and a few of their ids (at most 8). Rebuilt by record_findings from the
-- migration_call_findings view below, which lists them call by call on demand; migration_findings
-- keeps the findings the steps record (a lead the application took over). One row per group, so its
-- size does not grow with the calls.
CREATE TABLE IF NOT EXISTS {{ c.tgt }}.migration_call_findings_summary (
    kind text NOT NULL,
    tenant_id uuid,
    referenced_tenant_id uuid,
    covered_by_grant boolean NOT NULL,
    calls bigint NOT NULL,
    example_call_ids text[] NOT NULL
);

-- Helpers for the checks, which must measure tables whose names are only known at run time.
CREATE OR REPLACE FUNCTION {{ c.tgt }}.migration_column_max(tbl regclass, col name)
RETURNS numeric LANGUAGE plpgsql STABLE AS $$
DECLARE
    result numeric;
BEGIN
    EXECUTE format('SELECT max(%I) FROM %s', col, tbl) INTO result;
    RETURN result;
END
$$;

CREATE OR REPLACE FUNCTION {{ c.tgt }}.migration_unknown_tenant_refs(tbl regclass)
RETURNS bigint LANGUAGE plpgsql STABLE AS $$
DECLARE
    result bigint;
BEGIN
    EXECUTE format(
        'SELECT count(*) FROM %s AS r WHERE r.tenant_id IS NOT NULL AND NOT EXISTS '
        '(SELECT 1 FROM %I.tenants AS t WHERE t.id = r.tenant_id)',
        tbl, {{ params.target_schema | sql_literal }}
    ) INTO result;
    RETURN result;
END
$$;

CREATE OR REPLACE VIEW {{ c.tgt }}.migration_id_map AS
SELECT
    source_table,
    source_id,
    target_table,
    target_id
FROM {{ c.tgt }}.migration_lineage
UNION ALL
SELECT
    'call_logs_voiceagent' AS source_table,
    cl.id::text AS source_id,
    'voice_calls' AS target_table,
    written.id::text AS target_id
FROM {{ c.src }}.call_logs_voiceagent AS cl
INNER JOIN {{ c.tgt }}.migration_calls AS written ON cl.id = written.id;

-- The calls' findings call by call, computed from the target tables when read (see call_findings in
-- _common.sql): what migration_call_findings_summary sums.
CREATE OR REPLACE VIEW {{ c.tgt }}.migration_call_findings AS
{{ c.call_findings() }};
