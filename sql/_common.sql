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

{#-
  The legacy database as this run first saw it (migration_runs.legacy_snapshot, taken by its
  create_target_tables step), and whether a legacy row was written after it: `xmin` is the row's
  system column (e.g. cl.xmin). A row written since is pending for the next run, never a failure.
  (The row's 32-bit xid is widened to the snapshot's 64-bit form with the current epoch.)
-#}
{%- set run_snapshot -%}
(SELECT r.legacy_snapshot::pg_snapshot FROM {{ tgt }}.migration_runs AS r WHERE r.run_id = {{ run }})
{%- endset -%}
{%- macro written_after_snapshot(xmin) -%}
NOT coalesce(pg_visible_in_snapshot((
    (
        (pg_snapshot_xmax(pg_current_snapshot())::text::bigint >> 32)
        - CASE
            WHEN {{ xmin }}::text::bigint > (pg_snapshot_xmax(pg_current_snapshot())::text::bigint & 4294967295)
                THEN 1
            ELSE 0
        END
    ) << 32 | {{ xmin }}::text::bigint
)::text::xid8, {{ run_snapshot }}), TRUE)
{%- endmacro -%}

{#- A stable uuid for a legacy row that has none: re-runs find the same target row. -#}
{%- macro stable_uuid(namespace, key) -%}md5('{{ namespace }}:' || {{ key }})::uuid{%- endmacro -%}

{#-
  Serialises the migration's writers so concurrent runs cannot interleave a step, then bounds waiting
  for the legacy application's locks and any one statement (params lock_timeout / statement_timeout):
  waiting for another run of this migration is expected, waiting behind the application is not. A
  step that hits one fails with PostgreSQL's "canceling statement due to lock timeout" (or statement
  timeout), which its log and alert show, and is retried.
  The locks are the session's, taken before the marker line: the operators take them outside the
  step's transaction, then run the rest as one REPEATABLE READ transaction whose single snapshot is
  taken once the locks are held, so that every statement of the step (its writes and the account it
  records) sees the legacy database at one instant while the legacy application keeps writing. They
  are released when the step ends (its connection closes). Run whole (tests, the dry run), the file
  is one transaction.
-#}
{%- macro serialize_step() -%}
SELECT pg_advisory_lock(hashtext('voice_agent_tenant_migration'));
-- the step's snapshot starts here
{{ transaction_limits() }}
{%- endmacro -%}

{#- The limits of a step's transaction (serialize_step; each chunk of the call step sets them again). -#}
{%- macro transaction_limits() -%}
SELECT
    set_config('lock_timeout', {{ params.lock_timeout | text_literal }}, TRUE),
    set_config('statement_timeout', {{ params.statement_timeout | text_literal }}, TRUE),
    -- JIT compiles the steps' large generated statements for longer than they run (PostgreSQL 15).
    set_config('jit', 'off', TRUE);
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
  table): (source_table, source_id as text, tenant_id, row_version: its xmin).
-#}
{%- macro legacy_rows(table, window) -%}
SELECT
    '{{ table.source_table }}' AS source_table,
    lg.{{ table.source_key }}::text AS source_id,
    {{ tenant_of(table) }} AS tenant_id,
    lg.xmin AS row_version
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

{#-
  Why a resource cannot get a tenant from its legacy user reference (NULL when it can). The last
  reason is the legacy application moving a user to a new organization while a run is under way,
  after its tenants step: the next run lands the row.
-#}
{%- macro owner_reason(ref, user_alias) -%}
WHEN {{ ref }} IS NULL THEN 'owner_missing'
WHEN {{ user_alias }}.id IS NULL THEN 'owner_not_found'
WHEN {{ user_alias }}.organization_id IS NULL THEN 'owner_without_organization'
WHEN NOT EXISTS (
    SELECT 1 FROM {{ tgt }}.tenants AS owner_tenant
    WHERE owner_tenant.id = {{ user_alias }}.organization_id
) THEN 'owner_organization_not_migrated_yet'
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
  adds what its retry wrote; `part` keeps a counter row per chunk of the call step, so concurrent
  chunks never wait on one. `owned_ids`: a table of the ids the migration wrote (the calls'
  migration_calls), which gets every inserted id.
-#}
{%- macro counted_upsert(source_table, staged=None, part="0", owned_ids=None) -%}
WITH written AS (
    {{ caller() }}
){{ "," if owned_ids }}
{%- if owned_ids %}

owned AS (
    INSERT INTO {{ owned_ids }} (id)
    SELECT written.id FROM written
    WHERE written.xmax = '0'::xid
    ON CONFLICT (id) DO NOTHING
)
{%- endif %}

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
  A legacy row whose target id is held by a row the migration did not write (no lineage of its own
  points at it: the application created it) is quarantined: the application's row is never written.
  `skip_linked`: rows of `staged` that are links onto an application row by design (leads) are not
  claims. Run on `staged` before anything is written.
-#}
{%- macro quarantine_held_targets(table, staged, skip_linked=False) -%}
UPDATE {{ staged }} AS s
SET reason = 'target_id_held_by_application'
WHERE
    s.reason IS NULL
    {%- if skip_linked %}
    AND NOT s.linked
    {%- endif %}
    AND EXISTS (
        SELECT 1 FROM {{ tgt }}.{{ table.target_table }} AS t
        WHERE t.id::text = s.target_id
    )
    AND NOT EXISTS (
        SELECT 1 FROM {{ tgt }}.migration_lineage AS m
        WHERE m.target_table = '{{ table.target_table }}' AND m.target_id = s.target_id AND NOT m.linked
    )
{%- endmacro -%}

{#-
  The deletion valve: when the rows of `removing` (a relation) are more than `max_delete_percent` of
  the table's migrated rows (the count `migrated`, a query) and more than `max_delete_rows`, the step
  fails for good before removing anything, naming the table and the counts: a truncated or
  half-restored legacy table must not empty the target. `rows_divisor`: the call step's chunks
  each judge their share (the row limit divided among them). A dry run only counts (would_delete).
-#}
{%- macro deletion_valve(table, removing, migrated, rows_divisor="1") -%}
{%- if not params.dry_run -%}
DO $$
DECLARE
    removing bigint;
    migrated bigint;
    row_limit numeric := {{ params.max_delete_rows | int }}::numeric / ({{ rows_divisor }});
BEGIN
    SELECT count(*) INTO removing FROM {{ removing }};
    {{ migrated }} INTO migrated;
    IF removing > row_limit AND removing * 100.0 > migrated * {{ params.max_delete_percent | float }} THEN
        RAISE EXCEPTION 'deletion valve: % of the % rows migrated from % would be removed from %, nothing was removed',
            removing, migrated, '{{ table.source_table }}', '{{ table.target_table }}'
            USING
                ERRCODE = 'VA000',
                DETAIL = 'more than max_delete_percent={{ params.max_delete_percent }} '
                || 'and max_delete_rows={{ params.max_delete_rows }}{{ " (shared among the call chunks)" if rows_divisor != "1" }}',
                HINT = 'if the legacy table really lost these rows, trigger again with higher values of both';
    END IF;
END
$$;
{%- endif -%}
{%- endmacro -%}

{#-
  Removes the target rows the migration wrote that no legacy row maps onto any more (their legacy rows
  were deleted, or are quarantined now), counting them per tenant as this run's `deleted`, after the
  deletion valve. `kept`: a condition on the target row `t` and the removed
  row `u` (with u.written_digest) that keeps a row the application has taken over; those are
  recorded as findings instead, and the migration lets go of them.
-#}
{%- macro remove_unmapped(table, staged, kept=None) -%}
CREATE TEMP TABLE unmapped ON COMMIT DROP AS
SELECT
    m.target_id,
    min(m.written_digest) AS written_digest,
    string_agg(m.source_id, ' ' ORDER BY m.source_id) AS source_ids
FROM {{ tgt }}.migration_lineage AS m
WHERE
    m.source_table = '{{ table.source_table }}'
    AND NOT m.linked
    AND NOT EXISTS (
        SELECT 1 FROM {{ staged }} AS s
        WHERE s.reason IS NULL AND s.target_id = m.target_id
    )
GROUP BY m.target_id;

{{ deletion_valve(table, "unmapped", migrated="SELECT count(DISTINCT m.target_id) FROM " ~ tgt ~ ".migration_lineage AS m WHERE m.source_table = '" ~ table.source_table ~ "' AND NOT m.linked") }}

{%- if kept %}

INSERT INTO {{ tgt }}.migration_findings AS f (kind, source_table, source_id, tenant_id, referenced_id)
SELECT
    'taken_over_by_application',
    '{{ table.source_table }}',
    u.source_ids,
    t.tenant_id,
    u.target_id
FROM unmapped AS u
INNER JOIN {{ tgt }}.{{ table.target_table }} AS t ON t.id::text = u.target_id
WHERE {{ kept }}
ON CONFLICT (kind, source_table, source_id) DO UPDATE SET
    tenant_id = excluded.tenant_id,
    referenced_id = excluded.referenced_id;
{%- endif %}

WITH removed AS (
    DELETE FROM {{ tgt }}.{{ table.target_table }} AS t
    USING unmapped AS u
    WHERE
        t.id::text = u.target_id
        {%- if kept %}
        AND NOT ({{ kept }})
        {%- endif %}
    RETURNING t.tenant_id
)

INSERT INTO {{ tgt }}.migration_run_writes AS w (run_id, source_table, tenant_id, part, inserted, updated, deleted)
SELECT
    {{ run }},
    '{{ table.source_table }}',
    removed.tenant_id,
    0,
    0,
    0,
    count(*)
FROM removed
GROUP BY removed.tenant_id
ON CONFLICT (run_id, source_table, tenant_id, part) DO UPDATE SET
    deleted = w.deleted + excluded.deleted;

DROP TABLE unmapped
{%- endmacro -%}

{#-
  Lineage and quarantine of a small table from `staged`, a relation of
  (source_id, target_id, reason, source_row[, linked, detail]): every current legacy row ends in
  exactly one of the two, and neither keeps a row for a legacy row that is gone. A row that no longer
  maps leaves the lineage for the quarantine (remove_unmapped took its target row). `linked`: staged
  carries `linked` and `detail` (a link onto a row the migration did not write, and what the link
  keeps of the legacy row). `digest`: an expression of the target row `t` recorded as written_digest.
-#}
{%- macro record_outcome(table, staged, linked=False, digest=None) -%}
INSERT INTO {{ tgt }}.migration_lineage AS m (
    source_table, source_id, target_table, target_id, linked, detail, written_digest
)
SELECT
    '{{ table.source_table }}',
    s.source_id,
    '{{ table.target_table }}',
    s.target_id,
    {{ "s.linked" if linked else "FALSE" }},
    {{ "s.detail" if linked else "NULL::jsonb" }},
    {{ digest if digest else "NULL::text" }}
FROM {{ staged }} AS s
{%- if digest %}
LEFT JOIN {{ tgt }}.{{ table.target_table }} AS t ON t.id::text = s.target_id
{%- endif %}
WHERE s.reason IS NULL
ON CONFLICT (source_table, source_id) DO UPDATE SET
    target_table = excluded.target_table,
    target_id = excluded.target_id,
    linked = excluded.linked,
    detail = excluded.detail,
    written_digest = excluded.written_digest
WHERE
    (m.target_table, m.target_id, m.linked, m.detail, m.written_digest)
    IS DISTINCT FROM (excluded.target_table, excluded.target_id, excluded.linked, excluded.detail, excluded.written_digest);

DELETE FROM {{ tgt }}.migration_lineage AS m
WHERE
    m.source_table = '{{ table.source_table }}'
    AND NOT EXISTS (
        SELECT 1 FROM {{ staged }} AS s
        WHERE s.source_id = m.source_id AND s.reason IS NULL
    );

DELETE FROM {{ tgt }}.migration_rejects AS r
WHERE
    r.source_table = '{{ table.source_table }}'
    AND NOT EXISTS (
        SELECT 1 FROM {{ staged }} AS s
        WHERE s.source_id = r.source_id AND s.reason IS NOT NULL
    );

INSERT INTO {{ tgt }}.migration_rejects AS r (source_table, source_id, reason, source_row)
SELECT
    '{{ table.source_table }}',
    s.source_id,
    s.reason,
    s.source_row
FROM {{ staged }} AS s
WHERE s.reason IS NOT NULL
ON CONFLICT (source_table, source_id) DO UPDATE SET
    reason = excluded.reason,
    source_row = excluded.source_row,
    rejected_at = excluded.rejected_at
WHERE (r.reason, r.source_row) IS DISTINCT FROM (excluded.reason, excluded.source_row)
{%- endmacro -%}

{#-
  What the step leaves of the lineage of catalog table `table`, recorded in its own transaction (one
  snapshot with its writes): the lineage rows (for a "same id" table, the ids the migration wrote,
  of this chunk) whose legacy row is gone. A correct step leaves none; check_lineage_matches_legacy
  reads the record, so a legacy row deleted after the step is the next run's, not a failure.
-#}
{%- macro record_orphans(table, part="0", in_part="TRUE", legacy_ids=None) -%}
INSERT INTO {{ tgt }}.migration_run_lineage AS l (run_id, source_table, part, orphaned, example_ids)
SELECT
    {{ run }},
    '{{ table.source_table }}',
    {{ part }},
    count(*),
    coalesce(array_to_string((array_agg(orphan.id ORDER BY orphan.id))[1:5], ' '), '')
FROM (
    {%- if table.owned_ids %}
    SELECT written.id::text AS id
    FROM {{ tgt }}.{{ table.owned_ids }} AS written
    WHERE
        {{ in_part }}
        AND NOT EXISTS (
            {%- if legacy_ids %}
            SELECT 1 FROM {{ legacy_ids }} AS lg
            WHERE lg.id = written.id
            {%- else %}
            SELECT 1 FROM {{ src }}.{{ table.source_table }} AS lg
            WHERE lg.{{ table.source_key }} = written.id
            {%- endif %}
        )
    {%- else %}
    SELECT m.source_id AS id
    FROM {{ tgt }}.migration_lineage AS m
    WHERE
        m.source_table = '{{ table.source_table }}'
        AND NOT EXISTS (
            SELECT 1 FROM {{ src }}.{{ table.source_table }} AS lg
            WHERE lg.{{ table.source_key }}::text = m.source_id
        )
    {%- endif %}
) AS orphan
ON CONFLICT (run_id, source_table, part) DO UPDATE SET
    orphaned = excluded.orphaned,
    example_ids = excluded.example_ids
{%- endmacro -%}

{#-
  Every legacy row of catalog table `table` in scope (the rows of `window`; or the query `legacy` of
  `(source_id, tenant_id, row_version)` that a step already made of them) with its tenant and
  outcome: landed (in the lineage; for a table whose rows keep their legacy id, among the ids the
  migration wrote and in the target, each looked up by its id) and rejected (in the quarantine, with
  its reason). Only the small tables' ids are compared as text; the calls' as uuids.
-#}
{%- macro outcomes(table, window, legacy=None) -%}
SELECT
    lg.tenant_id,
    lg.source_id,
    lg.row_version,
    r.reason,
    landed.id IS NOT NULL AS landed,
    r.source_id IS NOT NULL AS rejected
FROM (
    {%- if legacy %}
    {{ legacy }}
    {%- else %}
    {{ legacy_rows(table, window) }}
    {%- endif %}
) AS lg
{%- if table.owned_ids %}
LEFT JOIN (
    SELECT written.id
    FROM {{ tgt }}.{{ table.owned_ids }} AS written
    INNER JOIN {{ tgt }}.{{ table.target_table }} AS t ON written.id = t.id
) AS landed ON lg.source_id::uuid = landed.id
{%- else %}
LEFT JOIN (
    SELECT m.source_id AS id
    FROM {{ tgt }}.migration_lineage AS m
    WHERE m.source_table = '{{ table.source_table }}'
) AS landed ON lg.source_id = landed.id
{%- endif %}
LEFT JOIN {{ tgt }}.migration_rejects AS r
    ON r.source_table = '{{ table.source_table }}' AND lg.source_id = r.source_id
{%- endmacro -%}

{#-
  The step's account of its table, in its own transaction (one snapshot with its writes, so the
  legacy application's later writes cannot unbalance it): per tenant and reason, the rows in scope,
  landed, rejected, and those that break conservation (in neither, or in both) with a few of their
  ids. record_run_account adds the writes and sums it up. `part`: the call step's chunk, whose
  `legacy` rows are its calls.
-#}
{%- macro record_scope(table, window, part="0", legacy=None) -%}
DELETE FROM {{ tgt }}.migration_run_scope
WHERE run_id = {{ run }} AND source_table = '{{ table.source_table }}' AND part = {{ part }};

INSERT INTO {{ tgt }}.migration_run_scope (
    run_id, source_table, part, tenant_id, reason, in_scope, landed, rejected, missing, doubled, unbalanced_ids
)
SELECT
    {{ run }},
    '{{ table.source_table }}',
    {{ part }},
    o.tenant_id,
    o.reason,
    count(*),
    count(*) FILTER (WHERE o.landed),
    count(*) FILTER (WHERE o.rejected),
    count(*) FILTER (WHERE NOT o.landed AND NOT o.rejected),
    count(*) FILTER (WHERE o.landed AND o.rejected),
    coalesce(array_to_string((array_agg(o.source_id ORDER BY o.source_id) FILTER (WHERE o.landed = o.rejected))[1:5], ' '), '')
FROM ({{ outcomes(table, window, legacy) }}) AS o
GROUP BY o.tenant_id, o.reason
{%- endmacro -%}

{#-
  The landed calls whose agent, lead or voice the cutover must decide on, one row per call (every
  call of voice_calls `vc` is read once, against the small tables): agent_kind is agent_in_other_tenant
  (agent_granted: an active resource_permissions grant gives the call's tenant that agent) or
  agent_not_migrated, lead_kind lead_in_other_tenant, voice_kind voice_not_migrated (NULL: nothing to
  say). Read by call_findings and by record_run_account (its cross-tenant calls).
-#}
{%- macro flagged_calls() -%}
SELECT
    vc.id,
    vc.tenant_id,
    vc.agent_id,
    vc.lead_id,
    vc.voice_id,
    va.tenant_id AS agent_tenant_id,
    ld.tenant_id AS lead_tenant_id,
    CASE
        WHEN va.tenant_id <> vc.tenant_id THEN 'agent_in_other_tenant'
        WHEN vc.agent_id IS NOT NULL AND va.id IS NULL THEN 'agent_not_migrated'
    END AS agent_kind,
    granted.resource_id IS NOT NULL AS agent_granted,
    CASE WHEN ld.tenant_id <> vc.tenant_id THEN 'lead_in_other_tenant' END AS lead_kind,
    CASE WHEN vc.voice_id IS NOT NULL AND vo.id IS NULL THEN 'voice_not_migrated' END AS voice_kind
FROM {{ tgt }}.voice_calls AS vc
LEFT JOIN {{ tgt }}.voice_agents AS va ON vc.agent_id = va.id
LEFT JOIN {{ tgt }}.leads AS ld ON vc.lead_id = ld.id
LEFT JOIN {{ tgt }}.voices AS vo ON vc.voice_id = vo.id
-- Distinct grants: a hash join, and no call counted twice for two grants of the same agent.
LEFT JOIN (
    SELECT DISTINCT
        rp.tenant_id,
        rp.resource_id
    FROM {{ tgt }}.resource_permissions AS rp
    WHERE rp.resource_type = 'agent' AND rp.is_active
) AS granted ON vc.tenant_id = granted.tenant_id AND vc.agent_id::text = granted.resource_id
WHERE
    va.tenant_id <> vc.tenant_id
    OR (vc.agent_id IS NOT NULL AND va.id IS NULL)
    OR ld.tenant_id <> vc.tenant_id
    OR (vc.voice_id IS NOT NULL AND vo.id IS NULL)
{%- endmacro -%}

{#-
  The findings a flagged call `f` (a row of flagged_calls, or a group of them) makes, one per kind: the
  rows of a LATERAL VALUES list of (kind, referenced_id, referenced_tenant_id, covered_by_grant), kind
  NULL where there is nothing to say. `referenced`: whether `f` holds the referenced ids (a group of
  calls does not: NULL).
-#}
{%- macro finding_kinds(f, referenced=True) -%}
VALUES
(
    {{ f }}.agent_kind,
    {{ f ~ ".agent_id::text" if referenced else "NULL::text" }},
    {{ f }}.agent_tenant_id,
    {{ f }}.agent_kind = 'agent_in_other_tenant' AND {{ f }}.agent_granted
),
({{ f }}.lead_kind, {{ f ~ ".lead_id::text" if referenced else "NULL::text" }}, {{ f }}.lead_tenant_id, FALSE),
({{ f }}.voice_kind, {{ f ~ ".voice_id::text" if referenced else "NULL::text" }}, NULL::uuid, FALSE)
{%- endmacro -%}

{#-
  The landed calls whose legacy lead has no lineage (quarantined, or never existed: the call landed
  without a lead_id, so only the legacy call tells), as (id, tenant_id, target: the legacy lead). Read
  from the target's calls without a lead_id, each legacy call looked up by id: a few per cent of the
  calls, where reading every legacy call first had the planner expect a quarter of them and hash the
  whole target (1.3 s at 1M calls).
-#}
{%- macro calls_without_migrated_lead() -%}
SELECT
    landed.id,
    landed.tenant_id,
    dangling.target
FROM {{ tgt }}.voice_calls AS landed
INNER JOIN {{ src }}.call_logs_voiceagent AS dangling ON landed.id = dangling.id
WHERE
    landed.lead_id IS NULL
    AND dangling.target IS NOT NULL
    AND NOT EXISTS (
        SELECT 1 FROM {{ tgt }}.migration_lineage AS lead_map
        WHERE lead_map.source_table = 'leads_voiceagent' AND lead_map.source_id = dangling.target::text
    )
{%- endmacro -%}

{#-
  The calls' findings, one row per landed call and reference the cutover must decide on, in the
  columns of migration_findings: the flagged calls unfolded (one row per kind), and lead_not_migrated.
  The view migration_call_findings (record_findings sums the same findings without unfolding each
  call: migration_call_findings_summary).
-#}
{%- macro call_findings() -%}
SELECT
    f.kind,
    'call_logs_voiceagent'::text AS source_table,
    flagged.id::text AS source_id,
    flagged.tenant_id,
    f.referenced_id,
    f.referenced_tenant_id,
    f.covered_by_grant
FROM ({{ flagged_calls() }}) AS flagged
CROSS JOIN LATERAL ({{ finding_kinds("flagged") }}) AS f (kind, referenced_id, referenced_tenant_id, covered_by_grant)
WHERE f.kind IS NOT NULL
UNION ALL
SELECT
    'lead_not_migrated',
    'call_logs_voiceagent',
    dangling.id::text,
    dangling.tenant_id,
    dangling.target::text,
    NULL::uuid,
    FALSE
FROM ({{ calls_without_migrated_lead() }}) AS dangling
{%- endmacro -%}
