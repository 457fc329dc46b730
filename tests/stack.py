"""A real Airflow 3 for tests: api-server, scheduler and dag-processor (LocalExecutor) on loopback, with the
metadata database on PostgreSQL and the `voice_agent_db` connection on a seeded demo database. With
`celery_broker_url` and `celery_workers`, the CeleryExecutor instead, as in docker-compose.yaml: the
scheduler queues task instances on a Redis broker, `airflow celery worker` processes run them (result
backend: the metadata database), each reporting its own name as `TaskInstance.hostname`.

Everything a test does goes through the public REST API v2 (or the `airflow` CLI), as a user would.
Use it through the session-scoped `airflow_stack` fixture, or the module-scoped `celery_stack` one
(tests/dags/conftest.py); the processes' output is in `<home>/logs/<process>.log`.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg.conninfo import conninfo_to_dict

from devtools.airflow_env import DAG_ID, REPO, airflow_env
from devtools.legacy_db import build_demo_database
from devtools.postgres import airflow_connection, create_database, drop_database
from tests.helpers import LegacyDatabase
from tests.worker_hostname import ENV_HOSTNAME

AIRFLOW_CLI = Path(sys.executable).with_name("airflow")
FINAL_RUN_STATES = frozenset({"success", "failed"})
PROCESSES = {
    # name: airflow sub-command; started in this order, stopped in the reverse one
    "api-server": ("api-server",),
    "dag-processor": ("dag-processor",),
    "scheduler": ("scheduler",),
}
# A Celery worker's `[core] hostname_callable`: its name (ENV_HOSTNAME) as TaskInstance.hostname.
WORKER_HOSTNAME_CALLABLE = "tests.worker_hostname.hostname"


class AirflowStackError(AssertionError):
    """The stack did not come up, a process died, or a run did not finish in time."""


class AirflowCLIError(subprocess.CalledProcessError):
    def __str__(self) -> str:
        return f"{super().__str__()}\n--- stdout ---\n{_tail(self.stdout)}\n--- stderr ---\n{_tail(self.stderr)}"


def _tail(text: str | None, lines: int = 60) -> str:
    return "\n".join((text or "").splitlines()[-lines:])


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sqlalchemy_url(uri: str) -> str:
    """`postgresql+psycopg2://` URL of a libpq URI; a unix-socket host (embedded server) goes in `?host=`."""
    params = conninfo_to_dict(uri)
    user = params.get("user", "")
    password = params.get("password", "")
    auth = f"{user}:{password}@" if password else f"{user}@" if user else ""
    host = params.get("host", "localhost")
    port = params.get("port", "5432")
    dbname = params.get("dbname", "postgres")
    if host.startswith("/"):
        return f"postgresql+psycopg2://{auth}/{dbname}?host={host}&port={port}"
    return f"postgresql+psycopg2://{auth}{host}:{port}/{dbname}"


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


class AirflowStack:
    """Airflow's api-server, scheduler and dag-processor for this repository's DAG.

    `start()` migrates a fresh metadata database, seeds a fresh demo legacy database for the
    `voice_agent_db` connection, starts the processes and returns once the DAG is visible in the API
    (it stays paused: call `unpause()`). `stop()` ends the processes and drops both databases.

    Scheduled runs are off (`[scheduler] use_job_schedule = False`, unless `scheduled_runs=True`):
    unpausing a daily DAG would otherwise add a run for the last day beside the tests' own. Manual
    runs and backfills (`cli("backfill", "create", ...)`) run as usual.
    """

    dag_id = DAG_ID

    def __init__(
        self,
        pg_admin_uri: str,
        home: Path,
        *,
        parallelism: int = 8,
        scheduled_runs: bool = False,
        startup_timeout: float = 300.0,
        celery_broker_url: str | None = None,
        celery_workers: Sequence[str] = (),
        worker_concurrency: int = 4,
    ) -> None:
        if bool(celery_broker_url) != bool(celery_workers):
            raise ValueError("the CeleryExecutor needs both a broker URL and at least one worker")
        self.pg_admin_uri = pg_admin_uri
        self.home = Path(home)
        self.log_dir = self.home / "logs"
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.parallelism = parallelism
        self.scheduled_runs = scheduled_runs
        self.startup_timeout = startup_timeout
        self.celery_broker_url = celery_broker_url
        self.worker_concurrency = worker_concurrency
        # Unique per stack: a broker shared with other stacks (VOICE_AGENT_REDIS_URL) never hands this
        # stack's tasks to their workers, nor theirs to this one's.
        token = uuid.uuid4().hex[:8]
        self.celery_queue = f"voice_agent_{token}"
        # {hostname: process name}: the process's log is <home>/logs/<process name>.log.
        self.celery_workers = {f"{name}-{token}": name for name in celery_workers}
        self.metadata_uri: str | None = None
        self.legacy_db: LegacyDatabase | None = None
        self.env: dict[str, str] = {}
        self.processes: dict[str, subprocess.Popen] = {}
        self.startup_seconds: float | None = None
        self._client: httpx.Client | None = None

    # ---------------------------------------------------------------- life cycle

    def start(self) -> AirflowStack:
        started = time.monotonic()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.metadata_uri = create_database(self.pg_admin_uri, prefix="airflow_meta")
        self.legacy_db = LegacyDatabase(create_database(self.pg_admin_uri, prefix="voice_agent_stack"))
        build_demo_database(self.legacy_db.uri)
        self.env = self._build_env()
        self.cli("db", "migrate")
        for name, command in PROCESSES.items():
            self._spawn(name, command)
        for hostname in self.celery_workers:
            self._spawn_celery_worker(hostname)
        self._wait_until_api_is_up()
        self._wait_until_dag_is_parsed()
        self._wait_until_celery_workers_are_ready()
        self.startup_seconds = time.monotonic() - started
        return self

    def stop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        for name in reversed(list(self.processes)):
            self._terminate(self.processes[name])
        self.processes.clear()
        if self.celery_workers:
            self._forget_celery_queue()
        for uri in (self.metadata_uri, self.legacy_db.uri if self.legacy_db else None):
            if uri:
                drop_database(self.pg_admin_uri, uri)

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def executor(self) -> str:
        return "CeleryExecutor" if self.celery_workers else "LocalExecutor"

    def _build_env(self) -> dict[str, str]:
        env = airflow_env(self.home, airflow_connection(self.legacy_db.uri))
        pythonpath = [str(REPO / "plugins"), str(REPO), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
        env.update(
            PYTHONPATH=os.pathsep.join(dict.fromkeys(pythonpath)),
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=sqlalchemy_url(self.metadata_uri),
            AIRFLOW__CORE__EXECUTOR=self.executor,
            AIRFLOW__CORE__PARALLELISM=str(self.parallelism),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="True",
            AIRFLOW__CORE__FERNET_KEY=_fernet_key(),
            AIRFLOW__CORE__AUTH_MANAGER=(
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
            # LocalExecutor workers report to the api-server's execution API, signed with the shared secret.
            AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"{self.base_url}/execution/",
            AIRFLOW__API_AUTH__JWT_SECRET=secrets.token_urlsafe(64),
            AIRFLOW__API__SECRET_KEY=secrets.token_urlsafe(32),
            AIRFLOW__API__BASE_URL=self.base_url,
            AIRFLOW__API__HOST="127.0.0.1",
            AIRFLOW__API__PORT=str(self.port),
            AIRFLOW__API__WORKERS="1",
            # The scheduler serves task logs on this port (on all interfaces; 8793 would clash between stacks).
            AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(_free_port()),
            AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
            AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL="10",
            AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES="1",
            AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE=str(self.scheduled_runs),
        )
        if self.celery_workers:
            env.update(
                AIRFLOW__CELERY__BROKER_URL=self.celery_broker_url,
                # As docker-compose.yaml: Celery's task results in the metadata database (db+ SQLAlchemy URL).
                AIRFLOW__CELERY__RESULT_BACKEND=f"db+{sqlalchemy_url(self.metadata_uri)}",
                AIRFLOW__CELERY__WORKER_CONCURRENCY=str(self.worker_concurrency),
                # The queue every task goes to (read when the DAG is parsed) and the workers listen on.
                AIRFLOW__OPERATORS__DEFAULT_QUEUE=self.celery_queue,
            )
        return env

    def _spawn(self, name: str, command: tuple[str, ...]) -> None:
        args = [str(AIRFLOW_CLI), *command]
        if name == "api-server":
            args += ["--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"]
        with open(self.log_path(name), "ab") as log:
            # A process group of its own: stop() ends the process and everything it forked.
            self.processes[name] = subprocess.Popen(
                args, env=self.env, cwd=self.home, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def _spawn_celery_worker(self, hostname: str) -> None:
        """`airflow celery worker` named `hostname` (Celery's node name and the tasks' TaskInstance.hostname),
        serving its task logs on a port of its own."""
        env = {
            **self.env,
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": WORKER_HOSTNAME_CALLABLE,
            ENV_HOSTNAME: hostname,
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port()),
        }
        args = [str(AIRFLOW_CLI), "celery", "worker", "--celery-hostname", hostname]
        args += ["--queues", self.celery_queue, "--concurrency", str(self.worker_concurrency)]
        name = self.celery_workers[hostname]
        with open(self.log_path(name), "ab") as log:
            self.processes[name] = subprocess.Popen(
                args, env=env, cwd=self.home, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def _wait_until_celery_workers_are_ready(self) -> None:
        """Every worker connected to the broker and consuming (Celery logs `<node> ready.`), so that the
        first tasks queued do not all go to the worker that happened to start first."""

        def ready() -> bool:
            return all(
                f"@{hostname} ready." in self.log_tail(name, lines=400)
                for hostname, name in self.celery_workers.items()
            )

        self._poll("the Celery workers", ready, self.startup_timeout, logs=list(self.celery_workers.values()))

    def _forget_celery_queue(self) -> None:
        """Remove what Celery left of this stack's queue on the broker (its bindings), so that a shared Redis
        (VOICE_AGENT_REDIS_URL) does not gather a few keys per test session; other keys are left alone."""
        import redis  # celery[redis]; only the Celery stack needs it

        client = redis.Redis.from_url(self.celery_broker_url)
        try:
            keys = list(client.scan_iter(match=f"*{self.celery_queue}*", count=1000))
            if keys:
                client.delete(*keys)
            client.zrem("_kombu.binding_deadlines", self.celery_queue)
        except redis.RedisError:
            pass  # the broker is gone already: nothing to forget
        finally:
            client.close()

    @staticmethod
    def _terminate(process: subprocess.Popen, timeout: float = 30.0) -> None:
        if process.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                return
            try:
                process.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        # Whatever the group leader left behind (task supervisors, workers).
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def log_tail(self, name: str, lines: int = 60) -> str:
        path = self.log_path(name)
        return _tail(path.read_text(errors="replace") if path.exists() else "", lines)

    def check_alive(self) -> None:
        """Fail with the tail of its log when a process of the stack has exited."""
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise AirflowStackError(
                    f"airflow {name} exited with {process.returncode}; tail of {self.log_path(name)}:\n"
                    f"{self.log_tail(name)}"
                )

    def _poll(self, what: str, ready, timeout: float, interval: float = 1.0, logs: Iterable[str] = ()) -> Any:
        """Call `ready()` until it returns something truthy; fail after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while True:
            self.check_alive()
            try:
                result = ready()
                if result:
                    return result
            except (httpx.HTTPError, ValueError) as error:
                last_error = error
            if time.monotonic() > deadline:
                tails = "\n".join(f"--- tail of {self.log_path(n)} ---\n{self.log_tail(n)}" for n in logs)
                raise AirflowStackError(f"timed out after {timeout:.0f} s waiting for {what} ({last_error!r})\n{tails}")
            time.sleep(interval)

    def _wait_until_api_is_up(self) -> None:
        def healthy() -> bool:
            health = httpx.get(f"{self.base_url}/api/v2/monitor/health", timeout=10).raise_for_status().json()
            return all(health.get(part, {}).get("status") == "healthy" for part in ("metadatabase", "scheduler"))

        self._poll("the api-server and a healthy scheduler", healthy, self.startup_timeout, logs=PROCESSES)

    def _wait_until_dag_is_parsed(self) -> None:
        def parsed() -> bool:
            errors = self.api("GET", "/importErrors").json().get("import_errors", [])
            if errors:
                raise AirflowStackError("DAG import errors:\n" + "\n".join(e.get("stack_trace", "") for e in errors))
            return self.api("GET", f"/dags/{self.dag_id}", check=False).status_code == 200

        self._poll(f"DAG {self.dag_id} to be parsed", parsed, self.startup_timeout, logs=["dag-processor"])

    # ---------------------------------------------------------------- REST API and CLI

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            token = httpx.get(f"{self.base_url}/auth/token", timeout=30).raise_for_status().json()["access_token"]
            self._client = httpx.Client(
                base_url=f"{self.base_url}/api/v2",
                headers={"Authorization": f"Bearer {token}"},
                timeout=60,
            )
        return self._client

    def api(self, method: str, path: str, *, check: bool = True, **kwargs: Any) -> httpx.Response:
        """A request to the REST API v2 (`path` relative to /api/v2); raises on an error status if `check`."""
        response = self.client.request(method, path, **kwargs)
        if check and response.is_error:
            raise AirflowStackError(f"{method} /api/v2{path}: {response.status_code} {response.text}")
        return response

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run this virtualenv's `airflow` with the stack's environment."""
        result = subprocess.run(
            [str(AIRFLOW_CLI), *args], env=self.env, cwd=self.home, capture_output=True, text=True, check=False
        )
        if check and result.returncode:
            raise AirflowCLIError(result.returncode, result.args, result.stdout, result.stderr)
        return result

    def unpause(self) -> None:
        self.api("PATCH", f"/dags/{self.dag_id}", json={"is_paused": False})

    def pause(self) -> None:
        self.api("PATCH", f"/dags/{self.dag_id}", json={"is_paused": True})

    def trigger(self, conf: dict[str, Any] | None = None, run_id: str | None = None) -> str:
        """Trigger a manual run (no logical date); returns its run id."""
        run_id = run_id or f"manual__test_{uuid.uuid4().hex[:12]}"
        body = {"dag_run_id": run_id, "logical_date": None, "conf": conf or {}}
        return self.api("POST", f"/dags/{self.dag_id}/dagRuns", json=body).json()["dag_run_id"]

    def run(self, run_id: str) -> dict[str, Any]:
        return self.api("GET", f"/dags/{self.dag_id}/dagRuns/{run_id}").json()

    def runs(self) -> list[dict[str, Any]]:
        """Every run of the DAG, oldest first: run_id, run_type, state, data_interval_start/end, conf, ..."""
        runs: list[dict[str, Any]] = []
        while True:
            page = self.api(
                "GET",
                f"/dags/{self.dag_id}/dagRuns",
                params={"limit": 100, "offset": len(runs), "order_by": "id"},
            ).json()
            runs += [
                {
                    "run_id": run["dag_run_id"],
                    "run_type": run["run_type"],
                    "state": run["state"],
                    "data_interval_start": run.get("data_interval_start"),
                    "data_interval_end": run.get("data_interval_end"),
                    "logical_date": run.get("logical_date"),
                    "conf": run.get("conf"),
                    "start_date": run.get("start_date"),
                    "end_date": run.get("end_date"),
                }
                for run in page["dag_runs"]
            ]
            if not page["dag_runs"] or len(runs) >= page["total_entries"]:
                return runs

    def task_states(self, run_id: str) -> dict[str, str | None]:
        tis = self.api("GET", f"/dags/{self.dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 1000}).json()[
            "task_instances"
        ]
        return {
            (ti["task_id"] if ti.get("map_index", -1) < 0 else f"{ti['task_id']}[{ti['map_index']}]"): ti["state"]
            for ti in tis
        }

    def task_log(self, run_id: str, task_id: str, try_number: int = 1) -> str:
        """The task's log as text, one line per record: `timestamp [level] logger: event key=value ...`."""
        response = self.api(
            "GET",
            f"/dags/{self.dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            params={"full_content": "true"},
            headers={"Accept": "application/json"},
        )
        lines = []
        for record in response.json().get("content", []):
            if isinstance(record, str):
                lines.append(record)
                continue
            record = {k: v for k, v in record.items() if k != "sources" and v not in (None, "")}
            head = [str(record.pop(k)) for k in ("timestamp", "level", "logger") if k in record]
            event = str(record.pop("event", ""))
            lines.append(" ".join([*head, event, *(f"{k}={v}" for k, v in record.items())]))
        return "\n".join(lines)

    def wait_for(self, run_ids: str | Iterable[str], timeout: float = 600.0) -> dict[str, str]:
        """Wait until every run is success or failed; returns {run_id: state}."""
        run_ids = [run_ids] if isinstance(run_ids, str) else list(run_ids)
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            states = {run_id: self.run(run_id)["state"] for run_id in run_ids}
            if all(state in FINAL_RUN_STATES for state in states.values()):
                return states
            if time.monotonic() > deadline:
                raise AirflowStackError(
                    f"runs not finished after {timeout:.0f} s: {states}\n{self.describe(run_ids)}\n"
                    f"--- tail of {self.log_path('scheduler')} ---\n{self.log_tail('scheduler')}"
                )
            time.sleep(2)

    def describe(self, run_ids: Iterable[str], log_lines: int = 40) -> str:
        """Task states of the runs and the log tails of their unfinished or failed tasks (for failures)."""
        out = []
        for run_id in run_ids:
            states = self.task_states(run_id)
            out.append(f"=== {run_id}: {states}")
            for task_id, state in states.items():
                if state not in {"success", "skipped", None, "scheduled", "queued", "upstream_failed"}:
                    try:
                        log = _tail(self.task_log(run_id, task_id), log_lines)
                    except AirflowStackError as error:
                        log = str(error)
                    out.append(f"--- {task_id} ({state}) ---\n{log}")
        return "\n".join(out)

    # ---------------------------------------------------------------- the migrated database

    def reset_target(self) -> None:
        """Recreate the `voice_agent_db` database as freshly seeded (same name: the connection is fixed).

        Only between runs: any session on it, a running task's included, is terminated.
        """
        name = conninfo_to_dict(self.legacy_db.uri)["dbname"]
        with psycopg.connect(self.pg_admin_uri, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        build_demo_database(self.legacy_db.uri)
