-- Every legacy number becomes a system-tenant phone number with a stable new uuid, or is quarantined
-- (no number, a number another legacy row or an application row already holds, a value too long).
-- The guide's mapping, column by column; `reason` is why a row is quarantined instead (NULL:
-- it lands). Staged and written by sql/migrate/04_migrate_phone_numbers.sql.
{% import "_common.sql" as c with context %}
SELECT
    mapped.*,
    CASE
        WHEN mapped.phone_number IS NULL THEN 'phone_number_missing'
        {{ c.too_long("mapped.phone_number", 50, "phone_number") }}
        {{ c.too_long("mapped.provider", 50, "provider") }}
        {{ c.too_long("mapped.number_type", 50, "number_type") }}
        WHEN mapped.phone_rank > 1 THEN 'duplicate_phone_number'
        -- Held by a number the migration did not write (the application's); its own numbers are
        -- updated or removed by this step.
        WHEN EXISTS (
            SELECT 1 FROM {{ c.tgt }}.phone_numbers AS p
            WHERE
                p.phone_number = mapped.phone_number
                AND p.id <> mapped.target_id::uuid
                AND NOT EXISTS (
                    SELECT 1 FROM {{ c.tgt }}.migration_lineage AS m
                    WHERE m.target_table = 'phone_numbers' AND m.target_id = p.id::text AND NOT m.linked
                )
        ) THEN 'phone_number_taken_in_target'
    END AS reason
FROM (
    SELECT
        n.id::text AS source_id,
        {{ c.stable_uuid("numbers_voiceagent", "n.id::text") }}::text AS target_id,
        to_jsonb(n) AS source_row,
        nullif(btrim(n.phone_number), '') AS phone_number,
        -- The first number holding a phone keeps it; numbers quarantined for another reason (a value too
        -- long) do not count, or their phone would not be migrated at all.
        row_number() OVER (
            PARTITION BY
                nullif(btrim(n.phone_number), ''),
                greatest(length(btrim(n.phone_number)), length(n.provider), length(n.type)) > 50
            ORDER BY n.id
        ) AS phone_rank,
        coalesce(n.provider, 'custom') AS provider,
        coalesce(n.type, 'local') AS number_type,
        coalesce(lower(btrim(n.status)) = 'active', FALSE) AS is_active,
        jsonb_build_object('old_id', n.id, 'status', n.status, 'default_agent', n.default_agent) AS metadata,
        (n.created_at AT TIME ZONE 'UTC') AS created_at
    FROM {{ c.src }}.numbers_voiceagent AS n
) AS mapped
