"""Model files and sidecars: version choice, load-time checks, inference with changed columns."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest

from services.processor import models as M
from services.processor.dataset import load_date
from tests.processor_fixtures import SYNTHETIC_DATES, train_tiny


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    train_tiny(root)
    return root


@pytest.fixture
def models_dir(trained, tmp_path):
    folder = tmp_path / "models"
    shutil.copytree(trained / "models", folder)
    return folder


@pytest.fixture(scope="module")
def frame(trained):
    return load_date(trained / "input", SYNTHETIC_DATES[-1]).alerts


def _copy_version(folder, name, old, new):
    src = M.model_file(folder, name, old)
    dst = M.model_file(folder, name, new)
    shutil.copy(src, dst)
    sidecar = json.loads(M.sidecar_file(src).read_text())
    sidecar["version"] = new
    M.sidecar_file(dst).write_text(json.dumps(sidecar))


def test_load_models_takes_the_highest_version_or_a_pinned_one(models_dir):
    for version in ("1.2.0", "1.10.0"):
        for name in M.MODEL_NAMES:
            _copy_version(models_dir, name, "1.0.0", version)
    assert M.load_models(models_dir).versions()["alert_scorer"] == "alert_scorer_v1.10.0"
    pinned = M.load_models(models_dir, "1.2.0")
    assert set(pinned.versions().values()) == {f"{n}_v1.2.0" for n in M.MODEL_NAMES}


def test_missing_model_or_sidecar_is_an_error_naming_the_file(models_dir, tmp_path):
    with pytest.raises(M.ModelError, match="no alert_scorer_v<version>.txt"):
        M.load_models(tmp_path / "empty")
    with pytest.raises(M.ModelError, match="alert_scorer_v9.9.9.txt: model file is missing"):
        M.load_models(models_dir, "9.9.9")
    M.sidecar_file(M.model_file(models_dir, "alert_ranker", "1.0.0")).unlink()
    with pytest.raises(M.ModelError, match=r"alert_ranker_v1\.0\.0\.json is missing"):
        M.load_models(models_dir)


def test_model_file_changed_after_its_sidecar_is_refused(models_dir):
    path = M.model_file(models_dir, "cluster_scorer", "1.0.0")
    path.write_text(path.read_text() + "\n")
    with pytest.raises(M.ModelError) as err:
        M.load_models(models_dir)
    assert "cluster_scorer_v1.0.0.txt and" in str(err.value)
    assert "cluster_scorer_v1.0.0.json disagree" in str(err.value)
    assert "sha256" in str(err.value)


@pytest.mark.parametrize("change, message", [
    (lambda f: f[:-1], "features in the model"),
    (lambda f: [f[1], f[0], *f[2:]], "feature 0 is"),
])
def test_sidecar_feature_list_that_disagrees_is_refused(models_dir, change, message):
    sidecar_path = M.sidecar_file(M.model_file(models_dir, "alert_scorer", "1.0.0"))
    sidecar = json.loads(sidecar_path.read_text())
    sidecar["features"] = change(sidecar["features"])
    sidecar_path.write_text(json.dumps(sidecar))
    with pytest.raises(M.ModelError, match=message) as err:
        M.load_models(models_dir)
    assert "alert_scorer_v1.0.0.txt and" in str(err.value) and ".json disagree" in str(err.value)


def test_unreadable_model_and_sidecar_are_errors(models_dir):
    path = M.model_file(models_dir, "alert_ranker", "1.0.0")
    M.sidecar_file(path).write_text("{not json")
    with pytest.raises(M.ModelError, match="alert_ranker_v1.0.0.json: not readable JSON"):
        M.load_models(models_dir)
    path.write_text("garbage")
    M.sidecar_file(path).write_text(json.dumps({"features": []}))
    with pytest.raises(M.ModelError, match="not a readable LightGBM model"):
        M.load_models(models_dir)


def test_reordered_and_extra_columns_give_the_same_scores(models_dir, frame):
    model = M.load_model(models_dir, "alert_scorer")
    expected = model.predict(frame)
    shuffled = frame[frame.columns[::-1]].copy()
    shuffled["not_a_feature"] = np.float32(123.0)
    np.testing.assert_array_equal(model.predict(shuffled), expected)


def test_missing_column_is_nan_and_logged_once(models_dir, frame, caplog):
    model = M.load_model(models_dir, "alert_scorer")
    used = model.features[0]
    with_nan = frame.copy()
    with_nan[used] = np.float32(np.nan)
    without = frame.drop(columns=[used])
    with caplog.at_level(logging.WARNING, logger=M.__name__):
        scores = model.predict(without)
        model.predict(without)
    np.testing.assert_array_equal(scores, model.predict(with_nan))
    warnings = [r for r in caplog.records if used in r.getMessage()]
    assert len(warnings) == 1


def test_to_matrix_is_c_order_float64_of_float32_values_in_the_given_order(frame):
    names = [frame.columns[2], "absent", frame.columns[0]]
    wide = frame.astype(np.float64) / 3  # values a float32 cannot hold exactly
    matrix = M.to_matrix(wide, names)
    assert matrix.flags["C_CONTIGUOUS"] and matrix.dtype == np.float64
    assert matrix.shape == (len(frame), 3)
    # every engine sees the float32 values LightGBM saw when it read a float32 matrix
    np.testing.assert_array_equal(matrix[:, 0], wide[names[0]].to_numpy(np.float32))
    assert np.isnan(matrix[:, 1]).all()


def test_probabilities_are_in_unit_interval(models_dir, frame):
    scores = M.load_model(models_dir, "alert_scorer").predict(frame)
    assert len(scores) == len(frame)
    assert np.isfinite(scores).all() and scores.min() >= 0 and scores.max() <= 1
