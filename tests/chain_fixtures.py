"""Fixtures of the job-chain tests: Redis DB 12 (flushed around each test), settings as env."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest
import redis
from rq import SimpleWorker

from shared.sample import generate_batch, write_sot
from shared.settings import Settings
from tests import redis_db

REPO = Path(__file__).resolve().parent.parent
# RQ's own command line, from this interpreter's environment (a venv's bin is not always on PATH).
RQ = str(Path(sys.executable).with_name("rq"))
CHAIN_REDIS_URL = redis_db.url(12)  # this area's DB; only it is ever flushed
# DB 12, retries without waiting, a fast heartbeat, no schedule and no learning unless a
# test turns them on.
# REDIS_NAMESPACE empty: these tests name queues and job ids plainly (test_chain_stacks
# covers namespaces).
CHAIN = dict(REDIS_URL=CHAIN_REDIS_URL, JOB_RETRY_INTERVALS=("0",), HEARTBEAT_INTERVAL=1,
             SCHEDULE_ENABLED=False, LEARN_ENABLED=False, REDIS_NAMESPACE="")


def env_of(settings: Settings) -> dict[str, str]:
    """Settings as the environment variables that rebuild them (jobs build their own settings)."""
    return settings.to_env()


@pytest.fixture
def conn():
    """A connection to the chain's Redis DB, empty at start and flushed at the end."""
    connection = redis.Redis.from_url(CHAIN_REDIS_URL)
    try:
        connection.ping()
    except redis.RedisError as exc:
        pytest.fail(f"no Redis at {CHAIN_REDIS_URL} (run the tests with `python -m tests.run`): "
                    f"{exc}")
    connection.flushdb()
    yield connection
    connection.flushdb()


@pytest.fixture
def chain_settings(settings: Settings, conn) -> Settings:
    """Settings of one chain test: its own folders and the CHAIN overrides."""
    return settings.replace(**CHAIN)


@pytest.fixture
def use_env(monkeypatch):
    """Export settings to os.environ, as a worker's container would, for jobs run in-process."""
    def apply(settings: Settings) -> Settings:
        for name, value in env_of(settings).items():
            monkeypatch.setenv(name, value)
        return settings
    return apply


def work(connection, *queues: str, max_jobs: int | None = None, scheduler: bool = False) -> bool:
    """Run the queues' jobs in this process until they are empty (RQ's SimpleWorker, burst)."""
    worker = SimpleWorker(list(queues), connection=connection)
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return worker.work(burst=True, max_jobs=max_jobs, with_scheduler=scheduler,
                           logging_level=None)
    finally:
        for sig, handler in saved.items():  # the worker leaves its shutdown handlers installed
            signal.signal(sig, handler)


def run_chain(settings: Settings, conn) -> None:
    """Work the download queue, then the process queue, until both are empty (burst)."""
    work(conn, settings.QUEUE_DOWNLOAD)
    work(conn, settings.QUEUE_PROCESS)


def cli(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    """Run `aml-miner ARGS` from this worktree as a subprocess."""
    return subprocess.run([sys.executable, "-m", "services.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def process_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a subprocess running with these settings."""
    return {**os.environ, **env_of(settings), "PYTHONPATH": str(REPO), **extra}


def wait_for(predicate, timeout: float = 30, interval: float = 0.05, what: str = "condition"):
    """Poll until predicate() is truthy and return its value; fail naming what never happened."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def write_repeated_alert_ids(root: Path, network: str, date: str, window: int, seed: int) -> None:
    """A batch in SOT layout under root whose checksums are right but whose alert ids repeat."""
    batch = generate_batch(network, date, window, n_alerts=300, seed=seed)
    ids = batch.alerts.column("alert_id").to_pylist()
    ids[1] = ids[0]
    batch.alerts = batch.alerts.set_column(batch.alerts.schema.get_field_index("alert_id"),
                                           "alert_id", pa.array(ids, pa.string()))
    write_sot(batch, root)
