"""The demo legacy database's data shapes (devtools/legacy_db.py, devtools/demo_seed.sql), on a real
PostgreSQL: the clean shape is the demo every other test counts on; the shared one, what `make bench
SHAPE=shared` measures."""

from __future__ import annotations

import psycopg
import pytest

from devtools.legacy_db import create_legacy_schema, seed_demo
from devtools.postgres import create_database, drop_database
from tests.helpers import LegacyDatabase

# Per call: its caller's organization and those of its agent's and its lead's creators.
CALL_ORGANIZATIONS = """
SELECT
    count(*) AS calls,
    count(*) FILTER (WHERE cu.organization_id IS NOT NULL) AS calls_of_an_organization,
    count(*) FILTER (
        WHERE cu.organization_id IS NOT NULL
        AND (au.organization_id <> cu.organization_id OR lu.organization_id <> cu.organization_id)
    ) AS using_another_organizations_agent_or_lead,
    count(*) FILTER (WHERE au.organization_id <> cu.organization_id) AS using_another_organizations_agent,
    count(*) FILTER (WHERE lu.organization_id <> cu.organization_id) AS using_another_organizations_lead
FROM voice_agent.call_logs_voiceagent AS cl
LEFT JOIN voice_agent.users_voiceagent AS cu ON cl.initiated_by = cu.id
LEFT JOIN voice_agent.agents_voiceagent AS a ON cl.agent = a.id
LEFT JOIN voice_agent.users_voiceagent AS au ON a.created_by = au.id
LEFT JOIN voice_agent.leads_voiceagent AS l ON cl.target = l.id
LEFT JOIN voice_agent.users_voiceagent AS lu ON l.added_by = lu.id
"""

# The clean shape's 742 calls, every column, in id order (timestamps in UTC): the demo as it was
# before the shapes existed.
CALLS_DIGEST = """
SELECT md5(string_agg(to_jsonb(cl)::text, '|' ORDER BY cl.id)) FROM voice_agent.call_logs_voiceagent AS cl
"""
DEMO_CALLS_DIGEST = "fbe65000448bf985bd0e5b49be700580"


def seed(db, **kwargs) -> None:
    with psycopg.connect(db.uri, autocommit=True) as conn:
        seed_demo(conn, **kwargs)


def calls_digest(db) -> str:
    with psycopg.connect(db.uri) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        return conn.execute(CALLS_DIGEST).fetchone()[0]


def test_the_clean_shape_is_the_demo(legacy_db):
    seed(legacy_db, shape="clean")
    assert calls_digest(legacy_db) == DEMO_CALLS_DIGEST
    calls, of_an_organization, mixed, agents, leads = legacy_db.rows(CALL_ORGANIZATIONS)[0]
    assert (calls, of_an_organization) == (742, 730)
    # Only the demo's few awkward calls cross organizations.
    assert (mixed, agents, leads) == (12, 12, 0)


def test_the_default_shape_is_the_clean_one(legacy_db):
    seed(legacy_db)
    assert calls_digest(legacy_db) == DEMO_CALLS_DIGEST


def test_the_shared_shape_has_most_calls_use_another_organizations_agent_or_lead(legacy_db):
    seed(legacy_db, calls=3000, shape="shared")
    calls, of_an_organization, mixed, agents, leads = legacy_db.rows(CALL_ORGANIZATIONS)[0]
    assert calls == 3000
    assert 0.70 <= mixed / of_an_organization <= 0.80, (mixed, of_an_organization)
    # Both kinds of sharing, each common.
    assert agents / of_an_organization > 0.5 and leads / of_an_organization > 0.25, (agents, leads)
    # Shared agents and leads are ones that migrate (their creator has an organization): the calls'
    # agents and leads that cannot migrate stay exactly the clean shape's awkward few.
    unmigratable = (
        "SELECT count(*) FROM voice_agent.call_logs_voiceagent AS cl"
        " JOIN voice_agent.{table}_voiceagent AS r ON cl.{column} = r.id"
        " LEFT JOIN voice_agent.users_voiceagent AS u ON r.{creator} = u.id WHERE u.organization_id IS NULL"
    )
    awkward = "SELECT count(*) FROM generate_series(1, 3000) AS i WHERE {}"
    assert legacy_db.value(unmigratable.format(table="agents", column="agent", creator="created_by")) == (
        legacy_db.value(awkward.format("i % 53 <> 0 AND i % 131 = 0"))
    )
    assert legacy_db.value(unmigratable.format(table="leads", column="target", creator="added_by")) == (
        legacy_db.value(awkward.format("i % 41 <> 0 AND i % 173 = 0"))
    )


def test_the_shapes_differ_only_in_the_calls_agents_and_leads(legacy_db, pg_admin_uri):
    seed(legacy_db, calls=500, shape="shared")
    clean_uri = create_database(pg_admin_uri, prefix="voice_agent_test_clean")
    try:
        clean = LegacyDatabase(clean_uri)
        with psycopg.connect(clean_uri, autocommit=True) as conn:
            create_legacy_schema(conn)
            seed_demo(conn, calls=500)
        for db in (legacy_db, clean):
            db.execute("ALTER TABLE voice_agent.call_logs_voiceagent DROP COLUMN agent, DROP COLUMN target")
        assert legacy_db.snapshot("voice_agent", ignore_columns=("created_at",)) == clean.snapshot(
            "voice_agent", ignore_columns=("created_at",)
        )
    finally:
        drop_database(pg_admin_uri, clean_uri)


def test_an_unknown_shape_is_refused(legacy_db):
    with pytest.raises(ValueError, match="unknown demo shape 'mixed'"):
        seed(legacy_db, shape="mixed")
