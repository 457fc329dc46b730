"""The catalog: every legacy table the migration moves, declared once.

Everything that iterates over the migrated tables reads this list: the preflight (columns it
requires), the reconciliation and the run's account (rows in scope, per tenant), the dry run, the
orphan check, the rollback, the least-privilege role's test and the tests. The SQL reads it as the
Jinja global `catalog` (see templating.py); adding a table is one entry here plus its mapping, its
step, its target DDL and its grant (docs/design.md walks through it).

Each entry says where a legacy table's rows land and how:
- `tenant`: how a row's tenant is resolved: "system" (the system tenant of the params: shared
  resources), "owner:<column>" (the organization of the legacy user that column references) or
  "organization:<column>" (the column holds the organization id itself).
- `target_id`: how the target row's id is derived from the legacy row, in words (the mapping file
  holds the SQL).
- `lineage`: "stored" (each landed row has its row in migration_lineage, which also says whether the
  migration wrote the target row or linked the legacy row onto the application's) or "same id" (the
  target row keeps the legacy id, so the legacy table is its own id map: no lineage row per call, and
  `owned_ids` names the table of the ids the migration wrote, to tell them from the application's).
- `window_column`: the timestamptz column that places a row in a run's window (only the calls are
  windowed; the small tables are brought up to date whole by every run).
- `application_rows`: the application keeps rows of its own in the target table (leads): the checks
  judge only the migrated rows there, and `rollback_only`, a condition on a target row (alias `t`),
  keeps a rollback from removing an application row a legacy row was linked to.
"""

from __future__ import annotations

from dataclasses import dataclass

USERS = "users_voiceagent"
# The legacy table no row is migrated from but every owner is resolved through (tenants come from its
# organizations), with the columns the mapping reads.
USER_COLUMNS = ("id", "user_id", "organization_id", "created_at")


@dataclass(frozen=True)
class MigratedTable:
    source_table: str
    target_table: str
    step: str
    columns: tuple[str, ...]
    tenant: str
    target_id: str
    lineage: str = "stored"
    window_column: str | None = None
    application_rows: bool = False
    rollback_only: str | None = None
    source_key: str = "id"
    owned_ids: str | None = None

    @property
    def owner_column(self) -> str | None:
        """The legacy column referencing the owning user, when the tenant is the owner's organization."""
        kind, _, column = self.tenant.partition(":")
        return column if kind == "owner" else None

    @property
    def organization_column(self) -> str | None:
        """The legacy column holding the organization id, when the tenant is read directly."""
        kind, _, column = self.tenant.partition(":")
        return column if kind == "organization" else None


CATALOG: tuple[MigratedTable, ...] = (
    MigratedTable(
        source_table="voices_voiceagent",
        target_table="voices",
        step="migrate/03_migrate_voices.sql",
        columns=(
            "id",
            "description",
            "gender",
            "accent",
            "provider",
            "voice_sample_url",
            "provider_voice_id",
            "provider_config",
        ),
        tenant="system",
        target_id="the legacy id, as text",
    ),
    MigratedTable(
        source_table="numbers_voiceagent",
        target_table="phone_numbers",
        step="migrate/04_migrate_phone_numbers.sql",
        columns=("id", "phone_number", "provider", "type", "created_at", "status", "default_agent"),
        tenant="system",
        target_id="a stable uuid, md5('numbers_voiceagent:' || id)",
    ),
    MigratedTable(
        source_table="agents_voiceagent",
        target_table="voice_agents",
        step="migrate/05_migrate_voice_agents.sql",
        columns=(
            "id",
            "name",
            "gender",
            "agent_instructions",
            "created_by",
            "created_at",
            "default_number",
            "language",
            "voice_id",
            "system_instructions",
            "outbound_starter_prompt",
            "inbound_starter_prompt",
        ),
        tenant="owner:created_by",
        target_id="the legacy id",
    ),
    MigratedTable(
        source_table="leads_voiceagent",
        target_table="leads",
        step="migrate/06_migrate_leads.sql",
        columns=("id", "name", "lead_number", "added_by", "notes"),
        tenant="owner:added_by",
        target_id="the tenant's lead with that phone (the application's, else a stable uuid of tenant and phone)",
        application_rows=True,
        rollback_only="t.source = 'voice_agent' AND t.metadata ? 'old_voice_agent_id'",
    ),
    MigratedTable(
        source_table="call_logs_voiceagent",
        target_table="voice_calls",
        step="migrate/07_migrate_voice_calls.sql",
        columns=(
            "id",
            "initiated_by",
            "target",
            "agent",
            "status",
            "call_recording_url",
            "transcriptions",
            "started_at",
            "ended_at",
            "call_type",
            "cost",
            "voice",
            "job_id",
            "room_name",
            "from_number_id",
            "added_context",
            "vapi_call_id",
            "vapi_data",
            "call_duration",
            "batch_id",
            "cost_breakdown",
        ),
        tenant="owner:initiated_by",
        target_id="the legacy uuid",
        lineage="same id",
        window_column="started_at",
        owned_ids="migration_calls",
    ),
    MigratedTable(
        source_table="org_permissions_voiceagent",
        target_table="resource_permissions",
        step="migrate/08_migrate_resource_permissions.sql",
        columns=(
            "id",
            "organization_id",
            "resource_type",
            "resource_id",
            "access_level",
            "granted_at",
            "granted_by",
            "expires_at",
            "is_active",
        ),
        tenant="organization:organization_id",
        target_id="a stable uuid, md5('org_permissions_voiceagent:' || id)",
    ),
)


def catalog_table(source_table: str) -> MigratedTable:
    """The catalog's entry for a legacy table (a step's SQL: `{% set table = catalog_table("leads_voiceagent") %}`)."""
    (found,) = [table for table in CATALOG if table.source_table == source_table]
    return found


# Every target table holding migrated rows: the tenants (one per legacy organization) and the catalog's.
TARGET_TABLES = ("tenants", *(table.target_table for table in CATALOG))
# Those the migration creates and whose every row is its own (the application keeps leads of its own).
OWNED_TARGET_TABLES = tuple(
    name for name in TARGET_TABLES if name not in {t.target_table for t in CATALOG if t.application_rows}
)


def legacy_columns() -> dict[str, tuple[str, ...]]:
    """Every legacy table the migration reads, with the columns it reads: the preflight's list."""
    return {USERS: USER_COLUMNS, **{table.source_table: table.columns for table in CATALOG}}


# The type each legacy column must have for the mapping to be right, checked by the preflight
# (sql/setup/00_check_legacy_schema.sql), which refuses any other: "timestamptz" (a naive `timestamp`,
# e.g. Django with USE_TZ=False, would shift every instant by the database time zone's offset),
# "uuid" (uuid keys and references) or "integer" (smallint, integer or bigint: integer keys and
# references). Columns not named here are read whatever their type (text, jsonb, numeric...).
LEGACY_COLUMN_TYPES: dict[tuple[str, str], str] = {
    (USERS, "id"): "integer",
    (USERS, "organization_id"): "uuid",
    (USERS, "created_at"): "timestamptz",
    ("voices_voiceagent", "id"): "uuid",
    ("numbers_voiceagent", "id"): "integer",
    ("numbers_voiceagent", "created_at"): "timestamptz",
    ("numbers_voiceagent", "default_agent"): "integer",
    ("agents_voiceagent", "id"): "integer",
    ("agents_voiceagent", "created_by"): "integer",
    ("agents_voiceagent", "created_at"): "timestamptz",
    ("agents_voiceagent", "default_number"): "integer",
    ("agents_voiceagent", "voice_id"): "uuid",
    ("leads_voiceagent", "id"): "integer",
    ("leads_voiceagent", "added_by"): "integer",
    ("call_logs_voiceagent", "id"): "uuid",
    ("call_logs_voiceagent", "initiated_by"): "integer",
    ("call_logs_voiceagent", "target"): "integer",
    ("call_logs_voiceagent", "agent"): "integer",
    ("call_logs_voiceagent", "started_at"): "timestamptz",
    ("call_logs_voiceagent", "ended_at"): "timestamptz",
    ("call_logs_voiceagent", "voice"): "uuid",
    ("call_logs_voiceagent", "from_number_id"): "integer",
    ("call_logs_voiceagent", "batch_id"): "uuid",
    ("org_permissions_voiceagent", "id"): "integer",
    ("org_permissions_voiceagent", "organization_id"): "uuid",
    ("org_permissions_voiceagent", "granted_at"): "timestamptz",
    ("org_permissions_voiceagent", "expires_at"): "timestamptz",
}
