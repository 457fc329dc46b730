"""The trigger form: every value here reaches SQL, so each is typed and constrained, and shows its
rule in the form (the UI refuses a value that breaks it, and so does `airflow dags test -c`)."""

from __future__ import annotations

from airflow.sdk import Param

from voice_agent_migration.templating import IDENTIFIER
from voice_agent_migration.window import ISO_TIMESTAMP_PATTERN

# A PostgreSQL duration: a number and an optional unit (ms by default).
DURATION_PATTERN = r"^[0-9]{1,9}(us|ms|s|min|h|d)?$"
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"

MIGRATION_PARAMS = {
    "source_schema": Param(
        "voice_agent",
        type="string",
        pattern=IDENTIFIER.pattern,
        title="Legacy schema",
        description="Schema holding the *_voiceagent tables (read only).",
    ),
    "target_schema": Param(
        "public",
        type="string",
        pattern=IDENTIFIER.pattern,
        title="Target schema",
        description="Schema receiving the multi-tenant tables, the id map and the rejects.",
    ),
    "system_tenant_id": Param(
        "00000000-0000-0000-0000-000000000000",
        type="string",
        pattern=UUID_PATTERN,
        title="System tenant id",
        description="Tenant that owns shared resources (voices, phone numbers).",
    ),
    "call_partitions": Param(
        2,
        type="integer",
        minimum=1,
        maximum=16,
        title="Call sessions",
        description="Concurrent sessions working through the call log's chunks (about one per database core to spare).",
    ),
    "call_chunk_size": Param(
        50000,
        type="integer",
        minimum=100,
        maximum=10000000,
        title="Call chunk size",
        description="Calls per chunk: each chunk is one short transaction, committed and checkpointed "
        "(a retry resumes after the last committed chunk). About 1-3 seconds per 50,000 calls.",
    ),
    "lock_timeout": Param(
        "60s",
        type="string",
        pattern=DURATION_PATTERN,
        title="Lock timeout",
        description=(
            "Longest a step waits for a lock the legacy application holds (e.g. 500ms, 60s, 5min) before it "
            "fails with a clear error and is retried; 0 waits forever. Waiting for another run of this "
            "migration is not bounded by it."
        ),
        section="Safety",
    ),
    "statement_timeout": Param(
        "2h",
        type="string",
        pattern=DURATION_PATTERN,
        title="Statement timeout",
        description="Longest any one statement of a step may run (e.g. 30min, 2h); 0 for no limit.",
        section="Safety",
    ),
    "max_delete_percent": Param(
        10,
        type="number",
        minimum=0,
        maximum=100,
        title="Deletion valve: share of a table",
        description=(
            "A run that would remove more than this share (in %) of a table's migrated rows from the target AND "
            "more than max_delete_rows of them fails before removing anything, naming the table and the counts "
            "(protects the target from a truncated or half-restored legacy table)."
        ),
        section="Safety",
    ),
    "max_delete_rows": Param(
        100,
        type="integer",
        minimum=0,
        title="Deletion valve: rows",
        description=(
            "A run may always remove up to this many of a table's migrated rows from the target; beyond it, "
            "max_delete_percent decides (see there)."
        ),
        section="Safety",
    ),
    "window_start": Param(
        None,
        type=["null", "string"],
        pattern=ISO_TIMESTAMP_PATTERN,
        title="Window start (inclusive)",
        description=(
            "Migrate only the calls whose started_at is at or after this instant, e.g. 2025-01-31T00:00:00+00:00 "
            "(ISO-8601 with a UTC offset). Give both window ends or neither; with neither, a manual run migrates "
            "every call (also those without started_at) and a scheduled or backfill run its data interval."
        ),
        section="Window",
    ),
    "window_end": Param(
        None,
        type=["null", "string"],
        pattern=ISO_TIMESTAMP_PATTERN,
        title="Window end (exclusive)",
        description="Migrate only the calls whose started_at is before this instant, e.g. 2025-02-01T00:00:00+00:00.",
        section="Window",
    ),
    "rollback": Param(
        False,
        type="boolean",
        title="Roll back",
        description=(
            "Remove every row the migration created (found through its lineage) and its bookkeeping, leaving "
            "the application's own rows untouched; a later run migrates everything again. Exclusive with dry run."
        ),
        section="Safety",
    ),
    "dry_run": Param(
        False,
        type="boolean",
        title="Dry run",
        description=(
            "Report per table how many rows would be inserted, updated, left unchanged and rejected (by reason), "
            "and write nothing: the whole migration runs in one transaction that is rolled back."
        ),
    ),
}
