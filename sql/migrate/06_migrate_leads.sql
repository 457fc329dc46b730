-- Migrates leads_voiceagent into leads: stages its mapping (sql/mapping/leads.sql), removes the leads it
-- wrote that no legacy lead maps onto any more, upserts the leads that land (counting the writes, and
-- updating a lead in place when its phone, owner or tenant changed), and records lineage and
-- quarantine. A lead links onto the application's lead with its tenant and phone, which is never
-- written; a lead the application changed since the migration wrote it is kept when its legacy lead
-- goes (a finding), never removed.
{% import "_common.sql" as c with context %}
{%- set table = catalog_table("leads_voiceagent") %}
{#- The lead as the migration writes it: what written_digest records, to tell a lead the application changed. -#}
{%- set lead_digest = "md5(row(t.tenant_id, t.name, t.phone, t.source, t.status, t.metadata)::text)" %}
{{ c.serialize_step() }}

CREATE TEMP TABLE staged ON COMMIT DROP AS
{% include "mapping/leads.sql" %};  -- noqa: CV06

-- A fresh lead id the application holds is never written (links onto its leads are by design).
{{ c.quarantine_held_targets(table, "staged", skip_linked=True) }};

-- A lead the application changed since the migration wrote it is kept (a finding) when its legacy lead goes.
{%- set taken_over = lead_digest ~ " IS DISTINCT FROM coalesce(u.written_digest, " ~ lead_digest ~ ")" %}
{{ c.remove_unmapped(table, "staged", kept=taken_over) }};

{% call c.counted_upsert(table.source_table, staged="staged") %}
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
    WHERE s.writes_lead AND s.reason IS NULL
    ON CONFLICT (id) {{ c.update_if_changed("t", ["tenant_id", "name", "phone", "source", "status", "metadata"],
        touch=False) }}
    RETURNING t.id, t.tenant_id, t.xmax
{% endcall %};

{{ c.record_outcome(table, "staged", linked=True, digest="CASE WHEN NOT s.linked THEN " ~ lead_digest ~ " END") }};

{{ c.record_orphans(table) }};

-- The table's account, in this step's snapshot.
{{ c.record_scope(table, None) }};

-- Done with it (a dry run runs every step in one transaction, so it must not outlive its step).
DROP TABLE staged;
