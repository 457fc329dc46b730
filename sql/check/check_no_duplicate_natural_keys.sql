-- Passes when no phone number is held twice and no tenant has two leads with one phone (counting
-- every group that includes a migrated lead, so a duplicate of an application lead is caught too).
{% import "_common.sql" as c with context %}
WITH duplicates AS (
    SELECT
        'phone_numbers(phone_number)' AS natural_key,
        phone_number AS key_value,
        count(*) AS copies
    FROM {{ c.tgt }}.phone_numbers
    GROUP BY phone_number
    HAVING count(*) > 1
    UNION ALL
    SELECT
        'leads(tenant_id, phone)',
        ld.tenant_id::text || ' ' || ld.phone,
        count(*)
    FROM {{ c.tgt }}.leads AS ld
    LEFT JOIN (
        SELECT DISTINCT m.target_id::uuid AS id FROM {{ c.tgt }}.migration_lineage AS m
        WHERE m.source_table = 'leads_voiceagent'
    ) AS migrated ON ld.id = migrated.id
    WHERE ld.phone IS NOT NULL AND ld.tenant_id IS NOT NULL
    GROUP BY ld.tenant_id, ld.phone
    HAVING count(*) > 1 AND count(migrated.id) > 0
)

SELECT
    count(*) = 0 AS no_duplicates,
    coalesce(
        string_agg(format('%s = %s held %s times', natural_key, key_value, copies), '; ' ORDER BY key_value),
        'natural keys are unique'
    ) AS detail
FROM duplicates
