"""The migration runs as the least-privilege role of sql/admin/create_migration_role.sql (created by
running the real script with psql), and the connection's password never reaches a log."""

from __future__ import annotations

import re
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, quote_plus

import psycopg
import pytest
from psycopg import errors
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from devtools.airflow_env import DAG_ID, REPO, SQL_DIR, airflow, airflow_env
from devtools.postgres import airflow_connection, psql_binary
from tests.helpers import LegacyDatabase, load_dag, run_dag
from tests.stack import AirflowStack
from voice_agent_migration.catalog import OWNED_TARGET_TABLES

SCRIPT = SQL_DIR / "admin" / "create_migration_role.sql"

# Characters a URI must encode, so that the encoded form of the password differs from the plain one.
PASSWORD_PREFIX = "s3cr3t-p@ss/w:rd#"

# The tables the migration creates in the target schema (and so owns): the catalog's but those the
# application shares (leads), and its bookkeeping.
MIGRATION_TABLES = {
    *OWNED_TARGET_TABLES,
    "migration_lineage",
    "migration_call_chunks",
    "migration_run_chunks",
    "migration_rejects",
    "migration_reconciliation",
    "migration_runs",
    "migration_run_writes",
    "migration_run_tables",
    "migration_findings",
    "migration_call_findings_summary",
}

# The views the migration creates in the target schema (and so owns).
MIGRATION_VIEWS = {"migration_id_map", "migration_call_findings"}


def run_script(admin_uri: str, **variables: str) -> subprocess.CompletedProcess[str]:
    """Run the admin script as a DBA would: psql -v name=value ... -f sql/admin/create_migration_role.sql."""
    psql = psql_binary()
    if psql is None:
        pytest.skip("no psql to run sql/admin/create_migration_role.sql with")
    args = [psql, "-X", "-q", "-d", admin_uri, "-f", str(SCRIPT)]
    for name, value in variables.items():
        args[1:1] = ["-v", f"{name}={value}"]
    return subprocess.run(args, capture_output=True, text=True, check=False, timeout=120)


@dataclass
class MigrationRole:
    name: str
    password: str
    db: LegacyDatabase  # the demo database, connecting as the role

    @property
    def secrets(self) -> set[str]:
        """The password and the forms a URI or a query string would give it."""
        return {self.password, quote(self.password, safe=""), quote_plus(self.password)}


def drop_role(admin_uri: str, name: str) -> None:
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        conn.execute(f'DROP OWNED BY "{name}"')  # in this database: what the migration created, the grants
        conn.execute(f'DROP ROLE "{name}"')


def create_role(db: LegacyDatabase) -> MigrationRole:
    """A new role made by the script on `db`, with a distinctive password."""
    name = f"voice_agent_migration_{uuid.uuid4().hex[:8]}"
    password = f"{PASSWORD_PREFIX}{uuid.uuid4().hex}"
    result = run_script(db.uri, role_name=name, password=password, source_schema="voice_agent", target_schema="public")
    assert result.returncode == 0, result.stdout + result.stderr
    assert password not in result.stdout + result.stderr
    role_uri = make_conninfo(**{**conninfo_to_dict(db.uri), "user": name, "password": password})
    return MigrationRole(name, password, LegacyDatabase(role_uri))


@pytest.fixture
def migration_role(demo_db) -> MigrationRole:
    role = create_role(demo_db)
    yield role
    drop_role(demo_db.uri, role.name)


def assert_migration_succeeded(states) -> None:
    """Every task succeeded, but the other modes (dry run, rollback), which the branch skipped."""
    other_modes = load_dag().get_task("choose_mode").downstream_task_ids - {"check_legacy_schema"}
    assert "dry_run" in other_modes
    not_run = {task: state for task, (state, _) in states.items() if state != "success"}
    assert not_run == dict.fromkeys(other_modes, "skipped")
    assert {"migrate_voice_calls", "vacuum_voice_calls", "check_run_balanced", "report_run"} <= states.keys()


def assert_reconciliation_balances(db: LegacyDatabase, run_id: str) -> None:
    rows = db.rows(
        "SELECT source_table, legacy_rows, landed, rejected, missing, doubled FROM migration_reconciliation"
        " WHERE run_id = %s ORDER BY position",
        (run_id,),
    )
    assert len(rows) == 6
    for source_table, legacy_rows, landed, rejected, missing, doubled in rows:
        assert (missing, doubled) == (0, 0), source_table
        assert legacy_rows == landed + rejected, source_table
    assert {r[0]: r[1:4] for r in rows}["call_logs_voiceagent"] == (742, 729, 13)


@pytest.mark.slow
def test_the_whole_dag_runs_as_the_migration_role_and_balances(demo_db, migration_role):
    app_leads_before = demo_db.rows("SELECT id, name, phone, created_at FROM public.leads ORDER BY id")

    states = run_dag(migration_role.db)
    assert_migration_succeeded(states)
    assert_reconciliation_balances(demo_db, states.run_id)
    assert demo_db.rows("SELECT outcome FROM migration_runs WHERE run_id = %s", (states.run_id,)) == [("success",)]

    # The role owns what the migration created (VACUUM and CREATE OR REPLACE need it), and nothing else.
    owners = dict(
        demo_db.rows(
            "SELECT c.relname, c.relowner::regrole::text FROM pg_class AS c"
            " WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'v')"
        )
    )
    assert {t: owners[t] for t in MIGRATION_TABLES | MIGRATION_VIEWS} == dict.fromkeys(
        MIGRATION_TABLES | MIGRATION_VIEWS, migration_role.name
    )
    assert (owners["leads"], owners["company_search_cache"]) == ("postgres", "postgres")
    # The application's leads are untouched; the migrated ones landed beside them.
    assert (
        demo_db.rows(
            "SELECT id, name, phone, created_at FROM public.leads WHERE id = ANY(%s) ORDER BY id",
            ([row[0] for row in app_leads_before],),
        )
        == app_leads_before
    )
    assert demo_db.value("SELECT count(*) FROM public.leads") == 59 + 2

    # Again, as the role: idempotent (it writes nothing), and a dry run works with the same privileges.
    before = demo_db.snapshot()
    assert_migration_succeeded(run_dag(migration_role.db))
    assert demo_db.snapshot() == before
    dry_run = run_dag(migration_role.db, {"dry_run": True})
    assert dry_run["dry_run"] == ("success", 1)
    assert demo_db.snapshot() == before


@pytest.mark.slow
def test_a_rollback_as_the_role_removes_only_what_the_migration_wrote(demo_db, migration_role):
    assert_migration_succeeded(run_dag(migration_role.db))
    rolled_back = run_dag(migration_role.db, {"rollback": True})
    assert rolled_back["rollback_migration"] == ("success", 1)
    assert demo_db.value("SELECT count(*) FROM voice_calls") == 0
    assert demo_db.value("SELECT count(*) FROM public.leads") == 2  # the application's own


def assert_refused(db: LegacyDatabase, statement: str) -> None:
    with pytest.raises(errors.InsufficientPrivilege):
        db.execute(statement)


@pytest.mark.parametrize(
    "statement",
    [
        # The legacy schema is read only, and only its seven mapped tables can be read.
        "INSERT INTO voice_agent.users_voiceagent (user_id) VALUES ('intruder')",
        "UPDATE voice_agent.call_logs_voiceagent SET status = 'x'",
        "DELETE FROM voice_agent.leads_voiceagent",
        "TRUNCATE voice_agent.org_permissions_voiceagent",
        "CREATE TABLE voice_agent.intruder (id integer)",
        "ALTER TABLE voice_agent.voices_voiceagent ADD COLUMN intruder integer",
        "DROP TABLE voice_agent.numbers_voiceagent",
        "SELECT nextval('voice_agent.users_voiceagent_id_seq')",
        "SELECT count(*) FROM voice_agent.batch_logs_voiceagent",
        # No other schema, no new schema.
        "CREATE TABLE other_schema.intruder (id integer)",
        "SELECT count(*) FROM other_schema.private",
        "CREATE SCHEMA intruder",
        # The application's tables: no DDL, only the mapped columns (and DELETE on leads: the migration
        # removes the leads it wrote whose legacy lead is gone), never the caches' data.
        "ALTER TABLE public.leads ADD COLUMN intruder integer",
        "DROP TABLE public.leads",
        "DELETE FROM public.company_search_cache",
        "TRUNCATE public.leads",
        "UPDATE public.leads SET created_at = now()",
        "INSERT INTO public.leads (id, name, created_at) VALUES (gen_random_uuid(), 'x', now())",
        "SELECT query, results FROM public.company_search_cache",
        "UPDATE public.company_search_cache SET tenant_id = NULL",
        "ALTER TABLE public.company_search_cache DROP COLUMN tenant_id",
        # No role management, no other database.
        "CREATE ROLE intruder",
        "CREATE DATABASE intruder",
    ],
)
def test_the_role_can_do_nothing_but_read_the_legacy_schema_and_write_the_target(demo_db, migration_role, statement):
    demo_db.execute("CREATE SCHEMA other_schema; CREATE TABLE other_schema.private (id integer)")
    assert_refused(migration_role.db, statement)


def test_the_role_has_no_attribute_or_membership_and_reads_what_the_migration_needs(demo_db, migration_role):
    assert demo_db.rows(
        "SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls"
        " FROM pg_roles WHERE rolname = %s",
        (migration_role.name,),
    ) == [(True, False, False, False, False, False)]
    assert (
        demo_db.value(
            "SELECT count(*) FROM pg_auth_members WHERE member = to_regrole(%s)", (f'"{migration_role.name}"',)
        )
        == 0
    )
    # The script added what the migration would otherwise add with ALTER TABLE to tables it does not own.
    assert demo_db.rows(
        "SELECT attname FROM pg_attribute WHERE attrelid = 'public.leads'::regclass AND attnum > 0"
        " AND attname IN ('tenant_id', 'source', 'status', 'metadata') ORDER BY 1"
    ) == [("metadata",), ("source",), ("status",), ("tenant_id",)]
    assert (
        demo_db.value(
            "SELECT count(*) FROM pg_attribute WHERE attrelid = 'public.company_search_cache'::regclass"
            " AND attname = 'tenant_id'"
        )
        == 1
    )
    # What it may read: the legacy tables, the application's leads, the caches' tenant_id and ids.
    db = migration_role.db
    assert db.value("SELECT count(*) FROM voice_agent.call_logs_voiceagent") == 742
    assert db.value("SELECT count(*) FROM public.leads") == 2
    assert db.value("SELECT count(tenant_id) FROM public.company_search_cache") == 0
    assert db.value("SELECT max(id) FROM public.company_search_cache") == 2
    assert db.value("SELECT pg_sequence_last_value('public.company_search_cache_id_seq')") == 2


def test_the_script_is_idempotent_and_refuses_what_would_give_the_role_more(demo_db, migration_role):
    grants = "SELECT grantee, table_schema, table_name, privilege_type FROM information_schema.role_table_grants"
    privileges = demo_db.rows(f"{grants} WHERE grantee = %s ORDER BY 2, 3, 4", (migration_role.name,))
    again = run_script(
        demo_db.uri,
        role_name=migration_role.name,
        password=migration_role.password,
        source_schema="voice_agent",
        target_schema="public",
    )
    assert again.returncode == 0, again.stderr
    assert demo_db.rows(f"{grants} WHERE grantee = %s ORDER BY 2, 3, 4", (migration_role.name,)) == privileges

    # A role that would hold more through a membership is refused, and nothing is granted to it.
    name = f"voice_agent_migration_{uuid.uuid4().hex[:8]}"
    demo_db.execute(f'CREATE ROLE "{name}" LOGIN IN ROLE pg_read_all_data')
    try:
        refused = run_script(demo_db.uri, role_name=name, source_schema="voice_agent", target_schema="public")
        assert refused.returncode != 0
        assert "is a member of pg_read_all_data" in refused.stderr
        assert demo_db.rows(f"{grants} WHERE grantee = %s", (name,)) == []
    finally:
        drop_role(demo_db.uri, name)

    # Through PUBLIC the role could still write the legacy schema: refused. Create elsewhere: a warning.
    variables = {"role_name": migration_role.name, "source_schema": "voice_agent", "target_schema": "public"}
    demo_db.execute("CREATE SCHEMA scratch; GRANT CREATE ON SCHEMA scratch TO PUBLIC")
    warned = run_script(demo_db.uri, **variables)
    assert warned.returncode == 0, warned.stderr
    assert f"WARNING:  role {migration_role.name} can create objects in schema(s) scratch" in warned.stderr
    demo_db.execute("GRANT INSERT ON voice_agent.batch_logs_voiceagent TO PUBLIC")
    public_write = run_script(demo_db.uri, **variables)
    assert public_write.returncode != 0
    assert "could still write the legacy schema voice_agent: voice_agent.batch_logs_voiceagent" in public_write.stderr

    missing = run_script(demo_db.uri, role_name=name)
    assert missing.returncode != 0
    assert "set role_name, source_schema and target_schema" in missing.stderr


# --- Secrets -------------------------------------------------------------------------------------


def files_under(root: Path):
    return (path for path in root.rglob("*") if path.is_file())


@pytest.mark.slow
def test_the_password_never_reaches_a_task_log(demo_db, migration_role, cli_airflow_home, tmp_path):
    """`airflow dags test`, as a user runs it, as the role: the password is in the connection only.

    `dags test` runs the tasks in-process and their logs go to its stdout (Airflow 3.3 writes no task
    log files for it); log files it would write go to a folder of this test's own, scanned as well,
    with everything under AIRFLOW_HOME (its configuration, its metadata database)."""
    logs = tmp_path / "logs"
    env = airflow_env(cli_airflow_home, airflow_connection(migration_role.db.uri))
    env["AIRFLOW__LOGGING__BASE_LOG_FOLDER"] = str(logs)
    assert migration_role.password in env["AIRFLOW_CONN_VOICE_AGENT_DB"]

    result = airflow(env, "dags", "test", DAG_ID, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    # The tasks' own logs are in the output: every task of a migration ran and logged there.
    ran = set(re.findall(r"\[DAG TEST\] end task task_id=(\w+)", output))
    assert {"check_legacy_schema", "migrate_voice_calls", "check_run_balanced", "report_run"} <= ran
    assert "migrate_tenants committed in" in output and "migrate_voice_calls: 1 chunks to do of 1" in output

    scanned = [*files_under(logs), *files_under(Path(env["AIRFLOW_HOME"]))]
    assert scanned
    for secret in migration_role.secrets:
        assert secret not in output
        for path in scanned:
            assert secret.encode() not in path.read_bytes(), path


class RoleStack(AirflowStack):
    """A real Airflow (api-server, scheduler, dag-processor) whose voice_agent_db is the migration role."""

    role: MigrationRole | None = None

    def _build_env(self) -> dict[str, str]:
        self.role = create_role(self.legacy_db)
        env = super()._build_env()
        env["AIRFLOW_CONN_VOICE_AGENT_DB"] = airflow_connection(self.role.db.uri)
        return env

    def stop(self) -> None:
        super().stop()  # drops the database, and with it what the role owned there
        if self.role is not None:
            with psycopg.connect(self.pg_admin_uri, autocommit=True) as conn:
                conn.execute(f'DROP ROLE IF EXISTS "{self.role.name}"')


@pytest.mark.slow
def test_the_password_never_reaches_the_task_log_files_of_a_real_airflow(pg_admin_uri, tmp_path):
    """The scheduler runs the tasks in supervised processes that write task log files: none of those,
    nor the processes' own logs, nor anything else under AIRFLOW_HOME, holds the password."""
    with RoleStack(pg_admin_uri, tmp_path / "airflow") as stack:
        stack.unpause()
        run_id = stack.trigger({})
        assert stack.wait_for(run_id, timeout=900) == {run_id: "success"}, stack.describe([run_id])
        assert "Reconciliation per legacy table" in stack.task_log(run_id, "report_reconciliation")
        served = [
            stack.task_log(run_id, task_id)
            for task_id, state in stack.task_states(run_id).items()
            if state == "success"
        ]
        task_logs = [p for p in files_under(stack.log_dir) if "task_id=" in str(p)]
        assert any("task_id=migrate_voice_calls" in str(p) for p in task_logs), task_logs
        for secret in stack.role.secrets:
            for log in served:
                assert secret not in log
            for path in files_under(stack.home):
                assert secret.encode() not in path.read_bytes(), path


# A literal credential: `password: value`, `PASSWORD=value`, "password": "value", or user:value@ in a URI.
# Not literals: ${VAR:-default} interpolations, $VAR, psql variables (:'password'), <placeholders>, empty values.
PASSWORD_ASSIGNMENT = re.compile(
    r"""(?ix) \b\w*(password|passwd|secret)\w*["']? \s* (=|:) \s* (?P<quote>["']?) (?P<value>[^\s"',)}]*)"""
)
URI_USERINFO = re.compile(r"://[^/\s:@]*:(?P<value>[^@\s/]*)@")
NOT_A_LITERAL = re.compile(r"^(\$|:|\{|%\(|<|\*+$|$)")
# ${VAR:-dev-default} (a documented default), psql's :'var' and :"var".
INTERPOLATION = re.compile(r"""\$\{[^}]*\}|:(['"])\w+\1""")
# Where secrets could be committed by mistake: what builds, deploys and runs the DAG.
SCANNED = ("docker-compose.yaml", "Dockerfile", "dags", "plugins", "sql", "devtools", "docker")


def literal_credentials(path: Path) -> list[str]:
    shown = path.relative_to(REPO) if path.is_relative_to(REPO) else path
    found = []
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = INTERPOLATION.sub("$VAR", text)
        for match in PASSWORD_ASSIGNMENT.finditer(line):
            # In Python a value is an expression unless quoted: "password": params.get(...) is not one.
            if path.suffix == ".py" and not match["quote"]:
                continue
            if not NOT_A_LITERAL.match(match["value"]):
                found.append(f"{shown}:{number}: {text.strip()}")
        for match in URI_USERINFO.finditer(line):
            if not NOT_A_LITERAL.match(match["value"]):
                found.append(f"{shown}:{number}: {text.strip()}")
    return found


def test_no_file_that_ships_holds_a_literal_password():
    paths = [REPO / name for name in SCANNED]
    files = [p for root in paths if root.exists() for p in ([root] if root.is_file() else files_under(root))]
    files = [p for p in files if "__pycache__" not in p.parts]
    assert any(p.name == "create_migration_role.sql" for p in files)
    assert [line for path in files for line in literal_credentials(path)] == []


def test_the_scan_finds_a_literal_password_and_passes_placeholders(tmp_path):
    planted = tmp_path / "compose.yaml"
    planted.write_text(
        "uri: postgresql://user:hunter2@db/app\n"
        "POSTGRES_PASSWORD: hunter2\n"
        "ok: postgresql://${USER:-u}:${PASSWORD:-dev}@db/app\n"
        "PASSWORD: ${PASSWORD}\n"
    )
    assert [line.split(": ", 1)[1] for line in literal_credentials(planted)] == [
        "uri: postgresql://user:hunter2@db/app",
        "POSTGRES_PASSWORD: hunter2",
    ]
