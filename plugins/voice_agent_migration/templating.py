"""Jinja filters that put param values into SQL safely.

Params are validated when a run is created; these filters check again at render time, so a value
that slipped past the form (an edited conf, a future param) still cannot reach the database.
"""

from __future__ import annotations

import re
import uuid

from voice_agent_migration.catalog import CATALOG, LEGACY_COLUMN_TYPES, catalog_table, legacy_columns
from voice_agent_migration.window import migration_run_type, migration_window

IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def ident(name: str) -> str:
    """Return `name` as a quoted SQL identifier, refusing anything but a plain lower-case name."""
    if not isinstance(name, str) or not IDENTIFIER.fullmatch(name):
        raise ValueError(f"not a valid schema name: {name!r} (expected {IDENTIFIER.pattern})")
    return f'"{name}"'


def sql_literal(name: str) -> str:
    """Return a validated identifier as a SQL string literal (for catalog lookups by name)."""
    ident(name)
    return f"'{name}'"


def uuid_literal(value: str) -> str:
    """Return a canonical uuid as a typed SQL literal, refusing anything that is not a uuid."""
    try:
        canonical = uuid.UUID(str(value))
    except ValueError as err:
        raise ValueError(f"not a valid uuid: {value!r}") from err
    return f"'{canonical}'::uuid"


def text_literal(value: str) -> str:
    """Return any text as an escape-string SQL literal, correct whatever standard_conforming_strings
    says (backslashes and quotes doubled; NUL refused, PostgreSQL text has none)."""
    text = str(value)
    if "\x00" in text:
        raise ValueError(f"text with a NUL character cannot be a SQL literal: {text!r}")
    return "E'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


SQL_FILTERS = {"ident": ident, "sql_literal": sql_literal, "uuid_literal": uuid_literal, "text_literal": text_literal}

# Globals of the SQL: the catalog of migrated tables and the legacy columns read (catalog.py), and
# `{% set window = migration_window() %}` and `migration_run_type()` (window.py).
SQL_MACROS = {
    "catalog": CATALOG,
    "catalog_table": catalog_table,
    "legacy_columns": legacy_columns,
    "legacy_column_types": LEGACY_COLUMN_TYPES,
    "migration_window": migration_window,
    "migration_run_type": migration_run_type,
}
