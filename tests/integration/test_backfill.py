"""`aml-miner backfill` against moto on loopback: present, fetched, missing, tampered, temporary."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from services.downloader.backfill import FAILED, FETCHED, backfill
from shared import storage
from tests.conftest import REPO
from tests.s3_fixtures import (fake_batch, meta_document, moto_endpoint, proxy,  # noqa: F401
                               s3_proxy, sot)

RANGE = ("2025-10-01", "2025-10-02", "2025-10-03", "2025-10-04")


def publish(sot, *dates: str) -> None:
    for i, date in enumerate(dates):
        sot.put_batch(fake_batch(seed=i), date=date)


def run(sot, *args: str, first: str = RANGE[0], last: str = RANGE[-1]):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOT_", "AWS_"))}
    env.update({k: str(v) for k, v in sot.settings.to_env().items() if k.startswith("SOT_")})
    env["REDIS_URL"] = sot.settings.REDIS_URL
    cmd = [sys.executable, "-m", "services.cli", "backfill", "--from", first, "--to", last,
           "--network", "bitcoin", "--days", "7", "--output-dir", str(sot.settings.INPUT_DIR),
           *args]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=180)


def test_fetches_what_is_missing_skips_what_is_present_and_reports_absent_dates(sot):
    publish(sot, "2025-10-01", "2025-10-02", "2025-10-04")
    first = backfill("bitcoin", ["2025-10-01"], 7, sot.settings.INPUT_DIR, sot.settings)
    assert first.outcomes == {"2025-10-01": FETCHED}
    result = run(sot)
    assert result.returncode == 0, result.stderr
    line = result.stdout.strip().splitlines()[-1]
    assert line.startswith("backfill of 4 date(s): 2 fetched, 1 already present, 1 missing, "
                           "0 failed, 0 temporary failure; ")
    assert "2025-10-03: missing: " in result.stderr
    assert "backfill bitcoin 7d: 3/4 2025-10-03: missing" in result.stdout  # progress log
    assert storage.published_dates(sot.settings.INPUT_DIR) == ["2025-10-04", "2025-10-02",
                                                              "2025-10-01"]


def test_a_second_run_resumes_without_fetching_again(sot):
    publish(sot, *RANGE)
    assert run(sot, last="2025-10-02").returncode == 0
    sot.proxy.reset()
    again = run(sot)
    assert again.returncode == 0
    assert "2 fetched, 2 already present" in again.stdout
    fetched = {s.path.split("/")[-3] for s in sot.proxy.object_gets() if "snapshots" in s.path}
    assert fetched == {"2025-10-03", "2025-10-04"}


def test_a_tampered_date_fails_alone_and_is_not_published(sot):
    publish(sot, "2025-10-01", "2025-10-02")
    files = fake_batch(seed=9)
    prefix = storage.sot_prefix("bitcoin", "2025-10-03", 7)
    for name, data in files.items():
        sot.put(prefix + name, data)
    doc = meta_document(files, processing_date="2025-10-03")
    doc["sha256"]["features.parquet"] = "0" * 64
    sot.put(prefix + "META.json", json.dumps(doc).encode())
    summary = backfill("bitcoin", list(RANGE[:3]), 7, sot.settings.INPUT_DIR, sot.settings)
    assert summary.outcomes["2025-10-03"] == FAILED and "features.parquet" in \
        summary.details["2025-10-03"]
    assert summary.exit_code() == 1
    assert storage.published_dates(sot.settings.INPUT_DIR) == ["2025-10-02", "2025-10-01"]


def test_no_date_of_the_range_on_the_sot_exits_1(sot):
    sot.put("snapshots/bitcoin/2025-09-01/7/alerts.parquet", b"x" * 100)  # another date only
    result = run(sot)
    assert result.returncode == 1
    assert "0 fetched, 0 already present, 4 missing" in result.stdout


def test_only_temporary_failures_exit_75(sot):
    publish(sot, "2025-10-01")
    sot.proxy.fail(times=1000, status=503)
    result = run(sot, first="2025-10-01", last="2025-10-01")
    assert result.returncode == 75, result.stdout + result.stderr
    assert "1 temporary failure" in result.stdout


def test_a_reversed_range_is_refused_naming_both_dates(sot):
    result = run(sot, first="2025-10-04", last="2025-10-01")
    assert result.returncode == 1
    assert "2025-10-01" in result.stderr and "2025-10-04" in result.stderr

