"""The filters that put params into SQL refuse anything that is not a plain identifier or a uuid."""

from __future__ import annotations

import pytest

from voice_agent_migration.templating import ident, sql_literal, uuid_literal


@pytest.mark.parametrize("name", ["voice_agent", "public", "_staging2", "a" * 63])
def test_plain_identifiers_are_quoted(name):
    assert ident(name) == f'"{name}"'
    assert sql_literal(name) == f"'{name}'"


@pytest.mark.parametrize(
    "name",
    ["voice_agent; DROP TABLE x", 'public"."x', "Public", "1abc", "", "a" * 64, "x'--", None, 42],
)
def test_anything_else_is_refused(name):
    with pytest.raises(ValueError, match="not a valid schema name"):
        ident(name)
    with pytest.raises(ValueError):
        sql_literal(name)


def test_uuids_are_canonicalised_and_anything_else_refused():
    assert uuid_literal("00000000-0000-0000-0000-00000000000A") == "'00000000-0000-0000-0000-00000000000a'::uuid"
    with pytest.raises(ValueError, match="not a valid uuid"):
        uuid_literal("00000000-0000-0000-0000-000000000000' OR '1'='1")
