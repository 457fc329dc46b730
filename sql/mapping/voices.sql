-- Every legacy voice becomes a shared voice of the system tenant, or is quarantined with a reason.
-- The guide's mapping, column by column; `reason` is why a row is quarantined instead (NULL:
-- it lands). Staged and written by sql/migrate/03_migrate_voices.sql.
{% import "_common.sql" as c with context %}
SELECT
    mapped.*,
    CASE
        {{ c.too_long("mapped.voice_name", 255, "voice_name") }}
        {{ c.too_long("mapped.provider", 50, "provider") }}
        {{ c.too_long("mapped.gender", 20, "gender") }}
    END AS reason
FROM (
    SELECT
        v.id::text AS source_id,
        v.id::text AS target_id,
        to_jsonb(v) AS source_row,
        coalesce(v.provider_voice_id, v.description, 'Voice ' || v.id::text) AS voice_name,
        v.description,
        v.voice_sample_url,
        coalesce(v.provider, 'custom') AS provider,
        coalesce(v.gender, 'neutral') AS gender,
        jsonb_build_object(
            'accent', v.accent,
            'provider_config', v.provider_config,
            'provider_voice_id', v.provider_voice_id
        ) AS metadata
    FROM {{ c.src }}.voices_voiceagent AS v
) AS mapped
