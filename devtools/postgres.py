"""A PostgreSQL server for the demo and the tests: one given by the environment, or an embedded one.

`VOICE_AGENT_PG_URI` (e.g. postgresql://postgres@127.0.0.1:5432/postgres) selects an existing server,
where the user may create databases. Otherwise a throwaway server is started with pgserver.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Generator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ENV_URI = "VOICE_AGENT_PG_URI"


@contextmanager
def server_uri(keep_in: Path | None = None) -> Generator[str, None, None]:
    """Yield an admin connection URI: the server given by the environment, or an embedded one, whose
    data is thrown away on exit, or kept in `keep_in` (started again from there next time)."""
    if os.environ.get(ENV_URI):
        yield os.environ[ENV_URI]
        return
    import pgserver  # only needed when no server is given

    logging.getLogger("pgserver").setLevel(logging.WARNING)
    with contextlib.ExitStack() as stack:
        pgdata = keep_in or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="voice-agent-pg-")))
        pgdata.mkdir(parents=True, exist_ok=True)
        server = pgserver.get_server(pgdata, cleanup_mode="stop")
        try:
            yield server.get_uri()
        finally:
            server.cleanup()


def psql_binary() -> str | None:
    """pgserver's psql (the embedded server's version), else the one on PATH."""
    try:
        import pgserver
    except ImportError:
        pass
    else:
        bundled = Path(pgserver.__file__).parent / "pginstall" / "bin" / "psql"
        if bundled.is_file():
            return str(bundled)
    return shutil.which("psql")


def database_uri(admin_uri: str, dbname: str) -> str:
    """The URI of another database on the same server."""
    params = conninfo_to_dict(admin_uri)
    params["dbname"] = dbname
    return make_conninfo(**params)


def create_database(admin_uri: str, prefix: str = "voice_agent") -> str:
    """Create a fresh, uniquely named database and return its URI."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return database_uri(admin_uri, name)


def drop_database(admin_uri: str, uri: str) -> None:
    name = conninfo_to_dict(uri)["dbname"]
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def airflow_connection(uri: str) -> str:
    """The JSON form of an Airflow connection to `uri` (works for unix-socket hosts too)."""
    params = conninfo_to_dict(uri)
    conn = {
        "conn_type": "postgres",
        "host": params.get("host", "localhost"),
        "port": int(params.get("port", 5432)),
        "login": params.get("user", ""),
        "password": params.get("password", ""),
        "schema": params.get("dbname", "postgres"),
    }
    return json.dumps(conn)
