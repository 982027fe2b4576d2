"""The whole chain on a sample batch: enqueue -> download (loopback S3) -> process -> published."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from rq import Queue
from rq.job import JobStatus

from shared import jobs, storage
from shared.sample import generate_batch, write_input, write_sot
from tests.chain_fixtures import (CHAIN, REPO, RQ, chain_settings, cli, conn,  # noqa: F401
                                  process_env, run_chain, use_env, wait_for, work,
                                  write_repeated_alert_ids)
from tests.s3_fixtures import (DATE, NETWORK, WINDOW, moto_endpoint, proxy,  # noqa: F401
                               s3_proxy, sot)

PR_ID = f"process-{NETWORK}-{DATE}-{WINDOW}"


@pytest.fixture(scope="module")
def sample_sot(tmp_path_factory) -> Path:
    """A small sample day in the SOT bucket layout (generated once for the module)."""
    root = tmp_path_factory.mktemp("sot")
    write_sot(generate_batch(NETWORK, DATE, WINDOW, n_alerts=300, seed=3), root)
    return root


@pytest.fixture
def s(sot, sample_sot, conn, use_env):
    sot.put_tree(sample_sot)
    return use_env(sot.settings.replace(**CHAIN))


def output_files(settings) -> dict[str, bytes]:
    folder = settings.OUTPUT_DIR / DATE
    return {name: (folder / name).read_bytes() for name in storage.OUTPUT_FILES}


def test_enqueue_downloads_processes_and_publishes(s, conn):
    assert jobs.enqueue_download(s, NETWORK, DATE, WINDOW).enqueued
    run_chain(s, conn)
    status = jobs.date_status(s, NETWORK, DATE, WINDOW)
    assert status.state == "published" and status.version
    metadata = json.loads((s.OUTPUT_DIR / DATE / storage.METADATA).read_text())
    identity = (metadata["network"], metadata["window_days"], metadata["alert_count"])
    assert identity == (NETWORK, WINDOW, 300)
    ranked = pq.read_table(s.OUTPUT_DIR / DATE / storage.ALERTS_RANKED)
    assert ranked.num_rows == 300
    meta = jobs.fetch(conn, PR_ID).get_meta()
    assert meta["step"] == "published" and meta["scored"] == 300 and meta["ranked"] == 300
    assert meta["done"] == ["validated", "features", "scored", "ranked", "clusters_scored",
                            "written"]
    assert meta["clusters_scored"] == metadata["cluster_count"]
    assert status.progress["step"] == "published"
    again = jobs.enqueue_download(s, NETWORK, DATE, WINDOW)
    assert not again.enqueued and "already published" in again.message


def test_force_reruns_a_published_date_into_a_new_version(s, conn):
    jobs.enqueue_download(s, NETWORK, DATE, WINDOW)
    run_chain(s, conn)
    first = jobs.date_status(s, NETWORK, DATE, WINDOW).version
    before = output_files(s)
    assert jobs.enqueue_download(s, NETWORK, DATE, WINDOW, force=True).enqueued
    assert jobs.date_status(s, NETWORK, DATE, WINDOW).state == "queued"
    run_chain(s, conn)
    status = jobs.date_status(s, NETWORK, DATE, WINDOW)
    assert status.state == "published" and status.version != first
    after = output_files(s)
    assert after[storage.ALERTS_SCORED] == before[storage.ALERTS_SCORED]  # same input, same bytes


def test_a_process_failure_keeps_the_previous_output(s, sot, conn, tmp_path):
    jobs.enqueue_download(s, NETWORK, DATE, WINDOW)
    run_chain(s, conn)
    kept_version, kept = jobs.date_status(s, NETWORK, DATE, WINDOW).version, output_files(s)
    # A re-published batch whose checksums are right but whose alerts break the contract.
    bad = tmp_path / "bad"
    write_repeated_alert_ids(bad, NETWORK, DATE, WINDOW, seed=3)
    sot.put_tree(bad)
    assert jobs.enqueue_download(s, NETWORK, DATE, WINDOW, force=True).enqueued
    run_chain(s, conn)
    status = jobs.date_status(s, NETWORK, DATE, WINDOW)
    assert status.state == "failed" and status.stage == "process"
    assert "ContractError" in status.reason and "alert_id" in status.reason
    assert status.version == kept_version and output_files(s) == kept
    out = cli("status", "--processing-date", DATE, env=process_env(s))
    assert out.returncode == 1 and "still published" in out.stdout


@pytest.fixture
def process_worker(compiled_cache):
    """Start `aml-miner worker process` (its models compiled already); it and its work horse
    are killed at the end."""
    started = []

    def start(settings) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-m", "services.cli", "worker", "process"],
                                cwd=REPO, env=process_env(settings), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        started.append(proc)
        return proc
    yield start
    for proc in started:
        kill_tree(proc)
        proc.communicate(timeout=30)


def kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL a worker and its work horse together, as a container kill does.

    The horse runs in its own process group, so killing the worker's group would miss it.
    """
    with contextlib.suppress(psutil.NoSuchProcess):
        tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        for member in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                member.kill()
        psutil.wait_procs(tree, timeout=30)


def test_the_process_worker_runs_a_job_in_a_forked_horse_with_preloaded_models(big, conn,
                                                                              process_worker):
    """LightGBM's OpenMP threads do not survive fork; a job must still finish, not hang, and
    score on the compiled models the worker loaded before it forked, on every core."""
    proc = process_worker(big)
    # pyarrow sizes its thread pool from OMP_NUM_THREADS: a job must still see every core
    arrow = Queue(big.QUEUE_PROCESS, connection=conn).enqueue("pyarrow.cpu_count")
    jobs.enqueue_process(big, NETWORK, DATE, WINDOW, connection=conn)
    job = jobs.fetch(conn, PR_ID)
    wait_for(lambda: job.get_status() in (JobStatus.FINISHED, JobStatus.FAILED), timeout=120,
             what="the job to end")
    assert job.get_status() == JobStatus.FINISHED, jobs.failure_reason(job)
    assert arrow.return_value() == pa.cpu_count()
    assert complete_or_absent(big.OUTPUT_DIR / DATE) and storage.resolve(big.OUTPUT_DIR / DATE)
    os.kill(proc.pid, signal.SIGTERM)
    out = proc.communicate(timeout=30)[0]
    lines = out.splitlines()
    loaded = next(i for i, line in enumerate(lines) if "models loaded" in line)
    listening = next(i for i, line in enumerate(lines) if "Listening on" in line)
    assert loaded < listening  # the models before the first job
    assert "not preloaded" not in out  # the job used the worker's models
    metadata = json.loads((big.OUTPUT_DIR / DATE / storage.METADATA).read_text())
    assert {r["engine"] for r in metadata["predict_engines"].values()} == {"compiled"}
    cores = len(os.sched_getaffinity(0))
    assert out.count(f"on {cores} threads with compiled") == 3, out[-3000:]


@pytest.fixture(scope="module")
def big_input(tmp_path_factory) -> Path:
    """A date large enough that processing it takes a moment (so a signal lands mid-job)."""
    root = tmp_path_factory.mktemp("big")
    write_input(generate_batch(NETWORK, DATE, WINDOW, n_alerts=60_000, seed=5), root / "input")
    return root / "input"


@pytest.fixture
def big(chain_settings, big_input):
    return chain_settings.replace(INPUT_DIR=big_input)


def complete_or_absent(folder: Path) -> bool:
    """A reader's view of output/{date}: absent, or every output file present."""
    version = storage.resolve(folder)
    return version is None or all((version / name).is_file() for name in storage.OUTPUT_FILES)


def test_sigterm_during_processing_finishes_the_job_and_publishes_whole(big, conn, process_worker):
    proc = process_worker(big)
    jobs.enqueue_process(big, NETWORK, DATE, WINDOW, connection=conn)
    job = jobs.fetch(conn, PR_ID)
    wait_for(lambda: job.get_status() == JobStatus.STARTED, timeout=60, what="processing to start")
    assert jobs.date_status(big, NETWORK, DATE, WINDOW).state == "processing"
    os.kill(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 120
    while proc.poll() is None:  # a reader never sees a partial folder meanwhile
        assert time.monotonic() < deadline, "the worker did not stop after SIGTERM"
        assert complete_or_absent(big.OUTPUT_DIR / DATE)
        time.sleep(0.002)
    assert proc.returncode == 0
    assert job.get_status() == JobStatus.FINISHED  # warm shutdown: the job finished first
    assert storage.resolve(big.OUTPUT_DIR / DATE) is not None
    assert complete_or_absent(big.OUTPUT_DIR / DATE)


def publish_previous(settings) -> dict[str, bytes]:
    """An earlier result of the date, as a reader sees it before the re-run."""
    target = storage.date_dir(settings.OUTPUT_DIR, DATE)
    with storage.staging_dir(target) as tmp:
        for name in storage.OUTPUT_FILES:
            (tmp / name).write_bytes(f"previous {name}".encode())
        storage.publish(tmp, target)
    return output_files(settings)


def test_a_hard_kill_while_writing_leaves_the_previous_output(big, conn, process_worker):
    previous = publish_previous(big)
    version = storage.resolve(big.OUTPUT_DIR / DATE)
    proc = process_worker(big)
    jobs.enqueue_process(big, NETWORK, DATE, WINDOW, connection=conn)
    job = jobs.fetch(conn, PR_ID)
    # alerts_scored is written in the background from the "scored" step on
    wait_for(lambda: job.get_meta().get("step") in ("scored", "ranked", "clusters_scored"),
             timeout=120, interval=0.002, what="the job to start writing its output")
    kill_tree(proc)  # the worker and its work horse, mid-write
    proc.wait(timeout=30)
    assert job.get_status() != JobStatus.FINISHED
    versions = big.OUTPUT_DIR / storage.VERSIONS
    left = [p.name for p in versions.iterdir() if p.name != version.name]
    assert left  # the killed job's half-written folder: there, but never published
    assert storage.resolve(big.OUTPUT_DIR / DATE) == version
    assert output_files(big) == previous
    # Until the job's heartbeat lapses it still looks like it runs; then RQ settles it.
    assert jobs.date_status(big, NETWORK, DATE, WINDOW).state == "processing"
    jobs.reap_abandoned(big, conn, now=time.time() + 3600)  # an hour on, injected
    status = jobs.date_status(big, NETWORK, DATE, WINDOW)
    assert status.state == "queued" and status.stage == "process"  # its one retry, by itself
    assert jobs.fetch(conn, PR_ID).retries_left == 0
    process_worker(big)  # the restarted container
    wait_for(lambda: job.get_status() == JobStatus.FINISHED, timeout=300,
             what="the retried job to publish")
    assert storage.resolve(big.OUTPUT_DIR / DATE) != version
    assert complete_or_absent(big.OUTPUT_DIR / DATE)


def test_a_plain_rq_worker_runs_the_process_job_loading_models_itself(chain_settings, conn,
                                                                      tmp_path, compiled_cache):
    s = chain_settings.replace(INPUT_DIR=tmp_path / "input")
    write_input(generate_batch(NETWORK, DATE, WINDOW, n_alerts=300, seed=3), s.INPUT_DIR)
    jobs.enqueue_process(s, NETWORK, DATE, WINDOW, connection=conn)
    out = subprocess.run([RQ, "worker", "-u", s.REDIS_URL, "--burst", s.QUEUE_PROCESS],
                         cwd=REPO, env=process_env(s), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert jobs.fetch(conn, PR_ID).get_status() == JobStatus.FINISHED
    assert jobs.date_status(s, NETWORK, DATE, WINDOW).state == "published"
    assert "not preloaded" in out.stdout + out.stderr
