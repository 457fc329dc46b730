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
    assert "call_logs_voiceagent: legacy=742 landed=729 rejected=13 missing=0 doubled=0" in detail
    assert "leads_voiceagent: legacy=63 landed=61 rejected=2" in detail


def test_conservation_fails_on_a_lost_call(migrated):
    lost = some_call(migrated)
    migrated.execute("DELETE FROM voice_calls WHERE id = %s", (lost,))
    passed, detail = migrated.check("check_conservation")
    assert passed is False
    assert f"call_logs_voiceagent: legacy=742 landed=728 rejected=13 missing=1 doubled=0 e.g. {lost}" in detail


def test_conservation_fails_on_a_row_both_landed_and_rejected(migrated):
    migrated.execute(
        "INSERT INTO migration_rejects (source_table, source_id, reason, source_row)"
        " VALUES ('agents_voiceagent', '1', 'planted', '{}')"
    )
    passed, detail = migrated.check("check_conservation")
    assert passed is False
    assert "agents_voiceagent: legacy=23 landed=19 rejected=5 missing=0 doubled=1 e.g. 1" in detail


def test_conservation_fails_on_a_lost_lineage_row(migrated):
    migrated.execute("DELETE FROM migration_lineage WHERE source_table = 'numbers_voiceagent' AND source_id = '3'")
    passed, detail = migrated.check("check_conservation")
    assert passed is False and "numbers_voiceagent: legacy=5 landed=4 rejected=0 missing=1 doubled=0 e.g. 3" in detail


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


def test_content_check_fails_on_a_call_edited_in_the_target_naming_tenant_and_id(migrated):
    call, tenant = migrated.rows("SELECT id::text, tenant_id::text FROM voice_calls ORDER BY id LIMIT 1")[0]
    migrated.execute("UPDATE voice_calls SET metadata = metadata || '{\"cost\": 0}' WHERE id = %s", (call,))
    passed, detail = migrated.check("check_content_matches_legacy")
    assert passed is False
    assert f"call_logs_voiceagent tenant {tenant}" in detail and call in detail


def test_content_check_fails_on_a_wrong_transform_of_a_whole_tenant(migrated):
    """As if the UTC conversion were missing for a database in UTC+05:45: every call of the tenant
    shifted; counts and every other check still pass."""
    migrated.execute(
        "UPDATE voice_calls SET started_at = started_at + interval '5 hours 45 minutes' WHERE tenant_id = %s", (ORG_A,)
    )
    for name in CHECKS[:4]:
        assert migrated.check(name)[0] is True, name
    passed, detail = migrated.check("check_content_matches_legacy")
    assert passed is False
    assert f"call_logs_voiceagent tenant {ORG_A}" in detail
    assert len(detail.split(" e.g. ")[1].split()) == 5  # a few ids, not thousands


def test_content_check_names_a_call_missing_from_the_target(migrated):
    call, tenant = migrated.rows("SELECT id::text, tenant_id::text FROM voice_calls ORDER BY id LIMIT 1")[0]
    migrated.execute("DELETE FROM voice_calls WHERE id = %s", (call,))
    passed, detail = migrated.check("check_content_matches_legacy")
    assert passed is False
    assert f"call_logs_voiceagent tenant {tenant}: content differs" in detail and call in detail


def test_content_check_names_both_tenants_of_a_call_moved_to_another_tenant(migrated):
    call, tenant = migrated.rows(
        "SELECT id::text, tenant_id::text FROM voice_calls WHERE tenant_id <> %s LIMIT 1", (ORG_A,)
    )[0]
    migrated.execute("UPDATE voice_calls SET tenant_id = %s WHERE id = %s", (ORG_A, call))
    passed, detail = migrated.check("check_content_matches_legacy")
    assert passed is False
    for each in (tenant, ORG_A):
        assert f"call_logs_voiceagent tenant {each}: content differs" in detail, detail
    assert detail.count(call) == 2


def test_content_check_tells_a_json_null_from_a_missing_metadata_key(migrated):
    """The guide maps a NULL legacy column to a JSON null under its key: dropping the key is an edit."""
    call, key = migrated.rows(
        "SELECT id::text, key FROM voice_calls, jsonb_each(metadata) WHERE value = 'null' ORDER BY id, key LIMIT 1"
    )[0]
    migrated.execute("UPDATE voice_calls SET metadata = metadata - %s WHERE id = %s", (key, call))
    passed, detail = migrated.check("check_content_matches_legacy")
    assert passed is False and call in detail, detail


def test_content_check_tells_a_number_from_the_same_digits_as_a_string(migrated):
    call = migrated.value(
        "SELECT id::text FROM voice_calls WHERE jsonb_typeof(metadata -> 'cost') = 'number' ORDER BY id LIMIT 1"
    )
    migrated.execute(
        "UPDATE voice_calls SET metadata = jsonb_set(metadata, '{cost}', to_jsonb(metadata ->> 'cost')) WHERE id = %s",
        (call,),
    )
    passed, detail = migrated.check("check_content_matches_legacy")
    assert passed is False and call in detail, detail


@pytest.mark.parametrize("tenant", [ORG_A, STRAY_TENANT], ids=["tenant-with-legacy-calls", "tenant-without"])
def test_content_check_ignores_the_applications_own_calls(migrated, tenant):
    """Only target rows carrying a legacy id are compared: calls the application writes itself are not
    the migration's, whether or not their tenant has legacy calls."""
    migrated.execute(
        "INSERT INTO voice_calls (id, tenant_id, status, metadata) VALUES (gen_random_uuid(), %s, 'completed', '{}')",
        (tenant,),
    )
    passed, detail = migrated.check("check_content_matches_legacy")
    assert passed is True, detail


def test_content_check_still_names_an_edited_call_beside_the_applications_own(migrated):
    call, tenant = migrated.rows("SELECT id::text, tenant_id::text FROM voice_calls ORDER BY id LIMIT 1")[0]
    migrated.execute(
        "INSERT INTO voice_calls (id, tenant_id, status, metadata) VALUES (gen_random_uuid(), %s, 'completed', '{}')",
        (tenant,),
    )
    migrated.execute("UPDATE voice_calls SET status = 'edited' WHERE id = %s", (call,))
    passed, detail = migrated.check("check_content_matches_legacy")
    assert passed is False
    assert f"call_logs_voiceagent tenant {tenant}: content differs" in detail and call in detail, detail


@pytest.mark.parametrize(
    ("table", "change"),
    [
        ("voices", "SET voice_name = voice_name || ' (edited)' WHERE id = (SELECT min(id) FROM voices)"),
        ("phone_numbers", "SET is_active = NOT is_active WHERE id = (SELECT min(id::text)::uuid FROM phone_numbers)"),
        (
            "voice_agents",
            "SET created_at = created_at + interval '1 second' WHERE id = (SELECT min(id) FROM voice_agents)",
        ),
    ],
)
def test_content_check_covers_the_small_tables(migrated, table, change):
    migrated.execute(f"UPDATE {table} {change}")
    passed, detail = migrated.check("check_content_matches_legacy")
    assert passed is False and "content differs" in detail, detail


def test_the_run_account_fails_when_a_write_is_not_accounted_for(migrated):
    migrated.execute(
        "INSERT INTO migration_run_writes VALUES ('manual__outside_airflow', 'voices_voiceagent', %s, 99, 1, 0)",
        (STRAY_TENANT,),
    )
    passed, detail = migrated.check("check_run_balanced")
    assert passed is False
    assert "voices_voiceagent: 31 writes counted, 30 accounted" in detail
