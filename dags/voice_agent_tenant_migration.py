"""
### voice_agent → multi-tenant migration

Moves the legacy `voice_agent` schema (`*_voiceagent` tables, organizations known only through users)
into the multi-tenant schema (`tenants`, `voices`, `phone_numbers`, `voice_agents`, `leads`,
`voice_calls`, `resource_permissions`) of the mapping guide, then proves nothing was lost.

**A run** checks the legacy schema, creates what is missing in the target schema and migrates each
table in the guide's order. Every step is one transaction and idempotent: running it again (a retry,
a second trigger) writes nothing unless a legacy row changed, and then updates that row.
Every legacy row either lands (see `migration_id_map`) or is quarantined in `migration_rejects`
with the whole row and a machine-readable reason. Timestamps are stored in UTC.

**Which calls.** The small tables (tenants, voices, numbers, agents, leads, permissions) are brought
up to date by every run. Calls:

- *Window* (`window_start` / `window_end` in the form, ISO-8601 with an offset, both or neither):
  the calls whose `started_at` lies in `[start, end)`, compared as instants (UTC).
- *Scheduled or backfill run* (daily, midnight to midnight UTC): the calls of its data interval.
  `airflow backfill create --dag-id voice_agent_tenant_migration --from-date 2025-01-01 --to-date 2025-01-31`.
- *Manual run without a window*: every call, those without `started_at` included.

**Dry run** (`dry_run`): runs the data steps in one transaction, logs per legacy table how many rows
would be inserted, updated, left unchanged and rejected (by reason), and rolls back: nothing is written.

**Rollback** (`rollback`): removes every row the migration created, found through its lineage, and
its bookkeeping, in one transaction; the application's own rows (its leads, caches, tenants in use)
stay, as do the target tables and the added columns. A later run migrates everything again.

**Concurrency.** Runs may overlap (a backfill beside a manual run): each step takes an advisory lock,
so steps of different runs never interleave, and the call step's partitions lock their share of the
call ids in a fixed order, so concurrent runs neither double a call nor deadlock.

**Checks** (a failure fails the run, is not retried, and its log gives counts and ids):

- `check_conservation`: per legacy table, rows = landed + rejected, each row exactly once (for the
  calls: those of the run's window).
- `check_no_orphan_tenants`: no migrated row references a NULL or unknown tenant.
- `check_no_duplicate_natural_keys`: one row per phone number, one lead per tenant and phone.
- `check_sequences_past_max_id`: every target sequence is past its column's highest id.
- `check_content_matches_legacy`: voices, numbers, agents and the run's calls hold what the mapping
  says, recomputed from the legacy rows (a digest per table and tenant; ids where they differ).
- `check_run_balanced`: the run's account balances per table and tenant (in scope = inserted +
  updated + unchanged + rejected) and accounts for every write.

**The run's record** (`report_run`, last, whatever happened): `migration_runs` (run id, type, window,
params, start, end, outcome, failed tasks) and `migration_run_tables` (per legacy table and tenant:
in scope, inserted, updated, unchanged, rejected by reason, cross-tenant findings), printed in its log
and returned as its XCom.

**Findings** (reported, never failing): calls whose agent or lead belongs to another tenant (marking
grants in `resource_permissions` that cover them) and calls whose agent, lead or voice was quarantined;
listed in `migration_findings`.
"""

from __future__ import annotations

from pathlib import Path

import pendulum
from airflow.sdk import DAG, chain
from airflow.timetables.interval import CronDataIntervalTimetable

from voice_agent_migration.alerts import alert_on_failure
from voice_agent_migration.operators import (
    CONN_ID,
    STEP_RETRIES,
    SQLReportOperator,
    choose_mode,
    dry_run_of,
    migration_check,
    migration_step,
    partitioned_migration_step,
)
from voice_agent_migration.params import MIGRATION_PARAMS
from voice_agent_migration.run_report import run_report
from voice_agent_migration.templating import SQL_FILTERS, SQL_MACROS

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"

# The steps that move data, in the guide's order, each one transaction; the dry run runs the same files.
DATA_STEPS = [
    "setup/00_check_legacy_schema.sql",
    "setup/01_create_target_tables.sql",
    "migrate/02_migrate_tenants.sql",
    "migrate/03_migrate_voices.sql",
    "migrate/04_migrate_phone_numbers.sql",
    "migrate/05_migrate_voice_agents.sql",
    "migrate/06_migrate_leads.sql",
    "migrate/07_migrate_voice_calls.sql",
    "migrate/08_migrate_resource_permissions.sql",
    "migrate/09_add_tenant_id_to_caches.sql",
]
# The calls step runs as that many concurrent transactions, one per share of the calls.
PARTITIONS = {"migrate/07_migrate_voice_calls.sql": "{{ params.call_partitions }}"}

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
        partitioned_migration_step(sql_file, PARTITIONS[sql_file])
        if sql_file in PARTITIONS
        else migration_step(sql_file)
        for sql_file in DATA_STEPS
    ]
    # Then maintenance and the run's own records, read by the checks and reports.
    bookkeeping = [
        migration_step("record/10_vacuum_voice_calls.sql", autocommit=True),
        migration_step("record/11_record_findings.sql"),
        migration_step("record/12_record_reconciliation.sql"),
        migration_step("record/13_record_run_detail.sql"),
    ]
    # A dry run runs the data steps in one transaction, reports what they would do, and rolls back.
    dry_run = dry_run_of(DATA_STEPS, before_sql="report/dry_run_before.sql", report_sql="report/dry_run.sql")
    # The way back: removes what the migration created, through its lineage.
    rollback = migration_step("rollback/rollback_migration.sql")
    checks = [
        migration_check("check/check_conservation.sql"),
        migration_check("check/check_no_orphan_tenants.sql"),
        migration_check("check/check_no_duplicate_natural_keys.sql"),
        migration_check("check/check_sequences_past_max_id.sql"),
        migration_check("check/check_content_matches_legacy.sql", work_mem="256MB"),
        migration_check("check/check_run_balanced.sql"),
    ]
    report_findings = SQLReportOperator(
        task_id="report_findings",
        sql="report/findings.sql",
        title="Findings for the cutover (not failures)",
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
