"""`aml-miner validate --api URL` against the real result API (gunicorn via `aml-miner serve-api`)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests import validator_fixtures as vf

DATES = ("2025-10-26", "2025-10-27")
DAY = DATES[1]

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """Two sample dates scored by the shipped models with the real processor."""
    root = tmp_path_factory.mktemp("validator-http")
    vf.generate_inputs(root / "input", DATES, 500)
    for date in DATES:
        vf.process(root / "input", root / "output", date)
    return root


@pytest.fixture(scope="module")
def api(world: Path):
    """The result API serving the world's output folder; yields its base URL."""
    port = _free_port()
    log = open(world / "api.log", "wb")
    env = {**os.environ, "OUTPUT_DIR": str(world / "output"), "NETWORK": "bitcoin", "API_WORKERS": "1",
           "API_THREADS": "2"}
    proc = subprocess.Popen([sys.executable, "-m", "services.cli", "serve-api", "--host", "127.0.0.1",
                             "--port", str(port)], cwd=vf.REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(proc, url, world / "api.log")
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()


def _wait_healthy(proc: subprocess.Popen, url: str, log: Path, deadline_s: float = 60) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"serve-api exited: {log.read_text()}")
        try:
            if requests.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"serve-api not healthy within {deadline_s}s: {log.read_text()}")


def validate(world: Path, reports: Path, *extra: str):
    return vf.cli("validate", "--processing-date", DAY, "--input-dir", world / "input",
                  "--report-dir", reports, *extra)


def test_what_the_api_serves_passes_and_matches_a_rerun_to_1e_12(world, api, tmp_path):
    done = validate(world, tmp_path / "r", "--api", api)
    assert done.returncode == 0, done.stdout + done.stderr
    report = vf.report_of(tmp_path / "r", f"validate_{DAY}")
    assert report["source"] == f"{api} ({DAY})"
    assert report["verdict"]["determinism"] == "pass"  # JSON floats arrive bit-exact
    assert report["behaviour"]["stability"]["previous_date"] == DATES[0]  # found through /dates
    assert report["ground_truth"]["alerts"]["labelled"] > 0


def test_api_and_folder_give_the_same_report(world, api, tmp_path):
    assert validate(world, tmp_path / "a", "--api", api, "--no-determinism").returncode == 0
    assert validate(world, tmp_path / "f", "--output-dir", world / "output", "--no-determinism").returncode == 0
    by_api, by_folder = (vf.report_of(tmp_path / d, f"validate_{DAY}") for d in ("a", "f"))
    for key in ("integrity", "behaviour", "ground_truth", "model_versions"):
        assert by_api[key] == by_folder[key], key


def test_a_broken_output_served_by_the_api_exits_1(world, api, tmp_path):
    before = vf.read_output(world / "output", DAY)
    try:
        vf.rewrite(world / "output", lambda p: p.update(
            alerts=p["alerts"].iloc[2:], clusters=p["clusters"].assign(model_version="")), DAY)
        done = validate(world, tmp_path / "r", "--api", api, "--no-determinism")
        assert done.returncode == 1, done.stdout + done.stderr
        checks = vf.checks_by_name(vf.report_of(tmp_path / "r", f"validate_{DAY}")["integrity"])
        missing = sorted(before["alerts"]["alert_id"][:2])
        assert checks["alerts.coverage"]["offending"] == missing
        assert not checks["clusters.model_version"]["passed"]
        assert not checks["metadata.counts"]["passed"]
    finally:
        vf.publish_output(world / "output", before, DAY)


def test_a_date_the_api_does_not_have_exits_2(world, api, tmp_path):
    vf.generate_inputs(world / "input", ("2025-10-28",), 500)
    done = vf.cli("validate", "--processing-date", "2025-10-28", "--input-dir", world / "input",
                  "--api", api, "--no-determinism")
    assert done.returncode == 2
    assert "HTTP 404" in done.stderr and "/scores/alerts/2025-10-28" in done.stderr
