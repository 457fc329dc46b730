"""A live legacy database (issue 13): the legacy application keeps writing between runs, and after every
successful full run the rows the migration owns in the target are exactly the guide's mapping of the
legacy database as it stands, the bookkeeping accounts for every current legacy row once, the
application's own rows are untouched and every check of the DAG passes.

The model-based property test starts from a random small legacy database (and application rows in the
target), runs the migration, then applies random legacy and application writes between 2-4 further
runs, and after every run compares the target with a mapping the test computes itself, in Python,
from the legacy rows as they stand (`expected_state`). The scenario tests below it take one situation
of the issue each, on the demo database.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.rows import dict_row

from tests.helpers import CHECKS, LegacyDatabase
from tests.sql.test_properties import COLUMNS, ORGS, PHASES, UNKNOWN_ORG, examples, load, shared_db  # ruff: ignore[unused-import]

SYSTEM_TENANT = uuid.UUID("00000000-0000-0000-0000-000000000000")
# The application's own tenant, owning its own agent, call and phone number.
APP_TENANT = uuid.UUID("a0000000-0000-4000-8000-0000000000a0")
APP_CALL = uuid.UUID("a0000000-0000-4000-8000-00000000ca11")

# Small pools, so that numbers and leads collide and leads of one tenant merge.
NUMBER_PHONES = ["+15550000001", " +15550000001", "+15550000002", "+15550000003", "", None]
LEAD_PHONES = ["+15551000001", " +15551000001 ", "+15551000002", "+15551000003", "  ", None]
STATUSES = ["completed", "Completed ", " FAILED", "no-answer", None]
STARTED = dt.datetime(2025, 1, 15, 12, 0, tzinfo=dt.timezone.utc)
SMALL_TABLES = [
    ("voices_voiceagent", "voices"),
    ("numbers_voiceagent", "phone_numbers"),
    ("agents_voiceagent", "voice_agents"),
    ("leads_voiceagent", "leads"),
    ("org_permissions_voiceagent", "resource_permissions"),
]


# ---------------------------------------------------------------------------------------------------
# Reading the legacy database as it stands, and the target
# ---------------------------------------------------------------------------------------------------


def read_legacy(db: LegacyDatabase) -> dict[str, dict[Any, dict[str, Any]]]:
    """{legacy table: {id: row}}."""
    with psycopg.connect(db.uri, row_factory=dict_row) as conn:
        return {
            table: {row["id"]: row for row in conn.execute(f"SELECT * FROM voice_agent.{table}").fetchall()}
            for table in COLUMNS
        }


def btrim(value: str | None) -> str | None:
    """PostgreSQL's btrim(text): spaces only."""
    return None if value is None else value.strip(" ")


def phone_of(value: str | None) -> str | None:
    return btrim(value) or None


@dataclass
class Application:
    """The rows the application wrote in the target (ids), which the migration must never change."""

    leads: list[tuple[uuid.UUID, uuid.UUID | None, str | None]] = field(default_factory=list)  # id, tenant, phone
    agent_ids: set[int] = field(default_factory=set)
    number_phones: set[str] = field(default_factory=set)
    number_ids: set[uuid.UUID] = field(default_factory=set)
    call_ids: set[uuid.UUID] = field(default_factory=set)

    def snapshot(self, db: LegacyDatabase) -> dict[str, dict[str, str]]:
        """Every application row, byte for byte (its jsonb text)."""
        queries = {
            "leads": (
                "SELECT id::text, to_jsonb(t)::text FROM public.leads AS t WHERE id = ANY(%s)",
                [i for i, *_ in self.leads],
            ),
            "voice_agents": (
                "SELECT id::text, to_jsonb(t)::text FROM public.voice_agents AS t WHERE id = ANY(%s)",
                list(self.agent_ids),
            ),
            "phone_numbers": (
                "SELECT id::text, to_jsonb(t)::text FROM public.phone_numbers AS t WHERE id = ANY(%s)",
                list(self.number_ids),
            ),
            "voice_calls": (
                "SELECT id::text, to_jsonb(t)::text FROM public.voice_calls AS t WHERE id = ANY(%s)",
                list(self.call_ids),
            ),
            "tenants": ("SELECT id::text, to_jsonb(t)::text FROM public.tenants AS t WHERE id = ANY(%s)", [APP_TENANT]),
        }
        return {name: dict(db.rows(sql, (ids,))) for name, (sql, ids) in queries.items()}


@dataclass
class ModelState:
    """What the model remembers of the previous runs: lead identity, the numbers calls landed with."""

    seen_orgs: set[uuid.UUID] = field(default_factory=set)
    lead_targets: dict[int, str] = field(default_factory=dict)  # legacy lead -> the lead the migration wrote
    landed_calls: dict[uuid.UUID, tuple[str | None, str | None]] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------------
# The model: the guide's mapping of the legacy database as it stands, computed here in Python
# ---------------------------------------------------------------------------------------------------


def owner_reason(ref: int | None, users: dict[int, dict]) -> str | None:
    if ref is None:
        return "owner_missing"
    if ref not in users:
        return "owner_not_found"
    if users[ref]["organization_id"] is None:
        return "owner_without_organization"
    return None


def too_long(value: str | None, limit: int, column: str) -> str | None:
    return f"too_long:{column}" if value is not None and len(value) > limit else None


def first(*reasons: str | None) -> str | None:
    return next((r for r in reasons if r), None)


@dataclass
class Expected:
    rejects: dict[tuple[str, str], str]  # (source table, source id) -> reason
    voices: dict[str, tuple]
    numbers: dict[str, tuple]  # legacy id -> mapped row
    agents: dict[int, tuple]
    leads: dict[int, dict]  # landing legacy lead -> tenant, phone, group, linked target, detail
    lead_groups: dict[tuple, dict]  # group -> members, representative, row, kept target (or None: a new lead)
    calls: dict[uuid.UUID, dict]
    permissions: dict[str, tuple]
    orgs: set[uuid.UUID]


def expected_state(legacy: dict, app: Application, model: ModelState) -> Expected:
    users = legacy["users_voiceagent"]
    orgs_now = {u["organization_id"] for u in users.values() if u["organization_id"] is not None}
    tenants = model.seen_orgs | orgs_now | {APP_TENANT, SYSTEM_TENANT}
    rejects: dict[tuple[str, str], str] = {}

    def org(user_ref):
        return users[user_ref]["organization_id"]

    voices = {}
    for v in legacy["voices_voiceagent"].values():
        name = v["provider_voice_id"] if v["provider_voice_id"] is not None else v["description"]
        name = name if name is not None else f"Voice {v['id']}"
        provider, gender = v["provider"] or "custom", v["gender"] or "neutral"
        reason = first(
            too_long(name, 255, "voice_name"), too_long(provider, 50, "provider"), too_long(gender, 20, "gender")
        )
        if reason:
            rejects["voices_voiceagent", str(v["id"])] = reason
        else:
            voices[str(v["id"])] = (SYSTEM_TENANT, name, v["description"], provider, gender)

    numbers, holding = {}, set()
    for n in sorted(legacy["numbers_voiceagent"].values(), key=lambda n: n["id"]):
        phone = phone_of(n["phone_number"])
        reason = "phone_number_missing" if phone is None else None
        if reason is None and phone in holding:
            reason = "duplicate_phone_number"
        if phone is not None:
            holding.add(phone)
        if reason is None and phone in app.number_phones:
            reason = "phone_number_taken_in_target"  # an application number holds it
        if reason:
            rejects["numbers_voiceagent", str(n["id"])] = reason
        else:
            is_active = (n["status"] or "").strip(" ").lower() == "active"
            numbers[str(n["id"])] = (SYSTEM_TENANT, phone, n["provider"] or "custom", is_active)

    agents = {}
    for a in legacy["agents_voiceagent"].values():
        reason = first(
            owner_reason(a["created_by"], users),
            too_long(a["name"], 255, "agent_name"),
            too_long(a["language"] or "en", 10, "agent_language"),
        )
        if reason is None and a["id"] in app.agent_ids:
            reason = "target_id_held_by_application"
        if reason:
            rejects["agents_voiceagent", str(a["id"])] = reason
            continue
        metadata = {
            "gender": a["gender"],
            "agent_instructions": a["agent_instructions"],
            "system_instructions": a["system_instructions"],
            "outbound_starter_prompt": a["outbound_starter_prompt"],
            "inbound_starter_prompt": a["inbound_starter_prompt"],
            "default_number_id": a["default_number"],
            "created_by_user_id": users[a["created_by"]]["user_id"],
        }
        voice = None if a["voice_id"] is None else str(a["voice_id"])
        agents[a["id"]] = (org(a["created_by"]), a["name"], a["language"] or "en", voice, metadata)

    # Leads: one target lead per tenant and phone (a lead without a phone: its own); a group whose tenant
    # and phone an application lead has links onto it; otherwise it keeps the lead its lowest legacy lead
    # that had one (of the previous run) still points at, or gets a new one.
    leads: dict[int, dict] = {}
    for lead in legacy["leads_voiceagent"].values():
        reason = first(
            owner_reason(lead["added_by"], users),
            too_long(lead["name"], 255, "name"),
            too_long(btrim(lead["lead_number"]), 50, "phone"),
        )
        if reason:
            rejects["leads_voiceagent", str(lead["id"])] = reason
            continue
        tenant, phone = org(lead["added_by"]), phone_of(lead["lead_number"])
        leads[lead["id"]] = {
            "tenant": tenant,
            "phone": phone,
            "group": (tenant, phone) if phone is not None else ("no phone", lead["id"]),
            "name": lead["name"] if lead["name"] is not None else f"Lead {lead['id']}",
            "notes": lead["notes"],
            "added_by_user_id": users[lead["added_by"]]["user_id"],
        }
    groups: dict[tuple, dict] = {}
    for lead_id in sorted(leads):
        lead = leads[lead_id]
        group = groups.setdefault(lead["group"], {"members": [], "tenant": lead["tenant"], "phone": lead["phone"]})
        group["members"].append(lead_id)
    for group in groups.values():
        matching = sorted(
            a
            for a, tenant, phone in app.leads
            if group["phone"] is not None and (tenant, phone) == (group["tenant"], group["phone"])
        )
        group["linked_to"] = str(matching[0]) if matching else None
        group["kept"] = None
    won: dict[tuple, list[tuple[int, str]]] = defaultdict(list)
    for target in set(model.lead_targets.values()):
        holders = [lead_id for lead_id in leads if model.lead_targets.get(lead_id) == target]
        if holders:
            owner = min(holders)
            won[leads[owner]["group"]].append((owner, target))
    for key, claims in won.items():
        if groups[key]["linked_to"] is None:
            groups[key]["kept"] = min(claims)[1]
    for group in groups.values():
        representative = group["members"][0]
        group["row"] = {
            "tenant": group["tenant"],
            "phone": group["phone"],
            "name": leads[representative]["name"],
            "old_voice_agent_id": representative,
            "merged": sorted(group["members"]) if len(group["members"]) > 1 else None,
        }

    calls = {}
    numbers_legacy, leads_legacy = legacy["numbers_voiceagent"], legacy["leads_voiceagent"]
    for cl in legacy["call_logs_voiceagent"].values():
        number = numbers_legacy.get(cl["from_number_id"])
        target = leads_legacy.get(cl["target"])
        reason = first(
            owner_reason(cl["initiated_by"], users),
            too_long(btrim(cl["status"]), 50, "status"),
            too_long(number and number["phone_number"], 50, "from_number"),
            too_long(target and btrim(target["lead_number"]), 50, "to_number"),
        )
        if reason:
            rejects["call_logs_voiceagent", str(cl["id"])] = reason
            continue
        landed = model.landed_calls.get(cl["id"], (None, None))
        if cl["from_number_id"] is not None and number is None:
            from_number = landed[0]  # its number was deleted: it keeps the number it landed with
        else:
            from_number = number and number["phone_number"]
        if cl["target"] is not None and target is None:
            to_number = landed[1]  # its lead was deleted: it keeps the number it landed with
        else:
            to_number = target and phone_of(target["lead_number"])
        calls[cl["id"]] = {
            "tenant_id": org(cl["initiated_by"]),
            "agent_id": cl["agent"],
            "from_number": from_number,
            "to_number": to_number,
            "status": None if cl["status"] is None else cl["status"].strip(" ").lower(),
            "initiated_by": users[cl["initiated_by"]]["user_id"],
            "voice_id": None if cl["voice"] is None else str(cl["voice"]),
            "lead": cl["target"] if cl["target"] in leads else None,  # its lead's target, if it landed
        }

    permissions = {}
    for p in legacy["org_permissions_voiceagent"].values():
        kind = None if p["resource_type"] is None else p["resource_type"].strip(" ").lower()
        resource = p["resource_id"]
        if kind == "number":
            resource = ("number", resource) if resource in numbers else None  # the number's new uuid
        if p["organization_id"] is None:
            reason = "organization_missing"
        elif p["organization_id"] not in tenants:
            reason = "organization_not_found"
        elif kind is None or resource is None:
            reason = "resource_missing"
        else:
            reason = None
        if reason:
            rejects["org_permissions_voiceagent", str(p["id"])] = reason
        else:
            is_active = True if p["is_active"] is None else p["is_active"]
            permissions[str(p["id"])] = (p["organization_id"], kind, resource, p["access_level"] or "use", is_active)

    return Expected(rejects, voices, numbers, agents, leads, groups, calls, permissions, orgs_now)


# ---------------------------------------------------------------------------------------------------
# The assertions after every run
# ---------------------------------------------------------------------------------------------------


def rows_dict(db: LegacyDatabase, sql: str, params: Any = None) -> list[dict]:
    with psycopg.connect(db.uri, row_factory=dict_row) as conn:
        return conn.execute(sql, params).fetchall()


def lineage(db: LegacyDatabase, table: str) -> dict[str, tuple[str, bool, Any]]:
    return {
        s: (t, linked, detail)
        for s, t, linked, detail in db.rows(
            "SELECT source_id, target_id, linked, detail FROM public.migration_lineage WHERE source_table = %s",
            (table,),
        )
    }


def assert_target_matches_model(db: LegacyDatabase, app: Application, model: ModelState, when: str) -> None:
    legacy = read_legacy(db)
    exp = expected_state(legacy, app, model)

    # 2. Bookkeeping: every current legacy row in exactly one of lineage / migration_calls and the
    # quarantine, with the model's reason; nothing for a legacy row that is gone.
    rejects = {(t, s): r for t, s, r in db.rows("SELECT source_table, source_id, reason FROM public.migration_rejects")}
    assert rejects == exp.rejects, f"quarantine differs from the model {when}"
    lineages = {table: lineage(db, table) for table, _ in SMALL_TABLES}
    for table, _ in SMALL_TABLES:
        current = {str(i) for i in legacy[table]}
        landed = set(lineages[table])
        quarantined = {s for t, s in rejects if t == table}
        assert not landed & quarantined, f"{table}: landed and quarantined {when}: {landed & quarantined}"
        assert landed | quarantined == current, f"{table}: lineage + quarantine != legacy rows {when}"
    written_calls = {r[0] for r in db.rows("SELECT id FROM public.migration_calls")}
    call_rejects = {uuid.UUID(s) for t, s in rejects if t == "call_logs_voiceagent"}
    assert not written_calls & call_rejects, when
    assert written_calls | call_rejects == set(legacy["call_logs_voiceagent"]), (
        f"calls: written + rejected != legacy {when}"
    )
    assert written_calls == set(exp.calls), f"calls the migration wrote differ from the model {when}"
    for table, target in SMALL_TABLES:
        missing = db.rows(
            f"SELECT m.source_id FROM public.migration_lineage AS m WHERE m.source_table = %s AND NOT m.linked"
            f" AND NOT EXISTS (SELECT 1 FROM public.{target} AS t WHERE t.id::text = m.target_id)",
            (table,),
        )
        assert missing == [], f"{table}: lineage points at missing {target} rows {when}: {missing}"
    assert db.rows("SELECT id FROM public.migration_calls EXCEPT SELECT id FROM public.voice_calls") == [], when
    orphans = db.rows(
        "SELECT id FROM public.leads AS t WHERE t.source = 'voice_agent' AND t.metadata ? 'old_voice_agent_id'"
        " AND NOT EXISTS (SELECT 1 FROM public.migration_lineage AS m"
        " WHERE m.target_table = 'leads' AND m.target_id = t.id::text AND NOT m.linked)"
    )
    assert orphans == [], f"migration-written leads without lineage {when}: {orphans}"

    # 1. The target is the model's mapping, table by table (migrated rows and the application's, nothing else).
    voices = {
        r[0]: tuple(r[1:])
        for r in db.rows("SELECT id, tenant_id, voice_name, description, provider, gender FROM public.voices")
    }
    assert voices == exp.voices, f"voices differ from the model {when}"

    number_lineage = {s: t for s, (t, _, _) in lineages["numbers_voiceagent"].items()}
    numbers = {
        r[0]: tuple(r[1:])
        for r in db.rows("SELECT id::text, tenant_id, phone_number, provider, is_active FROM public.phone_numbers")
    }
    assert {s: numbers.get(t) for s, t in number_lineage.items()} == exp.numbers, f"phone_numbers differ {when}"
    assert set(numbers) == set(number_lineage.values()) | {str(i) for i in app.number_ids}, when

    agents = {
        r[0]: tuple(r[1:])
        for r in db.rows(
            "SELECT id, tenant_id, agent_name, agent_language, voice_id, metadata FROM public.voice_agents"
        )
    }
    assert {i: a for i, a in agents.items() if i not in app.agent_ids} == exp.agents, f"voice_agents differ {when}"
    assert app.agent_ids <= set(agents), when

    lead_lineage = lineages["leads_voiceagent"]
    written_leads = {
        r[0]: r[1:]
        for r in db.rows(
            "SELECT id::text, tenant_id, phone, name, metadata FROM public.leads"
            " WHERE source = 'voice_agent' AND metadata ? 'old_voice_agent_id'"
        )
    }
    group_targets = {}
    for key, group in exp.lead_groups.items():
        targets = {lead_lineage[str(m)][:2] for m in group["members"]}
        assert len(targets) == 1, f"the legacy leads of group {key} point at different leads {when}: {targets}"
        ((target, linked),) = targets
        if group["linked_to"] is not None:
            assert target == group["linked_to"] and linked, f"group {key} not linked to the application's lead {when}"
            for m in group["members"]:
                lead = exp.leads[m]
                want = {"name": lead["name"], "notes": lead["notes"], "added_by_user_id": lead["added_by_user_id"]}
                assert lead_lineage[str(m)][2] == want, f"legacy lead {m}: link detail {when}"
            continue
        assert not linked, when
        if group["kept"] is not None:
            assert target == group["kept"], f"group {key} did not keep its lead {group['kept']} {when}"
        assert target in written_leads, f"group {key}: its lead {target} is not a migration-written lead {when}"
        tenant, phone, name, metadata = written_leads[target]
        row = group["row"]
        assert (tenant, phone, name) == (row["tenant"], row["phone"], row["name"]), f"lead of group {key} {when}"
        assert metadata["old_voice_agent_id"] == row["old_voice_agent_id"], when
        merged = sorted(m["old_voice_agent_id"] for m in metadata.get("merged_leads", [])) or None
        assert merged == row["merged"], f"merged_leads of group {key} {when}"
        group_targets[key] = target
    assert len(set(group_targets.values())) == len(group_targets), f"two lead groups share one lead {when}"
    assert set(written_leads) == set(group_targets.values()), f"migration-written leads != lead groups {when}"
    kept = {g["kept"] for g in exp.lead_groups.values() if g["kept"]}
    for key, target in group_targets.items():
        if exp.lead_groups[key]["kept"] is None:
            assert target not in kept, f"group {key} got another group's lead {when}"

    calls = {
        r["id"]: r
        for r in rows_dict(
            db,
            "SELECT id, tenant_id, agent_id, from_number, to_number, status, initiated_by, voice_id, lead_id"
            " FROM public.voice_calls",
        )
    }
    for call_id, want in exp.calls.items():
        got = dict(calls[call_id])
        lead_target = None if want["lead"] is None else lead_lineage[str(want["lead"])][0]
        want = {k: v for k, v in want.items() if k != "lead"} | {"lead_id": lead_target}
        got = {k: (str(v) if k == "lead_id" and v is not None else v) for k, v in got.items() if k != "id"}
        assert got == want, f"call {call_id} differs from the model {when}"
    assert set(calls) == set(exp.calls) | app.call_ids, f"voice_calls holds other calls {when}"

    permissions = {
        r[0]: tuple(r[1:])
        for r in db.rows(
            "SELECT id::text, tenant_id, resource_type, resource_id, access_level, is_active"
            " FROM public.resource_permissions"
        )
    }
    perm_lineage = {s: t for s, (t, _, _) in lineages["org_permissions_voiceagent"].items()}
    got = {s: permissions.get(t) for s, t in perm_lineage.items()}
    want = {
        s: (*p[:2], number_lineage[p[2][1]] if isinstance(p[2], tuple) else p[2], *p[3:])
        for s, p in exp.permissions.items()
    }
    assert got == want, f"resource_permissions differ from the model {when}"
    assert set(permissions) == set(perm_lineage.values()), when

    # Tenants: every organization a legacy user has is a tenant.
    tenants = {r[0] for r in db.rows("SELECT id FROM public.tenants")}
    assert exp.orgs <= tenants, when

    # The model remembers what this run did, for the next one.
    model.seen_orgs |= exp.orgs
    model.lead_targets = {int(s): t for s, (t, linked, _) in lead_lineage.items() if not linked}
    model.landed_calls = {i: (c["from_number"], c["to_number"]) for i, c in calls.items() if i in written_calls}


def assert_checks_pass(db: LegacyDatabase, when: str) -> None:
    for name in CHECKS:
        passed, detail = db.check(name)
        assert passed is True, f"{name} failed {when}: {detail}"


def run(db: LegacyDatabase, name: str, **params: str) -> None:
    db.run_id = f"manual__model_{name}"
    db.migrate(partitions=2, **params)
    db.run_sql_file("record/11_record_findings.sql", **params)
    db.run_sql_file("record/12_record_run_account.sql", **params)


def assert_run_is_right(db: LegacyDatabase, app: Application, model: ModelState, before: dict, when: str) -> None:
    assert app.snapshot(db) == before, f"the application's rows changed {when}"
    assert_target_matches_model(db, app, model, when)
    assert_checks_pass(db, when)


# ---------------------------------------------------------------------------------------------------
# Random legacy databases and writes
# ---------------------------------------------------------------------------------------------------


def row(table: str, **values: Any) -> dict[str, Any]:
    return {column: values.get(column) for column in COLUMNS[table]}


def reference(existing: list, missing: Any) -> st.SearchStrategy:
    options = [st.none(), st.just(missing)]
    return st.one_of(st.sampled_from(existing), *options) if existing else st.one_of(*options)


ORG_OR_NONE = st.sampled_from([*ORGS, None])


@st.composite
def small_legacy_databases(draw) -> dict[str, list[dict[str, Any]]]:
    db: dict[str, list[dict[str, Any]]] = {table: [] for table in COLUMNS}
    users = list(range(1, draw(st.integers(1, 4)) + 1))
    db["users_voiceagent"] = [
        row("users_voiceagent", id=u, user_id=f"usr_{u}", organization_id=draw(ORG_OR_NONE), created_at=STARTED)
        for u in users
    ]
    voices = [uuid.UUID(int=draw(st.integers(1, 2**64))) for _ in range(draw(st.integers(0, 2)))]
    voices = list(dict.fromkeys(voices))
    db["voices_voiceagent"] = [
        row(
            "voices_voiceagent",
            id=v,
            description=f"Voice {i}",
            provider_voice_id=draw(st.sampled_from([None, f"pv{i}"])),
        )
        for i, v in enumerate(voices)
    ]
    numbers = list(range(1, draw(st.integers(0, 3)) + 1))
    db["numbers_voiceagent"] = [
        row(
            "numbers_voiceagent",
            id=n,
            phone_number=draw(st.sampled_from(NUMBER_PHONES)),
            provider="twilio",
            status=draw(st.sampled_from(["active", "inactive", " Active"])),
        )
        for n in numbers
    ]
    agents = list(range(1, draw(st.integers(0, 3)) + 1))
    db["agents_voiceagent"] = [
        row(
            "agents_voiceagent",
            id=a,
            name=f"Agent {a}",
            created_by=draw(reference(users, 99)),
            language=draw(st.sampled_from(["en", None])),
            voice_id=draw(reference(voices, None)),
            default_number=draw(reference(numbers, None)),
        )
        for a in agents
    ]
    leads = list(range(1, draw(st.integers(0, 5)) + 1))
    db["leads_voiceagent"] = [
        row(
            "leads_voiceagent",
            id=i,
            name=draw(st.sampled_from([f"Lead {i}", None])),
            lead_number=draw(st.sampled_from(LEAD_PHONES)),
            added_by=draw(reference(users, 99)),
            notes=f"notes {i}",
        )
        for i in leads
    ]
    db["call_logs_voiceagent"] = [
        row(
            "call_logs_voiceagent",
            id=uuid.UUID(int=c + 1),
            initiated_by=draw(reference(users, 99)),
            target=draw(reference(leads, 99)),
            agent=draw(reference(agents, 99)),
            status=draw(st.sampled_from(STATUSES)),
            started_at=STARTED,
            from_number_id=draw(reference(numbers, 99)),
        )
        for c in range(draw(st.integers(0, 5)))
    ]
    db["org_permissions_voiceagent"] = [
        row(
            "org_permissions_voiceagent",
            id=p,
            organization_id=draw(st.sampled_from([*ORGS, None, UNKNOWN_ORG])),
            resource_type=draw(st.sampled_from(["agent", " Number", "voice"])),
            resource_id=draw(st.sampled_from([str(x) for x in [*numbers, *agents, 99]])),
            is_active=draw(st.sampled_from([None, True, False])),
        )
        for p in range(1, draw(st.integers(0, 3)) + 1)
    ]
    return db


def app_leads_for(legacy: dict[str, list[dict]]) -> st.SearchStrategy:
    organization = {u["id"]: u["organization_id"] for u in legacy["users_voiceagent"]}
    shared = [
        (organization.get(lead["added_by"]) or ORGS[0], phone_of(lead["lead_number"]))
        for lead in legacy["leads_voiceagent"]
        if phone_of(lead["lead_number"])
    ]
    pairs = st.tuples(st.sampled_from(ORGS), st.sampled_from([p for p in map(phone_of, LEAD_PHONES) if p]))
    if shared:
        pairs = st.one_of(st.sampled_from(shared), pairs)
    return st.lists(pairs, max_size=2, unique=True)


def setup_world(db: LegacyDatabase, legacy: dict, app_leads: list[tuple]) -> Application:
    """Load the legacy database and the application's rows; create the target tables (a first setup
    step), then the application's tenant, agent and call."""
    load(db, legacy, ("tenant_leads", [(t, f"Main-app lead {i}", p) for i, (t, p) in enumerate(app_leads)]), "UTC")
    db.run_id = "manual__model_setup"
    db.run_sql_file("setup/01_create_target_tables.sql")
    app = Application()
    app.leads = [(r[0], r[1], r[2]) for r in db.rows("SELECT id, tenant_id, phone FROM public.leads")]
    db.execute("INSERT INTO public.tenants (id, name, plan) VALUES (%s, 'Application tenant', 'pro')", (APP_TENANT,))
    app.agent_ids.add(
        db.value(
            "INSERT INTO public.voice_agents (tenant_id, agent_name) VALUES (%s, 'App agent') RETURNING id",
            (APP_TENANT,),
        )
    )
    db.execute(
        "INSERT INTO public.voice_calls (id, tenant_id, from_number, to_number, status, started_at)"
        " VALUES (%s, %s, '+19995550000', '+19995550001', 'completed', '2025-01-01')",
        (APP_CALL, APP_TENANT),
    )
    app.call_ids.add(APP_CALL)
    return app


def apply_random_write(db: LegacyDatabase, app: Application, data: st.DataObject) -> str:
    """One random write of the legacy application (or of the main application in the target); returns
    what it did."""
    legacy = read_legacy(db)
    users, leads = sorted(legacy["users_voiceagent"]), sorted(legacy["leads_voiceagent"])
    numbers, agents = sorted(legacy["numbers_voiceagent"]), sorted(legacy["agents_voiceagent"])
    calls, grants = sorted(legacy["call_logs_voiceagent"]), sorted(legacy["org_permissions_voiceagent"])
    voices = sorted(legacy["voices_voiceagent"])
    user_ref = reference(users, 99)
    kinds = [
        "insert_user",
        "insert_lead",
        "insert_call",
        "insert_number",
        "insert_agent",
        "insert_grant",
        "insert_voice",
    ]
    kinds += ["app_agent_takes_next_id", "app_number"]
    if users:
        kinds += ["move_user", "move_user", "delete_user"]
    if leads:
        kinds += ["change_lead_phone", "change_lead_phone", "update_lead", "delete_lead", "app_lead_like_legacy"]
    if numbers:
        kinds += ["update_number", "delete_number"]
    if agents:
        kinds += ["update_agent", "delete_agent"]
    if calls:
        kinds += ["update_call", "delete_call"]
    if grants:
        kinds += ["update_grant", "delete_grant"]
    if voices:
        kinds += ["update_voice", "delete_voice"]
    kind = data.draw(st.sampled_from(kinds), label="write")
    pick = lambda values: data.draw(st.sampled_from(values))  # ruff: ignore[lambda-assignment]
    ex = db.execute

    if kind == "insert_user":
        uid = max(users, default=0) + 1
        ex(
            "INSERT INTO voice_agent.users_voiceagent (id, user_id, organization_id, created_at)"
            " VALUES (%s, %s, %s, %s)",
            (uid, f"usr_{uid}", data.draw(ORG_OR_NONE), STARTED),
        )
        return f"{kind} {uid}"
    if kind == "move_user":
        uid, org = pick(users), data.draw(ORG_OR_NONE)
        ex("UPDATE voice_agent.users_voiceagent SET organization_id = %s WHERE id = %s", (org, uid))
        return f"{kind} {uid} -> {org}"
    if kind == "delete_user":
        uid = pick(users)
        ex("DELETE FROM voice_agent.users_voiceagent WHERE id = %s", (uid,))
        return f"{kind} {uid}"
    if kind == "insert_lead":
        # Usually the next id; sometimes one below every other (a restored row), which becomes the
        # representative of the group it joins.
        lid = pick([max(leads, default=0) + 1, min(leads, default=1) - 1])
        phones = LEAD_PHONES + [legacy["leads_voiceagent"][i]["lead_number"] for i in leads]
        ex(
            "INSERT INTO voice_agent.leads_voiceagent (id, name, lead_number, added_by, notes)"
            " VALUES (%s, %s, %s, %s, %s)",
            (lid, f"Lead {lid}", pick(phones), data.draw(user_ref), f"notes {lid}"),
        )
        return f"{kind} {lid}"
    if kind == "change_lead_phone":
        lid = pick(leads)
        phones = LEAD_PHONES + ["+15551000009"] + [legacy["leads_voiceagent"][i]["lead_number"] for i in leads]
        phone = pick(phones)
        ex("UPDATE voice_agent.leads_voiceagent SET lead_number = %s WHERE id = %s", (phone, lid))
        return f"{kind} {lid} -> {phone!r}"
    if kind == "update_lead":
        lid, column = pick(leads), pick(["name", "notes", "added_by"])
        value = data.draw(user_ref) if column == "added_by" else pick([None, f"{column} changed"])
        ex(f"UPDATE voice_agent.leads_voiceagent SET {column} = %s WHERE id = %s", (value, lid))
        return f"{kind} {lid} {column}={value!r}"
    if kind == "delete_lead":
        lid = pick(leads)
        ex("DELETE FROM voice_agent.leads_voiceagent WHERE id = %s", (lid,))
        return f"{kind} {lid}"
    if kind == "app_lead_like_legacy":
        lead = legacy["leads_voiceagent"][pick(leads)]
        user = legacy["users_voiceagent"].get(lead["added_by"])
        tenant, phone = (user or {}).get("organization_id") or ORGS[0], phone_of(lead["lead_number"]) or "+15551000008"
        if any((t, p) == (tenant, phone) for _, t, p in app.leads):
            return f"{kind}: already there"
        lead_id = db.value(
            "INSERT INTO public.leads (tenant_id, name, phone) VALUES (%s, 'Main-app lead', %s) RETURNING id",
            (tenant, phone),
        )
        app.leads.append((lead_id, tenant, phone))
        return f"{kind} {tenant} {phone}"
    if kind == "insert_number":
        nid = max(numbers, default=0) + 1
        ex(
            "INSERT INTO voice_agent.numbers_voiceagent (id, phone_number, provider, status)"
            " VALUES (%s, %s, 'twilio', 'active')",
            (nid, pick(NUMBER_PHONES)),
        )
        return f"{kind} {nid}"
    if kind == "update_number":
        nid, column = pick(numbers), pick(["phone_number", "status"])
        value = pick([*NUMBER_PHONES, "+15550000009"]) if column == "phone_number" else pick(["active", "inactive"])
        ex(f"UPDATE voice_agent.numbers_voiceagent SET {column} = %s WHERE id = %s", (value, nid))
        return f"{kind} {nid} {column}={value!r}"
    if kind == "delete_number":
        nid = pick(numbers)
        ex("DELETE FROM voice_agent.numbers_voiceagent WHERE id = %s", (nid,))
        return f"{kind} {nid}"
    if kind == "app_number":
        taken = {r[0] for r in db.rows("SELECT phone_number FROM public.phone_numbers")}
        free = [p for p in map(phone_of, [*NUMBER_PHONES, "+15550000009"]) if p and p not in taken]
        if not free:
            return f"{kind}: none free"
        phone = pick(free)
        app.number_ids.add(
            db.value(
                "INSERT INTO public.phone_numbers (tenant_id, phone_number) VALUES (%s, %s) RETURNING id",
                (APP_TENANT, phone),
            )
        )
        app.number_phones.add(phone)
        return f"{kind} {phone}"
    if kind == "insert_agent":
        aid = max(agents, default=0) + 1
        if aid in app.agent_ids:
            aid = max(app.agent_ids) + 1
        ex(
            "INSERT INTO voice_agent.agents_voiceagent (id, name, created_by) VALUES (%s, %s, %s)",
            (aid, f"Agent {aid}", data.draw(user_ref)),
        )
        return f"{kind} {aid}"
    if kind == "app_agent_takes_next_id":
        # The application inserts an agent with the id the legacy database uses next, which then does.
        aid = max([*agents, *app.agent_ids]) + 1 if agents or app.agent_ids else 1
        db.execute(
            "INSERT INTO public.voice_agents (id, tenant_id, agent_name) VALUES (%s, %s, 'App agent')",
            (aid, APP_TENANT),
        )
        app.agent_ids.add(aid)
        ex(
            "INSERT INTO voice_agent.agents_voiceagent (id, name, created_by) VALUES (%s, %s, %s)",
            (aid, f"Agent {aid}", data.draw(user_ref)),
        )
        return f"{kind} {aid}"
    if kind == "update_agent":
        aid, column = pick(agents), pick(["name", "created_by", "language"])
        value = (
            data.draw(user_ref)
            if column == "created_by"
            else pick([None, "fr"] if column == "language" else ["Renamed"])
        )
        ex(f"UPDATE voice_agent.agents_voiceagent SET {column} = %s WHERE id = %s", (value, aid))
        return f"{kind} {aid} {column}={value!r}"
    if kind == "delete_agent":
        aid = pick(agents)
        ex("DELETE FROM voice_agent.agents_voiceagent WHERE id = %s", (aid,))
        return f"{kind} {aid}"
    if kind == "insert_call":
        cid = uuid.UUID(int=1000 + len(calls) + data.draw(st.integers(0, 10**6)))
        ex(
            "INSERT INTO voice_agent.call_logs_voiceagent"
            " (id, initiated_by, target, agent, status, started_at, from_number_id)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (
                cid,
                data.draw(user_ref),
                data.draw(reference(leads, 99)),
                data.draw(reference(agents, 99)),
                pick(STATUSES),
                STARTED,
                data.draw(reference(numbers, 99)),
            ),
        )
        return f"{kind} {cid}"
    if kind == "update_call":
        cid, column = pick(calls), pick(["status", "initiated_by", "target", "from_number_id"])
        value = {
            "status": st.sampled_from(STATUSES),
            "initiated_by": user_ref,
            "target": reference(leads, 99),
            "from_number_id": reference(numbers, 99),
        }[column]
        value = data.draw(value)
        ex(f"UPDATE voice_agent.call_logs_voiceagent SET {column} = %s WHERE id = %s", (value, cid))
        return f"{kind} {cid} {column}={value!r}"
    if kind == "delete_call":
        cid = pick(calls)
        ex("DELETE FROM voice_agent.call_logs_voiceagent WHERE id = %s", (cid,))
        return f"{kind} {cid}"
    if kind == "insert_grant":
        gid = max(grants, default=0) + 1
        ex(
            "INSERT INTO voice_agent.org_permissions_voiceagent (id, organization_id, resource_type, resource_id)"
            " VALUES (%s, %s, %s, %s)",
            (
                gid,
                pick([*ORGS, None, UNKNOWN_ORG]),
                pick(["agent", "number"]),
                pick([str(x) for x in [*numbers, *agents, 99]]),
            ),
        )
        return f"{kind} {gid}"
    if kind == "update_grant":
        gid, column = pick(grants), pick(["organization_id", "is_active"])
        value = pick([*ORGS, None]) if column == "organization_id" else pick([True, False, None])
        ex(f"UPDATE voice_agent.org_permissions_voiceagent SET {column} = %s WHERE id = %s", (value, gid))
        return f"{kind} {gid} {column}={value!r}"
    if kind == "delete_grant":
        gid = pick(grants)
        ex("DELETE FROM voice_agent.org_permissions_voiceagent WHERE id = %s", (gid,))
        return f"{kind} {gid}"
    if kind == "insert_voice":
        vid = uuid.UUID(int=data.draw(st.integers(1, 2**64)))
        ex(
            "INSERT INTO voice_agent.voices_voiceagent (id, description) VALUES (%s, 'new voice')"
            " ON CONFLICT DO NOTHING",
            (vid,),
        )
        return f"{kind} {vid}"
    if kind == "update_voice":
        vid = pick(voices)
        ex(
            "UPDATE voice_agent.voices_voiceagent SET description = 'changed', provider_voice_id = NULL WHERE id = %s",
            (vid,),
        )
        return f"{kind} {vid}"
    assert kind == "delete_voice"
    vid = pick(voices)
    ex("DELETE FROM voice_agent.voices_voiceagent WHERE id = %s", (vid,))
    return f"{kind} {vid}"


# About 8 s per example on 2 cores (up to five runs, each followed by the model and every check; 99 s
# for 12 at c9b7bf6).
@pytest.mark.slow
@settings(
    max_examples=examples(8),
    deadline=None,
    derandomize=True,
    database=None,
    phases=PHASES,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
@given(legacy=small_legacy_databases(), data=st.data())
def test_every_run_mirrors_a_live_legacy_database(shared_db, legacy, data):  # ruff: ignore[redefined-while-unused]
    db = shared_db
    app = setup_world(db, legacy, data.draw(app_leads_for(legacy), label="application leads"))
    model = ModelState()
    before = app.snapshot(db)
    history = ["initial database"]
    run(db, "0")
    assert_run_is_right(db, app, model, before, "after the first run")
    for round_no in range(1, data.draw(st.integers(2, 4), label="rounds") + 1):
        for _ in range(data.draw(st.integers(1, 5), label="writes")):
            history.append(apply_random_write(db, app, data))
        before = app.snapshot(db)
        run(db, str(round_no))
        assert_run_is_right(db, app, model, before, f"after run {round_no} ({'; '.join(history)})")


# ---------------------------------------------------------------------------------------------------
# Scenarios, one per situation of the issue, on the demo database (devtools/demo_seed.sql). Each run is
# also compared with the model and followed by every check of the DAG.
# ---------------------------------------------------------------------------------------------------

ORG_5ABB = uuid.UUID("5abb0a93-f59f-48fc-9c5a-2b549b4f8367")
ORG_A60F = uuid.UUID("a60fac7a-eb17-4964-b4a2-2311db582fc4")
DEMO_APP_LEADS = [
    (uuid.UUID("7d0c2a4e-0000-4000-8000-000000000001"), None, "+15550100001"),
    (uuid.UUID("7d0c2a4e-0000-4000-8000-000000000002"), None, None),
]


@dataclass
class World:
    """The demo database, the application's rows and the model, run after run."""

    db: LegacyDatabase
    app: Application
    model: ModelState = field(default_factory=ModelState)
    runs: int = 0

    def run(self, **params: str) -> None:
        # The first run adds the migration's columns to the application's leads table: snapshot after it.
        before = self.app.snapshot(self.db) if self.runs else None
        run(self.db, f"scenario_{self.runs}", **params)
        self.runs += 1
        if before is not None:
            assert self.app.snapshot(self.db) == before, "the application's rows changed"
        assert_target_matches_model(self.db, self.app, self.model, f"after scenario run {self.runs}")
        assert_checks_pass(self.db, f"after scenario run {self.runs}")

    def lead(self, legacy_id: int) -> tuple[str, bool, Any]:
        return lineage(self.db, "leads_voiceagent")[str(legacy_id)]

    def reject(self, table: str, source_id: Any) -> str | None:
        found = self.db.rows(
            "SELECT reason FROM public.migration_rejects WHERE source_table = %s AND source_id = %s",
            (table, str(source_id)),
        )
        return found[0][0] if found else None


@pytest.fixture
def world(demo_db) -> World:
    return World(demo_db, Application(leads=list(DEMO_APP_LEADS)))


def test_a_lead_phone_change_updates_the_same_target_lead(world):
    world.run()
    target, _, _ = world.lead(2)
    world.db.execute("UPDATE voice_agent.leads_voiceagent SET lead_number = '+15559990002' WHERE id = 2")
    world.run()
    assert world.lead(2)[0] == target
    assert world.db.rows("SELECT tenant_id, phone FROM public.leads WHERE id = %s", (target,)) == [
        (ORG_5ABB, "+15559990002")
    ]
    assert world.db.value("SELECT count(*) FROM public.leads WHERE phone = '+15550100002'") == 0


def test_a_user_moved_to_another_organization_moves_its_leads_agents_and_calls(world):
    world.run()
    targets = {i: world.lead(i)[0] for i in (2, 16)}  # user 3's leads
    world.db.execute("UPDATE voice_agent.users_voiceagent SET organization_id = %s WHERE id = 3", (ORG_A60F,))
    world.run()
    assert {i: world.lead(i)[0] for i in (2, 16)} == targets, "the leads were not updated in place"
    assert world.db.rows(
        "SELECT DISTINCT tenant_id FROM public.leads WHERE id = ANY(%s)", (list(targets.values()),)
    ) == [(ORG_A60F,)]
    left_behind = (
        "SELECT count(*) FROM public.leads WHERE tenant_id = %s AND metadata ->> 'added_by_user_id' = 'usr_0003'"
    )
    assert world.db.value(left_behind, (ORG_5ABB,)) == 0
    assert world.db.value("SELECT tenant_id FROM public.voice_agents WHERE id = 2") == ORG_A60F
    tenants = world.db.rows("SELECT DISTINCT tenant_id FROM public.voice_calls WHERE initiated_by = 'usr_0003'")
    assert tenants == [(ORG_A60F,)]


@pytest.mark.parametrize(
    ("table", "target_table", "legacy_id"),
    [
        ("call_logs_voiceagent", "voice_calls", None),  # a landed call, picked below
        ("leads_voiceagent", "leads", 2),
        ("agents_voiceagent", "voice_agents", 2),
        ("numbers_voiceagent", "phone_numbers", 2),
        ("voices_voiceagent", "voices", "md5('voice7')::uuid"),
        ("org_permissions_voiceagent", "resource_permissions", 1),
    ],
    ids=["call", "lead", "agent", "number", "voice", "grant"],
)
def test_deleting_a_legacy_row_removes_it_from_the_target_and_the_lineage(world, table, target_table, legacy_id):
    world.run()
    if legacy_id is None:
        legacy_id = world.db.value("SELECT min(id::text) FROM public.migration_calls")
        target = legacy_id
    else:
        if isinstance(legacy_id, str):
            legacy_id = world.db.value(f"SELECT {legacy_id}::text")
        target = lineage(world.db, table)[str(legacy_id)][0]
    world.db.execute(f"DELETE FROM voice_agent.{table} WHERE id::text = %s", (str(legacy_id),))
    world.run()
    assert world.db.rows(f"SELECT id FROM public.{target_table} WHERE id::text = %s", (target,)) == []
    assert str(legacy_id) not in lineage(world.db, table)
    assert world.db.rows("SELECT id FROM public.migration_calls WHERE id::text = %s", (str(legacy_id),)) == []
    assert world.reject(table, legacy_id) is None


def test_a_deleted_number_keeps_the_calls_from_number_and_a_deleted_lead_their_to_number(world):
    world.run()
    from_number_1 = (
        "SELECT vc.id, vc.from_number FROM public.voice_calls AS vc JOIN voice_agent.call_logs_voiceagent AS cl"
    )
    by_number = world.db.rows(from_number_1 + " ON cl.id = vc.id WHERE cl.from_number_id = 1")
    to_lead_2 = "SELECT vc.id, vc.to_number FROM public.voice_calls AS vc JOIN voice_agent.call_logs_voiceagent AS cl"
    by_lead = world.db.rows(to_lead_2 + " ON cl.id = vc.id WHERE cl.target = 2")
    assert by_number and by_lead and {n for _, n in by_number} == {"+14155550101"}
    world.db.execute("DELETE FROM voice_agent.numbers_voiceagent WHERE id = 1")
    world.db.execute("DELETE FROM voice_agent.leads_voiceagent WHERE id = 2")
    world.run()
    ids = [i for i, _ in by_number]
    kept = world.db.rows("SELECT id, from_number FROM public.voice_calls WHERE id = ANY(%s)", (ids,))
    assert sorted(kept) == sorted(by_number)
    ids = [i for i, _ in by_lead]
    kept = world.db.rows("SELECT id, to_number, lead_id FROM public.voice_calls WHERE id = ANY(%s)", (ids,))
    assert sorted((i, n) for i, n, _ in kept) == sorted(by_lead)
    assert {lead_id for *_, lead_id in kept} == {None}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("DELETE FROM voice_agent.users_voiceagent WHERE id = 3", "owner_not_found"),
        ("UPDATE voice_agent.users_voiceagent SET organization_id = NULL WHERE id = 3", "owner_without_organization"),
    ],
    ids=["user_deleted", "user_without_organization"],
)
def test_a_user_deleted_or_without_organization_quarantines_its_rows_with_the_owner_reason(world, change, reason):
    world.run()
    calls = [r[0] for r in world.db.rows("SELECT id FROM voice_agent.call_logs_voiceagent WHERE initiated_by = 3")]
    assert calls
    world.db.execute(change)
    world.run()  # every check passes
    assert world.reject("agents_voiceagent", 2) == reason
    assert [world.reject("leads_voiceagent", i) for i in (2, 16)] == [reason, reason]
    assert {world.reject("call_logs_voiceagent", c) for c in calls} == {reason}
    assert world.db.value("SELECT count(*) FROM public.voice_calls WHERE id = ANY(%s)", (calls,)) == 0
    assert world.db.value("SELECT count(*) FROM public.voice_agents WHERE id = 2") == 0


def test_an_application_agent_with_the_next_legacy_agent_id_is_never_overwritten(world):
    world.run()
    next_id = world.db.value("SELECT last_value + 1 FROM voice_agent.agents_voiceagent_id_seq")
    world.db.execute(
        "INSERT INTO public.voice_agents (id, tenant_id, agent_name) VALUES (%s, %s, 'Application agent')",
        (next_id, ORG_5ABB),
    )
    world.app.agent_ids.add(next_id)
    new_id = world.db.value(
        "INSERT INTO voice_agent.agents_voiceagent (name, created_by) VALUES ('Legacy agent', 1) RETURNING id"
    )
    assert new_id == next_id
    world.run()  # the application's agent is unchanged (snapshot), every check passes
    assert world.reject("agents_voiceagent", next_id) == "target_id_held_by_application"
    assert world.db.value("SELECT agent_name FROM public.voice_agents WHERE id = %s", (next_id,)) == "Application agent"
    world.run()  # and stays so
    assert world.reject("agents_voiceagent", next_id) == "target_id_held_by_application"


def test_a_legacy_lead_linked_to_an_application_lead_keeps_its_name_and_notes_in_the_lineage(world):
    world.run()
    written, _, _ = world.lead(2)
    app_lead = world.db.value(
        "INSERT INTO public.leads (tenant_id, name, phone)"
        " VALUES (%s, 'Application lead', '+15550100002') RETURNING id",
        (ORG_5ABB,),
    )
    world.app.leads.append((app_lead, ORG_5ABB, "+15550100002"))
    legacy = world.db.rows("SELECT name, notes FROM voice_agent.leads_voiceagent WHERE id = 2")[0]
    world.run()  # the application's lead is unchanged (snapshot)
    target, linked, detail = world.lead(2)
    assert (target, linked) == (str(app_lead), True)
    assert detail == {"name": legacy[0], "notes": legacy[1], "added_by_user_id": "usr_0003"}
    assert world.db.rows("SELECT id FROM public.leads WHERE id = %s", (written,)) == [], "the lead it wrote is left"
    lead_ids = world.db.rows(
        "SELECT DISTINCT vc.lead_id FROM public.voice_calls AS vc"
        " JOIN voice_agent.call_logs_voiceagent AS cl ON cl.id = vc.id WHERE cl.target = 2"
    )
    assert lead_ids == [(app_lead,)]


def test_merged_leads_split_when_their_phones_diverge(world):
    world.run()
    merged, _, _ = world.lead(1)
    assert world.lead(61)[0] == merged  # leads 1 and 61 share a phone in one tenant
    world.db.execute("UPDATE voice_agent.leads_voiceagent SET lead_number = '+15550109961' WHERE id = 61")
    world.run()
    assert world.lead(1)[0] == merged, "the lowest legacy lead keeps the lead"
    split = world.lead(61)[0]
    assert split != merged
    assert world.db.value("SELECT phone FROM public.leads WHERE id = %s", (split,)) == "+15550109961"
    assert world.db.value("SELECT metadata ? 'merged_leads' FROM public.leads WHERE id = %s", (merged,)) is False


@pytest.mark.parametrize(
    ("table", "target_table", "params"),
    [("call_logs_voiceagent", "voice_calls", {}), ("leads_voiceagent", "leads", {"max_delete_rows": 10})],
    ids=["call_log_truncated", "leads_truncated_with_a_lower_row_limit"],
)
def test_a_deletion_beyond_the_valve_fails_the_step_and_removes_nothing(demo_db, table, target_table, params):
    run(demo_db, "valve_0")
    before = demo_db.snapshot()
    demo_db.execute(f"TRUNCATE voice_agent.{table}")
    with pytest.raises(psycopg.Error) as failure:
        run(demo_db, "valve_1", **params)
    assert failure.value.sqlstate == "VA000"
    message = str(failure.value)
    assert f"migrated from {table} would be removed from {target_table}" in message, message
    assert re.search(r"deletion valve: \d+ of the \d+ rows", message), message
    after = demo_db.snapshot()
    assert after[target_table] == before[target_table], "rows were removed"
    assert after["migration_lineage"] == before["migration_lineage"]
    assert after["migration_calls"] == before["migration_calls"]


# ---------------------------------------------------------------------------------------------------
# Regressions: what the model test found (reported, not fixed here: they fail until the SQL is fixed).
# ---------------------------------------------------------------------------------------------------


def test_regression_a_lead_that_merged_under_a_lower_legacy_lead_splits_off_again(world):
    world.run()
    # A lead restored with an id below lead 10's joins lead 10's group (same tenant and phone): the group
    # keeps lead 10's lead, now represented by the restored lead 0.
    world.db.execute(
        "INSERT INTO voice_agent.leads_voiceagent (id, name, lead_number, added_by)"
        " VALUES (0, 'Restored', '+15550100010', 11)"
    )
    world.run()
    assert world.lead(0)[0] == world.lead(10)[0]
    # Lead 10 moves to a phone of its own: lead 0 keeps the lead, lead 10 must get a lead of its own.
    world.db.execute("UPDATE voice_agent.leads_voiceagent SET lead_number = '+15550109910' WHERE id = 10")
    world.run()
    assert world.lead(0)[0] != world.lead(10)[0]


def test_regression_two_numbers_that_swap_phones_both_land(world):
    world.run()
    world.db.execute(
        "UPDATE voice_agent.numbers_voiceagent"
        " SET phone_number = CASE id WHEN 1 THEN '+14155550102' ELSE '+14155550101' END WHERE id IN (1, 2)"
    )
    world.run()
    assert world.reject("numbers_voiceagent", 1) is None
    assert world.reject("numbers_voiceagent", 2) is None


def test_regression_a_number_replaced_by_a_new_legacy_row_with_its_phone_lands(world):
    world.run()
    world.db.execute("DELETE FROM voice_agent.numbers_voiceagent WHERE id = 5")
    world.db.execute(
        "INSERT INTO voice_agent.numbers_voiceagent (id, phone_number, provider, status)"
        " VALUES (6, '+14155550105', 'twilio', 'active')"
    )
    world.run()
    assert world.reject("numbers_voiceagent", 6) is None


def test_a_legacy_call_whose_id_an_application_call_holds_is_quarantined_and_the_call_untouched(demo_db):
    run(demo_db, "held_1")
    landed = uuid.UUID(demo_db.value("SELECT min(id::text) FROM public.migration_calls"))
    held = uuid.UUID(bytes=bytes(14) + landed.bytes[14:])  # in a bucket the migration already holds calls in
    demo_db.execute(
        "INSERT INTO public.voice_calls (id, tenant_id, status) VALUES (%s, %s, 'application call')", (held, ORG_5ABB)
    )
    demo_db.execute(
        "INSERT INTO voice_agent.call_logs_voiceagent (id, initiated_by, status, started_at)"
        " VALUES (%s, 1, 'completed', now())",
        (held,),
    )
    run(demo_db, "held_2")
    assert (
        demo_db.value(
            "SELECT reason FROM public.migration_rejects"
            " WHERE source_table = 'call_logs_voiceagent' AND source_id = %s",
            (str(held),),
        )
        == "target_id_held_by_application"
    )
    assert demo_db.rows("SELECT tenant_id, status FROM public.voice_calls WHERE id = %s", (held,)) == [
        (ORG_5ABB, "application call")
    ]
    assert_checks_pass(demo_db, "after the held call's run")
