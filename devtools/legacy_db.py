"""Builds legacy voice_agent databases: the schema, the demo data, and the application's own tables."""

from __future__ import annotations

from pathlib import Path

import psycopg

HERE = Path(__file__).resolve().parent


def create_legacy_schema(conn: psycopg.Connection, schema: str = "voice_agent") -> None:
    conn.execute(f'CREATE SCHEMA "{schema}"')
    conn.execute(f'SET search_path = "{schema}"')
    conn.execute((HERE / "legacy_schema.sql").read_text())
    conn.execute("RESET search_path")


# The data shapes of the demo's call log: "clean", most calls within their organization (the demo);
# "shared", about three calls in four using an agent or a lead of another organization.
SHAPES = ("clean", "shared")


def seed_demo(conn: psycopg.Connection, schema: str = "voice_agent", calls: int = 742, shape: str = "clean") -> None:
    """Fill an empty legacy schema with the demo organizations, resources and `calls` call logs, in
    one set-based statement per table (10M calls take minutes and no client memory). `shape` is one of
    SHAPES; the clean shape's rows do not depend on it being given."""
    if shape not in SHAPES:
        raise ValueError(f"unknown demo shape {shape!r}, expected one of {', '.join(SHAPES)}")
    sql = (HERE / "demo_seed.sql").read_text().replace("%(calls)s", str(int(calls)))
    conn.execute(f'SET search_path = "{schema}"')
    conn.execute("SELECT set_config('voice_agent_demo.shape', %s, false)", (shape,))
    conn.execute(sql)
    conn.execute("RESET voice_agent_demo.shape")
    conn.execute("RESET search_path")
    conn.execute(f'ANALYZE "{schema}".call_logs_voiceagent')


def create_application_tables(conn: psycopg.Connection, schema: str = "public") -> None:
    """The main application's tables as they exist before the migration, with rows of their own:
    a leads table without tenant_id and a company_search_cache (no employees_cache).

    The SQL lives in application_tables.sql, shared with the docker-compose seed script."""
    conn.execute((HERE / "application_tables.sql").read_text(encoding="utf-8").replace("%(schema)s", schema))


def build_demo_database(uri: str, calls: int = 742, shape: str = "clean") -> None:
    with psycopg.connect(uri, autocommit=True) as conn:
        create_legacy_schema(conn)
        seed_demo(conn, calls=calls, shape=shape)
        create_application_tables(conn)
