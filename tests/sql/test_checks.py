"""Each check passes on a correct migration and fails, naming what it found, on a planted defect."""

from __future__ import annotations

import pytest

from tests.helpers import CHECKS

ORG_A = "5abb0a93-f59f-48fc-9c5a-2b549b4f8367"
STRAY_TENANT = "99999999-9999-4999-8999-999999999999"


@pytest.fixture
def migrated(demo_db):
    demo_db.migrate()
    for name in CHECKS:
        passed, detail = demo_db.check(name)
        assert passed is True, detail
    return demo_db


def some_call(db):
    return db.value("SELECT id::text FROM voice_calls ORDER BY id LIMIT 1")


def test_conservation_reports_every_table_with_its_counts(migrated):
    _, detail = migrated.check("check_conservation")
    assert "call_logs_voiceagent: legacy=742 landed=729 rejected=13 pending=0 missing=0 doubled=0" in detail
    assert "leads_voiceagent: legacy=63 landed=61 rejected=2" in detail


def test_conservation_fails_on_a_lost_call(migrated):
    lost = some_call(migrated)
    migrated.execute("DELETE FROM voice_calls WHERE id = %s", (lost,))
    passed, detail = migrated.check("check_conservation")
    assert passed is False
    assert (
        f"call_logs_voiceagent: legacy=742 landed=728 rejected=13 pending=0 missing=1 doubled=0 e.g. {lost}" in detail
    )


def test_conservation_names_the_first_five_lost_calls_in_order(migrated):
    lost = migrated.rows("SELECT id::text FROM voice_calls ORDER BY md5(id::text) LIMIT 7")
    migrated.execute("DELETE FROM voice_calls WHERE id = ANY(%s::uuid[])", ([row[0] for row in lost],))
    passed, detail = migrated.check("check_conservation")
    first_five = " ".join(sorted(row[0] for row in lost)[:5])
    assert passed is False
    assert f"landed=722 rejected=13 pending=0 missing=7 doubled=0 e.g. {first_five}" in detail


def test_conservation_fails_on_a_row_both_landed_and_rejected(migrated):
    migrated.execute(
        "INSERT INTO migration_rejects (source_table, source_id, reason, source_row)"
        " VALUES ('agents_voiceagent', '1', 'planted', '{}')"
    )
    passed, detail = migrated.check("check_conservation")
    assert passed is False
    assert "agents_voiceagent: legacy=23 landed=19 rejected=5 pending=0 missing=0 doubled=1 e.g. 1" in detail


def test_conservation_fails_on_a_lost_lineage_row(migrated):
    migrated.execute("DELETE FROM migration_lineage WHERE source_table = 'numbers_voiceagent' AND source_id = '3'")
    passed, detail = migrated.check("check_conservation")
    assert (
        passed is False
        and "numbers_voiceagent: legacy=5 landed=4 rejected=0 pending=0 missing=1 doubled=0 e.g. 3" in detail
    )


def test_orphan_check_catches_unknown_tenants(migrated):
    call = some_call(migrated)
    migrated.execute("UPDATE voice_calls SET tenant_id = %s WHERE id = %s", (STRAY_TENANT, call))
    passed, detail = migrated.check("check_no_orphan_tenants")
    assert passed is False
    assert f"voice_calls: 1 rows without a valid tenant e.g. {call}" in detail


def test_orphan_check_is_null_safe(migrated):
    # The guide's `tenant_id NOT IN (SELECT id FROM tenants)` is NULL for a NULL tenant_id and misses it.
    lead = migrated.value(
        "SELECT target_id FROM migration_lineage WHERE source_table = 'leads_voiceagent' ORDER BY 1 LIMIT 1"
    )
    migrated.execute("UPDATE leads SET tenant_id = NULL WHERE id = %s", (lead,))
    assert migrated.value("SELECT count(*) FROM leads WHERE tenant_id NOT IN (SELECT id FROM tenants)") == 0
    passed, detail = migrated.check("check_no_orphan_tenants")
    assert passed is False and f"leads: 1 rows without a valid tenant e.g. {lead}" in detail


def test_orphan_check_ignores_the_applications_own_leads_but_not_its_caches(migrated):
    # The main application's leads have no tenant yet: not the migration's rows to judge.
    assert migrated.value("SELECT count(*) FROM leads WHERE tenant_id IS NULL") == 2
    migrated.execute("UPDATE company_search_cache SET tenant_id = %s WHERE query = 'acme'", (STRAY_TENANT,))
    passed, detail = migrated.check("check_no_orphan_tenants")
    assert passed is False and "company_search_cache: 1 rows without a valid tenant" in detail


def test_duplicate_check_catches_a_second_lead_with_a_migrated_leads_phone(migrated):
    phone = migrated.value("SELECT phone FROM leads WHERE tenant_id = %s AND phone IS NOT NULL LIMIT 1", (ORG_A,))
    migrated.execute("INSERT INTO leads (tenant_id, name, phone) VALUES (%s, 'copy', %s)", (ORG_A, phone))
    passed, detail = migrated.check("check_no_duplicate_natural_keys")
    assert passed is False
    assert f"leads(tenant_id, phone) = {ORG_A} {phone} held 2 times" in detail


def test_duplicate_check_catches_a_phone_number_held_twice(migrated):
    migrated.execute("ALTER TABLE phone_numbers DROP CONSTRAINT phone_numbers_phone_number_key")
    migrated.execute(
        "INSERT INTO phone_numbers (tenant_id, phone_number) VALUES ('00000000-0000-0000-0000-000000000000',"
        " '+14155550101')"
    )
    passed, detail = migrated.check("check_no_duplicate_natural_keys")
    assert passed is False and "phone_numbers(phone_number) = +14155550101 held 2 times" in detail


def test_sequence_check_catches_a_sequence_behind_its_ids(migrated):
    migrated.execute("SELECT setval(pg_get_serial_sequence('public.voice_agents', 'id'), 3)")
    passed, detail = migrated.check("check_sequences_past_max_id")
    assert passed is False
    assert "voice_agents_id_seq at 3 behind max(voice_agents.id) = 19" in detail


def test_content_check_fails_on_a_call_edited_in_the_target_naming_tenant_id_and_column(migrated):
    call, tenant = migrated.rows("SELECT id::text, tenant_id::text FROM voice_calls ORDER BY id LIMIT 1")[0]
    migrated.execute("UPDATE voice_calls SET metadata = metadata || '{\"cost\": 0}' WHERE id = %s", (call,))
    passed, detail = migrated.check("check_content_matches_legacy")
    assert passed is False
    assert f"call_logs_voiceagent tenant {tenant}: 1 of " in detail and f"{call} metadata expected " in detail, detail


def test_content_check_fails_on_a_wrong_transform_of_a_whole_tenant(migrated):
    """As if the UTC conversion were missing for a database in UTC+05:45: every call of the tenant
    shifted; counts and every other check still pass."""
    shifted, calls = migrated.rows(
        "SELECT count(started_at), count(*) FROM voice_calls WHERE tenant_id = %s", (ORG_A,)
    )[0]
    migrated.execute(
        "UPDATE voice_calls SET started_at = started_at + interval '5 hours 45 minutes' WHERE tenant_id = %s", (ORG_A,)
    )
    for name in CHECKS[:4]:
        assert migrated.check(name)[0] is True, name
    passed, detail = migrated.check("check_content_matches_legacy")
    assert passed is False
    assert f"call_logs_voiceagent tenant {ORG_A}: {shifted} of {calls} rows differ: " in detail, detail
    # A few rows, not thousands, each naming the column that differs.
    assert detail.count(" started_at expected ") == 5 and "created_at" not in detail, detail


def test_content_check_names_a_call_missing_from_the_target(migrated):
    call, tenant = migrated.rows("SELECT id::text, tenant_id::text FROM voice_calls ORDER BY id LIMIT 1")[0]
    migrated.execute("DELETE FROM voice_calls WHERE id = %s", (call,))
    passed, detail = migrated.check("check_content_matches_legacy")
    assert passed is False
    assert f"call_logs_voiceagent tenant {tenant}: 1 of " in detail and f"{call} missing from the target" in detail


def test_content_check_names_both_tenants_of_a_call_moved_to_another_tenant(migrated):
    call, tenant = migrated.rows(
        "SELECT id::text, tenant_id::text FROM voice_calls WHERE tenant_id <> %s LIMIT 1", (ORG_A,)
    )[0]
    migrated.execute("UPDATE voice_calls SET tenant_id = %s WHERE id = %s", (ORG_A, call))
    passed, detail = migrated.check("check_content_matches_legacy")
    assert passed is False
    assert f"call_logs_voiceagent tenant {tenant}: 1 of " in detail, detail
    assert f"call_logs_voiceagent tenant {ORG_A}: 1 of " in detail, detail
    assert f"{call} missing from the target" in detail and f"{call} in the target but not expected" in detail
    assert detail.count(call) == 2


def test_content_check_tells_a_json_null_from_a_missing_metadata_key(migrated):
    """The guide maps a NULL legacy column to a JSON null under its key: dropping the key is an edit."""
    call, key = migrated.rows(
        "SELECT id::text, key FROM voice_calls, jsonb_each(metadata) WHERE value = 'null' ORDER BY id, key LIMIT 1"
    )[0]
    migrated.execute("UPDATE voice_calls SET metadata = metadata - %s WHERE id = %s", (key, call))
    passed, detail = migrated.check("check_content_matches_legacy")
    assert passed is False and call in detail, detail
    named = f"metadata.{key}" if key in ("vapi_data", "cost_breakdown", "transcriptions") else "metadata"
    assert f"{call} {named} expected " in detail, detail


def test_content_check_tells_a_number_from_the_same_digits_as_a_string(migrated):
    call = migrated.value(
        "SELECT id::text FROM voice_calls WHERE jsonb_typeof(metadata -> 'cost') = 'number' ORDER BY id LIMIT 1"
    )
    migrated.execute(
        "UPDATE voice_calls SET metadata = jsonb_set(metadata, '{cost}', to_jsonb(metadata ->> 'cost')) WHERE id = %s",
        (call,),
    )
    passed, detail = migrated.check("check_content_matches_legacy")
    assert passed is False and f"{call} metadata expected " in detail, detail


@pytest.mark.parametrize("tenant", [ORG_A, STRAY_TENANT], ids=["tenant-with-legacy-calls", "tenant-without"])
def test_content_check_ignores_the_applications_own_calls(migrated, tenant):
    """Only the calls the migration wrote are compared: calls the application writes itself are not
    the migration's, whether or not their tenant has legacy calls."""
    migrated.execute(
        "INSERT INTO voice_calls (id, tenant_id, status, metadata) VALUES (gen_random_uuid(), %s, 'completed', '{}')",
        (tenant,),
    )
    passed, detail = migrated.check("check_content_matches_legacy")
    assert passed is True, detail


def test_content_check_still_names_an_edited_call_beside_the_applications_own(migrated):
    call, tenant, status = migrated.rows(
        "SELECT id::text, tenant_id::text, status FROM voice_calls ORDER BY id LIMIT 1"
    )[0]
    migrated.execute(
        "INSERT INTO voice_calls (id, tenant_id, status, metadata) VALUES (gen_random_uuid(), %s, 'completed', '{}')",
        (tenant,),
    )
    migrated.execute("UPDATE voice_calls SET status = 'edited' WHERE id = %s", (call,))
    passed, detail = migrated.check("check_content_matches_legacy")
    assert passed is False
    assert f"call_logs_voiceagent tenant {tenant}: 1 of " in detail, detail
    assert f"{call} status expected '{status}' found 'edited'" in detail, detail


@pytest.mark.parametrize(
    ("table", "change", "column"),
    [
        ("voices", "SET voice_name = voice_name || ' (edited)' WHERE id = (SELECT min(id) FROM voices)", "voice_name"),
        (
            "phone_numbers",
            "SET is_active = NOT is_active WHERE id = (SELECT min(id::text)::uuid FROM phone_numbers)",
            "is_active",
        ),
        (
            "voice_agents",
            "SET created_at = created_at + interval '1 second' WHERE id = (SELECT min(id) FROM voice_agents)",
            "created_at",
        ),
    ],
)
def test_content_check_covers_the_small_tables(migrated, table, change, column):
    migrated.execute(f"UPDATE {table} {change}")
    passed, detail = migrated.check("check_content_matches_legacy")
    assert passed is False and "1 of " in detail and f" {column} expected " in detail, detail


def test_content_check_names_an_agent_renamed_in_the_target_with_both_values(migrated):
    agent, tenant, name = migrated.rows(
        "SELECT t.id, t.tenant_id::text, t.agent_name FROM voice_agents AS t ORDER BY t.id LIMIT 1"
    )[0]
    migrated.execute("UPDATE voice_agents SET agent_name = 'Renamed in the target' WHERE id = %s", (agent,))
    passed, detail = migrated.check("check_content_matches_legacy")
    assert passed is False
    assert f"agents_voiceagent tenant {tenant}: 1 of " in detail, detail
    assert f"{agent} agent_name expected '{name}' found 'Renamed in the target'" in detail, detail


def test_content_check_shortens_long_values(migrated):
    agent = migrated.value("SELECT min(id) FROM voice_agents")
    migrated.execute("UPDATE voice_agents SET agent_name = repeat('x', 200) WHERE id = %s", (agent,))
    passed, detail = migrated.check("check_content_matches_legacy")
    assert passed is False and f"found '{'x' * 40}'..." in detail and "x" * 41 not in detail, detail


def test_content_check_never_judges_an_application_agent_holding_a_legacy_id(migrated):
    """The application created voice_agents 900, then the legacy database created its agent 900: the
    legacy agent is quarantined, the application's row is neither written nor judged."""
    user = migrated.value("SELECT min(id) FROM voice_agent.users_voiceagent WHERE organization_id = %s", (ORG_A,))
    migrated.execute(
        "INSERT INTO voice_agents (id, tenant_id, agent_name, agent_language, metadata)"
        " VALUES (900, %s, 'the application''s agent', 'en', '{}')",
        (ORG_A,),
    )
    migrated.execute(
        "INSERT INTO voice_agent.agents_voiceagent (id, name, created_by) VALUES (900, 'a legacy agent', %s)", (user,)
    )
    migrated.migrate()
    assert (
        migrated.value(
            "SELECT reason FROM migration_rejects WHERE source_table = 'agents_voiceagent' AND source_id = '900'"
        )
        == "target_id_held_by_application"
    )
    assert migrated.value("SELECT agent_name FROM voice_agents WHERE id = 900") == "the application's agent"
    passed, detail = migrated.check("check_content_matches_legacy")
    assert passed is True, detail


@pytest.mark.parametrize("run_again", [True, False], ids=["then-migrated", "after-the-steps"])
def test_content_check_passes_when_a_number_used_by_calls_is_deleted_from_legacy(migrated, run_again):
    """A call keeps the from_number it landed with when its number leaves the legacy database, whether
    a run followed (history kept) or the number went after the steps (not judged, lineage aside)."""
    number, phone = migrated.rows(
        "SELECT n.id, n.phone_number FROM voice_agent.numbers_voiceagent AS n"
        " INNER JOIN voice_agent.call_logs_voiceagent AS cl ON cl.from_number_id = n.id"
        " INNER JOIN voice_calls AS vc ON vc.id = cl.id"
        " GROUP BY n.id ORDER BY count(*) DESC LIMIT 1"
    )[0]
    calls = migrated.value(
        "SELECT count(*) FROM voice_calls AS vc INNER JOIN voice_agent.call_logs_voiceagent AS cl ON cl.id = vc.id"
        " WHERE cl.from_number_id = %s AND vc.from_number = %s",
        (number, phone),
    )
    assert calls > 0
    migrated.execute("DELETE FROM voice_agent.numbers_voiceagent WHERE id = %s", (number,))
    if run_again:
        migrated.migrate()
    passed, detail = migrated.check("check_content_matches_legacy")
    assert passed is True, detail
    assert (
        migrated.value(
            "SELECT count(*) FROM voice_calls AS vc INNER JOIN voice_agent.call_logs_voiceagent AS cl ON cl.id = vc.id"
            " WHERE cl.from_number_id = %s AND vc.from_number = %s",
            (number, phone),
        )
        == calls
    )


def test_content_check_still_fails_on_an_edited_call_whose_number_is_kept_history(migrated):
    """A call whose number is gone keeps its from_number: any other column is still judged."""
    number = migrated.value(
        "SELECT cl.from_number_id FROM voice_agent.call_logs_voiceagent AS cl"
        " INNER JOIN voice_calls AS vc ON vc.id = cl.id WHERE cl.from_number_id IS NOT NULL LIMIT 1"
    )
    migrated.execute("DELETE FROM voice_agent.numbers_voiceagent WHERE id = %s", (number,))
    migrated.migrate()
    call = migrated.value(
        "SELECT vc.id::text FROM voice_calls AS vc INNER JOIN voice_agent.call_logs_voiceagent AS cl ON cl.id = vc.id"
        " WHERE cl.from_number_id = %s ORDER BY vc.id LIMIT 1",
        (number,),
    )
    migrated.execute("UPDATE voice_calls SET status = 'edited' WHERE id = %s", (call,))
    passed, detail = migrated.check("check_content_matches_legacy")
    assert passed is False and f"{call} status expected " in detail, detail


def legacy_call_of(db):
    return db.rows(
        "SELECT cl.id::text, cl.status FROM voice_agent.call_logs_voiceagent AS cl"
        " INNER JOIN migration_calls AS written ON written.id = cl.id ORDER BY cl.id LIMIT 1"
    )[0]


def test_content_check_leaves_a_call_written_after_the_runs_snapshot_pending(migrated):
    """The legacy application writes on while a run is under way: a call it changed after the run's
    snapshot (taken by create_target_tables, the run's first step) is the next run's, not a failure."""
    call, _ = legacy_call_of(migrated)
    migrated.execute("UPDATE voice_agent.call_logs_voiceagent SET status = 'changed-after' WHERE id = %s", (call,))
    passed, detail = migrated.check("check_content_matches_legacy")
    assert passed is True, detail
    assert detail.endswith("tenant digests match (1 row pending: written after the run's snapshot)"), detail


def test_content_check_judges_a_call_changed_before_the_runs_snapshot(migrated):
    """The control: the same change made before the run is the run's to migrate, and judged."""
    call, _ = legacy_call_of(migrated)
    migrated.execute("UPDATE voice_agent.call_logs_voiceagent SET status = 'changed-before' WHERE id = %s", (call,))
    migrated.migrate()
    assert migrated.value("SELECT status FROM voice_calls WHERE id = %s", (call,)) == "changed-before"
    assert migrated.check("check_content_matches_legacy") == (True, "14 tenant digests match")
    migrated.execute("UPDATE voice_calls SET status = 'edited' WHERE id = %s", (call,))
    passed, detail = migrated.check("check_content_matches_legacy")
    assert passed is False and "pending" not in detail, detail
    assert f"{call} status expected 'changed-before' found 'edited'" in detail, detail


def test_content_check_leaves_the_rows_of_a_user_changed_after_the_snapshot_pending(migrated):
    """A user moved to another organization after the run's snapshot: its agents and calls belong to the
    next run (their tenant would differ), and are counted as pending."""
    user, agents, calls = migrated.rows(
        "SELECT u.id,"
        " (SELECT count(*) FROM voice_agent.agents_voiceagent AS a WHERE a.created_by = u.id"
        "  AND EXISTS (SELECT 1 FROM voice_agents AS t WHERE t.id = a.id)),"
        " (SELECT count(*) FROM voice_agent.call_logs_voiceagent AS cl WHERE cl.initiated_by = u.id"
        "  AND EXISTS (SELECT 1 FROM migration_calls AS w WHERE w.id = cl.id))"
        " FROM voice_agent.users_voiceagent AS u WHERE u.organization_id = %s ORDER BY 3 DESC, 1 LIMIT 1",
        (ORG_A,),
    )[0]
    other = migrated.value(
        "SELECT organization_id::text FROM voice_agent.users_voiceagent"
        " WHERE organization_id IS NOT NULL AND organization_id <> %s LIMIT 1",
        (ORG_A,),
    )
    migrated.execute("UPDATE voice_agent.users_voiceagent SET organization_id = %s WHERE id = %s", (other, user))
    passed, detail = migrated.check("check_content_matches_legacy")
    assert passed is True, detail
    assert f"({agents + calls} rows pending: written after the run's snapshot)" in detail, detail


def test_content_check_does_not_judge_the_rows_of_a_user_deleted_after_the_steps(migrated):
    user = migrated.value(
        "SELECT cl.initiated_by FROM voice_agent.call_logs_voiceagent AS cl"
        " INNER JOIN migration_calls AS w ON w.id = cl.id GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
    )
    migrated.execute("DELETE FROM voice_agent.users_voiceagent WHERE id = %s", (user,))
    passed, detail = migrated.check("check_content_matches_legacy")
    assert passed is True, detail
    assert "not judged: owner gone or without organization since the row's step" in detail, detail


def test_the_run_account_fails_when_a_write_is_not_accounted_for(migrated):
    migrated.execute(
        "INSERT INTO migration_run_writes VALUES ('manual__outside_airflow', 'voices_voiceagent', %s, 99, 1, 0)",
        (STRAY_TENANT,),
    )
    passed, detail = migrated.check("check_run_balanced")
    assert passed is False
    # A write under a tenant with no row in scope makes that tenant's unchanged count negative.
    assert f"voices_voiceagent tenant {STRAY_TENANT}: in_scope=0 inserted=1 updated=0 unchanged=-1" in detail
