"""A failed process run leaves the previous result byte-identical; the CLI says why and exits 1."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from services.processor.dataset import load_date
from services.processor.models import MODEL_NAMES, ModelError, model_file, sidecar_file
from services.processor.outputs import ScoreError
from services.processor.process import process_batch
from shared.contract import ContractError
from shared.storage import InvalidDate, sha256_file
from tests.conftest import REPO
from tests.processor_fixtures import DATE, generated_input

SHIPPED = REPO / "trained_models"


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return generated_input(tmp_path_factory.mktemp("sample") / "input", n_alerts=2000, seed=5)


@pytest.fixture
def input_dir(sample, tmp_path):
    """A private copy of the sample input that a test may damage."""
    folder = tmp_path / "input"
    shutil.copytree(sample, folder)
    return folder


@pytest.fixture
def published(input_dir, tmp_path):
    output_dir = tmp_path / "output"
    process_batch(input_dir, output_dir, DATE, models_dir=SHIPPED)
    return output_dir


def snapshot(root):
    """Every entry under root (hidden ones too): file bytes and symlink targets."""
    state = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            if os.path.islink(path):
                state[rel] = ("link", os.readlink(path))
            elif os.path.isfile(path):
                state[rel] = ("file", open(path, "rb").read())
            else:
                state[rel] = ("dir", None)
    return state


def test_corrupted_input_leaves_the_old_result(input_dir, published):
    before = snapshot(published)
    alerts = input_dir / DATE / "alerts.parquet"
    alerts.write_bytes(alerts.read_bytes()[: alerts.stat().st_size // 2])
    with pytest.raises(ContractError, match="alerts.parquet: not a readable parquet file"):
        process_batch(input_dir, published, DATE, models_dir=SHIPPED)
    assert snapshot(published) == before


def test_wrong_date_in_the_alerts_is_refused(input_dir, tmp_path):
    shutil.copytree(input_dir / DATE, input_dir / "2025-10-27")
    with pytest.raises(ContractError, match="processing_date is 2025-10-26, not the requested "
                                            "2025-10-27"):
        process_batch(input_dir, tmp_path / "out", "2025-10-27", models_dir=SHIPPED)
    assert not (tmp_path / "out" / "2025-10-27").exists()


def test_missing_date_and_malformed_date_are_refused(input_dir, tmp_path):
    with pytest.raises(ContractError, match="date folder does not exist"):
        process_batch(input_dir, tmp_path, "2025-01-01", models_dir=SHIPPED)
    with pytest.raises(InvalidDate, match="not in YYYY-MM-DD form"):
        process_batch(input_dir, tmp_path, "26-10-2025", models_dir=SHIPPED)


def _bad_cluster_model(input_dir, models_dir):
    """A regression booster posing as the cluster scorer: its outputs lie outside [0, 1]."""
    import lightgbm

    for name in MODEL_NAMES[:2]:
        for path in (model_file(SHIPPED, name, "1.0.0"),):
            shutil.copy(path, models_dir / path.name)
            shutil.copy(sidecar_file(path), models_dir / sidecar_file(path).name)
    frame = load_date(input_dir, DATE).clusters
    label = np.random.default_rng(0).uniform(2, 3, len(frame))
    data = lightgbm.Dataset(frame.to_numpy(), label=label, feature_name=list(frame.columns))
    booster = lightgbm.train({"objective": "regression", "verbose": -1, "num_threads": 1}, data,
                             num_boost_round=3)
    path = model_file(models_dir, "cluster_scorer", "1.0.0")
    booster.save_model(str(path))
    sidecar_file(path).write_text(json.dumps({
        "name": "cluster_scorer", "version": "1.0.0", "features": booster.feature_name(),
        "model_sha256": sha256_file(path)}))


def test_model_giving_scores_outside_unit_interval_fails_and_leaves_the_old_result(
        input_dir, published, tmp_path):
    models_dir = tmp_path / "bad-models"
    models_dir.mkdir()
    _bad_cluster_model(input_dir, models_dir)
    before = snapshot(published)
    with pytest.raises(ScoreError, match=r"cluster_scorer_v1\.0\.0: \d+ score\(s\) not finite or "
                                         r"outside \[0, 1\]"):
        process_batch(input_dir, published, DATE, models_dir=models_dir)
    assert snapshot(published) == before


def test_missing_models_fail_before_touching_the_output(input_dir, published, tmp_path):
    before = snapshot(published)
    with pytest.raises(ModelError, match="no alert_scorer_v<version>.txt"):
        process_batch(input_dir, published, DATE, models_dir=tmp_path / "nothing")
    assert snapshot(published) == before


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "services.cli", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def test_cli_process_publishes_and_prints_a_summary(input_dir, tmp_path):
    result = _cli("process", "--input-dir", input_dir, "--output-dir", tmp_path / "out",
                  "--processing-date", DATE, "--models-dir", SHIPPED)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["processing_date"] == DATE and summary["alert_count"] > 0
    assert (tmp_path / "out" / DATE / "metadata.json").is_file()


@pytest.mark.parametrize("damage, date, message", [
    ("truncate", DATE, "alerts.parquet: not a readable parquet file"),
    (None, "2025-13-01", "processing date '2025-13-01' is not a calendar date"),
    (None, "2025-01-01", "2025-01-01: date folder does not exist"),
])
def test_cli_process_bad_input_exits_1_naming_the_cause(input_dir, tmp_path, damage, date,
                                                        message):
    if damage == "truncate":
        (input_dir / DATE / "alerts.parquet").write_bytes(b"PAR1 not really")
    result = _cli("process", "--input-dir", input_dir, "--output-dir", tmp_path / "out",
                  "--processing-date", date, "--models-dir", SHIPPED)
    assert result.returncode == 1
    assert message in result.stderr and result.stderr.startswith("aml-miner process: error:")
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out" / date).exists()


def test_cli_process_with_missing_models_exits_1(input_dir, tmp_path):
    result = _cli("process", "--input-dir", input_dir, "--output-dir", tmp_path / "out",
                  "--processing-date", DATE, "--models-dir", tmp_path / "none")
    assert result.returncode == 1 and "no alert_scorer_v<version>.txt" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_type_in_a_passed_on_alert_column_fails_before_publishing(input_dir, published):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = input_dir / DATE / "alerts.parquet"
    alerts = pq.read_table(path)
    index = alerts.schema.get_field_index("evidence_json")
    bad = pa.array([[1, 2]] * alerts.num_rows, pa.list_(pa.int64()))
    pq.write_table(alerts.set_column(index, "evidence_json", bad), path)
    before = snapshot(published)
    with pytest.raises(ContractError, match="alerts.parquet: column 'evidence_json' has type"):
        process_batch(input_dir, published, DATE, models_dir=SHIPPED)
    assert snapshot(published) == before


def test_alert_without_address_fails_naming_it_and_leaves_the_old_result(input_dir, published):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = input_dir / DATE / "alerts.parquet"
    table = pq.read_table(path)
    addresses = table.column("address").to_pylist()
    addresses[0] = None
    pq.write_table(table.set_column(table.schema.get_field_index("address"), "address",
                                    pa.array(addresses, pa.string())), path)
    before = snapshot(published)
    with pytest.raises(ContractError, match=r"alerts\.parquet: 1 row\(s\) with null or empty "
                                            r"'address'"):
        process_batch(input_dir, published, DATE, models_dir=SHIPPED)
    assert snapshot(published) == before


@pytest.mark.parametrize("file, key, row", [("alerts.parquet", "alert_id", -1),
                                            ("alerts.parquet", "alert_id", 1),
                                            ("features.parquet", "address", 7)])
def test_duplicate_key_fails_naming_file_and_value_and_leaves_the_old_result(
        input_dir, published, file, key, row):
    """The processor checks these keys while resolving links: same message as the contract's."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = input_dir / DATE / file
    table = pq.read_table(path)
    values = table.column(key).to_pylist()
    values[row] = values[0]
    pq.write_table(table.set_column(table.schema.get_field_index(key), key,
                                    pa.array(values, pa.string())), path)
    before = snapshot(published)
    with pytest.raises(ContractError, match=rf"{file}: 1 duplicate '{key}' value\(s\), "
                                            rf"e\.g\. {values[0]}") as info:
        process_batch(input_dir, published, DATE, models_dir=SHIPPED)
    assert info.value.file == str(input_dir / DATE / file)
    assert snapshot(published) == before
