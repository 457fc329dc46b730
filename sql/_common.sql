{#-
  Shared by every step: `{% import "_common.sql" as c with context %}`.
  Schema names and the system tenant come from validated params; the filters quote them again
  (identifiers) or refuse them (anything not a UUID), so nothing unchecked reaches the database.
-#}
{%- set src = params.source_schema | ident -%}
{%- set tgt = params.target_schema | ident -%}
{%- set system_tenant = params.system_tenant_id | uuid_literal -%}
{#- The Airflow run this rendering belongs to (keys the run's own records), as a SQL literal. -#}
{%- set run = (run_id | default("manual__outside_airflow")) | text_literal -%}

{#-
  The calls this run migrates: None (every call) or a half-open UTC window of started_at, from the
  params or the run's data interval (plugins/voice_agent_migration/window.py). Comparing timestamptz
  values compares instants, so the session's TimeZone cannot move a call in or out of a window.
-#}
{%- set window = migration_window() -%}
{%- set run_type = migration_run_type() -%}
{%- macro in_window(started_at) -%}
{%- if window -%}
({{ started_at }} >= {{ window.start_sql }} AND {{ started_at }} < {{ window.end_sql }})
{%- else -%}
TRUE
{%- endif -%}
{%- endmacro -%}

{#- Wall-clock UTC for a timestamptz, whatever the session or database TimeZone. -#}
{%- macro utc(expr) -%}({{ expr }} AT TIME ZONE 'UTC'){%- endmacro -%}

{%- macro now_utc() -%}(now() AT TIME ZONE 'UTC'){%- endmacro -%}

{#- A stable uuid for a legacy row that has none: re-runs find the same target row. -#}
{%- macro stable_uuid(namespace, key) -%}md5('{{ namespace }}:' || {{ key }})::uuid{%- endmacro -%}

{#-
  Bounds on waiting for the legacy application's locks and on any one statement (params
  lock_timeout / statement_timeout), set once the step holds its own advisory lock: waiting for
  another run of this migration is expected, waiting behind the application is not. A step that hits
  one fails with PostgreSQL's "canceling statement due to lock timeout" (or statement timeout), which
  its log and alert show, and is retried.
-#}
{%- macro bound_waits() -%}
SELECT
    set_config('lock_timeout', {{ params.lock_timeout | text_literal }}, TRUE),
    set_config('statement_timeout', {{ params.statement_timeout | text_literal }}, TRUE);
{%- endmacro -%}

{#- Serialises the migration's writers so concurrent runs cannot interleave a step. -#}
{%- macro serialize_step() -%}
SELECT pg_advisory_xact_lock(hashtext('voice_agent_tenant_migration'));
{{ bound_waits() }}
{%- endmacro -%}

{#-
  A partitioned step runs as several concurrent transactions, one per partition of the call ids
  (PartitionedSQLOperator sets voice_agent_migration.partition/partitions on each connection;
  run alone, the SQL is a single partition). A partition is the set of high bytes b of the call ids
  with mod(b, partitions) = partition.
  Locking, safe for concurrent runs with any partition counts: a partition holds the step lock
  shared (no other step interleaves; its own run's partitions proceed together) and an exclusive lock
  per high byte it covers, taken in ascending order. Two transactions never upsert the same call at
  once, and ordered acquisition cannot deadlock.
-#}
{%- set partition_count -%}
coalesce(nullif(current_setting('voice_agent_migration.partitions', TRUE), '')::integer, 1)
{%- endset -%}
{%- set partition_index -%}
coalesce(nullif(current_setting('voice_agent_migration.partition', TRUE), '')::integer, 0)
{%- endset -%}

{%- macro serialize_partition() -%}
SELECT pg_advisory_xact_lock_shared(hashtext('voice_agent_tenant_migration'));
SELECT count(pg_advisory_xact_lock(hashtext('voice_agent_tenant_migration.call_ids'), high_byte.b))
FROM generate_series(0, 255) AS high_byte (b)
WHERE mod(high_byte.b, {{ partition_count }}) = {{ partition_index }};
{{ bound_waits() }}
{%- endmacro -%}

{#- 65,536 buckets of call ids, nested in the partitions (a bucket's partition is its high byte). -#}
{%- macro bucket_of(uuid_expr) -%}
(get_byte(uuid_send({{ uuid_expr }}), 15) * 256 + get_byte(uuid_send({{ uuid_expr }}), 14))
{%- endmacro -%}

{#-
  A full run of the call step rebuilds only the buckets in its temp table changed_buckets; a
  windowed run takes every call of its window. `fresh` narrows a full run to the changed buckets that
  hold no call yet (True) or to the others (False).
-#}
{%- macro in_changed_bucket(uuid_expr, fresh=None) -%}
{%- if not window -%}
AND {{ bucket_of(uuid_expr) }} IN (
    SELECT b.bucket FROM changed_buckets AS b
    {%- if fresh is not none %} WHERE {{ "" if fresh else "NOT " }}b.fresh{% endif -%}
)
{%- endif -%}
{%- endmacro -%}

{%- macro in_partition(uuid_expr) -%}
mod(get_byte(uuid_send({{ uuid_expr }}), 15), {{ partition_count }}) = {{ partition_index }}
{%- endmacro -%}

{#-
  The legacy tables the migration accounts for, in the guide's order, with where each lands; a FROM
  item `t (position, source_table, target_table)`. The dry run also reports the tenants, derived from
  the users' organizations.
-#}
{%- macro migrated_tables(with_tenants=False) -%}
(
    VALUES
    {%- if with_tenants %}
    (0, 'users_voiceagent.organization_id', 'tenants'),
    {%- endif %}
    (1, 'voices_voiceagent', 'voices'),
    (2, 'numbers_voiceagent', 'phone_numbers'),
    (3, 'agents_voiceagent', 'voice_agents'),
    (4, 'leads_voiceagent', 'leads'),
    (5, 'call_logs_voiceagent', 'voice_calls'),
    (6, 'org_permissions_voiceagent', 'resource_permissions')
) AS t (position, source_table, target_table)
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
  Counts what an upsert wrote into this run's migration_run_writes, per tenant: follows
  `WITH written AS (INSERT ... ON CONFLICT ... DO UPDATE ... RETURNING t.id, t.tenant_id, t.xmax)`.
  A row the upsert inserted has xmax 0 in RETURNING; one it updated carries the row lock. Counts are
  in legacy rows: a small table's written target row counts every staged legacy row mapped onto it
  (merged leads), a call counts once. Additive, so a retried step adds what its retry wrote; a
  partition of the call step keeps its own counter row, so concurrent partitions never wait on one.
-#}
{%- macro count_writes(source_table, from_staged=True, part="0") -%}
INSERT INTO {{ tgt }}.migration_run_writes AS w (run_id, source_table, tenant_id, part, inserted, updated)
SELECT
    {{ run }},
    '{{ source_table }}',
    written.tenant_id,
    {{ part }},
    count(*) FILTER (WHERE written.xmax = '0'::xid),
    count(*) FILTER (WHERE written.xmax <> '0'::xid)
FROM written
{%- if from_staged %}
INNER JOIN staged AS s ON written.id::text = s.target_id AND s.reason IS NULL
{%- endif %}
GROUP BY written.tenant_id
ON CONFLICT (run_id, source_table, tenant_id, part) DO UPDATE SET
    inserted = w.inserted + excluded.inserted,
    updated = w.updated + excluded.updated
{%- endmacro -%}

{#-
  Lineage and quarantine for a small table, from the temp table `staged`
  (source_id, target_id, reason, source_row): every legacy row ends in exactly one of the two.
  A row landed earlier stays landed (its lineage is kept); a row that now lands leaves the quarantine.
-#}
{%- macro record_outcome(source_table, target_table) -%}
INSERT INTO {{ tgt }}.migration_lineage AS m (source_table, source_id, target_table, target_id)
SELECT
    '{{ source_table }}',
    s.source_id,
    '{{ target_table }}',
    s.target_id
FROM staged AS s
WHERE s.reason IS NULL
ON CONFLICT (source_table, source_id) DO UPDATE SET
    target_table = excluded.target_table,
    target_id = excluded.target_id
WHERE (m.target_table, m.target_id) IS DISTINCT FROM (excluded.target_table, excluded.target_id);

DELETE FROM {{ tgt }}.migration_rejects AS r
USING staged AS s
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
FROM staged AS s
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
WHERE (r.reason, r.source_row) IS DISTINCT FROM (excluded.reason, excluded.source_row);

-- Done with it (a dry run runs every step in one transaction, so it must not outlive its step).
DROP TABLE staged;
{%- endmacro -%}
