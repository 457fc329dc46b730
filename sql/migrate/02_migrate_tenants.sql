-- One tenant per legacy organization (from users) plus the system tenant for shared resources.
-- Tenants the application created itself (no migration marker) are never overwritten.
{% import "_common.sql" as c with context %}
{{ c.serialize_step() }}

INSERT INTO {{ c.tgt }}.tenants (id, name, plan, is_active, metadata, created_at, updated_at)
VALUES (
    {{ c.system_tenant }},
    'System (Shared Resources)',
    'system',
    TRUE,
    '{"type": "system", "purpose": "shared_voices_and_numbers"}',
    (now() AT TIME ZONE 'UTC'),
    (now() AT TIME ZONE 'UTC')
)
ON CONFLICT (id) DO NOTHING;

INSERT INTO {{ c.tgt }}.tenants AS t (id, name, plan, is_active, metadata, created_at, updated_at)
SELECT
    u.organization_id AS id,
    'Organization ' || u.organization_id::text AS name,
    'pro' AS plan,
    TRUE AS is_active,
    jsonb_build_object('user_count', count(*), 'source', 'voice_agent_migration') AS metadata,
    min((u.created_at AT TIME ZONE 'UTC')) AS created_at,
    (now() AT TIME ZONE 'UTC') AS updated_at
FROM {{ c.src }}.users_voiceagent AS u
WHERE u.organization_id IS NOT NULL
GROUP BY u.organization_id
ON CONFLICT (id) DO UPDATE SET
    metadata = excluded.metadata,
    created_at = excluded.created_at,
    updated_at = excluded.updated_at
WHERE
t.metadata ->> 'source' = 'voice_agent_migration'
AND (t.metadata, t.created_at) IS DISTINCT FROM (excluded.metadata, excluded.created_at);
