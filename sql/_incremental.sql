{#-
  The call step's machinery, explained once (sql/migrate/07_migrate_voice_calls.sql uses it; the
  mapping itself is sql/mapping/voice_calls.sql): `{% import "_incremental.sql" as inc with context %}`.

  Chunks. The call log is worked through in chunks: ranges [lower, upper] of call ids (both bounds
  included), each migrated in a short transaction of its own and committed, so that no transaction
  holds the production database for long, whatever the size of the call log. The ranges tile the
  whole uuid space; migration_call_chunks keeps the tiling between runs, each range with the
  fingerprint of its calls' inputs (the sum of their hashes) as the last full run left them. A full
  run rebuilds only the chunks whose fingerprint changed or that hold fewer landed calls than they
  should; a windowed run takes every call of its window in every chunk.

  The step's file has three parts (ChunkedSQLOperator, plugins/voice_agent_migration/chunks.py, runs
  them): the locks, taken once; the plan, in one short transaction, which splits a range holding more
  than twice `call_chunk_size` calls at call ids (pieces of that size) and records the run's chunks
  once in migration_run_chunks; and the work, one transaction per chunk, which runs with the chunk's
  bounds in place of the literals below and records its chunk as committed (the checkpoint: a
  retried task does only the chunks not yet committed). Run whole (the dry run, tests), the file is
  one transaction over one chunk: every call id.
-#}
{% import "_common.sql" as c with context %}
{%- set chunk_lower = "'00000000-0000-0000-0000-000000000000'::uuid /* chunk lower */" -%}
{%- set chunk_upper = "'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid /* chunk upper */" -%}
{%- set chunk_number = "0 /* chunk number */" -%}
{%- set chunk_count = "1 /* chunk count */" -%}

{#- The call id `uuid_expr` lies in the chunk: an index range on the ids. -#}
{%- macro in_chunk(uuid_expr) -%}
{{ uuid_expr }} BETWEEN {{ chunk_lower }} AND {{ chunk_upper }}
{%- endmacro -%}

{#- The uuid just before `uuid_expr` (as 128-bit numbers): the upper bound of the range before it. -#}
{%- macro uuid_before(uuid_expr) -%}
(
    SELECT (
        lpad(to_hex(div(n.value, 79228162514264337593543950336)::bigint), 8, '0')
        || lpad(to_hex(mod(div(n.value, 18446744073709551616), 4294967296)::bigint), 8, '0')
        || lpad(to_hex(mod(div(n.value, 4294967296), 4294967296)::bigint), 8, '0')
        || lpad(to_hex(mod(n.value, 4294967296)::bigint), 8, '0')
    )::uuid
    FROM (
        SELECT
            sum(
                ('x' || substr(replace(({{ uuid_expr }})::text, '-', ''), part.i * 8 + 1, 8))::bit(32)::bigint::numeric
                * power(4294967296::numeric, 3 - part.i)
            ) - 1 AS value
        FROM generate_series(0, 3) AS part (i)
    ) AS n
)
{%- endmacro -%}

{#- The tiling of the id space the last runs left (migration_call_chunks), or the whole space. -#}
{%- macro known_tiles() -%}
SELECT
    k.lower_id,
    k.upper_id
FROM {{ c.tgt }}.migration_call_chunks AS k
UNION ALL
SELECT
    {{ chunk_lower }},
    {{ chunk_upper }}
WHERE NOT EXISTS (SELECT 1 FROM {{ c.tgt }}.migration_call_chunks)
{%- endmacro -%}

{#-
  The plan: the run's chunks, once per try that finds none left to do (a retry of a stopped step
  resumes its plan; a step run again after it completed, e.g. a cleared successful task, plans anew).
  The tiling comes from the last runs (or is the whole uuid space); a range holding more than twice
  `size` calls is split at every size-th call id. Read only through the primary key, in index order; a
  range's count stops at twice `size`.
-#}
{%- macro plan_chunks(calls_table, size) -%}
DELETE FROM {{ c.tgt }}.migration_run_chunks AS completed
WHERE
    completed.run_id = {{ c.run }}
    AND NOT EXISTS (
        SELECT 1 FROM {{ c.tgt }}.migration_run_chunks AS open_chunk
        WHERE open_chunk.run_id = {{ c.run }} AND open_chunk.committed_at IS NULL
    );

CREATE TEMP TABLE chunk_tiles ON COMMIT DROP AS
{{ known_tiles() }};

CREATE TEMP TABLE chunk_splits ON COMMIT DROP AS
SELECT
    t.lower_id AS tile,
    piece.id AS boundary
FROM chunk_tiles AS t
CROSS JOIN LATERAL (
    SELECT numbered.id
    FROM (
        SELECT
            cl.id,
            row_number() OVER (ORDER BY cl.id) AS position
        FROM {{ calls_table }} AS cl
        WHERE cl.id BETWEEN t.lower_id AND t.upper_id
    ) AS numbered
    WHERE numbered.position > 1 AND numbered.position % {{ size }} = 1
) AS piece
WHERE
    NOT EXISTS (SELECT 1 FROM {{ c.tgt }}.migration_run_chunks AS planned WHERE planned.run_id = {{ c.run }})
    AND (
        SELECT count(*) FROM (
            SELECT 1 FROM {{ calls_table }} AS cl
            WHERE cl.id BETWEEN t.lower_id AND t.upper_id
            LIMIT 2 * {{ size }} + 1
        ) AS first_calls
    ) > 2 * {{ size }};

DELETE FROM {{ c.tgt }}.migration_call_chunks AS k
WHERE k.lower_id IN (SELECT s.tile FROM chunk_splits AS s);

INSERT INTO {{ c.tgt }}.migration_call_chunks (lower_id, upper_id)
SELECT
    pieces.lower_id,
    coalesce({{ uuid_before("pieces.next_lower") }}, pieces.upper_id)
FROM (
    SELECT
        starts.lower_id,
        t.upper_id,
        lead(starts.lower_id) OVER (PARTITION BY t.lower_id ORDER BY starts.lower_id) AS next_lower
    FROM chunk_tiles AS t
    INNER JOIN (
        SELECT DISTINCT
            s.tile,
            s.tile AS lower_id
        FROM chunk_splits AS s
        UNION ALL
        SELECT
            s.tile,
            s.boundary
        FROM chunk_splits AS s
    ) AS starts ON t.lower_id = starts.tile
) AS pieces;

INSERT INTO {{ c.tgt }}.migration_run_chunks (run_id, chunk_number, lower_id, upper_id)
SELECT
    {{ c.run }},
    (row_number() OVER (ORDER BY tiles.lower_id) - 1)::integer,
    tiles.lower_id,
    tiles.upper_id
FROM (
    {{ known_tiles() }}
) AS tiles
WHERE NOT EXISTS (SELECT 1 FROM {{ c.tgt }}.migration_run_chunks AS planned WHERE planned.run_id = {{ c.run }});

-- The chunks left to do (all of them, unless a try of this run already committed some), and how many
-- the run has: what the operator works through.
SELECT
    planned.chunk_number,
    planned.lower_id::text AS lower_id,
    planned.upper_id::text AS upper_id,
    (SELECT count(*) FROM {{ c.tgt }}.migration_run_chunks AS every_chunk WHERE every_chunk.run_id = {{ c.run }}) AS chunks
FROM {{ c.tgt }}.migration_run_chunks AS planned
WHERE planned.run_id = {{ c.run }} AND planned.committed_at IS NULL
ORDER BY planned.chunk_number
{%- endmacro -%}

{#- The checkpoint, last in a chunk's transaction: its chunk (run whole: every chunk) is committed. -#}
{%- macro checkpoint(calls) -%}
UPDATE {{ c.tgt }}.migration_run_chunks AS planned
SET
    committed_at = clock_timestamp(),
    seconds = extract(EPOCH FROM clock_timestamp() - now()),
    calls = CASE WHEN (planned.lower_id, planned.upper_id) = ({{ chunk_lower }}, {{ chunk_upper }}) THEN ({{ calls }}) END
WHERE planned.run_id = {{ c.run }} AND {{ in_chunk("planned.lower_id") }}
RETURNING planned.calls
{%- endmacro -%}

{#- Where each chunk's transaction starts (the operator runs what follows once per chunk). -#}
{%- macro each_chunk() -%}
-- each chunk's transaction starts here
{{ c.transaction_limits() }}
{%- endmacro -%}
