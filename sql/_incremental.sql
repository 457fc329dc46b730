{#-
  The call step's machinery, explained once (sql/migrate/07_migrate_voice_calls.sql uses it; the
  mapping itself is sql/mapping/voice_calls.sql): `{% import "_incremental.sql" as inc with context %}`.

  Partitions. The step runs as several concurrent transactions, one per partition of the call ids
  (PartitionedSQLOperator sets voice_agent_migration.partition/partitions on each connection; run
  alone, the SQL is a single partition). A partition is the set of high bytes b of the call ids with
  mod(b, partitions) = partition.

  Locks, safe for concurrent runs with any partition counts: a partition holds the step lock shared
  (no other step interleaves; its own run's partitions proceed together) and an exclusive lock per
  high byte it covers, taken in ascending order. Two transactions never upsert the same call at once,
  and ordered acquisition cannot deadlock.

  Buckets. The call ids fall in 65,536 buckets (a bucket's partition is its high byte). A full run
  keeps a fingerprint per bucket (migration_call_buckets: the sum of its calls' input hashes) and
  rebuilds only the buckets whose fingerprint changed or that hold fewer landed calls than they should;
  a windowed run takes every call of its window.
-#}
{%- set partition_count -%}
coalesce(nullif(current_setting('voice_agent_migration.partitions', TRUE), '')::integer, 1)
{%- endset -%}
{%- set partition_index -%}
coalesce(nullif(current_setting('voice_agent_migration.partition', TRUE), '')::integer, 0)
{%- endset -%}

{%- macro lock_partition() -%}
SELECT count(pg_advisory_lock(hashtext('voice_agent_tenant_migration.call_ids'), high_byte.b))
FROM generate_series(0, 255) AS high_byte (b)
WHERE mod(high_byte.b, {{ partition_count }}) = {{ partition_index }};
{%- endmacro -%}

{%- macro bucket_of(uuid_expr) -%}
(get_byte(uuid_send({{ uuid_expr }}), 15) * 256 + get_byte(uuid_send({{ uuid_expr }}), 14))
{%- endmacro -%}

{%- macro in_partition(uuid_expr) -%}
mod(get_byte(uuid_send({{ uuid_expr }}), 15), {{ partition_count }}) = {{ partition_index }}
{%- endmacro -%}

{#-
  A full run (no `window`) rebuilds only the buckets in its temp table changed_buckets; `fresh`
  narrows it to the changed buckets that hold no call yet (True) or to the others (False). A windowed
  run takes every call of its window: no condition.
-#}
{%- macro in_changed_bucket(uuid_expr, window, fresh=None) -%}
{%- if not window -%}
AND {{ bucket_of(uuid_expr) }} IN (
    SELECT b.bucket FROM changed_buckets AS b
    {%- if fresh is not none %} WHERE {{ "" if fresh else "NOT " }}b.fresh{% endif -%}
)
{%- endif -%}
{%- endmacro -%}
