"""Learning in the job chain: the first start (backfill -> learn -> process), backfilled dates,
re-publishing after a promotion, and a real process worker picking up a promoted set."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from rq.job import JobStatus

from services.processor.train import train_models
from shared import jobs, modelsets, storage
from shared.sample import generate_batch, write_sot
from tests.chain_fixtures import (CHAIN, REPO, chain_settings, cli, conn,  # noqa: F401
                                  process_env, use_env, wait_for, work)
from tests.processor_fixtures import quick_specs, write_synthetic_history
from tests.s3_fixtures import NETWORK, WINDOW, moto_endpoint, proxy, s3_proxy, sot  # noqa: F401

HISTORY = ("2025-10-20", "2025-10-21", "2025-10-22", "2025-10-23")
D = "2025-10-24"


@pytest.fixture(scope="module")
def sample_history(tmp_path_factory) -> Path:
    """Four past dates and D in the SOT layout, one cumulative labels file."""
    root = tmp_path_factory.mktemp("sot-history")
    for i, date in enumerate((*HISTORY, D)):
        write_sot(generate_batch(NETWORK, date, WINDOW, n_alerts=400, seed=20 + i), root)
    return root


@pytest.fixture
def s(sot, sample_history, conn, use_env):
    sot.put_tree(sample_history)
    return use_env(sot.settings.replace(**{**CHAIN, "LEARN_ENABLED": True}, LEARN_HISTORY_DAYS=4))


def test_first_start_backfills_learns_then_processes(s, conn):
    assert jobs.enqueue_download(s, NETWORK, D, WINDOW).enqueued
    work(conn, s.QUEUE_DOWNLOAD)  # the date, then the backfill it queued
    status = jobs.date_status(s, NETWORK, D, WINDOW)
    assert (status.state, status.stage) == ("queued", "learn")
    assert jobs.fetch(conn, jobs.process_id(NETWORK, D, WINDOW)) is None  # waits for the learn
    assert storage.published_dates(s.INPUT_DIR) == [D, *reversed(HISTORY)]
    backfilled = jobs.fetch(conn, jobs.backfill_id(NETWORK, D, WINDOW)).return_value()
    assert "4 fetched" in backfilled["summary"]
    work(conn, s.QUEUE_LEARN)
    learned = jobs.fetch(conn, jobs.learn_id(NETWORK, D, WINDOW))
    assert learned.get_status() == JobStatus.FINISHED
    assert learned.return_value()["training_dates"] == list(HISTORY[:-1])
    assert learned.return_value()["comparison_date"] == HISTORY[-1]
    work(conn, s.QUEUE_PROCESS)
    status = jobs.date_status(s, NETWORK, D, WINDOW)
    assert status.state == "published"
    processed = jobs.fetch(conn, jobs.process_id(NETWORK, D, WINDOW))
    assert processed.started_at >= learned.ended_at
    metadata = json.loads((s.OUTPUT_DIR / D / storage.METADATA).read_text())
    assert metadata["model_set"]["version"] == modelsets.current(s, NETWORK, WINDOW).version
    assert modelsets.last_learn(s, NETWORK, WINDOW)["processing_date"] == D
    assert jobs.learn_status(s, NETWORK, D, WINDOW).startswith(
        f"learn-{NETWORK}-{D}-{WINDOW}: finished: {learned.return_value()['decision']}")
    out = cli("status", "--processing-date", D, env=process_env(s))
    assert out.returncode == 0 and f"learn-{NETWORK}-{D}-{WINDOW}: finished" in out.stdout


def test_after_the_first_learn_processing_never_waits(s, conn):
    modelsets.record_learn(s, NETWORK, WINDOW, {"processing_date": HISTORY[-1],
                                                "decision": "kept"})
    jobs.enqueue_download(s, NETWORK, D, WINDOW)
    work(conn, s.QUEUE_DOWNLOAD)
    assert jobs.fetch(conn, jobs.process_id(NETWORK, D, WINDOW)).get_status() == \
        JobStatus.QUEUED
    assert jobs.fetch(conn, jobs.learn_id(NETWORK, D, WINDOW)).kwargs["then_process"] is False
    assert jobs.fetch(conn, jobs.backfill_id(NETWORK, D, WINDOW)) is None


def test_a_learn_that_fails_still_lets_the_first_date_be_processed(s, conn):
    # No labels anywhere: the learn cannot even start to choose dates sensibly, then fails
    # on an unreadable labels file.
    s.INPUT_DIR.mkdir(parents=True)
    jobs.enqueue_download(s, NETWORK, D, WINDOW)
    work(conn, s.QUEUE_DOWNLOAD)
    (s.INPUT_DIR / D / "address_labels.parquet").resolve().write_bytes(b"not parquet")
    work(conn, s.QUEUE_LEARN)
    assert jobs.fetch(conn, jobs.learn_id(NETWORK, D, WINDOW)).get_status() == JobStatus.FAILED
    assert modelsets.last_learn(s, NETWORK, WINDOW)["decision"] == "failed"
    work(conn, s.QUEUE_PROCESS)
    assert jobs.date_status(s, NETWORK, D, WINDOW).state == "published"


def test_backfilled_dates_are_not_processed_until_asked(s, conn, use_env):
    s = use_env(s.replace(LEARN_ENABLED=False))
    env = process_env(s)
    out = cli("backfill", "--from", HISTORY[0], "--to", HISTORY[1], "--enqueue", env=env)
    assert out.returncode == 0 and out.stdout.count("enqueued: queued on download") == 2
    work(conn, s.QUEUE_DOWNLOAD)
    assert jobs.fetch(conn, jobs.process_id(NETWORK, HISTORY[0], WINDOW)) is None
    status = jobs.date_status(s, NETWORK, HISTORY[0], WINDOW)
    assert status.state == "downloaded" and "not processed" in status.reason
    again = jobs.enqueue_download(s, NETWORK, HISTORY[0], WINDOW, process=False)
    assert not again.enqueued and "already downloaded" in again.message
    # The day comes when the date is wanted published: downloaded is not done.
    assert jobs.enqueue_download(s, NETWORK, HISTORY[0], WINDOW).enqueued
    work(conn, s.QUEUE_DOWNLOAD)
    work(conn, s.QUEUE_PROCESS)
    assert jobs.date_status(s, NETWORK, HISTORY[0], WINDOW).state == "published"


def test_a_queued_backfill_download_is_processed_when_the_chain_asks_for_it(s, conn, use_env):
    s = use_env(s.replace(LEARN_ENABLED=False))
    assert jobs.enqueue_download(s, NETWORK, D, WINDOW, process=False).enqueued
    asked = jobs.enqueue_download(s, NETWORK, D, WINDOW)
    assert not asked.enqueued and "its processing will follow" in asked.message
    work(conn, s.QUEUE_DOWNLOAD)
    assert jobs.fetch(conn, jobs.process_id(NETWORK, D, WINDOW)) is not None


def bad_set(settings, tmp_path, version="20250101T000000Z"):
    """A learned set trained on a label-shuffled history, made current."""
    dates = ("2025-09-01", "2025-09-02", "2025-09-03")
    write_synthetic_history(tmp_path / "bad", dates, n_alerts=400, uninformative=dates)
    train_models(tmp_path / "bad", list(dates), modelsets.root(settings, NETWORK, WINDOW) /
                 version, version, specs=quick_specs())
    return modelsets.make_current(settings, NETWORK, WINDOW, version, by="test")


def test_a_promotion_republishes_the_days_date(chain_settings, conn, use_env, tmp_path):
    s = use_env(chain_settings.replace(LEARN_ENABLED=True))
    dates = ("2025-10-01", "2025-10-02", "2025-10-03", "2025-10-04", "2025-10-05")
    write_synthetic_history(s.INPUT_DIR, dates, n_alerts=500)
    old = bad_set(s, tmp_path)
    assert jobs.enqueue_process(s, NETWORK, dates[-1], WINDOW, conn).enqueued
    work(conn, s.QUEUE_PROCESS)
    first = jobs.date_status(s, NETWORK, dates[-1], WINDOW).version
    assert json.loads((s.OUTPUT_DIR / dates[-1] / storage.METADATA).read_text())[
        "model_set"]["version"] == old.version
    jobs.enqueue_learn(s, NETWORK, dates[-1], WINDOW, conn)
    work(conn, s.QUEUE_LEARN)
    result = jobs.fetch(conn, jobs.learn_id(NETWORK, dates[-1], WINDOW)).return_value()
    assert result["decision"] == "promoted", result["reason"]
    work(conn, s.QUEUE_PROCESS)  # the re-publication the learn queued
    status = jobs.date_status(s, NETWORK, dates[-1], WINDOW)
    assert status.state == "published" and status.version != first
    metadata = json.loads((s.OUTPUT_DIR / dates[-1] / storage.METADATA).read_text())
    assert metadata["model_set"]["version"] == result["version"]


def test_a_running_process_worker_loads_a_promoted_set_before_its_next_job(
        chain_settings, conn, tmp_path):
    s = chain_settings
    write_synthetic_history(s.INPUT_DIR, ("2025-10-05",), n_alerts=300)
    worker = subprocess.Popen([sys.executable, "-m", "services.cli", "worker", "process"],
                              cwd=REPO, env=process_env(s), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        jobs.enqueue_process(s, NETWORK, "2025-10-05", WINDOW, conn)
        metadata_path = s.OUTPUT_DIR / "2025-10-05" / storage.METADATA
        wait_for(metadata_path.is_file, timeout=120, what="the first publication")
        assert json.loads(metadata_path.read_text())["model_set"]["version"] == "shipped"
        first = jobs.date_status(s, NETWORK, "2025-10-05", WINDOW).version
        learned = bad_set(s, tmp_path)
        wait_for(lambda: jobs.fetch(conn, jobs.process_id(NETWORK, "2025-10-05", WINDOW))
                 .get_status() == JobStatus.FINISHED, timeout=30, what="the job record")
        jobs.enqueue_process(s, NETWORK, "2025-10-05", WINDOW, conn)
        wait_for(lambda: jobs.date_status(s, NETWORK, "2025-10-05", WINDOW).version
                 not in (None, first), timeout=120, what="the second publication")
        metadata = json.loads(metadata_path.read_text())
        assert metadata["model_set"]["version"] == learned.version
    finally:
        worker.terminate()
        log = worker.communicate(timeout=60)[0]
    assert f"(the learned set {learned.version})" in log
