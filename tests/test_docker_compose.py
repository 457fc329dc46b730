"""The docker-compose stack (docker-compose.yaml, Dockerfile, .env.example, the voice-agent-db seed
script), tested by structure since Docker does not run here: each test fails on a drift that would
break `docker compose up` or the DAG inside it. The seed script itself runs for real against the
test PostgreSQL when a psql client is at hand."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import pytest
import yaml
from psycopg.conninfo import conninfo_to_dict

from devtools.postgres import create_database, drop_database
from tests.helpers import LegacyDatabase

REPO = Path(__file__).resolve().parent.parent
COMPOSE_FILE = REPO / "docker-compose.yaml"
DOCKERFILE = REPO / "Dockerfile"
ENV_EXAMPLE = REPO / ".env.example"
SEED_SCRIPT = REPO / "docker" / "voice-agent-db" / "initdb" / "10-seed-demo.sh"
DOCS = REPO / "docs" / "docker-compose.md"

# The official Airflow 3 docker-compose services and their commands.
AIRFLOW_COMMANDS = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-worker": "celery worker",
    "airflow-triggerer": "triggerer",
}
AIRFLOW_SERVICES = [*AIRFLOW_COMMANDS, "airflow-init"]
CODE_MOUNTS = {"./dags": "/opt/airflow/dags", "./sql": "/opt/airflow/sql", "./plugins": "/opt/airflow/plugins"}

# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}...; `$$` escapes a dollar sign.
INTERPOLATION = re.compile(r"(?<!\$)\$\{(?P<name>\w+)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}")
# Environment keys whose value is a credential.
SECRET_KEY = re.compile(r"PASSWORD|SECRET|FERNET|TOKEN|API_KEY|PRIVATE_KEY")
# scheme://userinfo@ in any string; userinfo is checked for a password.
URL_USERINFO = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://(?P<userinfo>[^/@\s]*)@")


def expand(value: str, env: dict[str, str] | None = None) -> str:
    """Interpolate like docker compose: ${VAR:-default} is the default when VAR is unset or empty."""
    env = env or {}

    def substitute(match: re.Match) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        current = env.get(name)
        if op in (":-", "-") and (current is None or (op == ":-" and current == "")):
            return arg
        return current or ""

    return INTERPOLATION.sub(substitute, value).replace("$$", "$")


def strings(node):
    """Every string in a parsed YAML document (keys and values)."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from strings(key)
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)


def interpolated_variables(compose: dict) -> set[str]:
    """The variables docker compose interpolates (comments are not interpolated)."""
    return {match["name"] for value in strings(compose) for match in INTERPOLATION.finditer(value)}


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def bind_mounts(service: dict) -> dict[str, str]:
    """{container path: host path} of the service's bind mounts (short syntax)."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith((".", "/", "~")):
            mounts[target] = source
    return mounts


def env_example_variables() -> set[str]:
    """Variables .env.example sets, or shows commented out (`# VAR=value`)."""
    return set(re.findall(r"^#?\s*([A-Za-z_]\w*)=", ENV_EXAMPLE.read_text(), flags=re.MULTILINE))


def requirement_pin(text: str, name: str) -> str:
    (version,) = re.findall(rf"^{re.escape(name)}==(\S+)", text, flags=re.MULTILINE | re.IGNORECASE)
    return version


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict[str, dict]:
    return compose["services"]


# --- the official layout ---------------------------------------------------------------------


def test_the_official_services_run_their_commands(services):
    assert set(services) >= {"postgres", "redis", *AIRFLOW_SERVICES, "voice-agent-db"}
    for name, command in AIRFLOW_COMMANDS.items():
        assert services[name]["command"] == command, name
        assert services[name]["healthcheck"]["test"], name
        assert services[name]["restart"] == "always", name
    assert "8080:8080" in services["airflow-apiserver"]["ports"]
    assert services["airflow-init"]["entrypoint"] == "/bin/bash"
    assert services["airflow-init"]["user"] == "0:0"
    init_env = environment(services["airflow-init"])
    assert init_env["_AIRFLOW_DB_MIGRATE"] == "true"
    assert init_env["_AIRFLOW_WWW_USER_CREATE"] == "true"
    for name in ("postgres", "redis", "voice-agent-db"):
        assert services[name]["healthcheck"]["test"], name


def test_services_start_in_the_official_order(services):
    for name in AIRFLOW_SERVICES:
        depends_on = services[name]["depends_on"]
        assert depends_on["postgres"]["condition"] == "service_healthy", name
        assert depends_on["redis"]["condition"] == "service_healthy", name
    for name in AIRFLOW_COMMANDS:
        assert services[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully", name
    worker = services["airflow-worker"]["depends_on"]
    assert worker["airflow-apiserver"]["condition"] == "service_healthy"
    assert worker["voice-agent-db"]["condition"] == "service_healthy"
    assert environment(services["airflow-worker"])["DUMB_INIT_SETSID"] == "0"


def test_celery_executor_with_redis_broker_and_the_metadata_db_on_postgres(services):
    postgres = environment(services["postgres"])
    for name in AIRFLOW_SERVICES:
        env = environment(services[name])
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "false", name
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/", name
        assert env["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"] == "true", name

        broker = urlsplit(expand(env["AIRFLOW__CELERY__BROKER_URL"]))
        assert (broker.scheme, broker.hostname, broker.port) == ("redis", "redis", 6379), name
        for key in ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CELERY__RESULT_BACKEND"):
            url = urlsplit(expand(env[key]))
            assert url.hostname == "postgres", (name, key)
            # the same user, password and database as the postgres service creates
            assert env[key].endswith(f"@postgres/{postgres['POSTGRES_DB']}"), (name, key)
            assert f"://{postgres['POSTGRES_USER']}:{postgres['POSTGRES_PASSWORD']}@" in env[key], (name, key)
    assert services["redis"]["image"].startswith("redis:")
    assert services["postgres"]["image"].startswith("postgres:")


def test_the_image_is_built_from_the_dockerfile_not_pip_installed_at_startup(services):
    for name in AIRFLOW_SERVICES:
        build = services[name]["build"]
        context = build if isinstance(build, str) else build.get("context", ".")
        assert (REPO / context / "Dockerfile").resolve() == DOCKERFILE, name
        assert not environment(services[name]).get("_PIP_ADDITIONAL_REQUIREMENTS"), name


# --- code and data mounted where the DAG looks ---------------------------------------------------


def test_every_bind_mount_source_exists_in_the_repository(compose, services):
    declared_volumes = set(compose.get("volumes") or {})
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/", "~")):
                assert not source.startswith(("/", "~")), f"{name}: {source} is outside the repository"
                assert (REPO / source).exists(), f"{name}: bind mount source {source} does not exist"
            else:
                assert source in declared_volumes, f"{name}: named volume {source} is not declared"


def test_dags_sql_and_plugins_are_mounted_on_every_airflow_service(services):
    for name in AIRFLOW_SERVICES:
        mounts = bind_mounts(services[name])
        for source, target in CODE_MOUNTS.items():
            assert mounts.get(target) == source, f"{name}: {source} is not mounted at {target}"
    assert (REPO / "dags" / "voice_agent_tenant_migration.py").is_file()
    assert (REPO / "plugins" / "voice_agent_migration" / "__init__.py").is_file()


def test_the_dag_finds_its_sql_and_its_package_in_the_containers(services):
    # The DAG reads its SQL from Path(__file__).resolve().parent.parent / "sql".
    dag_source = (REPO / "dags" / "voice_agent_tenant_migration.py").read_text()
    assert 'SQL_DIR = Path(__file__).resolve().parent.parent / "sql"' in dag_source
    for name in AIRFLOW_SERVICES:
        env = environment(services[name])
        dags_folder = PurePosixPath(env["AIRFLOW__CORE__DAGS_FOLDER"])
        plugins_folder = env["AIRFLOW__CORE__PLUGINS_FOLDER"]
        mounts = bind_mounts(services[name])
        assert mounts[str(dags_folder)] == "./dags", name
        assert mounts[str(dags_folder.parent / "sql")] == "./sql", name
        assert mounts[plugins_folder] == "./plugins", name
        assert plugins_folder in env["PYTHONPATH"].split(":"), name


# --- connections ---------------------------------------------------------------------------------


def test_the_dags_connection_points_at_voice_agent_db(compose, services):
    from airflow.models.connection import Connection

    from voice_agent_migration.operators import CONN_ID

    variable = f"AIRFLOW_CONN_{CONN_ID.upper()}"
    db = environment(services["voice-agent-db"])
    # With every variable set, and with none: user, password and database are the ones
    # voice-agent-db is created with.
    all_set = {name: f"value-of-{name.lower()}" for name in interpolated_variables(compose)}
    for env in (all_set, {}):
        for name in AIRFLOW_SERVICES:
            uri = environment(services[name])[variable]
            conn = Connection(conn_id=CONN_ID, uri=expand(uri, env))
            assert conn.conn_type == "postgres", name
            assert (conn.host, conn.port) == ("voice-agent-db", 5432), name
            assert conn.login == expand(db["POSTGRES_USER"], env), name
            assert conn.password == expand(db["POSTGRES_PASSWORD"], env), name
            assert conn.schema == expand(db["POSTGRES_DB"], env), name


def test_the_apprise_connection_comes_from_the_environment(services):
    from airflow.models.connection import Connection
    from airflow.providers.apprise.hooks.apprise import AppriseHook

    variable = f"AIRFLOW_CONN_{AppriseHook.default_conn_name.upper()}"
    assert variable == "AIRFLOW_CONN_APPRISE_DEFAULT"
    for name in AIRFLOW_SERVICES:
        # empty unless configured: alerts are then off
        assert environment(services[name])[variable] == "${AIRFLOW_CONN_APPRISE_DEFAULT:-}", name
    # The example in .env.example is a valid Apprise connection.
    (example,) = re.findall(r"^#\s*AIRFLOW_CONN_APPRISE_DEFAULT='(.+)'$", ENV_EXAMPLE.read_text(), re.MULTILINE)
    conn = Connection.from_json(example, conn_id=AppriseHook.default_conn_name)
    assert conn.conn_type == "apprise"
    config = conn.extra_dejson["config"]
    assert config["path"] and config["tag"]


def test_no_literal_password_or_secret_in_the_compose_file(compose):
    def only_interpolations(value: str) -> bool:
        return INTERPOLATION.sub("", value) == ""

    for value in strings(compose):
        # each interpolation becomes one placeholder character, so that its ":-" is not a separator
        for match in URL_USERINFO.finditer(INTERPOLATION.sub("\x00", value)):
            _, _, password = match["userinfo"].partition(":")
            assert password.strip("\x00") == "", f"literal password in {value!r}"

    def check(node) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(key, str) and SECRET_KEY.search(key) and isinstance(value, str):
                    assert only_interpolations(value), f"{key} is a literal: use ${{{key}:-...}}"
                check(value)
        elif isinstance(node, list):
            for item in node:
                check(item)

    check(compose)


# --- variables -----------------------------------------------------------------------------------


def test_env_example_documents_every_variable_the_compose_file_uses(compose):
    used = interpolated_variables(compose)
    documented = env_example_variables()
    assert used - documented == set(), "undocumented in .env.example"
    assert documented - used == set(), ".env.example documents variables docker-compose.yaml does not use"


def test_env_is_git_ignored():
    ignored = {line.strip() for line in (REPO / ".gitignore").read_text().splitlines()}
    assert ignored & {".env", "/.env"}
    assert not ignored & {".env*", ".env.*", "*.example"}


# --- the image -----------------------------------------------------------------------------------


def test_the_dockerfile_extends_the_pinned_airflow_with_the_constrained_requirements():
    dockerfile = DOCKERFILE.read_text()
    requirements = (REPO / "requirements.txt").read_text()
    airflow = requirement_pin(requirements, "apache-airflow")
    assert requirement_pin((REPO / "constraints.txt").read_text(), "apache-airflow") == airflow

    (image,) = re.findall(r"^FROM\s+(\S+)", dockerfile, flags=re.MULTILINE)
    match = re.fullmatch(r"apache/airflow:(?P<airflow>[\d.]+)-python(?P<python>3\.\d+)", image)
    assert match, image
    assert match["airflow"] == airflow

    (copy,) = re.findall(r"^COPY\s+(.+)$", dockerfile, flags=re.MULTILINE)
    *sources, destination = copy.split()
    assert sources == ["requirements.txt", "constraints.txt"]
    (pip,) = re.findall(r"^RUN\s+(pip install .+)$", dockerfile, flags=re.MULTILINE)
    assert "--no-cache-dir" in pip.split()
    assert f"-r {PurePosixPath(destination, 'requirements.txt')}" in pip
    assert f"-c {PurePosixPath(destination, 'constraints.txt')}" in pip
    # pip installs into the airflow user's environment, as the image expects
    users = re.findall(r"^USER\s+(\S+)", dockerfile[: dockerfile.index(pip)], flags=re.MULTILINE)
    assert not users or users[-1] == "airflow"


# --- the voice-agent-db seed ---------------------------------------------------------------------


def seed_files_of_build_demo_database() -> set[str]:
    """The SQL files devtools/legacy_db.py reads (HERE / "x.sql")."""
    tree = ast.parse((REPO / "devtools" / "legacy_db.py").read_text())
    return {
        node.right.value
        for node in ast.walk(tree)
        if isinstance(node, ast.BinOp)
        and isinstance(node.op, ast.Div)
        and isinstance(node.left, ast.Name)
        and node.left.id == "HERE"
        and isinstance(node.right, ast.Constant)
    }


def test_the_seed_script_is_valid_bash_and_mounted_as_an_init_script(services):
    subprocess.run(["bash", "-n", str(SEED_SCRIPT)], check=True)
    assert os.access(SEED_SCRIPT, os.X_OK), "the postgres image sources non-executable scripts"
    db = services["voice-agent-db"]
    mounts = bind_mounts(db)
    init_dir = REPO / mounts["/docker-entrypoint-initdb.d"]
    assert SEED_SCRIPT.parent == init_dir.resolve()
    assert sorted(p.name for p in init_dir.iterdir()) == [SEED_SCRIPT.name]
    assert all(v.endswith(":ro") for v in db["volumes"] if not v.startswith("voice-agent-db-volume:"))


def test_the_seed_script_reads_the_files_build_demo_database_reads(services):
    db = services["voice-agent-db"]
    seed_dir = environment(db)["VOICE_AGENT_SEED_DIR"]
    seed_source = REPO / bind_mounts(db)[seed_dir]
    script = SEED_SCRIPT.read_text()
    referenced = set(re.findall(r"\$seed_dir/([\w.]+)", script)) | set(
        re.findall(r"for file in ([\w. ]+);", script)[0].split()
    )
    assert (
        referenced
        == seed_files_of_build_demo_database()
        == {
            "legacy_schema.sql",
            "demo_seed.sql",
            "application_tables.sql",
        }
    )
    for name in referenced:
        assert (seed_source / name).is_file(), name
    # the placeholders the script substitutes are the ones the SQL and legacy_db.py use
    assert "%(calls)s" in (seed_source / "demo_seed.sql").read_text()
    assert "%(schema)s" in (seed_source / "application_tables.sql").read_text()
    assert expand(environment(db)["VOICE_AGENT_DEMO_CALLS"]) == "742"


def psql_client() -> str | None:
    """A psql client: on PATH, or the one bundled with pgserver."""
    if shutil.which("psql"):
        return shutil.which("psql")
    try:
        import pgserver
    except ImportError:
        return None
    bundled = Path(pgserver.__file__).parent / "pginstall" / "bin" / "psql"
    return str(bundled) if bundled.is_file() else None


def content(db: LegacyDatabase, schema: str) -> dict[str, str]:
    """Table digests (without the columns filled by now()), column definitions and sequence values."""
    digest = db.snapshot(schema, run_records=True, ignore_columns=("created_at", "granted_at"))
    digest["columns"] = repr(
        db.rows(
            "SELECT table_name, column_name, data_type, column_default FROM information_schema.columns"
            " WHERE table_schema = %s ORDER BY 1, 2",
            (schema,),
        )
    )
    return digest


def test_the_seed_script_builds_what_build_demo_database_builds(pg_admin_uri, tmp_path):
    from devtools.legacy_db import build_demo_database

    psql = psql_client()
    if psql is None:
        pytest.skip("no psql client")
    calls = 57
    expected_uri = create_database(pg_admin_uri, prefix="voice_agent_compose_expected")
    seeded_uri = create_database(pg_admin_uri, prefix="voice_agent_compose_seeded")
    try:
        build_demo_database(expected_uri, calls=calls)

        # as the postgres image runs it: POSTGRES_USER/POSTGRES_DB/PGPASSWORD set, files under /seed
        params = conninfo_to_dict(seeded_uri)
        env = {
            key: value for key, value in os.environ.items() if not key.startswith(("PG", "POSTGRES_", "VOICE_AGENT_"))
        }
        env.update(
            PATH=f"{Path(psql).parent}{os.pathsep}{env.get('PATH', '')}",
            PGHOST=params.get("host", "localhost"),
            PGPORT=str(params.get("port", 5432)),
            PGPASSWORD=params.get("password", ""),
            POSTGRES_USER=params["user"],
            POSTGRES_DB=params["dbname"],
            VOICE_AGENT_SEED_DIR=str(REPO / "devtools"),
            VOICE_AGENT_DEMO_CALLS=str(calls),
            HOME=str(tmp_path),
        )
        result = subprocess.run(["bash", str(SEED_SCRIPT)], check=False, env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""

        expected, seeded = LegacyDatabase(expected_uri), LegacyDatabase(seeded_uri)
        assert seeded.value("SELECT count(*) FROM voice_agent.call_logs_voiceagent") == calls
        assert seeded.rows("SELECT id, name, phone FROM public.leads ORDER BY id") == expected.rows(
            "SELECT id, name, phone FROM public.leads ORDER BY id"
        )
        for schema in ("voice_agent", "public"):
            assert content(seeded, schema) == content(expected, schema), schema

        # a failure leaves nothing behind: the whole seed is one transaction
        again = subprocess.run(["bash", str(SEED_SCRIPT)], check=False, env=env, capture_output=True, text=True)
        assert again.returncode != 0
        assert 'schema "voice_agent" already exists' in again.stderr
        assert content(seeded, "voice_agent") == content(expected, "voice_agent")
    finally:
        drop_database(pg_admin_uri, expected_uri)
        drop_database(pg_admin_uri, seeded_uri)


def test_the_seed_script_refuses_a_calls_count_that_is_not_a_number():
    env = {"PATH": os.environ.get("PATH", ""), "VOICE_AGENT_SEED_DIR": str(REPO / "devtools")}
    result = subprocess.run(
        ["bash", str(SEED_SCRIPT)],
        check=False,
        env={**env, "VOICE_AGENT_DEMO_CALLS": "1; DROP SCHEMA voice_agent"},
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "must be a non-negative integer" in result.stderr


# --- docs ----------------------------------------------------------------------------------------


def test_the_docs_describe_every_service_and_how_to_start(services):
    docs = DOCS.read_text()
    for name in services:
        assert f"`{name}`" in docs, name
    for command in ("cp .env.example .env", "docker compose up airflow-init", "docker compose up -d"):
        assert command in docs, command
