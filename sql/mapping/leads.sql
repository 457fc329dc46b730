-- Legacy leads land in the main leads table under their creator's tenant. Leads of one tenant that
-- share a phone merge onto one lead; the lineage points every legacy id at it. Leads without a phone
-- land one each. Staged and written by sql/migrate/06_migrate_leads.sql.
-- Identity is stable: a lead the migration wrote stays the same target lead for its whole life,
-- through a change of phone, of owner or of tenant (updated in place). A merged group keeps the lead
-- of its lowest legacy lead that already had one; leads that split off get leads of their own. A group
-- whose tenant and phone match a lead the migration did not write (the application's) is linked to
-- it, that lead left untouched, and what the link would lose (names, notes) kept in the lineage.
-- The guide's mapping, column by column; `reason` is why a row is quarantined instead (NULL:
-- it lands).
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
),

-- The leads the migration wrote, each with the group of the lowest legacy lead still pointing at it.
claims AS (
    SELECT DISTINCT ON (m.target_id)
        m.target_id,
        g.representative_id,
        g.legacy_id AS claimant
    FROM grouped AS g
    INNER JOIN {{ c.tgt }}.migration_lineage AS m
        ON m.source_table = 'leads_voiceagent' AND g.source_id = m.source_id AND NOT m.linked
    INNER JOIN {{ c.tgt }}.leads AS written ON m.target_id = written.id::text
    ORDER BY m.target_id, g.legacy_id
),

-- Per group, the lead it keeps: of those it won, the one its lowest legacy lead pointed at.
kept AS (
    SELECT DISTINCT ON (claims.representative_id)
        claims.representative_id,
        claims.target_id
    FROM claims
    ORDER BY claims.representative_id, claims.claimant
),

placed AS (
    SELECT
        g.*,
        app_lead.id AS app_lead_id,
        coalesce(
            app_lead.id::text,
            kept.target_id,
            -- A new lead: a stable id from its lowest legacy lead, unless another group keeps that id
            -- (its lowest lead merged under a lower one, then split off), then one from its tenant too.
            CASE
                WHEN
                    EXISTS (
                        SELECT 1 FROM kept AS other
                        WHERE
                            other.target_id = {{ c.stable_uuid("leads_voiceagent", "g.representative_id::text") }}::text
                    )
                    THEN
                        {{ c.stable_uuid("leads_voiceagent", "g.representative_id::text || ':' || g.tenant_id") }}::text
                ELSE {{ c.stable_uuid("leads_voiceagent", "g.representative_id::text") }}::text
            END
        ) AS target_id
    FROM grouped AS g
    LEFT JOIN kept ON g.representative_id = kept.representative_id
    LEFT JOIN LATERAL (
        SELECT existing.id
        FROM {{ c.tgt }}.leads AS existing
        WHERE
            g.phone IS NOT NULL
            AND existing.tenant_id = g.tenant_id
            AND existing.phone = g.phone
            AND NOT EXISTS (
                SELECT 1 FROM {{ c.tgt }}.migration_lineage AS m
                WHERE m.target_table = 'leads' AND m.target_id = existing.id::text AND NOT m.linked
            )
        ORDER BY existing.id
        LIMIT 1
    ) AS app_lead ON TRUE
)

SELECT
    p.source_id,
    p.source_row,
    p.reason,
    p.tenant_id,
    p.name,
    p.phone,
    p.legacy_id = p.representative_id AND p.app_lead_id IS NULL AS writes_lead,
    p.app_lead_id IS NOT NULL AS linked,
    CASE
        WHEN p.app_lead_id IS NOT NULL
            THEN jsonb_build_object(
                'name', p.name, 'notes', p.notes, 'added_by_user_id', p.added_by_user_id
            )
    END AS detail,
    p.target_id,
    jsonb_build_object(
        'old_voice_agent_id', p.legacy_id,
        'notes', p.notes,
        'added_by_user_id', p.added_by_user_id
    ) || CASE
        WHEN p.group_size > 1 THEN jsonb_build_object('merged_leads', p.merged_leads)
        ELSE '{}'::jsonb
    END AS metadata
FROM placed AS p
UNION ALL
SELECT
    legacy.source_id,
    legacy.source_row,
    legacy.reason,
    NULL,
    NULL,
    NULL,
    FALSE,
    FALSE,
    NULL,
    NULL,
    NULL
FROM legacy
WHERE legacy.reason IS NOT NULL
