"""Gives sqlfluff's Jinja templater the DAG's own SQL filters (ident, sql_literal, uuid_literal, ...)
and macros (migration_window)."""

from voice_agent_migration.templating import SQL_FILTERS as SQLFLUFF_JINJA_FILTERS
from voice_agent_migration.window import migration_run_type, migration_window

__all__ = ["SQLFLUFF_JINJA_FILTERS", "migration_run_type", "migration_window"]
