"""
### voice_agent → multi-tenant migration

Moves the legacy `voice_agent` schema (`*_voiceagent` tables) into the multi-tenant schema (`tenants`,
`voices`, `phone_numbers`, `voice_agents`, `leads`, `voice_calls`, `resource_permissions`) and proves
nothing was lost. A run checks the legacy schema, creates what is missing in the target, migrates each
table in the guide's order (the small tables whole; the calls of the run's window: its `window_start` /
`window_end`, a scheduled or backfill run's data interval, or every call for a manual run without a
window), then records and checks the result. Every step is one idempotent transaction (the call log:
one per chunk of `call_chunk_size` calls, and a retry resumes after the chunks committed); every legacy row
lands (`migration_id_map`) or is quarantined in `migration_rejects` with a reason; `report_run` records
the run in `migration_runs` and prints its account per table and tenant.

**Modes** (params):
- *migrate* (default): the steps, the checks, the reports.
- *dry run* (`dry_run`): the steps in one transaction, a report of what they would write, then a rollback.
- *rollback* (`rollback`): removes what the migration created, through its lineage; refused while a
  migration run is under way.

**Checks** (a failure fails the run, is not retried, and names counts and ids):
- `check_conservation`: per legacy table, rows = landed + rejected (+ pending: written after the run's
  snapshot, the next run's), each exactly once.
- `check_no_orphan_tenants`: no migrated row references a NULL or unknown tenant.
- `check_no_duplicate_natural_keys`: one row per phone number, one lead per tenant and phone.
- `check_sequences_past_max_id`: every target sequence is past its column's highest id.
- `check_content_matches_legacy`: voices, numbers, agents and the run's calls hold what the mapping says.
- `check_lineage_matches_legacy`: every row the migration wrote has its legacy row and no other; no
  row the application owns was written.
- `check_run_balanced`: the run's account balances per table and tenant and covers every write.

Operating it: `docs/operations.md`. How it works, and adding a table or a check: `docs/design.md`.
"""

from __future__ import annotations

from pathlib import Path

import pendulum
from airflow.sdk import DAG, chain
from airflow.timetables.interval import CronDataIntervalTimetable

from voice_agent_migration.alerts import alert_on_failure
from voice_agent_migration.catalog import CATALOG
from voice_agent_migration.operators import (
    CONN_ID,
    STEP_RETRIES,
    SQLReportOperator,
    choose_mode,
    chunked_migration_step,
    dry_run_of,
    migration_check,
    migration_step,
)
from voice_agent_migration.params import MIGRATION_PARAMS
from voice_agent_migration.run_report import run_report
from voice_agent_migration.templating import SQL_FILTERS, SQL_MACROS

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"

# The steps that move data, in the guide's order, each one transaction; the dry run runs the same files.
# Between the tenants and the caches, each table of the catalog (catalog.py) in its order.
DATA_STEPS = [
    "setup/00_check_legacy_schema.sql",
    "setup/01_create_target_tables.sql",
    "migrate/02_migrate_tenants.sql",
    *(table.step for table in CATALOG),
    "migrate/09_add_tenant_id_to_caches.sql",
]
# The calls step runs in chunks, each a short transaction of its own, that many sessions at once.
CHUNKED = {"migrate/07_migrate_voice_calls.sql": "{{ params.call_partitions }}"}
# The run's own records, read by the checks and reports; a dry run records them too, then rolls back.
RECORD_STEPS = ["record/11_record_findings.sql", "record/12_record_run_account.sql"]

with DAG(
    dag_id="voice_agent_tenant_migration",
    description="Migrate voice_agent into the multi-tenant schema and prove nothing was lost",
    doc_md=__doc__,
    # Daily runs over real [midnight, midnight) UTC intervals: a plain "@daily" would give Airflow 3's
    # zero-length trigger intervals. Paused at creation; unpause for the daily catch-up while the
    # legacy application keeps writing.
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    # Concurrent runs are safe (advisory locks serialise the writers, see sql/_common.sql); this
    # bounds the load a backfill puts on the production database.
    max_active_runs=4,
    params=MIGRATION_PARAMS,
    template_searchpath=[str(SQL_DIR)],
    user_defined_filters=SQL_FILTERS,
    user_defined_macros=SQL_MACROS,
    tags=["migration", "voice_agent", "multi-tenant"],
    # Every task: the database, one alert once it has finally failed (alerts.py), and retries with
    # backoff, the steps being idempotent (the checks override: never retried).
    default_args={"conn_id": CONN_ID, "on_failure_callback": alert_on_failure, **STEP_RETRIES},
) as dag:
    data_steps = [
        chunked_migration_step(sql_file, CHUNKED[sql_file]) if sql_file in CHUNKED else migration_step(sql_file)
        for sql_file in DATA_STEPS
    ]
    # Then maintenance (VACUUM cannot run in a transaction) and the run's records.
    bookkeeping = [
        migration_step("record/10_vacuum_voice_calls.sql", autocommit=True),
        *(migration_step(sql_file) for sql_file in RECORD_STEPS),
    ]
    # A dry run runs the same steps in one transaction, reports the run's account, and rolls back.
    dry_run = dry_run_of(
        [*DATA_STEPS, *RECORD_STEPS], before_sql="report/dry_run_before.sql", report_sql="report/dry_run.sql"
    )
    # The way back: removes what the migration created, through its lineage.
    rollback = migration_step("rollback/rollback_migration.sql")
    checks = [
        migration_check("check/check_conservation.sql"),
        migration_check("check/check_no_orphan_tenants.sql"),
        migration_check("check/check_no_duplicate_natural_keys.sql"),
        migration_check("check/check_sequences_past_max_id.sql"),
        migration_check("check/check_content_matches_legacy.sql", work_mem="256MB"),
        migration_check("check/check_lineage_matches_legacy.sql"),
        migration_check("check/check_run_balanced.sql"),
    ]
    report_findings = SQLReportOperator(
        task_id="report_findings",
        sql="report/findings.sql",
        title="Findings for the cutover (not failures; call by call: the view migration_call_findings)",
    )
    report_reconciliation = SQLReportOperator(
        task_id="report_reconciliation",
        sql="report/reconciliation.sql",
        title="Reconciliation per legacy table",
    )

    chain(choose_mode(dry_run=dry_run, rollback=rollback, migrate=data_steps[0]), [dry_run, rollback, data_steps[0]])
    # The reports run beside the checks, so the numbers are in the log even when a check fails.
    chain(*data_steps, *bookkeeping, [*checks, report_reconciliation, report_findings])
    # Last, whatever happened: the run's outcome and its account per tenant (a teardown, so a failed
    # check still fails the run).
    chain(
        [*checks, report_reconciliation, report_findings], run_report("report/run_outcome.sql", "report/run_detail.sql")
    )
