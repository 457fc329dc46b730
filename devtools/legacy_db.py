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


def seed_demo(conn: psycopg.Connection, schema: str = "voice_agent", calls: int = 742) -> None:
    """Fill an empty legacy schema with the demo organizations, resources and `calls` call logs."""
    sql = (HERE / "demo_seed.sql").read_text().replace("%(calls)s", str(int(calls)))
    conn.execute(f'SET search_path = "{schema}"')
    conn.execute(sql)
    conn.execute("RESET search_path")
    conn.execute(f'ANALYZE "{schema}".call_logs_voiceagent')


def create_application_tables(conn: psycopg.Connection, schema: str = "public") -> None:
    """The main application's tables as they exist before the migration, with rows of their own:
    a leads table without tenant_id and a company_search_cache (no employees_cache)."""
    conn.execute(f"""
        CREATE TABLE "{schema}".leads (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            name text NOT NULL,
            phone text,
            created_at timestamptz NOT NULL DEFAULT now()
        );
        INSERT INTO "{schema}".leads (id, name, phone) VALUES
            ('7d0c2a4e-0000-4000-8000-000000000001', 'Main-app lead Zoë', '+15550100001'),
            ('7d0c2a4e-0000-4000-8000-000000000002', 'Main-app lead Omar', NULL);
        CREATE TABLE "{schema}".company_search_cache (
            id serial PRIMARY KEY,
            query text NOT NULL,
            results jsonb,
            created_at timestamptz DEFAULT now()
        );
        INSERT INTO "{schema}".company_search_cache (query, results) VALUES
            ('acme', '{{"hits": 3}}'), ('globex', '{{"hits": 0}}');
    """)


def build_demo_database(uri: str, calls: int = 742) -> None:
    with psycopg.connect(uri, autocommit=True) as conn:
        create_legacy_schema(conn)
        seed_demo(conn, calls=calls)
        create_application_tables(conn)
