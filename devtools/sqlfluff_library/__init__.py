"""Gives sqlfluff's Jinja templater the DAG's own SQL filters (ident, sql_literal, uuid_literal, ...)
and globals (the catalog, migration_window, migration_run_type)."""

from voice_agent_migration.catalog import CATALOG as catalog
from voice_agent_migration.catalog import LEGACY_COLUMN_TYPES as legacy_column_types
from voice_agent_migration.catalog import catalog_table, legacy_columns
from voice_agent_migration.templating import SQL_FILTERS as SQLFLUFF_JINJA_FILTERS
from voice_agent_migration.window import migration_run_type, migration_window

__all__ = [
    "SQLFLUFF_JINJA_FILTERS",
    "catalog",
    "catalog_table",
    "legacy_column_types",
    "legacy_columns",
    "migration_run_type",
    "migration_window",
]
