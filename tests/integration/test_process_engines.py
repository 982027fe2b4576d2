"""The prediction engines on real files and processes: compiled trees within 1e-9 of LightGBM,
the compile cache keyed by the model's sha256, and every way back to LightGBM (never a
failed date)."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import threading

import lightgbm
import numpy as np
import pyarrow.parquet as pq
import pytest

from services.processor import compiled, predictor
from services.processor.models import Model, load_models, model_file, sidecar_file
from services.processor.parity import TOLERANCE
from services.processor.predictor import COMPILED, LIGHTGBM
from services.processor.process import process_batch
from services.processor.train import ModelSpec
from shared import storage
from shared.storage import sha256_file
from tests.conftest import REPO
from tests.processor_fixtures import (DATE, SYNTHETIC_DATES, generated_input, quick_specs,
                                      write_synthetic_date)

LAST = SYNTHETIC_DATES[-1]


def _train(root, specs):
    from services.processor.train import train_models

    for i, date in enumerate(SYNTHETIC_DATES):
        write_synthetic_date(root / "input", date, 600, seed=i)
    train_models(root / "input", list(SYNTHETIC_DATES), root / "models", specs=specs)
    return root


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A freshly trained set (few rounds) and the dates it learned from."""
    return _train(tmp_path_factory.mktemp("tiny"), quick_specs())


@pytest.fixture
def models_dir(tiny, tmp_path):
    folder = tmp_path / "models"
    shutil.copytree(tiny / "models", folder)
    return folder


def _lightgbm_scores(models, input_dir, date) -> dict:
    """LightGBM's own scores of a date's alerts and clusters (float32 features, as ever)."""
    from services.processor.features import alert_features, cluster_features
    from services.processor.inputs import load_inputs

    inputs = load_inputs(input_dir / date)
    alerts = alert_features(inputs.alerts, inputs.features, inputs.clusters, inputs.money_flows,
                            inputs.links)
    clusters = cluster_features(inputs.clusters, inputs.alerts, inputs.features,
                                inputs.money_flows, inputs.links, alerts)
    return {m.name: m.booster.predict(m.matrix(frame).astype(np.float32), num_threads=2)
            for m, frame in ((models.alert_scorer, alerts), (models.cluster_scorer, clusters))}


def _published(output_dir, date) -> dict:
    folder = output_dir / date
    return {"alert_scorer": pq.read_table(folder / storage.ALERTS_SCORED).column("score"),
            "cluster_scorer": pq.read_table(folder / storage.CLUSTERS_SCORED).column("score")}


def _engines(metadata: dict) -> dict:
    return {name: report["engine"] for name, report in metadata["predict_engines"].items()}


def test_a_freshly_trained_set_scores_every_row_within_1e9_of_lightgbm(tiny, tmp_path):
    models = load_models(tiny / "models", engine=COMPILED, cache_dir=tmp_path / "cache")
    metadata = process_batch(tiny / "input", tmp_path / "out", LAST, models=models)
    assert set(_engines(metadata).values()) == {COMPILED}
    expected = _lightgbm_scores(models, tiny / "input", LAST)
    for name, scores in _published(tmp_path / "out", LAST).items():
        diff = np.abs(scores.to_numpy() - expected[name])
        assert len(diff) and diff.max() <= TOLERANCE, (name, diff.max())


def _change_a_leaf(models_dir, name: str) -> None:
    """Change the leading digit of a leaf value in a model file (the same length: the file's
    tree_sizes stay right) and record the new sha256 in its sidecar."""
    path = model_file(models_dir, name, "1.0.0")
    text = path.read_text()
    at = text.index("leaf_value=") + len("leaf_value=")
    at += next(i for i, c in enumerate(text[at:]) if c in "123456789")
    path.write_text(text[:at] + ("2" if text[at] == "1" else "1") + text[at + 1:])
    sidecar = json.loads(sidecar_file(path).read_text())
    sidecar["model_sha256"] = sha256_file(path)
    sidecar_file(path).write_text(json.dumps(sidecar))


def _entries(cache, sha):
    return sorted((cache / sha).glob("*.o"))


def test_the_cache_is_keyed_by_the_models_sha256_and_a_changed_model_recompiles(
        models_dir, tmp_path, caplog):
    cache = tmp_path / "cache"
    first = predictor.warm_cache(models_dir, cache)
    assert {r["engine"] for r in first.values()} == {COMPILED}
    before = load_models(models_dir)
    assert all(len(_entries(cache, m.sha256)) == 1 for m in before)
    with caplog.at_level(logging.INFO, logger=predictor.__name__):
        load_models(models_dir, engine=COMPILED, cache_dir=cache)
    assert not [r for r in caplog.records if "compiling" in r.getMessage()]  # all from cache
    caplog.clear()
    _change_a_leaf(models_dir, "alert_scorer")
    with caplog.at_level(logging.INFO, logger=predictor.__name__):
        after = load_models(models_dir, engine=COMPILED, cache_dir=cache)
    assert [r.getMessage() for r in caplog.records if "compiling" in r.getMessage()] == [
        f"compiling 1 model(s) into {cache}: alert_scorer"]
    scorer = after.alert_scorer
    assert scorer.sha256 != before.alert_scorer.sha256 and len(_entries(cache, scorer.sha256)) == 1
    rows = np.random.default_rng(0).normal(size=(500, len(scorer.features)))
    new, old = scorer.engine.predict(rows), before.alert_scorer.engine.predict(rows)
    assert not np.array_equal(new, old)  # the change reached the compiled code
    assert np.abs(new - scorer.booster.predict(rows)).max() <= TOLERANCE


def test_a_damaged_cache_entry_is_compiled_again_not_loaded(models_dir, tmp_path, caplog):
    """LLVM aborts the whole process on a damaged object file: it must never see one."""
    cache = tmp_path / "cache"
    predictor.warm_cache(models_dir, cache)
    sha = load_models(models_dir).cluster_scorer.sha256
    [entry] = _entries(cache, sha)
    entry.write_bytes(b"\x7fELF" + bytes(200))
    with caplog.at_level(logging.WARNING, logger=compiled.__name__):
        models = load_models(models_dir, engine=COMPILED, cache_dir=cache)
    assert "is damaged" in caplog.text and str(entry) in caplog.text
    assert models.engines()["cluster_scorer"] == {"engine": COMPILED}
    [fresh] = _entries(cache, sha)
    assert compiled.cached_entry(cache, sha, compiled.toolchain_key()) == fresh


def test_concurrent_compiles_of_one_model_leave_only_whole_entries(models_dir, tmp_path):
    cache = tmp_path / "cache"
    path = model_file(models_dir, "alert_ranker", "1.0.0")
    job = {"alert_ranker": (path, sha256_file(path))}
    results = []
    threads = [threading.Thread(target=lambda: results.append(compiled.compile_all(job, cache)))
               for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(not isinstance(r["alert_ranker"], Exception) for r in results), results
    folder = cache / job["alert_ranker"][1]
    assert not list(folder.glob(".tmp-*"))  # every compile renamed its file into place
    key = compiled.toolchain_key()
    for entry in folder.iterdir():  # however many there are, each one is whole
        assert compiled._digest(entry.read_bytes()) == entry.stem.rsplit("-", 1)[1]
    assert compiled.cached_entry(cache, job["alert_ranker"][1], key) is not None


def test_a_model_lleaves_cannot_compile_falls_back_to_lightgbm_with_the_reason(tmp_path, caplog):
    """lleaves has no multiclassova objective: a real compile error, in the compiler process."""
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(300, 4))
    booster = lightgbm.train({"objective": "multiclassova", "num_class": 3, "verbose": -1},
                             lightgbm.Dataset(rows, rng.integers(0, 3, 300)), 3)
    path = tmp_path / "ova.txt"
    booster.save_model(path)
    model = Model("ova", "1.0.0", booster, tuple(booster.feature_name()),
                  {"model_sha256": sha256_file(path)}, path)
    with caplog.at_level(logging.WARNING):
        predictor.use_engines([model], COMPILED, tmp_path / "cache")
    assert model.engine.name == LIGHTGBM
    assert "compile failed" in model.fallback and "multiclassova" in model.fallback
    assert len([r for r in caplog.records if "instead of compiled" in r.getMessage()]) == 1


@pytest.fixture(scope="module")
def linear(tmp_path_factory):
    """A set whose cluster scorer has linear trees (leaf values depend on the features):
    lleaves compiles it without complaint and gets its scores wrong."""
    specs = tuple(ModelSpec(s.name, s.rows, {**s.params, "linear_tree": True}, s.rounds)
                  if s.name == "cluster_scorer" else s for s in quick_specs())
    return _train(tmp_path_factory.mktemp("linear"), specs)


def test_a_model_failing_the_parity_probe_is_scored_by_lightgbm_and_metadata_says_why(
        linear, tmp_path):
    models = load_models(linear / "models", engine=COMPILED, cache_dir=tmp_path / "cache")
    metadata = process_batch(linear / "input", tmp_path / "out", LAST, models=models)
    report = metadata["predict_engines"]
    assert report["alert_scorer"]["engine"] == report["alert_ranker"]["engine"] == COMPILED
    assert report["cluster_scorer"]["engine"] == LIGHTGBM
    assert "differ from LightGBM's" in report["cluster_scorer"]["fallback"]
    assert "probe rows" in report["cluster_scorer"]["fallback"]
    expected = _lightgbm_scores(models, linear / "input", LAST)["cluster_scorer"]
    published = _published(tmp_path / "out", LAST)["cluster_scorer"].to_numpy()
    assert published.tobytes() == expected.tobytes()


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return generated_input(tmp_path_factory.mktemp("sample") / "input", n_alerts=500, seed=2)


def _process_cli(sample, out, env_extra: dict, prelude: str = "", *args) -> subprocess.CompletedProcess:
    code = (f"{prelude}\nimport sys\nfrom services.cli import main\n"
            f"sys.exit(main(sys.argv[1:]))")
    argv = ["process", "--input-dir", str(sample), "--output-dir", str(out),
            "--processing-date", DATE, *args]
    env = {**_clean_env(), "PYTHONPATH": str(REPO), **env_extra}
    return subprocess.run([sys.executable, "-c", code, *argv], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)


def _clean_env() -> dict:
    import os

    return {k: v for k, v in os.environ.items() if k not in ("PREDICT_ENGINE",
                                                             "COMPILED_MODELS_DIR")}


BROKEN_LLVMLITE = "raise OSError('libllvmlite.so: cannot open shared object file')\n"


@pytest.mark.parametrize("how", ["lleaves missing", "llvmlite broken"])
def test_without_a_working_lleaves_a_date_is_scored_by_lightgbm(sample, tmp_path, how):
    env = {"COMPILED_MODELS_DIR": str(tmp_path / "cache")}
    prelude = ""
    if how == "lleaves missing":
        prelude = "import sys\nsys.modules['lleaves'] = None  # as when it is not installed"
    else:  # an llvmlite whose LLVM library does not load, first on the path
        (tmp_path / "broken" / "llvmlite").mkdir(parents=True)
        (tmp_path / "broken" / "llvmlite" / "__init__.py").write_text(BROKEN_LLVMLITE)
        env["PYTHONPATH"] = f"{tmp_path / 'broken'}:{REPO}"
    done = _process_cli(sample, tmp_path / "out", env, prelude)
    assert done.returncode == 0, done.stderr[-3000:]
    engines = json.loads(done.stdout.splitlines()[-1])["predict_engines"]
    expected = "ModuleNotFoundError" if how == "lleaves missing" else "libllvmlite.so"
    for report in engines.values():
        assert report["engine"] == LIGHTGBM and "lleaves/llvmlite unavailable" in report["fallback"]
        assert expected in report["fallback"]
    assert done.stdout.count("instead of compiled trees") == 3  # one warning per model (logs: stdout)


def test_an_unusable_cache_folder_falls_back_naming_it(sample, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    done = _process_cli(sample, tmp_path / "out", {"COMPILED_MODELS_DIR": str(blocker)})
    assert done.returncode == 0, done.stderr[-3000:]
    engines = json.loads(done.stdout.splitlines()[-1])["predict_engines"]
    for report in engines.values():
        assert report["engine"] == LIGHTGBM and str(blocker) in report["fallback"]


def test_engines_chosen_per_model_on_the_command_line(sample, tmp_path, compiled_cache):
    env = {"COMPILED_MODELS_DIR": str(compiled_cache)}
    done = _process_cli(sample, tmp_path / "out", env, "", "--engine", "lightgbm",
                        "--engine", "alert_ranker=compiled")
    assert done.returncode == 0, done.stderr[-3000:]
    engines = json.loads(done.stdout.splitlines()[-1])["predict_engines"]
    assert {n: r["engine"] for n, r in engines.items()} == {
        "alert_scorer": LIGHTGBM, "alert_ranker": COMPILED, "cluster_scorer": LIGHTGBM}
    assert "fallback" not in engines["alert_scorer"]  # asked for, not fallen back to


@pytest.mark.parametrize("args,env,message", [
    (["--engine", "gpu"], {}, "'gpu' is not one of compiled, lightgbm"),
    (["--engine", "ranker=lightgbm"], {}, "'ranker' is not one of alert_scorer"),
    ([], {"PREDICT_ENGINE": "gpu"}, "PREDICT_ENGINE='gpu' is not one of compiled, lightgbm"),
])
def test_a_bad_engine_is_refused_naming_it(sample, tmp_path, args, env, message):
    done = _process_cli(sample, tmp_path / "out", env, "", *args)
    assert done.returncode in (1, 2) and message in done.stderr, done.stderr[-2000:]
    assert not (tmp_path / "out" / DATE).exists()


def test_a_worker_with_a_bad_predict_engine_refuses_to_start_naming_it(settings):
    from tests.chain_fixtures import cli, process_env

    done = cli("worker", "process", "--burst",
               env=process_env(settings.replace(PREDICT_ENGINE="fast")))
    assert done.returncode == 2 and "PREDICT_ENGINE='fast'" in done.stderr


def test_a_worker_compiles_what_the_cache_lacks_before_it_takes_a_job(models_dir, settings,
                                                                      tmp_path):
    from tests.chain_fixtures import CHAIN, cli, process_env

    cache = tmp_path / "cache"
    s = settings.replace(**CHAIN, MODELS_DIR=models_dir, COMPILED_MODELS_DIR=cache)
    done = cli("worker", "process", "--burst", env=process_env(s), timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    log = done.stdout
    compiling = log.index("compiling 3 model(s)")
    loaded = log.index("models loaded from")
    assert compiling < loaded < log.index("listening on")
    assert "'compiled'" in log[loaded:log.index("\n", loaded)]
    assert len(list(cache.glob("*/*.o"))) == 3
