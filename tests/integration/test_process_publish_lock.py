"""The processor reads one pinned input version, and publishes a date only under its lock."""

from __future__ import annotations

import json
import os
import shutil
import socket

import pyarrow.parquet as pq
import pytest

from services.processor.inputs import checksums
from services.processor.process import process_batch
from shared import publish_lock, storage
from shared.sample import generate_batch, write_input
from tests.conftest import REPO
from tests.processor_fixtures import DATE, generated_input

SHIPPED = REPO / "trained_models"


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return generated_input(tmp_path_factory.mktemp("sample") / "input", n_alerts=1500, seed=5)


@pytest.fixture
def input_dir(sample, tmp_path):
    folder = tmp_path / "input"
    shutil.copytree(sample, folder, symlinks=True)
    return folder


def test_an_input_republished_mid_run_is_not_mixed_in(input_dir, tmp_path, settings):
    """The run started on version A; B is published after A was read: every output is A's."""
    first = storage.resolve(input_dir / DATE)
    first_sums = checksums(first)
    republished = []

    def progress(step, _seconds):
        if step == "read" and not republished:
            write_input(generate_batch("bitcoin", DATE, window_days=7, n_alerts=1200, seed=9),
                        input_dir)
            republished.append(storage.resolve(input_dir / DATE))

    out = tmp_path / "output"
    metadata = process_batch(input_dir, out, DATE, models_dir=SHIPPED, settings=settings,
                             progress=progress)
    assert republished and republished[0] != first
    assert metadata["input_sha256"] == first_sums and metadata["alert_count"] == 1500
    scored = pq.read_table(out / DATE / storage.ALERTS_SCORED, columns=["alert_id"])
    source = pq.read_table(first / "alerts.parquet", columns=["alert_id"])
    assert scored.column("alert_id").to_pylist() == source.column("alert_id").to_pylist()


def test_a_second_publisher_fails_naming_the_first_and_the_date_stays_served(
        input_dir, tmp_path, settings):
    out = tmp_path / "output"
    process_batch(input_dir, out, DATE, models_dir=SHIPPED, settings=settings)
    served = storage.resolve(out / DATE)
    record = publish_lock.acquire(out, DATE, wait_s=0, stale_s=120)
    try:
        with pytest.raises(publish_lock.DateLocked) as err:
            process_batch(input_dir, out, DATE, models_dir=SHIPPED,
                          settings=settings.replace(PUBLISH_LOCK_WAIT_SECONDS=0))
        assert str(err.value).startswith(f"date {DATE} is being published by "
                                         f"{socket.gethostname()} pid {record['pid']} since ")
        assert storage.resolve(out / DATE) == served
        assert json.loads((out / DATE / storage.METADATA).read_text())["alert_count"] == 1500
    finally:
        publish_lock.release(out, DATE, record)
    process_batch(input_dir, out, DATE, models_dir=SHIPPED, settings=settings)
    assert storage.resolve(out / DATE) != served


def test_the_processor_sweeps_stale_output_staging(input_dir, tmp_path, settings):
    out = tmp_path / "output"
    crashed = out / storage.VERSIONS / f"{DATE}-20250101T000000-deadbeef"
    crashed.mkdir(parents=True)
    (crashed / storage.ALERTS_SCORED).write_bytes(b"half")
    process_batch(input_dir, out, DATE, models_dir=SHIPPED, settings=settings)
    assert crashed.exists()  # clean_stale's age bound (6 h) keeps a fresh folder alive
    os.utime(crashed, (1, 1))
    process_batch(input_dir, out, DATE, models_dir=SHIPPED, settings=settings)
    assert not crashed.exists()
