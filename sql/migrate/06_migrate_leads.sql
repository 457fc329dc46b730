-- Migrates leads_voiceagent into leads: stages its mapping (sql/mapping/leads.sql), upserts the rows
-- that land (counting the writes), and records lineage and quarantine.
{% import "_common.sql" as c with context %}
{{ c.serialize_step() }}

CREATE TEMP TABLE staged ON COMMIT DROP AS
{% include "mapping/leads.sql" %};  -- noqa: CV06

{% call c.counted_upsert("leads_voiceagent", staged="staged") %}
    INSERT INTO {{ c.tgt }}.leads AS t (id, tenant_id, name, phone, source, status, metadata)
    SELECT
        s.target_id::uuid,
        s.tenant_id,
        s.name,
        s.phone,
        'voice_agent',
        'active',
        s.metadata
    FROM staged AS s
    WHERE s.writes_lead
    ON CONFLICT (id) {{ c.update_if_changed("t", ["tenant_id", "name", "phone", "source", "status", "metadata"],
        touch=False) }}
    RETURNING t.id, t.tenant_id, t.xmax
{% endcall %};

{{ c.record_outcome("leads_voiceagent", "leads", staged="staged") }};

-- Done with it (a dry run runs every step in one transaction, so it must not outlive its step).
DROP TABLE staged;
