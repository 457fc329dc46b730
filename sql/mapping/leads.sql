-- Legacy leads land in the main leads table under their creator's tenant. Leads of one tenant that
-- share a phone merge onto one lead (an existing main-application lead if there is one, left
-- untouched); the lineage points every legacy id at it. Leads without a phone land one each.
-- The guide's mapping, column by column; `reason` is why a row is quarantined instead (NULL:
-- it lands). Staged and written by sql/migrate/06_migrate_leads.sql.
{% import "_common.sql" as c with context %}
WITH legacy AS (
    SELECT
        l.id AS legacy_id,
        l.id::text AS source_id,
        to_jsonb(l) AS source_row,
        u.organization_id AS tenant_id,
        u.user_id AS added_by_user_id,
        -- The application's leads table may require a name: a lead without one is named after its id.
        coalesce(l.name, 'Lead ' || l.id::text) AS name,
        nullif(btrim(l.lead_number), '') AS phone,
        l.notes,
        CASE
            {{ c.owner_reason("l.added_by", "u") }}
            {{ c.too_long("l.name", 255, "name") }}
            {{ c.too_long("btrim(l.lead_number)", 50, "phone") }}
        END AS reason
    FROM {{ c.src }}.leads_voiceagent AS l
    LEFT JOIN {{ c.src }}.users_voiceagent AS u ON l.added_by = u.id
),

grouped AS (
    SELECT
        legacy.*,
        CASE
            WHEN legacy.phone IS NULL THEN {{ c.stable_uuid("leads_voiceagent", "legacy.source_id") }}
            ELSE {{ c.stable_uuid("leads", "legacy.tenant_id::text || ':' || legacy.phone") }}
        END AS own_id,
        min(legacy.legacy_id) OVER merge_group AS representative_id,
        count(*) OVER merge_group AS group_size,
        jsonb_agg(
            jsonb_build_object(
                'old_voice_agent_id', legacy.legacy_id,
                'name', legacy.name,
                'notes', legacy.notes,
                'added_by_user_id', legacy.added_by_user_id
            )
        ) OVER merge_group AS merged_leads
    FROM legacy
    WHERE legacy.reason IS NULL
    WINDOW merge_group AS (
        PARTITION BY legacy.tenant_id, legacy.phone, CASE WHEN legacy.phone IS NULL THEN legacy.legacy_id END
        ORDER BY legacy.legacy_id ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
    )
)

SELECT
    g.source_id,
    g.source_row,
    g.reason,
    g.tenant_id,
    g.name,
    g.phone,
    g.legacy_id = g.representative_id AND app_lead.id IS NULL AS writes_lead,
    coalesce(app_lead.id, g.own_id)::text AS target_id,
    jsonb_build_object(
        'old_voice_agent_id', g.legacy_id,
        'notes', g.notes,
        'added_by_user_id', g.added_by_user_id
    ) || CASE
        WHEN g.group_size > 1 THEN jsonb_build_object('merged_leads', g.merged_leads)
        ELSE '{}'::jsonb
    END AS metadata
FROM grouped AS g
LEFT JOIN LATERAL (
    SELECT existing.id
    FROM {{ c.tgt }}.leads AS existing
    WHERE
        g.phone IS NOT NULL
        AND existing.tenant_id = g.tenant_id
        AND existing.phone = g.phone
        AND existing.id <> g.own_id
    ORDER BY existing.id
    LIMIT 1
) AS app_lead ON TRUE
UNION ALL
SELECT
    legacy.source_id,
    legacy.source_row,
    legacy.reason,
    NULL,
    NULL,
    NULL,
    FALSE,
    NULL,
    NULL
FROM legacy
WHERE legacy.reason IS NOT NULL
