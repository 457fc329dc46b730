-- Adds a nullable tenant_id to the application's caches where they exist; their rows are untouched
-- (caches hold no owner to derive a tenant from: the application fills it as it refreshes them).
{% import "_common.sql" as c with context %}
{{ c.serialize_step() }}

DO $$
DECLARE
    cache regclass;
BEGIN
    FOR cache IN
        SELECT to_regclass(format('%I.%I', {{ params.target_schema | sql_literal }}, cache_name))
        FROM (VALUES ('company_search_cache'), ('employees_cache')) AS caches (cache_name)
    LOOP
        IF cache IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM pg_attribute
            WHERE attrelid = cache AND attname = 'tenant_id' AND NOT attisdropped
        ) THEN
            EXECUTE format('ALTER TABLE %s ADD COLUMN tenant_id uuid', cache);
        END IF;
    END LOOP;
END
$$;
