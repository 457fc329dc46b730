{#-
  Shared by every step: `{% import "_common.sql" as c with context %}`. Importing it only sets names
  (it calls nothing); each macro takes what it works on as arguments and returns SQL.
  Schema names and the system tenant come from validated params; the filters quote them again
  (identifiers) or refuse them (anything not a UUID), so nothing unchecked reaches the database.
-#}
{%- set src = params.source_schema | ident -%}
{%- set tgt = params.target_schema | ident -%}
{%- set system_tenant = params.system_tenant_id | uuid_literal -%}
{#- The Airflow run this rendering belongs to (keys the run's own records), as a SQL literal. -#}
{%- set run = (run_id | default("manual__outside_airflow")) | text_literal -%}

{#-
  A call is in a run's window when its started_at (a timestamptz) lies in the half-open UTC window
  `window` (from `{% set window = migration_window() %}`, see plugins/voice_agent_migration/window.py;
  None for a run over every call). Comparing timestamptz values compares instants, so the session's
  TimeZone cannot move a call in or out of a window.
-#}
{%- macro in_window(started_at, window) -%}
{%- if window -%}
({{ started_at }} >= {{ window.start_sql }} AND {{ started_at }} < {{ window.end_sql }})
{%- else -%}
TRUE
{%- endif -%}
{%- endmacro -%}

{#- A stable uuid for a legacy row that has none: re-runs find the same target row. -#}
{%- macro stable_uuid(namespace, key) -%}md5('{{ namespace }}:' || {{ key }})::uuid{%- endmacro -%}

{#-
  Serialises the migration's writers so concurrent runs cannot interleave a step, then bounds waiting
  for the legacy application's locks and any one statement (params lock_timeout / statement_timeout):
  waiting for another run of this migration is expected, waiting behind the application is not. A
  step that hits one fails with PostgreSQL's "canceling statement due to lock timeout" (or statement
  timeout), which its log and alert show, and is retried. `partition_locks`: the call step's
  partitions hold the step lock together, then their own locks (see _incremental.sql).
-#}
{%- macro serialize_step(partition_locks=None) -%}
SELECT pg_advisory_xact_lock{{ "_shared" if partition_locks }}(hashtext('voice_agent_tenant_migration'));
{%- if partition_locks %}
{{ partition_locks }}
{%- endif %}
SELECT
    set_config('lock_timeout', {{ params.lock_timeout | text_literal }}, TRUE),
    set_config('statement_timeout', {{ params.statement_timeout | text_literal }}, TRUE);
{%- endmacro -%}

{#-
  The catalog's tables (plugins/voice_agent_migration/catalog.py) as a FROM item
  `t (position, source_table, target_table)`, in the guide's order.
-#}
{%- macro migrated_tables() -%}
(
    VALUES
    {%- for table in catalog %}
    ({{ loop.index }}, '{{ table.source_table }}', '{{ table.target_table }}'){{ "," if not loop.last }}
    {%- endfor %}
) AS t (position, source_table, target_table)
{%- endmacro -%}

{#-
  The tenant of a legacy row `lg` of catalog table `table`: the system tenant, its owner's
  organization (joined as `u` by owner_join) or its own organization column.
-#}
{%- macro tenant_of(table) -%}
{%- if table.owner_column -%}
u.organization_id
{%- elif table.organization_column -%}
lg.{{ table.organization_column }}
{%- else -%}
{{ system_tenant }}
{%- endif -%}
{%- endmacro -%}

{%- macro owner_join(table) -%}
{%- if table.owner_column %}
LEFT JOIN {{ src }}.users_voiceagent AS u ON lg.{{ table.owner_column }} = u.id
{%- endif -%}
{%- endmacro -%}

{#-
  A query of every legacy row of catalog table `table` (the calls of `window` only, for a windowed
  table): (source_table, source_id as text, tenant_id).
-#}
{%- macro legacy_rows(table, window) -%}
SELECT
    '{{ table.source_table }}' AS source_table,
    lg.{{ table.source_key }}::text AS source_id,
    {{ tenant_of(table) }} AS tenant_id
FROM {{ src }}.{{ table.source_table }} AS lg
{{- owner_join(table) }}
{%- if table.window_column %}
WHERE {{ in_window("lg." ~ table.window_column, window) }}
{%- endif -%}
{%- endmacro -%}

{#- Reason a row is quarantined because a value does not fit its target varchar. -#}
{%- macro too_long(expr, limit, column) -%}
WHEN length({{ expr }}) > {{ limit }} THEN 'too_long:{{ column }}'
{%- endmacro -%}

{#- Why a resource cannot get a tenant from its legacy user reference (NULL when it can). -#}
{%- macro owner_reason(ref, user_alias) -%}
WHEN {{ ref }} IS NULL THEN 'owner_missing'
WHEN {{ user_alias }}.id IS NULL THEN 'owner_not_found'
WHEN {{ user_alias }}.organization_id IS NULL THEN 'owner_without_organization'
{%- endmacro -%}

{#- ON CONFLICT tail that writes only when a mapped column changed, so re-runs write nothing. -#}
{%- macro update_if_changed(alias, columns, touch=True) -%}
DO UPDATE SET
{%- for col in columns %}
    {{ col }} = excluded.{{ col }}{{ "," if touch or not loop.last }}
{%- endfor %}
{%- if touch %}
    updated_at = excluded.updated_at
{%- endif %}
WHERE ({% for col in columns %}{{ alias }}.{{ col }}{{ ", " if not loop.last }}{% endfor %})
    IS DISTINCT FROM ({% for col in columns %}excluded.{{ col }}{{ ", " if not loop.last }}{% endfor %})
{%- endmacro -%}

{#-
  An upsert that counts what it wrote: `{% call c.counted_upsert(source_table, staged="staged") %}
  INSERT ... ON CONFLICT ... RETURNING t.id, t.tenant_id, t.xmax{% endcall %}` runs the INSERT and
  adds its writes to this run's migration_run_writes, per tenant. A row the upsert inserted has xmax 0
  in RETURNING; one it updated carries the row lock. Counts are in legacy rows: with `staged` (a
  relation of (target_id text, reason)), a written target row counts every staged legacy row mapped
  onto it (merged leads); without, each written row counts once (a call). Additive, so a retried step
  adds what its retry wrote; `part` keeps a counter row per partition of the call step, so concurrent
  partitions never wait on one.
-#}
{%- macro counted_upsert(source_table, staged=None, part="0") -%}
WITH written AS (
    {{ caller() }}
)

INSERT INTO {{ tgt }}.migration_run_writes AS w (run_id, source_table, tenant_id, part, inserted, updated)
SELECT
    {{ run }},
    '{{ source_table }}',
    written.tenant_id,
    {{ part }},
    count(*) FILTER (WHERE written.xmax = '0'::xid),
    count(*) FILTER (WHERE written.xmax <> '0'::xid)
FROM written
{%- if staged %}
INNER JOIN {{ staged }} AS s ON written.id::text = s.target_id AND s.reason IS NULL
{%- endif %}
GROUP BY written.tenant_id
ON CONFLICT (run_id, source_table, tenant_id, part) DO UPDATE SET
    inserted = w.inserted + excluded.inserted,
    updated = w.updated + excluded.updated
{%- endmacro -%}

{#-
  Lineage and quarantine of a small table from `staged`, a relation of
  (source_id, target_id, reason, source_row): every legacy row ends in exactly one of the two.
  A row landed earlier stays landed (its lineage is kept); a row that now lands leaves the quarantine.
-#}
{%- macro record_outcome(source_table, target_table, staged) -%}
INSERT INTO {{ tgt }}.migration_lineage AS m (source_table, source_id, target_table, target_id)
SELECT
    '{{ source_table }}',
    s.source_id,
    '{{ target_table }}',
    s.target_id
FROM {{ staged }} AS s
WHERE s.reason IS NULL
ON CONFLICT (source_table, source_id) DO UPDATE SET
    target_table = excluded.target_table,
    target_id = excluded.target_id
WHERE (m.target_table, m.target_id) IS DISTINCT FROM (excluded.target_table, excluded.target_id);

DELETE FROM {{ tgt }}.migration_rejects AS r
USING {{ staged }} AS s
WHERE
    r.source_table = '{{ source_table }}'
    AND r.source_id = s.source_id
    AND s.reason IS NULL;

INSERT INTO {{ tgt }}.migration_rejects AS r (source_table, source_id, reason, source_row)
SELECT
    '{{ source_table }}',
    s.source_id,
    s.reason,
    s.source_row
FROM {{ staged }} AS s
WHERE
    s.reason IS NOT NULL
    AND NOT EXISTS (
        SELECT 1 FROM {{ tgt }}.migration_lineage AS m
        WHERE m.source_table = '{{ source_table }}' AND m.source_id = s.source_id
    )
ON CONFLICT (source_table, source_id) DO UPDATE SET
    reason = excluded.reason,
    source_row = excluded.source_row,
    rejected_at = excluded.rejected_at
WHERE (r.reason, r.source_row) IS DISTINCT FROM (excluded.reason, excluded.source_row)
{%- endmacro -%}
