-- Creates (or brings back to least privilege) the role the migration DAG connects as: it can read the
-- legacy schema and write the target schema, nothing else.
--
-- Run it with psql (10 or later: it uses \if and \gset), once per database, as a superuser or as a
-- role with CREATEROLE that owns (or is a member of the owners of) the legacy tables, the target
-- schema and the application's tables in it:
--
--   psql "$ADMIN_URI" -v role_name=voice_agent_migration -v password="$MIGRATION_PASSWORD" \
--       -v source_schema=voice_agent -v target_schema=public -f sql/admin/create_migration_role.sql
--
-- Variables: role_name, source_schema, target_schema (required); password (optional, see below). A password given here travels in an ALTER ROLE statement, which the server's statement
-- logging may record, and `-v` shows it in the process list: rather pass a SCRAM verifier
-- (`SCRAM-SHA-256$4096:...`, stored as is), or leave it out and set it afterwards with psql's
-- `\password <role>`, which hashes it on the client. Give the DAG the role through the Airflow
-- connection voice_agent_db (a secrets backend, or AIRFLOW_CONN_VOICE_AGENT_DB from a secret), never in
-- the repository.
-- The script runs in one transaction, stops at the first error, and is safe to run again: run it again
-- after the application adds tables to the target schema, or when the mapping reads another legacy
-- table (add it to the list below).
--
-- What the role gets, and why (each privilege is what some step of sql/ needs):
--   * LOGIN, and NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS, no role memberships.
--     An existing role with any of those attributes or memberships is refused, not silently kept.
--   * CONNECT and TEMPORARY on this database (the steps stage rows in temp tables), not CREATE: the
--     role cannot create schemas. The target schema is created here if missing, owned by whoever
--     runs this script (the migration creates it only when it does not exist).
--   * Source schema: USAGE, and SELECT on exactly the seven legacy tables the migration reads (whole
--     rows: quarantined rows are kept as they were). Nothing else: no other legacy table, no
--     INSERT/UPDATE/DELETE/TRUNCATE/REFERENCES/TRIGGER, no CREATE in the schema; any such privilege
--     the role held before is revoked, and the script fails if the role could still write there (a
--     grant to PUBLIC). No default privileges: the migration never reads tables added later.
--   * Target schema: USAGE and CREATE. The migration creates its own tables, views and functions, so
--     the role owns them (VACUUM, CREATE OR REPLACE and ALTER need ownership); the schema itself
--     stays the administrator's.
--   * The application's tables in the target schema are NOT the role's, and the role is not made a
--     member of their owner (that would let it alter or drop every one of them). Instead this script,
--     run by the administrator, adds what the migration would otherwise add with ALTER TABLE (both
--     steps only add what is missing, so they then alter nothing):
--       - leads: the nullable columns tenant_id, name, phone, source, status, metadata when missing;
--         the role gets SELECT (it merges legacy leads onto the application's by tenant and phone,
--         and its checks read the merged rows), INSERT of the columns it maps (id, tenant_id, name,
--         phone, source, status, metadata) and UPDATE of those but id, and DELETE: every run removes
--         the leads it wrote whose legacy lead is gone (and the rollback all it wrote); PostgreSQL
--         cannot limit DELETE to those rows, the migration's SQL does (its lineage). No TRUNCATE, and
--         the application's other columns cannot be written.
--       - company_search_cache and employees_cache (where they exist): a nullable tenant_id when
--         missing; the role may read that column only (the orphan check proves it references known
--         tenants), never the cached data.
--       - every column of an application table that owns a sequence (serial, identity): SELECT on
--         that column and on its sequence, because check_sequences_past_max_id compares every
--         sequence of the target schema with its column's max. Run the script again after the
--         application adds such a table.
--   * Nothing on any other schema. On PostgreSQL 14 and older every role may create in `public`
--     (a grant to PUBLIC): the script warns if the role can create anywhere but the target schema.
--
-- If an earlier run created the migration's tables as another role, transfer them to this role
-- (ALTER TABLE ... OWNER TO) before running the DAG as it.

\set ON_ERROR_STOP on

\if :{?role_name}
\if :{?source_schema}
\if :{?target_schema}
\set variables_set 1
\endif
\endif
\endif
\if :{?variables_set}
\else
DO $$ BEGIN RAISE EXCEPTION 'set role_name, source_schema and target_schema with psql -v'; END $$;
\endif

BEGIN;

-- The names, for the DO blocks below (psql does not substitute variables inside dollar quotes).
-- (\gset stores the same values back into the variables, and the database's name.)
SELECT
    set_config('migration_role.role_name', :'role_name', TRUE) AS role_name,
    set_config('migration_role.source_schema', :'source_schema', TRUE) AS source_schema,
    set_config('migration_role.target_schema', :'target_schema', TRUE) AS target_schema,
    current_database() AS migration_database
\gset

-- The role: created with no attributes but LOGIN; an existing one must have none either.
DO $$
DECLARE
    role_name text := current_setting('migration_role.role_name');
    existing pg_roles;
    memberships text;
BEGIN
    SELECT * INTO existing FROM pg_roles WHERE rolname = role_name;
    IF NOT FOUND THEN
        EXECUTE format(
            'CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS', role_name
        );
        RETURN;
    END IF;
    IF existing.rolsuper OR existing.rolcreatedb OR existing.rolcreaterole OR existing.rolreplication
        OR existing.rolbypassrls THEN
        RAISE EXCEPTION 'role % exists with SUPERUSER, CREATEDB, CREATEROLE, REPLICATION or BYPASSRLS', role_name
            USING HINT = 'use a dedicated role for the migration, or remove those attributes first';
    END IF;
    SELECT string_agg(m.roleid::regrole::text, ', ') INTO memberships
    FROM pg_auth_members AS m
    WHERE m.member = existing.oid;
    IF memberships IS NOT NULL THEN
        RAISE EXCEPTION 'role % is a member of %: it would hold their privileges too', role_name, memberships
            USING HINT = 'use a dedicated role for the migration, or revoke those memberships first';
    END IF;
    EXECUTE format('ALTER ROLE %I LOGIN', role_name);
END
$$;

\if :{?password}
ALTER ROLE :"role_name" PASSWORD :'password';
\endif

-- The database: connect and use temp tables, never create schemas.
GRANT CONNECT, TEMPORARY ON DATABASE :"migration_database" TO :"role_name";
REVOKE CREATE ON DATABASE :"migration_database" FROM :"role_name";

-- The legacy schema: read the tables the migration maps, nothing more.
REVOKE ALL ON ALL TABLES IN SCHEMA :"source_schema" FROM :"role_name";
REVOKE ALL ON ALL SEQUENCES IN SCHEMA :"source_schema" FROM :"role_name";
REVOKE CREATE ON SCHEMA :"source_schema" FROM :"role_name";
GRANT USAGE ON SCHEMA :"source_schema" TO :"role_name";
GRANT SELECT ON
:"source_schema".users_voiceagent,
:"source_schema".voices_voiceagent,
:"source_schema".numbers_voiceagent,
:"source_schema".agents_voiceagent,
:"source_schema".leads_voiceagent,
:"source_schema".call_logs_voiceagent,
:"source_schema".org_permissions_voiceagent
TO :"role_name";

-- The target schema: create the migration's own objects in it.
CREATE SCHEMA IF NOT EXISTS :"target_schema";
GRANT USAGE, CREATE ON SCHEMA :"target_schema" TO :"role_name";

-- The application's tables in the target schema: add what the migration would add, grant what it
-- reads and writes (see the header).
DO $$
DECLARE
    role_name text := current_setting('migration_role.role_name');
    role_oid oid := to_regrole(quote_ident(current_setting('migration_role.role_name')));
    target_schema text := current_setting('migration_role.target_schema');
    leads regclass;
    missing record;
    cache regclass;
    owned record;
BEGIN
    SELECT c.oid INTO leads
    FROM pg_class AS c
    WHERE
        c.relnamespace = to_regnamespace(quote_ident(target_schema))
        AND c.relname = 'leads'
        AND c.relkind IN ('r', 'p')
        AND c.relowner <> role_oid;
    IF leads IS NOT NULL THEN
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
                SELECT 1 FROM pg_attribute AS att
                WHERE att.attrelid = leads AND att.attname = wanted.column_name AND NOT att.attisdropped
            )
        LOOP
            EXECUTE format('ALTER TABLE %s ADD COLUMN %I %s', leads, missing.column_name, missing.column_type);
        END LOOP;
        EXECUTE format('GRANT SELECT ON %s TO %I', leads, role_name);
        EXECUTE format(
            'GRANT INSERT (id, tenant_id, name, phone, source, status, metadata),'
            ' UPDATE (tenant_id, name, phone, source, status, metadata) ON %s TO %I',
            leads, role_name
        );
        EXECUTE format('GRANT DELETE ON %s TO %I', leads, role_name);
    END IF;

    FOR cache IN
        SELECT c.oid
        FROM pg_class AS c
        WHERE
            c.relnamespace = to_regnamespace(quote_ident(target_schema))
            AND c.relname IN ('company_search_cache', 'employees_cache')
            AND c.relkind IN ('r', 'p')
            AND c.relowner <> role_oid
    LOOP
        IF NOT EXISTS (
            SELECT 1 FROM pg_attribute AS att
            WHERE att.attrelid = cache AND att.attname = 'tenant_id' AND NOT att.attisdropped
        ) THEN
            EXECUTE format('ALTER TABLE %s ADD COLUMN tenant_id uuid', cache);
        END IF;
        EXECUTE format('GRANT SELECT (tenant_id) ON %s TO %I', cache, role_name);
    END LOOP;

    -- As check_sequences_past_max_id finds them: sequences owned by a column of the target schema.
    FOR owned IN
        SELECT
            seq.oid::regclass AS sequence_name,
            tbl.oid::regclass AS table_name,
            att.attname AS column_name
        FROM pg_depend AS dep
        INNER JOIN pg_class AS seq ON dep.objid = seq.oid AND seq.relkind = 'S'
        INNER JOIN pg_class AS tbl ON dep.refobjid = tbl.oid
        INNER JOIN pg_attribute AS att ON tbl.oid = att.attrelid AND dep.refobjsubid = att.attnum
        WHERE
            dep.classid = 'pg_class'::regclass
            AND dep.refclassid = 'pg_class'::regclass
            AND dep.deptype IN ('a', 'i')
            AND tbl.relnamespace = to_regnamespace(quote_ident(target_schema))
            AND tbl.relowner <> role_oid
    LOOP
        EXECUTE format('GRANT SELECT ON SEQUENCE %s TO %I', owned.sequence_name, role_name);
        EXECUTE format('GRANT SELECT (%I) ON %s TO %I', owned.column_name, owned.table_name, role_name);
    END LOOP;
END
$$;

-- What the role can do now, through PUBLIC included: never write the legacy schema; warn if it can
-- create outside the target schema.
DO $$
DECLARE
    role_name text := current_setting('migration_role.role_name');
    source_schema text := current_setting('migration_role.source_schema');
    target_schema text := current_setting('migration_role.target_schema');
    writable text;
    creatable text;
BEGIN
    SELECT string_agg(format('%I.%I', n.nspname, c.relname), ', ' ORDER BY c.relname) INTO writable
    FROM pg_class AS c
    INNER JOIN pg_namespace AS n ON c.relnamespace = n.oid
    WHERE
        n.nspname = source_schema
        AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
        AND has_table_privilege(role_name, c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE, TRIGGER, REFERENCES');
    IF writable IS NOT NULL OR has_schema_privilege(role_name, source_schema, 'CREATE') THEN
        RAISE EXCEPTION 'role % could still write the legacy schema %: %', role_name, source_schema,
            coalesce(writable, 'CREATE on the schema')
            USING HINT = 'a grant to PUBLIC gives it to every role: revoke it';
    END IF;

    SELECT string_agg(quote_ident(n.nspname), ', ' ORDER BY n.nspname) INTO creatable
    FROM pg_namespace AS n
    WHERE n.nspname <> target_schema AND has_schema_privilege(role_name, n.oid, 'CREATE');
    IF creatable IS NOT NULL THEN
        RAISE WARNING 'role % can create objects in schema(s) % besides %', role_name, creatable, target_schema
            USING HINT = 'a grant to PUBLIC (PostgreSQL 14 and older: public) gives it to every role';
    END IF;
END
$$;

COMMIT;
