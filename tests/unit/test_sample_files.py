"""Sample files on disk: the SOT and input layouts, META.json, byte-identical reruns, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from shared import contract
from shared.manifest import MANIFEST_FILE
from shared.sample import ROW_GROUP_ROWS, meta_json, write_input, write_sot
from shared.storage import sha256_file
from tests.sample_fixtures import DATE, SMALL, small_batch

REPO = Path(__file__).resolve().parents[2]
PARQUETS = (contract.ALERTS_FILE, contract.FEATURES_FILE, contract.CLUSTERS_FILE,
            contract.MONEY_FLOWS_FILE)


def _files(folder: Path) -> dict[str, bytes]:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return {str(p.relative_to(folder)): p.read_bytes() for p in files}


def test_sot_layout_and_meta(tmp_path):
    batch = small_batch()
    prefix = write_sot(batch, tmp_path)
    assert prefix == tmp_path / "snapshots" / "bitcoin" / DATE / "7"
    assert sorted(p.name for p in prefix.iterdir()) == sorted(PARQUETS + (contract.META_FILE,))
    assert (tmp_path / "address-labels" / "bitcoin_address_labels.parquet").is_file()
    meta = json.loads((prefix / contract.META_FILE).read_text())
    assert meta == {"schema_version": "1.0.0", "batch_id": f"bitcoin-{DATE}-7d",
                    "network": "bitcoin", "processing_date": DATE, "window_days": 7,
                    "generated_at": f"{DATE}T00:04:11Z",
                    "counts": meta["counts"], "sha256": meta["sha256"]}
    assert meta["sha256"] == {name: sha256_file(prefix / name) for name in PARQUETS}
    counts = {name.removesuffix(".parquet"): pq.read_metadata(prefix / name).num_rows
              for name in PARQUETS}
    assert meta["counts"] == counts and counts["alerts"] == SMALL


def test_meta_json_shape():
    meta = meta_json("ethereum", "2025-01-02", 30, {"alerts": 3}, {"alerts.parquet": "ab"})
    assert meta["batch_id"] == "ethereum-2025-01-02-30d"
    assert meta["generated_at"] == "2025-01-02T00:04:11Z"
    assert meta["counts"] == {"alerts": 3} and meta["sha256"] == {"alerts.parquet": "ab"}


def test_parquet_is_written_without_timestamps_in_fixed_row_groups(tmp_path):
    prefix = write_sot(small_batch(n_alerts=3000), tmp_path)
    for name in PARQUETS:
        meta = pq.read_metadata(prefix / name)
        assert set(meta.metadata or {}) <= {b"ARROW:schema"}
        groups = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        assert max(groups) <= ROW_GROUP_ROWS


def test_same_arguments_give_byte_identical_files(tmp_path):
    from shared.sample import generate_batch
    for run in ("a", "b"):
        batch = generate_batch("bitcoin", DATE, 7, n_alerts=SMALL, seed=3)
        write_sot(batch, tmp_path / run / "sot")
        write_input(batch, tmp_path / run / "input")
    a, b = _files(tmp_path / "a" / "sot"), _files(tmp_path / "b" / "sot")
    assert a == b and len(a) == 6
    ia = _files(tmp_path / "a" / "input" / DATE)
    ib = _files(tmp_path / "b" / "input" / DATE)
    for files in (ia, ib):  # the download record holds the times of writing, as a download's
        assert json.loads(files.pop(MANIFEST_FILE))["source"]["generator"] == "aml-miner sample"
    assert ia == ib and len(ia) == 6
    assert ia[contract.ALERTS_FILE] == a[f"snapshots/bitcoin/{DATE}/7/{contract.ALERTS_FILE}"]


def test_other_seed_or_date_gives_other_files(tmp_path):
    base = _files(write_sot(small_batch(), tmp_path / "base"))
    seed = _files(write_sot(small_batch(seed=1), tmp_path / "seed"))
    date = _files(write_sot(small_batch(date="2025-10-27"), tmp_path / "date"))
    for other in (seed, date):
        for name in PARQUETS:
            assert base[name] != other[name], name


def test_label_file_merges_dates_in_any_order(tmp_path):
    d1, d2 = small_batch(), small_batch(date="2025-10-27")
    write_sot(d1, tmp_path / "x")
    write_sot(d2, tmp_path / "x")
    write_sot(d2, tmp_path / "y")
    write_sot(d1, tmp_path / "y")
    key = "address-labels/bitcoin_address_labels.parquet"
    x, y = (tmp_path / "x" / key).read_bytes(), (tmp_path / "y" / key).read_bytes()
    assert x == y
    merged = pq.read_table(tmp_path / "x" / key)
    both = {a for d in (d1, d2) for a in d.labels.column("address").to_pylist()}
    assert set(merged.column("address").to_pylist()) == both
    pairs = list(zip(merged.column("address").to_pylist(), merged.column("source").to_pylist()))
    assert len(pairs) == len(set(pairs)) and pairs == sorted(pairs)


def test_a_corrupt_label_file_stops_before_any_batch_file_is_written(tmp_path):
    bad = tmp_path / "address-labels" / "bitcoin_address_labels.parquet"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not parquet")
    message = "bitcoin_address_labels.parquet: not a readable"
    with pytest.raises(contract.ContractError, match=message):
        write_sot(small_batch(), tmp_path)
    assert not (tmp_path / "snapshots").exists()
    assert bad.read_bytes() == b"not parquet"


def test_input_layout_loads_with_clean_types(tmp_path):
    folder = write_input(small_batch(), tmp_path)
    assert folder == tmp_path / DATE and folder.is_symlink()
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        PARQUETS + (contract.META_FILE, contract.LABELS_FILE, MANIFEST_FILE))
    batch = contract.load_batch(folder)
    assert len(batch.alerts) == SMALL
    assert batch.money_flows is not None and batch.labels is not None
    assert batch.alerts.volume_usd.dtype == np.float64
    assert batch.features.total_volume_usd.dtype == np.float64
    assert batch.clusters.total_volume_usd.dtype == np.float64
    assert isinstance(batch.clusters.related_alert_ids.iloc[0], np.ndarray)
    assert isinstance(batch.features.hourly_activity.iloc[0], np.ndarray)
    assert len(batch.features.hourly_activity.iloc[0]) == 24
    assert str(batch.money_flows.processing_date.iloc[0]) == DATE


def test_rewriting_an_input_date_replaces_it_atomically(tmp_path):
    first = write_input(small_batch(), tmp_path).resolve()
    second = write_input(small_batch(seed=1), tmp_path).resolve()
    assert first != second and (tmp_path / DATE).resolve() == second
    meta = json.loads((tmp_path / DATE / contract.META_FILE).read_text())
    assert meta["sha256"][contract.ALERTS_FILE] == sha256_file(second / contract.ALERTS_FILE)


def _cli(*args, env=None):
    env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "services.cli", "sample", *args], cwd=REPO,
                          capture_output=True, text=True, env=env, timeout=300)


def test_cli_writes_both_layouts(tmp_path):
    result = _cli("--network", "bitcoin", "--processing-date", DATE, "--days", "7",
                  "--output-dir", str(tmp_path / "sot"), "--input-dir", str(tmp_path / "input"),
                  "--alerts", "300", "--seed", "5")
    assert result.returncode == 0, result.stderr
    assert "300 alerts" in result.stdout and "MB" in result.stdout  # logs go to stdout
    prefix = tmp_path / "sot" / "snapshots" / "bitcoin" / DATE / "7"
    assert (prefix / contract.META_FILE).is_file()
    assert (tmp_path / "sot" / "address-labels" / "bitcoin_address_labels.parquet").is_file()
    batch = contract.load_batch(tmp_path / "input" / DATE)
    assert len(batch.alerts) == 300
    copy = tmp_path / "input" / DATE / contract.ALERTS_FILE
    assert (prefix / contract.ALERTS_FILE).read_bytes() == copy.read_bytes()


def test_cli_runs_in_separate_processes_give_identical_files(tmp_path):
    for run, hash_seed in (("a", "1"), ("b", "2")):  # set/dict order must not leak into files
        result = _cli("--processing-date", DATE, "--output-dir", str(tmp_path / run),
                      "--alerts", "150", "--seed", "9", env={"PYTHONHASHSEED": hash_seed})
        assert result.returncode == 0, result.stderr
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert a == b and len(a) == 6


def test_cli_defaults_come_from_settings(tmp_path):
    result = _cli("--processing-date", DATE, "--output-dir", str(tmp_path), "--alerts", "20",
                  env={"NETWORK": "ethereum", "WINDOW_DAYS": "30"})
    assert result.returncode == 0, result.stderr
    prefix = tmp_path / "snapshots" / "ethereum" / DATE / "30"
    meta = json.loads((prefix / contract.META_FILE).read_text())
    assert meta["counts"]["alerts"] == 20 and meta["window_days"] == 30


@pytest.mark.parametrize("args, message", [
    (["--processing-date", "2025-02-30"], "2025-02-30"),
    (["--processing-date", DATE, "--alerts", "0"], "--alerts"),
    (["--processing-date", DATE, "--days", "-3"], "--days"),
    (["--processing-date", DATE, "--network", "bit coin"], "network"),
])
def test_cli_refuses_bad_arguments(tmp_path, args, message):
    result = _cli(*args, "--output-dir", str(tmp_path))
    assert result.returncode == 2
    assert message in result.stderr
    assert not (tmp_path / "snapshots").exists()


def test_cli_writes_a_history_with_one_cumulative_labels_file(tmp_path):
    result = _cli("--from", "2025-10-01", "--to", "2025-10-03", "--output-dir",
                  str(tmp_path / "sot"), "--input-dir", str(tmp_path / "input"), "--alerts", "200")
    assert result.returncode == 0, result.stderr
    for date in ("2025-10-01", "2025-10-02", "2025-10-03"):
        assert (tmp_path / "sot" / "snapshots" / "bitcoin" / date / "7" / "META.json").is_file()
    labels = [set(pq.read_table(tmp_path / "input" / d / contract.LABELS_FILE,
                                columns=["address"]).column(0).to_pylist())
              for d in ("2025-10-01", "2025-10-02", "2025-10-03")]
    assert labels[0] < labels[1] < labels[2]  # each date's copy knows every earlier label
    sot_labels = tmp_path / "sot" / "address-labels" / "bitcoin_address_labels.parquet"
    assert set(pq.read_table(sot_labels, columns=["address"]).column(0).to_pylist()) == labels[2]
    assert contract.load_batch(tmp_path / "input" / "2025-10-03").labels is not None


@pytest.mark.parametrize("args, message", [
    (["--from", "2025-10-03", "--to", "2025-10-01"], "before it starts"),
    (["--from", "2025-10-01"], "--from and --to go together"),
    (["--from", "2025-10-01", "--to", "2025-10-02", "--processing-date", DATE],
     "not allowed with argument"),
])
def test_cli_refuses_a_bad_range(tmp_path, args, message):
    result = _cli(*args, "--output-dir", str(tmp_path))
    assert result.returncode == 2
    assert message in result.stderr
    assert not (tmp_path / "snapshots").exists()


def test_the_sample_sot_publishes_its_history_oldest_first_and_today_last():
    import datetime as dt

    from services.ops.sot_server import sample_dates

    dates = sample_dates(dt.date(2025, 10, 31), 30)
    assert len(dates) == 31 and dates[0] == "2025-10-01" and dates[-1] == "2025-10-31"
    assert dates == sorted(dates)
