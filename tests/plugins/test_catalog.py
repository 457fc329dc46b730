"""The catalog declares each migrated table once, and every place that iterates over the tables is
derived from it: a step writing an undeclared table, or a derived place missing a declared one, fails here."""

from __future__ import annotations

import re

import pytest

from devtools.airflow_env import SQL_DIR, render_sql
from tests.helpers import MIGRATION_STEPS
from voice_agent_migration import templating
from voice_agent_migration.catalog import CATALOG, TARGET_TABLES, MigratedTable, legacy_columns

WINDOW = {"window_start": "2025-01-01T00:00:00+00:00", "window_end": "2025-01-02T00:00:00+00:00"}
WRITE = re.compile(r'\b(?:INSERT INTO|UPDATE|DELETE FROM|TRUNCATE)\s+"public"\.(\w+)', re.IGNORECASE)

# Two tables no step migrates, one of each lineage kind: every derived place must take them in.
EXTRA = (
    MigratedTable(
        source_table="widgets_voiceagent",
        target_table="widgets",
        step="migrate/98_migrate_widgets.sql",
        columns=("id", "made_by", "colour"),
        tenant="owner:made_by",
        target_id="the legacy id",
    ),
    MigratedTable(
        source_table="pings_voiceagent",
        target_table="pings",
        step="migrate/99_migrate_pings.sql",
        columns=("id", "org", "sent_at"),
        tenant="organization:org",
        target_id="the legacy uuid",
        lineage="same id",
        window_column="sent_at",
    ),
)

# The places derived from the catalog, and what each must mention of a table.
DERIVED = {
    "setup/00_check_legacy_schema.sql": lambda t: [f"('{t.source_table}', '{t.columns[-1]}')"],
    "record/12_record_run_account.sql": lambda t: [f'"voice_agent".{t.source_table}', f"'{t.target_table}'"],
    "report/run_detail.sql": lambda t: [f"'{t.source_table}'"],
    "check/check_no_orphan_tenants.sql": lambda t: [f'FROM "public".{t.target_table}'],
    "rollback/rollback_migration.sql": lambda t: [f'DELETE FROM "public".{t.target_table}'],
}


def written_tables(sql_file: str) -> set[str]:
    return {m.group(1) for params in ({}, WINDOW) for m in WRITE.finditer(render_sql(sql_file, params))}


def test_each_table_is_declared_once_and_migrated_by_a_step_of_the_dag():
    assert len({t.source_table for t in CATALOG}) == len(CATALOG)
    assert len(set(TARGET_TABLES)) == len(TARGET_TABLES)
    for table in CATALOG:
        assert table.step in MIGRATION_STEPS, table
        assert (SQL_DIR / "mapping" / f"{table.target_table}.sql").exists(), f"{table}: its mapping has no file"
        assert table.target_table in written_tables(table.step), table
        assert table.tenant == "system" or table.owner_column or table.organization_column, table
        assert table.lineage in ("stored", "same id"), table
        assert table.source_key in table.columns and (table.window_column or "id") in table.columns, table


# Every file that may write, whether the DAG runs it or not.
WRITING_FILES = sorted(
    str(path.relative_to(SQL_DIR))
    for phase in ("setup", "migrate", "record", "rollback")
    for path in (SQL_DIR / phase).glob("*.sql")
)


@pytest.mark.parametrize("sql_file", WRITING_FILES)
def test_steps_write_only_declared_tables_and_their_own(sql_file):
    """A step may write the run's bookkeeping (migration_*) and the tables the catalog declares, each
    only from the step that declares it (the rollback removes them all)."""
    for table in written_tables(sql_file):
        if table.startswith("migration_"):
            continue
        assert table in TARGET_TABLES, f"{sql_file} writes {table}, which the catalog does not declare"
        owners = [t.step for t in CATALOG if t.target_table == table]
        if sql_file.startswith("migrate/") and owners:
            assert owners == [sql_file], f"{sql_file} writes {table}, declared as written by {owners}"


@pytest.mark.parametrize("sql_file", sorted(DERIVED))
def test_every_derived_place_covers_every_declared_table(sql_file, monkeypatch):
    monkeypatch.setitem(templating.SQL_MACROS, "catalog", (*CATALOG, *EXTRA))
    monkeypatch.setattr("voice_agent_migration.catalog.CATALOG", (*CATALOG, *EXTRA))
    for params in ({}, WINDOW):
        sql = render_sql(sql_file, params)
        for table in (*CATALOG, *EXTRA):
            for mention in DERIVED[sql_file](table):
                assert mention in sql, f"{sql_file} does not cover {table.source_table}: no {mention!r}"


def test_the_least_privilege_role_reads_every_legacy_table_the_catalog_reads():
    """sql/admin/create_migration_role.sql is a psql script a DBA runs, not rendered by the DAG: its
    list of legacy tables must still name every one the migration reads."""
    script = (SQL_DIR / "admin" / "create_migration_role.sql").read_text()
    granted = set(re.findall(r':"source_schema"\.(\w+)', script))
    assert granted == set(legacy_columns())


def test_the_migrated_tables_of_the_reports_follow_the_catalog():
    sql = render_sql("report/reconciliation.sql")
    assert "migration_reconciliation" in sql
    positions = re.findall(r"\((\d+), '(\w+)', '(\w+)'\)", render_sql("record/12_record_run_account.sql"))
    assert list(dict.fromkeys((s, t) for _, s, t in positions)) == [(t.source_table, t.target_table) for t in CATALOG]
