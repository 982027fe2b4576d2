"""The per-date publish lock: one owner, a clear refusal, a bounded wait, stale takeover."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from shared import publish_lock
from tests.conftest import REPO

DATE = "2025-10-26"

HOLDER = """
import sys, time, pathlib
from shared import publish_lock
root, release = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
with publish_lock.publishing(root, "2025-10-26", wait_s=0, stale_s=120):
    print("held", flush=True)
    while not release.exists():
        time.sleep(0.05)
"""


def _holder(tmp_path):
    release = tmp_path / "release"
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / "root"), str(release)],
                            cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc, release


def test_a_second_publisher_is_refused_with_the_owner_named(tmp_path):
    proc, release = _holder(tmp_path)
    try:
        with pytest.raises(publish_lock.DateLocked) as err:
            publish_lock.acquire(tmp_path / "root", DATE, wait_s=0, stale_s=120)
        text = str(err.value)
        assert text.startswith(f"date {DATE} is being published by {socket.gethostname()} "
                               f"pid {proc.pid} since ")
        assert "PUBLISH_LOCK_WAIT_SECONDS" in text
    finally:
        release.touch()
        proc.wait(timeout=30)


def test_a_waiting_publisher_gets_the_lock_once_the_first_releases_it(tmp_path):
    proc, release = _holder(tmp_path)
    waits = []

    def sleep(seconds):
        waits.append(seconds)
        release.touch()  # the first publisher finishes while we wait
        proc.wait(timeout=30)

    record = publish_lock.acquire(tmp_path / "root", DATE, wait_s=600, stale_s=120, sleep=sleep)
    assert waits and record["pid"] == os.getpid()
    publish_lock.release(tmp_path / "root", DATE, record)
    assert not publish_lock.lock_path(tmp_path / "root", DATE).exists()


def test_a_killed_owner_s_lock_is_taken_over(tmp_path):
    proc, _release = _holder(tmp_path)
    proc.kill()
    proc.wait(timeout=30)
    record = publish_lock.acquire(tmp_path / "root", DATE, wait_s=0, stale_s=120)
    assert publish_lock.owner(publish_lock.lock_path(tmp_path / "root", DATE)) == record


def test_another_host_s_lock_is_stale_only_once_its_heartbeat_stops(tmp_path):
    path = publish_lock.lock_path(tmp_path, DATE)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"host": "other-host", "pid": 1, "since": "x", "token": "t"}))
    with pytest.raises(publish_lock.DateLocked, match="published by other-host pid 1"):
        publish_lock.acquire(tmp_path, DATE, wait_s=0, stale_s=120)
    old = time.time() - 121
    os.utime(path, (old, old))
    record = publish_lock.acquire(tmp_path, DATE, wait_s=0, stale_s=120)
    assert record["host"] == socket.gethostname()


def test_the_holder_keeps_its_lock_fresh(tmp_path, monkeypatch):
    monkeypatch.setattr(publish_lock, "HEARTBEAT_S", 0.05)
    with publish_lock.publishing(tmp_path, DATE, wait_s=0, stale_s=120):
        path = publish_lock.lock_path(tmp_path, DATE)
        old = time.time() - 1000
        os.utime(path, (old, old))
        deadline = time.monotonic() + 30
        while path.stat().st_mtime < old + 500 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert path.stat().st_mtime > old + 500
    assert not path.exists()


@pytest.mark.parametrize("changes,named", [
    ({"RETENTION_DAYS": -1}, "RETENTION_DAYS=-1"),
    ({"RETENTION_DAYS": 20, "LEARN_HISTORY_DAYS": 30}, "RETENTION_DAYS=20 must be more than "
                                                        "LEARN_HISTORY_DAYS=30"),
    ({"PUBLISH_LOCK_STALE_SECONDS": 5}, "PUBLISH_LOCK_STALE_SECONDS=5"),
    ({"PUBLISH_LOCK_WAIT_SECONDS": -1}, "PUBLISH_LOCK_WAIT_SECONDS=-1")])
def test_workers_refuse_lock_and_retention_settings_that_cannot_work(changes, named):
    from shared import jobs
    from shared.settings import Settings, SettingsError

    with pytest.raises(SettingsError, match=named):
        jobs.check(Settings.from_env({}).replace(**changes))
    jobs.check(Settings.from_env({}).replace(RETENTION_DAYS=0, LEARN_HISTORY_DAYS=30))
