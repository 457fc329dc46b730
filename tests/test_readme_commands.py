"""The README's commands for a real database, run as a newcomer runs them: the shell commands of the
code block in its `real-database` section, from a fresh shell (PATH and HOME only) in this repository,
with PG_URI pointing at a fresh copy of the demo legacy database."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from devtools.airflow_env import REPO

SECTION = re.compile(r"<!-- real-database:start -->(.*?)<!-- real-database:end -->", re.DOTALL)
SHELL_BLOCK = re.compile(r"```sh\n(.*?)```", re.DOTALL)
PG_URI = re.compile(r"""PG_URI=('[^']*'|"[^"]*"|\S+)""")


def readme_commands() -> list[str]:
    """The commands of the one code block in the README's real-database section, comments left out."""
    (section,) = SECTION.findall((REPO / "README.md").read_text(encoding="utf-8"))
    (block,) = SHELL_BLOCK.findall(section)
    return [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def fresh_shell_env(home) -> dict[str, str]:
    """What a new login shell has that matters here: a system PATH (the one holding make) and HOME."""
    make_dir = str(Path(shutil.which("make")).parent)
    path = ":".join(dict.fromkeys([make_dir, "/usr/local/bin", "/usr/bin", "/bin"]))
    return {"PATH": path, "HOME": str(home)}


def printed_landed_calls(output: str) -> tuple[str, int]:
    """(run id, the `landed` column of the call log's row) of the reconciliation a run printed."""
    lines = output.splitlines()
    (start,) = [i for i, line in enumerate(lines) if line.startswith("Reconciliation per legacy table (")]
    run_id = lines[start].rsplit("(", 1)[1].rstrip(")")
    header = lines[start + 1].split()
    row = next(line.split() for line in lines[start + 3 :] if line.startswith("call_logs_voiceagent "))
    return run_id, int(row[header.index("landed")])


def test_the_readme_gives_make_migrate_with_a_uri_for_each_command():
    commands = readme_commands()
    assert commands
    for command in commands:
        assert command.startswith("make migrate "), command
        assert len(PG_URI.findall(command)) == 1, command


@pytest.mark.slow
def test_the_readme_commands_migrate_a_real_database(demo_db, tmp_path):
    params = conninfo_to_dict(demo_db.uri)
    if not params.get("password"):  # one the output must never show (the server trusts local connections)
        params["password"] = f"never-printed-{uuid.uuid4().hex[:8]}"
    password = params["password"]
    uri = make_conninfo(**params)
    home = tmp_path / "home"
    home.mkdir()
    started = time.time()
    outputs = []
    for command in readme_commands():
        command = PG_URI.sub(lambda _: "PG_URI=" + shlex.quote(uri), command)
        run = subprocess.run(
            ["bash", "-c", command],
            cwd=REPO,
            env=fresh_shell_env(home),
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        output = run.stdout + run.stderr
        assert run.returncode == 0, f"{command}\n{output[-6000:]}"
        assert password not in output
        outputs.append(output)

    # The last command migrated: the target holds the calls its reconciliation says landed.
    run_id, landed = printed_landed_calls(outputs[-1])
    assert landed > 0
    assert demo_db.value("SELECT count(*) FROM public.voice_calls") == landed
    recorded = demo_db.value(
        "SELECT landed FROM public.migration_reconciliation WHERE run_id = %s AND source_table = %s",
        (run_id, "call_logs_voiceagent"),
    )
    assert recorded == landed
    # Nor do the run logs it keeps.
    for log in (REPO / ".airflow" / "logs").rglob("*"):
        if log.is_file() and log.stat().st_mtime >= started:
            assert password not in log.read_text(errors="replace"), log
