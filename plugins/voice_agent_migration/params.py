"""The trigger form: every value here is pasted into SQL, so each is typed and constrained."""

from __future__ import annotations

from airflow.sdk import Param

from voice_agent_migration.templating import IDENTIFIER

UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"

MIGRATION_PARAMS = {
    "source_schema": Param(
        "voice_agent",
        type="string",
        pattern=IDENTIFIER.pattern,
        title="Legacy schema",
        description="Schema holding the *_voiceagent tables (read only).",
    ),
    "target_schema": Param(
        "public",
        type="string",
        pattern=IDENTIFIER.pattern,
        title="Target schema",
        description="Schema receiving the multi-tenant tables, the id map and the rejects.",
    ),
    "system_tenant_id": Param(
        "00000000-0000-0000-0000-000000000000",
        type="string",
        pattern=UUID_PATTERN,
        title="System tenant id",
        description="Tenant that owns shared resources (voices, phone numbers).",
    ),
    "call_partitions": Param(
        2,
        type="integer",
        minimum=1,
        maximum=16,
        title="Call partitions",
        description="Concurrent transactions migrating the call log (about one per database core to spare).",
    ),
}
