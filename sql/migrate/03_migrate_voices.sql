-- Every legacy voice becomes a shared voice of the system tenant, or is quarantined with a reason.
{% import "_common.sql" as c with context %}
{{ c.serialize_step() }}

CREATE TEMP TABLE staged ON COMMIT DROP AS
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
) AS mapped;

{% call c.counted_upsert("voices_voiceagent", staged="staged") %}
    INSERT INTO {{ c.tgt }}.voices AS t (
        id, tenant_id, voice_name, description, voice_sample_url, provider, language, gender,
        is_active, metadata, created_at, updated_at
    )
    SELECT
        s.target_id,
        {{ c.system_tenant }},
        s.voice_name,
        s.description,
        s.voice_sample_url,
        s.provider,
        'en',
        s.gender,
        TRUE,
        s.metadata,
        (now() AT TIME ZONE 'UTC'),
        (now() AT TIME ZONE 'UTC')
    FROM staged AS s
    WHERE s.reason IS NULL
    ON CONFLICT (id) {{ c.update_if_changed("t", ["tenant_id", "voice_name", "description", "voice_sample_url",
        "provider", "language", "gender", "is_active", "metadata"]) }}
    RETURNING t.id, t.tenant_id, t.xmax
{% endcall %};

{{ c.record_outcome("voices_voiceagent", "voices", staged="staged") }};

-- Done with it (a dry run runs every step in one transaction, so it must not outlive its step).
DROP TABLE staged;
