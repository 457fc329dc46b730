"""Property-based tests (Hypothesis): random small legacy databases -- NULLs, unicode, over-long values,
duplicate phones, dangling references, empty tables, odd time zones -- for each of which the whole
migration completes, every check passes (conservation above all), every reject keeps its reason and
its whole legacy row, and a second run changes nothing.

Each example is a whole legacy database as data, inserted into one module-wide database whose legacy
tables are emptied and whose target schema is dropped between examples (much faster than a database
per example). Derandomized and without an example database, so CI runs the same examples every time.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.json import Jsonb

from devtools.legacy_db import create_application_tables, create_legacy_schema
from devtools.postgres import create_database, drop_database
from tests.helpers import CHECKS, LegacyDatabase

# A few organizations, so that users, leads and calls of different rows collide in one tenant.
ORGS = [
    uuid.UUID("5abb0a93-f59f-48fc-9c5a-2b549b4f8367"),
    uuid.UUID("a60fac7a-eb17-4964-b4a2-2311db582fc4"),
    uuid.UUID("0c9b3d1e-7f42-4a8e-9d15-6e2f8a4b7c30"),
]
UNKNOWN_ORG = uuid.UUID("99999999-9999-4999-8999-999999999999")

INT4 = (-(2**31), 2**31 - 1)
INT8 = (-(2**63), 2**63 - 1)

# ---------------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------------

# Any unicode scalar value but NUL (PostgreSQL text cannot hold it): controls, RTL, combining marks...
CHARS = st.characters(codec="utf-8", exclude_characters="\x00")


def weighted(*options: tuple[int, st.SearchStrategy]) -> st.SearchStrategy:
    """One of `options` (weight, strategy), picked in proportion to its weight; shrinks to the first."""
    return st.sampled_from([strategy for weight, strategy in options for _ in range(weight)]).flatmap(lambda s: s)


TRICKY_TEXT = [
    "",
    " ",
    "   ",
    "\t",
    " padded ",
    "Zoë Ærøskøbing",
    "😀📞👩‍👩‍👧‍👦",
    "مرحبا بالعالم",
    "שלום עולם",
    "\u202eRTL override\u202c",
    "e\u0301\u0302\u0323 combining",
    "\ufeffBOM",
    "zero\u200bwidth",
    "line\nbreak\r\n",
    "O'Brien\"; DROP TABLE x; --",
    "%s %(name)s {{ params }} {% raw %}",
    "\\N",
    "NULL",
    "İSTANBUL ǅ ß",
]


def exact_length(n: int) -> st.SearchStrategy[str]:
    """A string of exactly n characters (n > 0), possibly multi-byte."""
    return st.text(CHARS, min_size=1, max_size=3).map(lambda base: (base * n)[:n])


def texts(limit: int | None = None, *, nullable: bool = True, max_len: int | None = None) -> st.SearchStrategy:
    """Text for a column: random and tricky unicode, NULL, and, around a target varchar `limit`, values
    at the limit, just over it, well over it and over it only by surrounding spaces (which btrim
    removes). `max_len` is the legacy column's own bound (varchar): no value exceeds it."""
    options = [(4, st.text(CHARS, max_size=12)), (3, st.sampled_from(TRICKY_TEXT))]
    if nullable:
        options.append((2, st.none()))
    if limit is not None:
        sized = [
            (n, strategy)
            for n, strategy in [
                (limit, exact_length(limit)),
                (limit + 1, exact_length(limit + 1)),
                (limit + 7, exact_length(limit + 7)),
                (limit + 3, exact_length(limit).map(lambda s: f" {s}  ")),
            ]
            if max_len is None or n <= max_len
        ]
        options.append((1, st.one_of(*(strategy for _, strategy in sized))))
    return weighted(*options)


ZONES = st.one_of(
    st.sampled_from(
        [
            dt.timezone.utc,
            dt.timezone(dt.timedelta(hours=5, minutes=30)),
            dt.timezone(dt.timedelta(hours=5, minutes=45)),
            dt.timezone(dt.timedelta(hours=-8)),
            dt.timezone(dt.timedelta(hours=14)),
            dt.timezone(dt.timedelta(hours=-12)),
        ]
    ),
    st.timezones(),
)


def timestamps(*, nullable: bool = True) -> st.SearchStrategy:
    """timestamptz values given with any UTC offset (incl. DST gaps and folds of real zones), over the
    whole range Python can spell, and PostgreSQL's infinities."""
    options = [
        (3, st.datetimes(min_value=dt.datetime(2024, 3, 9), max_value=dt.datetime(2024, 11, 4), timezones=ZONES)),
        (1, st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30), timezones=ZONES)),
        (1, st.sampled_from(["infinity", "-infinity"])),
    ]
    if nullable:
        options.append((1, st.none()))
    return weighted(*options)


def integers(bounds: tuple[int, int]) -> st.SearchStrategy[int]:
    """Ids as a legacy table holds them: mostly small, sometimes at or past the edges of int4, or
    anywhere in the column's type (bigserial columns accept negative and huge explicit ids)."""
    low, high = bounds
    edges = [v for v in (0, -1, 2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 2**63 - 1, -(2**63)) if low <= v <= high]
    return weighted((6, st.integers(1, 40)), (1, st.sampled_from(edges)), (1, st.integers(low, high)))


def reference(existing: list, dangling: st.SearchStrategy) -> st.SearchStrategy:
    """A legacy reference (there are no foreign keys): mostly an existing row, else NULL or a row that
    does not exist."""
    options = [(1, st.none()), (1, dangling)]
    if existing:
        options.insert(0, (4, st.sampled_from(existing)))
    return weighted(*options)


JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(CHARS, max_size=8),
    st.sampled_from(TRICKY_TEXT),
)
JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(CHARS, max_size=6), inner, max_size=3),
    max_leaves=6,
)
# SQL NULL, or any JSON document (including JSON null).
JSONB = st.one_of(st.none(), JSON.map(Jsonb))

NUMERIC = st.one_of(
    st.none(),
    st.sampled_from([Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity"), Decimal("0.000")]),
    st.decimals(min_value=-(10**12), max_value=10**12, allow_nan=False, allow_infinity=False),
)

UUIDS = st.uuids()

# Phone numbers from a small pool, so that numbers and leads collide (within and across tenants):
# the same number with and without surrounding spaces (btrim removes spaces only, not tabs), blank
# ones, unicode digits, exactly 50 characters (bare or between spaces) and over 50.
PHONES = [
    "+14155550101",
    "+14155550101",
    " +14155550101",
    "+14155550101  ",
    "+442071838750",
    "+442071838750",
    "+1 (415) 555-0102",
    "٠٥٥٥١٢٣٤٥٦",
    "📞 +33 1 23 45 67 89",
    "",
    "   ",
    "\t+14155550101",
    "+1" + "5" * 48,
    " +1" + "5" * 48 + " ",
    "+1" + "5" * 49,
]
PHONE = weighted((6, st.sampled_from(PHONES)), (1, st.none()), (1, texts(50)))
# Leads share phones more often still, so that a tenant's leads merge.
LEAD_PHONE = weighted((1, st.sampled_from(["+14155550101", " +14155550101 ", "+442071838750"])), (1, PHONE))

STATUSES = weighted(
    (
        4,
        st.sampled_from(["completed", "Completed ", " FAILED", "in-progress", "ÉCHOUÉ", "Active", "\tactive"]),
    ),
    (1, st.sampled_from([" " + "x" * 50 + " ", "x" * 51, "X" * 50])),
    (2, texts(50)),
)

RESOURCE_TYPES = weighted(
    (4, st.sampled_from(["number", " Number ", "NUMBER", "agent", "Agent", "voice", "lead", "numbér"])),
    (1, texts(20)),
)

# ---------------------------------------------------------------------------------------------------
# A legacy database
# ---------------------------------------------------------------------------------------------------

COLUMNS = {
    table: columns.split()
    for table, columns in {
        "users_voiceagent": "id user_id email organization_id created_at",
        "voices_voiceagent": "id description gender accent provider voice_sample_url provider_voice_id provider_config",
        "numbers_voiceagent": "id phone_number provider type created_at status default_agent",
        "agents_voiceagent": "id name gender agent_instructions created_by created_at default_number language voice_id"
        " system_instructions outbound_starter_prompt inbound_starter_prompt",
        "leads_voiceagent": "id name lead_number added_by notes",
        "batch_logs_voiceagent": "id created_at",
        "call_logs_voiceagent": "id initiated_by target agent status call_recording_url transcriptions started_at"
        " ended_at call_type cost voice job_id room_name from_number_id added_context vapi_call_id vapi_data"
        " call_duration batch_id cost_breakdown",
        "org_permissions_voiceagent": "id organization_id resource_type resource_id access_level granted_at"
        " granted_by expires_at is_active",
    }.items()
}
LEGACY_TABLES = list(COLUMNS)


def unique_ids(values: st.SearchStrategy, max_size: int) -> st.SearchStrategy[list]:
    """Primary keys of a table: sometimes none (an empty table), usually a few."""
    return weighted(
        (5, st.lists(values, min_size=1, max_size=max_size, unique=True)),
        (1, st.just([])),
    )


@st.composite
def legacy_databases(draw) -> dict[str, list[dict[str, Any]]]:
    """{legacy table: rows}: what a legacy voice_agent schema could hold (its PKs, types and NOT NULLs
    hold; nothing else does)."""
    db: dict[str, list[dict[str, Any]]] = {}
    orgs = weighted((4, st.sampled_from(ORGS)), (1, st.none()))

    db["users_voiceagent"] = [
        {
            "id": user_id,
            "user_id": draw(texts(255, nullable=False, max_len=255)),
            "email": draw(texts()),
            "organization_id": draw(orgs),
            "created_at": draw(timestamps(nullable=False)),
        }
        for user_id in draw(unique_ids(integers(INT4), 6))
    ]
    users = [u["id"] for u in db["users_voiceagent"]]

    db["voices_voiceagent"] = [
        {
            "id": voice_id,
            "description": draw(texts(255)),
            "gender": draw(weighted((2, st.sampled_from(["female", "male", "Female "])), (1, texts(20)))),
            "accent": draw(texts()),
            "provider": draw(weighted((2, st.sampled_from(["elevenlabs", "azure"])), (1, texts(50)))),
            "voice_sample_url": draw(texts()),
            "provider_voice_id": draw(texts(255)),
            "provider_config": draw(JSONB),
        }
        for voice_id in draw(unique_ids(UUIDS, 4))
    ]
    voices = [v["id"] for v in db["voices_voiceagent"]]

    number_ids = draw(unique_ids(integers(INT8), 6))
    agent_ids = draw(unique_ids(integers(INT8), 6))
    db["numbers_voiceagent"] = [
        {
            "id": number_id,
            "phone_number": draw(PHONE),
            "provider": draw(weighted((2, st.just("twilio")), (1, texts(50)))),
            "type": draw(weighted((2, st.just("local")), (1, texts(50)))),
            "created_at": draw(timestamps()),
            "status": draw(STATUSES),
            "default_agent": draw(reference(agent_ids, integers(INT8))),
        }
        for number_id in number_ids
    ]

    db["agents_voiceagent"] = [
        {
            "id": agent_id,
            "name": draw(texts(255)),
            "gender": draw(texts()),
            "agent_instructions": draw(texts()),
            "created_by": draw(reference(users, integers(INT4))),
            "created_at": draw(timestamps()),
            "default_number": draw(reference(number_ids, integers(INT8))),
            "language": draw(
                weighted((3, st.sampled_from(["en", "en-US", "fr-CA", "en-US-x-callcenter"])), (1, texts(10)))
            ),
            "voice_id": draw(reference(voices, UUIDS)),
            "system_instructions": draw(texts()),
            "outbound_starter_prompt": draw(texts()),
            "inbound_starter_prompt": draw(texts()),
        }
        for agent_id in agent_ids
    ]

    db["leads_voiceagent"] = [
        {
            "id": lead_id,
            "name": draw(texts(255)),
            "lead_number": draw(LEAD_PHONE),
            "added_by": draw(reference(users, integers(INT4))),
            "notes": draw(texts()),
        }
        for lead_id in draw(unique_ids(integers(INT8), 8))
    ]
    leads = [lead["id"] for lead in db["leads_voiceagent"]]

    db["batch_logs_voiceagent"] = [
        {"id": batch_id, "created_at": draw(timestamps())} for batch_id in draw(unique_ids(UUIDS, 2))
    ]
    batches = [b["id"] for b in db["batch_logs_voiceagent"]]

    db["call_logs_voiceagent"] = [
        {
            "id": call_id,
            "initiated_by": draw(reference(users, integers(INT4))),
            "target": draw(reference(leads, integers(INT8))),
            "agent": draw(reference(agent_ids, integers(INT8))),
            "status": draw(STATUSES),
            "call_recording_url": draw(texts()),
            "transcriptions": draw(JSONB),
            "started_at": draw(timestamps()),
            "ended_at": draw(timestamps()),
            "call_type": draw(texts()),
            "cost": draw(NUMERIC),
            "voice": draw(reference(voices, UUIDS)),
            "job_id": draw(texts(max_len=255)),
            "room_name": draw(texts(max_len=255)),
            "from_number_id": draw(reference(number_ids, integers(INT8))),
            "added_context": draw(texts()),
            "vapi_call_id": draw(texts(255, max_len=255)),
            "vapi_data": draw(JSONB),
            "call_duration": draw(NUMERIC),
            "batch_id": draw(reference(batches, UUIDS)),
            "cost_breakdown": draw(JSONB),
        }
        for call_id in draw(unique_ids(UUIDS, 12))
    ]

    # Grants name numbers and agents by legacy id (as text: maybe padded, maybe of nothing).
    resource_ids = [(1, integers(INT8).map(str)), (1, texts(100))]
    if number_ids:
        resource_ids.insert(0, (3, st.sampled_from(number_ids).map(str)))
    if agent_ids:
        resource_ids += [(2, st.sampled_from(agent_ids).map(str)), (1, st.sampled_from(agent_ids).map(" {} ".format))]
    resource_ids = weighted(*resource_ids)
    db["org_permissions_voiceagent"] = [
        {
            "id": permission_id,
            "organization_id": draw(weighted((4, orgs), (1, st.just(UNKNOWN_ORG)))),
            "resource_type": draw(RESOURCE_TYPES),
            "resource_id": draw(resource_ids),
            "access_level": draw(weighted((2, st.sampled_from(["use", "admin", "READ "])), (1, texts(20)))),
            "granted_at": draw(timestamps()),
            "granted_by": draw(texts(100)),
            "expires_at": draw(timestamps()),
            "is_active": draw(st.one_of(st.none(), st.booleans())),
        }
        for permission_id in draw(unique_ids(integers(INT8), 5))
    ]
    return db


# What already exists in the target schema: nothing, the main application's tables as in the demo
# (leads without tenant_id), or an application leads table that has tenant_id, with leads of its own
# that share a tenant and phone with legacy leads (which then merge onto the application's lead).
@st.composite
def application_states(draw, legacy: dict[str, list[dict[str, Any]]]) -> tuple[str, list[tuple]]:
    kind = draw(weighted((2, st.just("none")), (1, st.just("demo")), (2, st.just("tenant_leads"))))
    if kind != "tenant_leads":
        return kind, []
    organization = {u["id"]: u["organization_id"] for u in legacy["users_voiceagent"]}
    shared = [
        (organization.get(lead["added_by"]) or ORGS[0], (lead["lead_number"] or "").strip(" ") or None)
        for lead in legacy["leads_voiceagent"]
    ]
    pairs = st.tuples(st.sampled_from(ORGS), st.sampled_from([p.strip(" ") or None for p in PHONES]))
    if shared:
        pairs = weighted((2, st.sampled_from(shared)), (1, pairs))
    leads = draw(st.lists(pairs, max_size=3, unique=True))  # the application's own leads never collide
    return kind, [(tenant, f"Main-app lead {i} Zoë", phone) for i, (tenant, phone) in enumerate(leads)]


@st.composite
def worlds(draw) -> tuple[dict[str, list[dict[str, Any]]], tuple[str, list[tuple]]]:
    """A legacy database and what the target schema holds before the migration."""
    legacy = draw(legacy_databases())
    return legacy, draw(application_states(legacy))


SESSION_TIME_ZONES = ["UTC", "Asia/Kolkata", "America/Los_Angeles", "Pacific/Kiritimati", "Pacific/Pago_Pago"]

# ---------------------------------------------------------------------------------------------------
# The database every example reuses
# ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared_db(pg_admin_uri) -> LegacyDatabase:
    """One database for the whole module; `load` resets it before each example."""
    uri = create_database(pg_admin_uri, prefix="voice_agent_props")
    with psycopg.connect(uri, autocommit=True) as conn:
        create_legacy_schema(conn)
    yield LegacyDatabase(uri)
    drop_database(pg_admin_uri, uri)


def load(db: LegacyDatabase, legacy: dict[str, list[dict]], application: tuple[str, list[tuple]], zone: str) -> None:
    """Empty the legacy tables, drop the target schema, then insert `legacy` and the application's tables."""
    dbname = conninfo_to_dict(db.uri)["dbname"]
    with psycopg.connect(db.uri) as conn:
        conn.execute("TRUNCATE " + ", ".join(f"voice_agent.{t}" for t in LEGACY_TABLES) + " RESTART IDENTITY")
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
        # The session time zone of every later connection (the migration must not depend on it).
        conn.execute(f"ALTER DATABASE \"{dbname}\" SET timezone = '{zone}'")
        with conn.cursor() as cur:
            for table, rows in legacy.items():
                if not rows:
                    continue
                columns = COLUMNS[table]
                cur.executemany(
                    f"INSERT INTO voice_agent.{table} ({', '.join(columns)})"
                    f" VALUES ({', '.join(['%s'] * len(columns))})",
                    [[row[c] for c in columns] for row in rows],
                )
        kind, app_leads = application
        if kind == "demo":
            create_application_tables(conn)
        elif kind == "tenant_leads":
            conn.execute(
                "CREATE TABLE public.leads (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), tenant_id uuid,"
                " name text NOT NULL, phone text, created_at timestamptz NOT NULL DEFAULT now())"
            )
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO public.leads (tenant_id, name, phone) VALUES (%s, %s, %s)", app_leads)


# Every reject whose reason is blank or whose source_row is not its whole legacy row.
BAD_REJECTS = """
SELECT r.source_table, r.source_id, r.reason
FROM public.migration_rejects AS r
WHERE
    r.reason IS NULL
    OR btrim(r.reason) = ''
    OR r.source_row IS DISTINCT FROM CASE r.source_table
        WHEN 'voices_voiceagent' THEN
            (SELECT to_jsonb(t) FROM voice_agent.voices_voiceagent AS t WHERE t.id::text = r.source_id)
        WHEN 'numbers_voiceagent' THEN
            (SELECT to_jsonb(t) FROM voice_agent.numbers_voiceagent AS t WHERE t.id::text = r.source_id)
        WHEN 'agents_voiceagent' THEN
            (SELECT to_jsonb(t) FROM voice_agent.agents_voiceagent AS t WHERE t.id::text = r.source_id)
        WHEN 'leads_voiceagent' THEN
            (SELECT to_jsonb(t) FROM voice_agent.leads_voiceagent AS t WHERE t.id::text = r.source_id)
        WHEN 'call_logs_voiceagent' THEN
            (SELECT to_jsonb(t) FROM voice_agent.call_logs_voiceagent AS t WHERE t.id::text = r.source_id)
        WHEN 'org_permissions_voiceagent' THEN
            (SELECT to_jsonb(t) FROM voice_agent.org_permissions_voiceagent AS t WHERE t.id::text = r.source_id)
    END
ORDER BY 1, 2
"""


def assert_checks_pass(db: LegacyDatabase, when: str) -> None:
    for name in CHECKS:
        passed, detail = db.check(name)
        assert passed is True, f"{name} failed {when}: {detail}"


# Shrinking a failure re-runs the migration hundreds of times (until Hypothesis gives up after five
# minutes): off by default, so that a failing CI run stays short and reports the failing database as
# generated. VOICE_AGENT_HYPOTHESIS_SHRINK=1 shrinks it to a minimal one (then add it as a regression test).
PHASES = [Phase.explicit, Phase.generate]
if os.environ.get("VOICE_AGENT_HYPOTHESIS_SHRINK"):
    PHASES += [Phase.shrink, Phase.explain]


def examples(default: int) -> int:
    """How many databases a property test generates: `default` in `make test` (sized to keep the suite
    within its 30 minutes), or VOICE_AGENT_HYPOTHESIS_EXAMPLES=<n> for a deeper run."""
    return int(os.environ.get("VOICE_AGENT_HYPOTHESIS_EXAMPLES", default))


# About 3 s per example on 2 cores (load, two runs, the checks twice; 124 s for 40 at c9b7bf6): 25
# examples, the same ones on every run (derandomized, no example database).
@pytest.mark.slow
@settings(
    max_examples=examples(25),
    deadline=None,
    derandomize=True,
    database=None,
    phases=PHASES,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    world=worlds(),
    zone=st.sampled_from(SESSION_TIME_ZONES),
    first_partitions=st.sampled_from([1, 3]),
    second_partitions=st.sampled_from([1, 3]),
)
def test_any_legacy_database_migrates_conserved_checked_and_idempotent(
    shared_db, world, zone, first_partitions, second_partitions
):
    db = shared_db
    legacy, application = world
    load(db, legacy, application, zone)

    db.migrate(partitions=first_partitions)
    assert_checks_pass(db, "after the first run")
    assert db.rows(BAD_REJECTS) == []

    before = db.snapshot()
    db.migrate(partitions=second_partitions)
    assert db.snapshot() == before, "a second run changed the target"
    assert_checks_pass(db, "after the second run")


# ---------------------------------------------------------------------------------------------------
# Regression tests: the smallest failing inputs Hypothesis found for bugs in the migration SQL.
# Reported to the lead, not fixed here: they fail until the SQL is fixed.
# ---------------------------------------------------------------------------------------------------

ORG_A = str(ORGS[0])


@pytest.mark.parametrize("voices", [0, 1], ids=["every_table_empty", "one_voice_only"])
def test_regression_a_run_with_an_empty_legacy_table_balances(legacy_db, voices):
    # Hypothesis: any empty legacy table fails check_run_balanced. The run account records only
    # the tables that have rows, and the check wants all 6 in migration_run_tables ("5 legacy tables
    # balance per tenant" with one empty table); with every table empty, coalesce(bool_and(...), FALSE)
    # over no rows fails it as well ("0 legacy tables balance per tenant").
    if voices:
        legacy_db.execute(
            "INSERT INTO voice_agent.voices_voiceagent (id) VALUES ('11111111-1111-1111-1111-111111111111')"
        )
    legacy_db.migrate()
    passed, detail = legacy_db.check("check_run_balanced")
    assert passed is True, detail


def test_regression_a_lead_without_a_name_next_to_the_applications_leads_table(legacy_db):
    # Hypothesis: with the main application's leads table (name text NOT NULL, as in
    # devtools/application_tables.sql), a legacy lead whose name is NULL makes 06_migrate_leads fail
    # with a NotNullViolation instead of landing or being quarantined.
    with psycopg.connect(legacy_db.uri, autocommit=True) as conn:
        create_application_tables(conn)
    legacy_db.execute(
        "INSERT INTO voice_agent.users_voiceagent (id, user_id, organization_id) VALUES (1, 'usr_1', %s)", (ORG_A,)
    )
    legacy_db.execute(
        "INSERT INTO voice_agent.leads_voiceagent (id, name, lead_number, added_by) VALUES (1, NULL, NULL, 1)"
    )
    legacy_db.migrate()
    passed, detail = legacy_db.check("check_conservation")
    assert passed is True, detail


def test_regression_an_agent_id_below_the_int4_range_is_quarantined(legacy_db):
    # Hypothesis: agents_voiceagent.id is a bigint; 05_migrate_voice_agents quarantines ids above
    # 2147483647 (out_of_range:id) but casts one below -2147483648 to integer and fails the step with
    # NumericValueOutOfRange ("integer out of range"). -2147483648 itself migrates.
    legacy_db.execute(
        "INSERT INTO voice_agent.users_voiceagent (id, user_id, organization_id) VALUES (1, 'usr_1', %s)", (ORG_A,)
    )
    legacy_db.execute("INSERT INTO voice_agent.agents_voiceagent (id, name, created_by) VALUES (-2147483649, 'a', 1)")
    legacy_db.migrate()
    passed, detail = legacy_db.check("check_conservation")
    assert passed is True, detail


def test_regression_a_call_whose_agent_is_below_the_int4_range_is_migrated(legacy_db):
    # Hypothesis: call_logs_voiceagent.agent is a bigint; 07_migrate_voice_calls quarantines agents
    # above 2147483647 (out_of_range:agent_id) but casts one below -2147483648 to integer and fails
    # the step with NumericValueOutOfRange ("integer out of range").
    legacy_db.execute(
        "INSERT INTO voice_agent.users_voiceagent (id, user_id, organization_id) VALUES (1, 'usr_1', %s)", (ORG_A,)
    )
    legacy_db.execute(
        "INSERT INTO voice_agent.call_logs_voiceagent (id, initiated_by, agent)"
        " VALUES ('c0000000-0000-4000-8000-000000000001', 1, -2147483649)"
    )
    legacy_db.migrate()
    passed, detail = legacy_db.check("check_conservation")
    assert passed is True, detail
