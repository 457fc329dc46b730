"""The way back, through the real DAG: a rollback removes exactly what the migration created and leaves
the application's own rows as they were; a fresh run then migrates everything again."""

from __future__ import annotations

from tests.helpers import run_dag
from voice_agent_migration.catalog import OWNED_TARGET_TABLES as MIGRATED_TABLES


def counts(db) -> dict[str, int]:
    return {table: db.value(f"SELECT count(*) FROM public.{table}") for table in [*MIGRATED_TABLES, "leads"]}


APP_LEADS = ["7d0c2a4e-0000-4000-8000-000000000001", "7d0c2a4e-0000-4000-8000-000000000002"]  # legacy_db.py


def app_rows(db) -> dict[str, list]:
    return {
        "leads": db.rows(
            "SELECT id, name, phone, created_at FROM public.leads WHERE id = ANY(%s::uuid[]) ORDER BY id", (APP_LEADS,)
        ),
        "company_search_cache": db.rows(
            "SELECT id, query, results, created_at FROM public.company_search_cache ORDER BY id"
        ),
    }


def test_a_rollback_removes_what_the_migration_created_and_a_fresh_run_brings_it_back(demo_db):
    application = app_rows(demo_db)
    first = run_dag(demo_db)
    migrated = counts(demo_db)
    first_reconciliation = demo_db.rows(
        "SELECT source_table, legacy_rows, landed, rejected FROM migration_reconciliation WHERE run_id = %s"
        " ORDER BY position",
        (first.run_id,),
    )

    rollback = run_dag(demo_db, {"rollback": True})

    ran = {task for task, (state, _) in rollback.items() if state == "success"}
    assert ran == {"choose_mode", "rollback_migration"}, rollback
    assert {table: n for table, n in counts(demo_db).items() if table != "leads"} == dict.fromkeys(MIGRATED_TABLES, 0)
    assert counts(demo_db)["leads"] == len(APP_LEADS)  # only the application's own leads remain
    assert app_rows(demo_db) == application  # untouched (the added tenant_id columns stay, empty)
    for table in (
        "migration_lineage",
        "migration_rejects",
        "migration_call_chunks",
        "migration_findings",
        "migration_call_findings_summary",
        "migration_call_findings",
    ):
        assert demo_db.value(f"SELECT count(*) FROM {table}") == 0, table
    assert demo_db.rows(
        "SELECT outcome, (params ->> 'rollback')::boolean FROM migration_runs WHERE run_id = %s", (rollback.run_id,)
    ) == [("success", True)]

    again = run_dag(demo_db)
    assert counts(demo_db) == migrated
    assert (
        demo_db.rows(
            "SELECT source_table, legacy_rows, landed, rejected FROM migration_reconciliation WHERE run_id = %s"
            " ORDER BY position",
            (again.run_id,),
        )
        == first_reconciliation
    )
    assert {state for state, _ in again.values()} == {"success", "skipped"}


def test_a_rollback_keeps_an_application_lead_the_migration_only_linked(demo_db):
    # The application already holds a lead with a legacy lead's tenant and phone: the migration links to it.
    org, phone = demo_db.rows("""
        SELECT u.organization_id, btrim(l.lead_number) FROM voice_agent.leads_voiceagent AS l
        JOIN voice_agent.users_voiceagent AS u ON l.added_by = u.id
        WHERE u.organization_id IS NOT NULL AND btrim(l.lead_number) <> '' ORDER BY l.id LIMIT 1
    """)[0]
    run_dag(demo_db)  # adds tenant_id to the application's leads
    demo_db.execute("DELETE FROM public.leads WHERE phone = %s AND tenant_id = %s", (phone, org))
    demo_db.execute(
        "INSERT INTO public.leads (id, name, phone, tenant_id) VALUES ('7d0c2a4e-0000-4000-8000-0000000000aa',"
        " 'App lead', %s, %s)",
        (phone, org),
    )
    run_dag(demo_db)
    linked = demo_db.value(
        "SELECT count(*) FROM migration_lineage WHERE target_id = '7d0c2a4e-0000-4000-8000-0000000000aa'"
    )
    assert linked >= 1

    run_dag(demo_db, {"rollback": True})

    assert demo_db.rows("SELECT name FROM public.leads WHERE id = '7d0c2a4e-0000-4000-8000-0000000000aa'") == [
        ("App lead",)
    ]


def test_dry_run_and_rollback_together_are_refused(demo_db):
    states = run_dag(demo_db, {"rollback": True, "dry_run": True})
    assert states["choose_mode"][0] == "failed"
    assert demo_db.value("SELECT count(*) FROM pg_tables WHERE tablename = 'voice_calls'") == 0
