"""`[core] hostname_callable` of the Celery stack's workers (tests/stack.py): two workers on one machine
report distinct hostnames in `TaskInstance.hostname`, so a test can tell which one ran a task."""

from __future__ import annotations

import os
import socket

ENV_HOSTNAME = "VOICE_AGENT_WORKER_HOSTNAME"


def hostname() -> str:
    """The worker's name from the environment, else the machine's (as Airflow's default callable)."""
    return os.environ.get(ENV_HOSTNAME) or socket.getfqdn()
