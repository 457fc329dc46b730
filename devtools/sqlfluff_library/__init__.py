"""Gives sqlfluff's Jinja templater the DAG's own SQL filters (ident, sql_literal, uuid_literal)."""

from voice_agent_migration.templating import SQL_FILTERS as SQLFLUFF_JINJA_FILTERS

__all__ = ["SQLFLUFF_JINJA_FILTERS"]
