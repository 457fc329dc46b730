"""Each migration step, run as its task runs it (rendered, one transaction) on a real PostgreSQL,
against legacy rows built for the case at hand."""

from __future__ import annotations

import itertools
import json
from decimal import Decimal
from uuid import UUID

import psycopg
import pytest

ORG_A = "5abb0a93-f59f-48fc-9c5a-2b549b4f8367"
ORG_B = "a60fac7a-eb17-4964-b4a2-2311db582fc4"
SYSTEM = "00000000-0000-0000-0000-000000000000"


def add_users(db, *rows):
    """rows: (id, organization_id or None[, created_at])."""
    for row in rows:
        user_id, org = row[0], row[1]
        created = row[2] if len(row) > 2 else "2024-01-01 12:00:00+00"
        db.execute(
            "INSERT INTO voice_agent.users_voiceagent (id, user_id, organization_id, created_at)"
            " VALUES (%s, %s, %s, %s)",
            (user_id, f"usr_{user_id}", org, created),
        )


def rejects(db, table):
    return dict(
        db.rows("SELECT source_id, reason FROM public.migration_rejects WHERE source_table = %s ORDER BY 1", (table,))
    )


def lineage(db, table):
    return dict(
        db.rows(
            "SELECT source_id, target_id FROM public.migration_lineage WHERE source_table = %s ORDER BY 1", (table,)
        )
    )


def test_tenants_come_from_organizations_plus_the_system_tenant(legacy_db):
    add_users(
        legacy_db,
        (1, ORG_A, "2024-03-01 01:30:00+05:30"),
        (2, ORG_A, "2024-05-01 00:00:00+00"),
        (3, ORG_B),
        (4, None),
    )
    legacy_db.migrate(upto="02")
    legacy_db.migrate(upto="02")  # a second run neither fails nor duplicates

    tenants = {str(r[0]): r[1:] for r in legacy_db.rows("SELECT id, plan, metadata, created_at FROM tenants")}
    assert set(tenants) == {ORG_A, ORG_B, SYSTEM}
    assert tenants[SYSTEM][0] == "system"
    assert tenants[ORG_A][1] == {"user_count": 2, "source": "voice_agent_migration"}
    assert str(tenants[ORG_A][2]) == "2024-02-29 20:00:00"  # earliest user, in UTC


def test_a_tenant_the_application_created_is_not_overwritten(legacy_db):
    add_users(legacy_db, (1, ORG_A))
    legacy_db.migrate(upto="01")
    legacy_db.execute("INSERT INTO tenants (id, name, plan) VALUES (%s, 'Acme Inc', 'enterprise')", (ORG_A,))
    legacy_db.migrate(upto="02")
    assert legacy_db.rows("SELECT name, plan FROM tenants WHERE id = %s", (ORG_A,)) == [("Acme Inc", "enterprise")]


def test_voices_are_shared_with_fallback_names_and_overlong_values_quarantined(legacy_db):
    legacy_db.execute("""
        INSERT INTO voice_agent.voices_voiceagent (id, description, gender, provider, provider_voice_id, accent,
            provider_config) VALUES
        ('11111111-1111-1111-1111-111111111111', 'Warm', 'female', 'elevenlabs', 'pv_1', 'british', '{"s": 0.5}'),
        ('22222222-2222-2222-2222-222222222222', 'Only a description', NULL, NULL, NULL, NULL, NULL),
        ('33333333-3333-3333-3333-333333333333', NULL, NULL, NULL, NULL, NULL, NULL),
        ('44444444-4444-4444-4444-444444444444', 'x', 'non-binary-or-unspecified-gender', 'p', 'pv_4', NULL, NULL)
    """)
    legacy_db.migrate(upto="03")
    voices = {
        r[0]: r[1:]
        for r in legacy_db.rows("SELECT id, tenant_id::text, voice_name, provider, gender, metadata FROM voices")
    }
    assert voices["11111111-1111-1111-1111-111111111111"] == (
        SYSTEM,
        "pv_1",
        "elevenlabs",
        "female",
        {"accent": "british", "provider_config": {"s": 0.5}, "provider_voice_id": "pv_1"},
    )
    assert voices["22222222-2222-2222-2222-222222222222"][1:4] == ("Only a description", "custom", "neutral")
    assert voices["33333333-3333-3333-3333-333333333333"][1] == "Voice 33333333-3333-3333-3333-333333333333"
    assert rejects(legacy_db, "voices_voiceagent") == {"44444444-4444-4444-4444-444444444444": "too_long:gender"}


def test_phone_numbers_get_stable_ids_and_are_never_duplicated(legacy_db):
    legacy_db.execute("""
        INSERT INTO voice_agent.numbers_voiceagent (id, phone_number, provider, type, status, default_agent,
            created_at) VALUES
        (1, '+14155550101', 'twilio', 'local', 'active', 7, '2024-02-01 10:00:00-08'),
        (2, '+14155550102', NULL, NULL, 'Active ', NULL, '2024-02-01 10:00:00+00'),
        (3, '+14155550103', 'twilio', 'local', 'INACTIVE', NULL, NULL),
        (4, ' +14155550101', 'twilio', 'local', 'active', NULL, NULL),
        (5, '  ', 'twilio', 'local', 'active', NULL, NULL)
    """)
    legacy_db.migrate(upto="04")
    first = legacy_db.rows("SELECT id, phone_number, is_active, metadata, created_at FROM phone_numbers ORDER BY 2")
    legacy_db.migrate(upto="04")
    assert legacy_db.rows("SELECT id, phone_number, is_active, metadata, created_at FROM phone_numbers ORDER BY 2") == (
        first
    )

    assert [(r[1], r[2]) for r in first] == [
        ("+14155550101", True),
        ("+14155550102", True),  # 'Active ' is active, whatever its spelling
        ("+14155550103", False),
    ]
    assert first[0][3] == {"old_id": 1, "status": "active", "default_agent": 7}
    assert str(first[0][4]) == "2024-02-01 18:00:00"
    assert rejects(legacy_db, "numbers_voiceagent") == {"4": "duplicate_phone_number", "5": "phone_number_missing"}
    assert lineage(legacy_db, "numbers_voiceagent")["1"] == str(first[0][0])


def test_a_phone_held_first_by_a_quarantined_number_goes_to_the_next_valid_one(legacy_db):
    legacy_db.execute(f"""
        INSERT INTO voice_agent.numbers_voiceagent (id, phone_number, provider, type) VALUES
        (1, '+14155550101', '{"p" * 51}', 'local'),
        (2, '+14155550101', 'twilio', 'local')
    """)
    legacy_db.migrate(upto="04")
    assert legacy_db.rows("SELECT phone_number, provider FROM phone_numbers") == [("+14155550101", "twilio")]
    assert rejects(legacy_db, "numbers_voiceagent") == {"1": "too_long:provider"}


def test_agents_keep_ids_get_their_creators_tenant_and_move_the_sequence(legacy_db):
    add_users(legacy_db, (1, ORG_A), (2, None))
    legacy_db.execute("""
        INSERT INTO voice_agent.agents_voiceagent (id, name, created_by, language, voice_id, gender,
            default_number, created_at) VALUES
        (5, 'Ava', 1, NULL, '11111111-1111-1111-1111-111111111111', 'female', 3, '2024-03-01 08:00:00-05'),
        (9, 'Ben', 1, 'en-US', NULL, NULL, NULL, NULL),
        (10, 'No creator', NULL, 'en', NULL, NULL, NULL, NULL),
        (11, 'Deleted creator', 99, 'en', NULL, NULL, NULL, NULL),
        (12, 'Creator without org', 2, 'en', NULL, NULL, NULL, NULL),
        (13, 'Long language', 1, 'en-US-x-callcenter', NULL, NULL, NULL, NULL)
    """)
    legacy_db.migrate(upto="05")
    legacy_db.migrate(upto="05")

    agents = {
        r[0]: r[1:] for r in legacy_db.rows("SELECT id, tenant_id::text, agent_language, metadata FROM voice_agents")
    }
    assert set(agents) == {5, 9}
    assert agents[5][0] == ORG_A and agents[5][1] == "en"
    assert agents[5][2]["created_by_user_id"] == "usr_1" and agents[5][2]["default_number_id"] == 3
    assert rejects(legacy_db, "agents_voiceagent") == {
        "10": "owner_missing",
        "11": "owner_not_found",
        "12": "owner_without_organization",
        "13": "too_long:agent_language",
    }
    # The application's next agent gets a fresh id, not a collision with a migrated one.
    new_id = legacy_db.value(
        "INSERT INTO voice_agents (tenant_id, agent_name) VALUES (%s, 'new') RETURNING id", (ORG_A,)
    )
    assert new_id == 10


def test_leads_sharing_a_phone_in_a_tenant_merge_and_stay_traceable(legacy_db):
    add_users(legacy_db, (1, ORG_A), (2, ORG_A), (3, ORG_B))
    legacy_db.execute("""
        INSERT INTO voice_agent.leads_voiceagent (id, name, lead_number, added_by, notes) VALUES
        (1, 'Ana', '+15550001', 1, 'first'),
        (2, 'Ana again', ' +15550001 ', 2, 'second'),
        (3, 'Other tenant, same phone', '+15550001', 3, NULL),
        (4, 'No phone', NULL, 1, NULL),
        (5, 'Blank phone', '  ', 1, NULL)
    """)
    legacy_db.migrate(upto="06")
    legacy_db.migrate(upto="06")

    mapped = lineage(legacy_db, "leads_voiceagent")
    assert set(mapped) == {"1", "2", "3", "4", "5"}
    assert mapped["1"] == mapped["2"]
    assert len({mapped["1"], mapped["3"], mapped["4"], mapped["5"]}) == 4
    leads = {str(r[0]): r[1:] for r in legacy_db.rows("SELECT id, tenant_id::text, name, phone, metadata FROM leads")}
    assert len(leads) == 4
    merged = leads[mapped["1"]]
    assert merged[:3] == (ORG_A, "Ana", "+15550001")
    assert merged[3]["old_voice_agent_id"] == 1
    assert [m["old_voice_agent_id"] for m in merged[3]["merged_leads"]] == [1, 2]
    assert merged[3]["merged_leads"][1]["notes"] == "second"
    assert leads[mapped["5"]][2] is None


def test_an_existing_application_lead_is_linked_not_modified(legacy_db):
    add_users(legacy_db, (1, ORG_A))
    legacy_db.execute(f"""
        CREATE TABLE public.leads (id uuid PRIMARY KEY, tenant_id uuid, name text, phone text, crm_ref text);
        INSERT INTO public.leads VALUES ('7d0c2a4e-0000-4000-8000-000000000001', '{ORG_A}', 'CRM lead',
            '+15550001', 'crm-1');
        INSERT INTO voice_agent.leads_voiceagent (id, name, lead_number, added_by) VALUES (1, 'Ana', '+15550001', 1);
    """)
    legacy_db.migrate(upto="06")
    assert lineage(legacy_db, "leads_voiceagent") == {"1": "7d0c2a4e-0000-4000-8000-000000000001"}
    assert legacy_db.rows("SELECT name, phone, crm_ref, source, metadata FROM leads") == [
        ("CRM lead", "+15550001", "crm-1", None, None)
    ]


def test_an_existing_leads_table_keyed_by_integers_is_refused_before_anything_is_written(legacy_db):
    legacy_db.execute("CREATE TABLE public.leads (id bigserial PRIMARY KEY, name text)")
    with pytest.raises(psycopg.Error, match=r"public\.leads\.id is bigint, expected uuid") as err:
        legacy_db.migrate(upto="00")
    assert err.value.sqlstate == "VA000"  # a refusal: final, never retried


def test_a_missing_legacy_table_or_column_is_named_before_anything_is_written(legacy_db):
    legacy_db.execute("DROP TABLE voice_agent.leads_voiceagent")
    legacy_db.execute("ALTER TABLE voice_agent.call_logs_voiceagent DROP COLUMN cost_breakdown")
    with pytest.raises(psycopg.Error) as err:
        legacy_db.migrate(upto="00")
    assert err.value.sqlstate == "VA000"
    assert "voice_agent.call_logs_voiceagent.cost_breakdown" in str(err.value)
    assert "voice_agent.leads_voiceagent" in str(err.value)
    assert legacy_db.value("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0


def insert_call(db, call_id, **cols):
    cols = {"id": call_id, **cols}
    names = ", ".join(cols)
    marks = ", ".join(["%s"] * len(cols))
    values = [json.dumps(v) if isinstance(v, dict | list) else v for v in cols.values()]
    db.execute(f"INSERT INTO voice_agent.call_logs_voiceagent ({names}) VALUES ({marks})", values)


@pytest.fixture
def call_world(legacy_db):
    """Two tenants with users, an agent, numbers and leads (two of them merged)."""
    add_users(legacy_db, (1, ORG_A), (2, ORG_B), (3, None))
    legacy_db.execute("""
        INSERT INTO voice_agent.numbers_voiceagent (id, phone_number, status) VALUES (1, '+14155550101', 'active');
        INSERT INTO voice_agent.agents_voiceagent (id, name, created_by) VALUES (5, 'Ava', 1), (6, 'Orphan', NULL);
        INSERT INTO voice_agent.leads_voiceagent (id, name, lead_number, added_by) VALUES
            (1, 'Ana', '+15550001', 1), (2, 'Ana dup', '+15550001', 1), (3, 'Bo', '+15550003', 2);
    """)
    return legacy_db


CALL = "c0000000-0000-4000-8000-000000000001"


def test_a_call_lands_with_its_migrated_lead_utc_times_and_exact_metadata(call_world):
    db = call_world
    db.execute("ALTER DATABASE " + db.value("SELECT current_database()") + " SET timezone = 'America/Los_Angeles'")
    insert_call(
        db,
        CALL,
        initiated_by=1,
        target=2,
        agent=5,
        status="Completed ",
        started_at="2025-03-09 01:59:59-08",
        ended_at="2025-03-09 03:00:30-07",
        call_type="outbound",
        cost=Decimal("0.123456789012345678901"),
        voice="11111111-1111-1111-1111-111111111111",
        job_id="job_1",
        room_name="room-1",
        from_number_id=1,
        vapi_call_id="vapi_1",
        vapi_data={"endedReason": "hangup", "nested": {"ü": [1, 2]}},
        call_duration=Decimal("61.250"),
        batch_id="b0000000-0000-4000-8000-000000000001",
        cost_breakdown={"llm": 0.01},
        transcriptions=[{"role": "user", "text": "Oui 📞"}],
    )
    db.migrate()
    lead_id = lineage(db, "leads_voiceagent")["2"]
    assert lead_id == lineage(db, "leads_voiceagent")["1"]  # the call follows its lead into the merge
    row = db.rows(
        "SELECT tenant_id::text, voice_id, agent_id, from_number, to_number, status, lead_id::text, initiated_by,"
        " started_at::text, ended_at::text, created_at::text, metadata FROM voice_calls WHERE id = %s",
        (CALL,),
    )[0]
    assert row[:8] == (
        ORG_A,
        "11111111-1111-1111-1111-111111111111",
        5,
        "+14155550101",
        "+15550001",
        "completed",
        lead_id,
        "usr_1",
    )
    # The database's zone is Los Angeles and the call spans the DST change: stored times are UTC.
    assert row[8:11] == ("2025-03-09 09:59:59", "2025-03-09 10:00:30", "2025-03-09 09:59:59")
    metadata = row[11]
    assert metadata["legacy_status"] == "Completed "
    assert metadata["vapi_data"] == {"endedReason": "hangup", "nested": {"ü": [1, 2]}}
    assert metadata["transcriptions"] == [{"role": "user", "text": "Oui 📞"}]
    assert (metadata["job_id"], metadata["room_name"], metadata["call_type"]) == ("job_1", "room-1", "outbound")
    assert metadata["batch_id"] == "b0000000-0000-4000-8000-000000000001"
    # numeric stays exact through jsonb
    assert db.value("SELECT (metadata->>'cost')::numeric FROM voice_calls WHERE id = %s", (CALL,)) == Decimal(
        "0.123456789012345678901"
    )
    assert db.value("SELECT metadata->>'call_duration' FROM voice_calls WHERE id = %s", (CALL,)) == "61.250"


def test_calls_with_missing_references_land_and_bad_ones_are_quarantined(call_world):
    db = call_world
    insert_call(db, "c0000000-0000-4000-8000-0000000000a1", initiated_by=1)  # every reference NULL
    insert_call(db, "c0000000-0000-4000-8000-0000000000a2", initiated_by=1, agent=6, target=999)  # dangling
    insert_call(db, "c0000000-0000-4000-8000-0000000000b1", initiated_by=3)
    insert_call(db, "c0000000-0000-4000-8000-0000000000b2", initiated_by=None)
    insert_call(db, "c0000000-0000-4000-8000-0000000000b3", initiated_by=77)
    insert_call(db, "c0000000-0000-4000-8000-0000000000b4", initiated_by=1, status="x" * 51)
    insert_call(db, "c0000000-0000-4000-8000-0000000000b5", initiated_by=1, agent=3_000_000_000)
    db.migrate()

    landed = db.rows("SELECT id::text, agent_id, lead_id, started_at, created_at FROM voice_calls ORDER BY 1")
    assert landed == [
        ("c0000000-0000-4000-8000-0000000000a1", None, None, None, None),
        ("c0000000-0000-4000-8000-0000000000a2", 6, None, None, None),
    ]
    assert rejects(db, "call_logs_voiceagent") == {
        "c0000000-0000-4000-8000-0000000000b1": "owner_without_organization",
        "c0000000-0000-4000-8000-0000000000b2": "owner_missing",
        "c0000000-0000-4000-8000-0000000000b3": "owner_not_found",
        "c0000000-0000-4000-8000-0000000000b4": "too_long:status",
        "c0000000-0000-4000-8000-0000000000b5": "out_of_range:agent_id",
    }
    source_row = db.value(
        "SELECT source_row FROM migration_rejects WHERE source_id = 'c0000000-0000-4000-8000-0000000000b4'"
    )
    assert source_row["status"] == "x" * 51 and source_row["initiated_by"] == 1
    findings = dict(db.rows("SELECT kind, referenced_id FROM migration_call_findings WHERE source_id LIKE '%a2'"))
    assert findings == {"agent_not_migrated": "6", "lead_not_migrated": "999"}


def test_a_changed_legacy_row_is_updated_and_a_fixed_one_leaves_the_quarantine(call_world):
    db = call_world
    insert_call(db, CALL, initiated_by=1, status="busy")
    insert_call(db, "c0000000-0000-4000-8000-0000000000b1", initiated_by=3)
    db.migrate()
    before = db.value("SELECT updated_at FROM voice_calls WHERE id = %s", (CALL,))
    db.migrate()
    assert db.value("SELECT updated_at FROM voice_calls WHERE id = %s", (CALL,)) == before  # unchanged: untouched

    db.execute("UPDATE voice_agent.call_logs_voiceagent SET status = 'completed' WHERE id = %s", (CALL,))
    db.execute("UPDATE voice_agent.users_voiceagent SET organization_id = %s WHERE id = 3", (ORG_B,))
    db.migrate()
    assert db.value("SELECT status FROM voice_calls WHERE id = %s", (CALL,)) == "completed"
    assert db.value("SELECT updated_at FROM voice_calls WHERE id = %s", (CALL,)) > before
    assert db.value("SELECT tenant_id::text FROM voice_calls WHERE id = 'c0000000-0000-4000-8000-0000000000b1'") == (
        ORG_B
    )
    assert rejects(db, "call_logs_voiceagent") == {}


def test_permissions_follow_numbers_to_their_new_ids(call_world):
    db = call_world
    db.execute(f"""
        INSERT INTO voice_agent.org_permissions_voiceagent (id, organization_id, resource_type, resource_id,
            access_level, granted_at, is_active) VALUES
        (1, '{ORG_B}', 'Agent', '5', 'use', '2024-06-01 10:00+02', TRUE),
        (2, '{ORG_B}', 'number', '1', NULL, NULL, NULL),
        (3, NULL, 'agent', '5', 'use', NULL, TRUE),
        (4, '99999999-9999-9999-9999-999999999999', 'agent', '5', 'use', NULL, TRUE)
    """)
    db.migrate()
    grants = {
        r[0]: r[1:]
        for r in db.rows(
            "SELECT resource_type, resource_id, access_level, granted_at::text, is_active, tenant_id::text"
            " FROM resource_permissions"
        )
    }
    number_id = lineage(db, "numbers_voiceagent")["1"]
    assert grants["agent"] == ("5", "use", "2024-06-01 08:00:00", True, ORG_B)
    assert grants["number"] == (number_id, "use", None, True, ORG_B)
    assert rejects(db, "org_permissions_voiceagent") == {"3": "organization_missing", "4": "organization_not_found"}


def test_caches_get_a_tenant_id_where_they_exist_and_keep_their_rows(legacy_db):
    legacy_db.execute("""
        CREATE TABLE public.company_search_cache (id serial PRIMARY KEY, query text);
        INSERT INTO public.company_search_cache (query) VALUES ('acme');
    """)
    legacy_db.migrate()
    legacy_db.migrate()
    assert legacy_db.rows("SELECT id, query, tenant_id FROM company_search_cache") == [(1, "acme", None)]
    assert legacy_db.value("SELECT to_regclass('public.employees_cache')") is None


def test_the_target_schema_param_is_honoured(legacy_db):
    add_users(legacy_db, (1, ORG_A))
    legacy_db.execute("INSERT INTO voice_agent.agents_voiceagent (id, name, created_by) VALUES (1, 'Ava', 1)")
    legacy_db.migrate(target_schema="tenancy")
    assert legacy_db.value("SELECT count(*) FROM tenancy.voice_agents") == 1
    assert legacy_db.value("SELECT to_regclass('public.voice_agents')") is None


def test_cross_tenant_calls_are_findings_marked_when_a_grant_covers_them(call_world):
    db = call_world
    db.execute(f"""
        INSERT INTO voice_agent.agents_voiceagent (id, name, created_by) VALUES (7, 'Cleo', 1);
        INSERT INTO voice_agent.org_permissions_voiceagent (id, organization_id, resource_type, resource_id,
            access_level, is_active) VALUES (1, '{ORG_B}', 'agent', '5', 'use', TRUE);
    """)
    # Calls by a user of tenant B: with A's agent 5 (granted to B), A's agent 7 (no grant), A's lead 1.
    insert_call(db, "c0000000-0000-4000-8000-0000000000c1", initiated_by=2, agent=5, target=3)
    insert_call(db, "c0000000-0000-4000-8000-0000000000c2", initiated_by=2, agent=7, target=1)
    db.migrate()
    db.migrate()  # findings are rebuilt, not accumulated

    findings = db.rows(
        "SELECT source_id, kind, referenced_id, referenced_tenant_id::text, covered_by_grant, tenant_id::text"
        " FROM migration_call_findings ORDER BY source_id, kind"
    )
    lead_1 = lineage(db, "leads_voiceagent")["1"]
    assert findings == [
        ("c0000000-0000-4000-8000-0000000000c1", "agent_in_other_tenant", "5", ORG_A, True, ORG_B),
        ("c0000000-0000-4000-8000-0000000000c2", "agent_in_other_tenant", "7", ORG_A, False, ORG_B),
        ("c0000000-0000-4000-8000-0000000000c2", "lead_in_other_tenant", lead_1, ORG_A, False, ORG_B),
    ]
    # Summed per group by record_findings, with the calls as examples.
    assert db.rows(
        "SELECT kind, referenced_tenant_id::text, covered_by_grant, tenant_id::text, calls, example_call_ids"
        " FROM migration_call_findings_summary ORDER BY kind, covered_by_grant"
    ) == [
        ("agent_in_other_tenant", ORG_A, False, ORG_B, 1, ["c0000000-0000-4000-8000-0000000000c2"]),
        ("agent_in_other_tenant", ORG_A, True, ORG_B, 1, ["c0000000-0000-4000-8000-0000000000c1"]),
        ("lead_in_other_tenant", ORG_A, False, ORG_B, 1, ["c0000000-0000-4000-8000-0000000000c2"]),
    ]
    # Both calls landed all the same, with their references as the guide maps them.
    assert db.rows("SELECT agent_id FROM voice_calls ORDER BY id") == [(5,), (7,)]


def test_chunks_together_land_exactly_what_one_transaction_lands(demo_db):
    demo_db.migrate(partitions=3, call_chunk_size="100")
    assert demo_db.value("SELECT count(*) FROM voice_calls") == 729
    # 742 calls in pieces of 100 (a range is split beyond twice the size): 8 chunks tiling every id.
    assert demo_db.rows(
        "SELECT count(*), sum(landable_calls)::integer, min(lower_id::text), max(upper_id::text)"
        " FROM migration_call_chunks"
    ) == [(8, 729, "00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff")]
    # Each range ends just before the next one starts: no call id can fall between two chunks.
    ranges = [
        (UUID(lower).int, UUID(upper).int)
        for lower, upper in demo_db.rows(
            "SELECT lower_id::text, upper_id::text FROM migration_call_chunks ORDER BY lower_id"
        )
    ]
    assert all(upper + 1 == after for (_, upper), (after, _) in itertools.pairwise(ranges))
    assert demo_db.value("SELECT sum(calls) FROM migration_run_chunks WHERE committed_at IS NOT NULL") == 742
    assert demo_db.value("SELECT count(*) FROM migration_rejects WHERE source_table = 'call_logs_voiceagent'") == 13
    passed, detail = demo_db.check("check_conservation")
    assert passed, detail
    landed = demo_db.snapshot()
    demo_db.migrate(partitions=1)  # the same calls, as one transaction: nothing to change
    assert demo_db.snapshot() == landed


def test_a_re_run_rebuilds_only_the_chunks_whose_inputs_changed(demo_db):
    db = demo_db
    db.migrate(partitions=2, call_chunk_size="100")
    chunks = dict(db.rows("SELECT lower_id, fingerprint FROM migration_call_chunks"))
    assert len(chunks) == 8
    versions = dict(db.rows("SELECT id, xmin::text FROM voice_calls"))
    lead_calls = {row[0] for row in db.rows("SELECT id FROM voice_agent.call_logs_voiceagent WHERE target = 3")}
    assert lead_calls

    # An input read from another table (a lead's phone) changes the mapping of that lead's calls.
    db.execute("UPDATE voice_agent.leads_voiceagent SET lead_number = '+15550009' WHERE id = 3")
    db.run_id = "second"
    db.migrate(partitions=2, call_chunk_size="100")
    assert {row[0] for row in db.rows("SELECT id FROM voice_calls WHERE to_number = '+15550009'")} == lead_calls
    after = dict(db.rows("SELECT lower_id, fingerprint FROM migration_call_chunks"))
    assert after.keys() == chunks.keys()
    rebuilt = {lower for lower in chunks if after[lower] != chunks[lower]}
    holding = {
        row[0]
        for row in db.rows(
            "SELECT DISTINCT k.lower_id FROM migration_call_chunks AS k"
            " JOIN voice_agent.call_logs_voiceagent AS cl ON cl.id BETWEEN k.lower_id AND k.upper_id"
            " WHERE cl.target = 3"
        )
    }
    assert rebuilt == holding
    # No other call was written again.
    assert {i for i, v in db.rows("SELECT id, xmin::text FROM voice_calls") if versions.get(i) != v} == lead_calls


def test_a_call_deleted_from_the_target_is_landed_again(call_world):
    db = call_world
    insert_call(db, CALL, initiated_by=1, status="busy")
    db.migrate()
    db.execute("DELETE FROM voice_calls WHERE id = %s", (CALL,))
    db.migrate()  # its inputs are unchanged, but its chunk lacks a landed call: it lands again
    assert db.value("SELECT status FROM voice_calls WHERE id = %s", (CALL,)) == "busy"
