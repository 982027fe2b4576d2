"""process_batch end to end on a generated sample date with the shipped models."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from services.processor.models import load_models
from services.processor.parity import TOLERANCE
from services.processor.predictor import COMPILED, LIGHTGBM
from services.processor.process import process_batch
from shared import bodies, storage
from shared.storage import sha256_file
from tests.processor_fixtures import DATE, generated_input

METADATA_KEYS = {"processing_date", "network", "window_days", "alert_count", "cluster_count",
                 "model_versions", "timestamp", "input_sha256", "timings_s",
                 "prediction_cpu_s", "predict_engines"}


@pytest.fixture(scope="module")
def input_dir(tmp_path_factory):
    return generated_input(tmp_path_factory.mktemp("sample") / "input")


@pytest.fixture(scope="module")
def models(settings_module, compiled_cache):
    """The shipped models on compiled trees, as a worker runs them."""
    return load_models(settings_module.MODELS_DIR, engine=COMPILED, cache_dir=compiled_cache)


@pytest.fixture(scope="module")
def settings_module(tmp_path_factory):
    from shared.settings import Settings
    from tests.conftest import COMPILED_CACHE, REPO

    return Settings.from_env({}).replace(MODELS_DIR=REPO / "trained_models",
                                         COMPILED_MODELS_DIR=COMPILED_CACHE)


@pytest.fixture(scope="module")
def published(input_dir, models, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("out")
    metadata = process_batch(input_dir, output_dir, DATE, models=models)
    return output_dir, metadata


def _read(output_dir, name):
    return pq.read_table(output_dir / DATE / name).to_pandas()


def test_every_alert_and_cluster_scored_exactly_once(input_dir, published):
    output_dir, _ = published
    alerts = pq.read_table(input_dir / DATE / "alerts.parquet").column("alert_id").to_pylist()
    clusters = pq.read_table(input_dir / DATE / "clusters.parquet").column("cluster_id")
    clusters = clusters.to_pylist()
    scored = _read(output_dir, storage.ALERTS_SCORED)
    assert scored["alert_id"].tolist() == alerts  # same rows, same order, each once
    assert _read(output_dir, storage.CLUSTERS_SCORED)["cluster_id"].tolist() == clusters
    ranked = _read(output_dir, storage.ALERTS_RANKED)
    assert sorted(ranked["alert_id"]) == sorted(alerts) and ranked["alert_id"].is_unique


@pytest.mark.parametrize("name", [storage.ALERTS_SCORED, storage.ALERTS_RANKED,
                                  storage.CLUSTERS_SCORED])
def test_scores_are_finite_in_unit_interval_with_model_version(published, name):
    output_dir, metadata = published
    table = _read(output_dir, name)
    scores = table["score"].to_numpy()
    assert table["score"].dtype == np.float64
    assert np.isfinite(scores).all() and scores.min() >= 0 and scores.max() <= 1
    assert scores.std() > 0  # the models discriminate, not a constant
    role = {storage.ALERTS_SCORED: "alert_scorer", storage.ALERTS_RANKED: "alert_ranker",
            storage.CLUSTERS_SCORED: "cluster_scorer"}[name]
    assert set(table["model_version"]) == {metadata["model_versions"][role]}


def test_ranks_are_1_to_n_and_follow_the_score_with_alert_id_ties(published):
    output_dir, _ = published
    ranked = _read(output_dir, storage.ALERTS_RANKED)
    assert ranked["rank"].tolist() == list(range(1, len(ranked) + 1))
    expected = ranked.sort_values(["score", "alert_id"], ascending=[False, True])
    assert expected["alert_id"].tolist() == ranked["alert_id"].tolist()
    assert ranked["score"].iloc[0] == ranked["score"].max()


def test_metadata_has_the_agreed_keys_and_values(input_dir, published):
    output_dir, metadata = published
    on_disk = json.loads((output_dir / DATE / storage.METADATA).read_text())
    assert on_disk == metadata
    assert METADATA_KEYS <= set(metadata)
    assert metadata["processing_date"] == DATE
    assert (metadata["network"], metadata["window_days"]) == ("bitcoin", 7)
    assert metadata["alert_count"] == len(_read(output_dir, storage.ALERTS_SCORED))
    assert metadata["cluster_count"] == len(_read(output_dir, storage.CLUSTERS_SCORED))
    assert metadata["model_versions"] == {"alert_scorer": "alert_scorer_v1.0.0",
                                          "alert_ranker": "alert_ranker_v1.0.0",
                                          "cluster_scorer": "cluster_scorer_v1.0.0"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", metadata["timestamp"])
    for name, digest in metadata["input_sha256"].items():
        assert digest == sha256_file(input_dir / DATE / name)
    assert "alerts.parquet" in metadata["input_sha256"]
    assert {"read", "features", "score_alerts", "write", "total"} <= set(metadata["timings_s"])
    cpu = metadata["prediction_cpu_s"]
    assert set(cpu) == set(metadata["model_versions"]) and all(v > 0 for v in cpu.values())
    engines = metadata["predict_engines"]
    assert set(engines) == set(metadata["model_versions"])
    for report in engines.values():
        assert report["engine"] == COMPILED and "fallback" not in report
        assert 0 <= report["parity_max_abs_diff"] <= TOLERANCE


def test_rerun_gives_byte_identical_parquet(input_dir, models, published, tmp_path):
    output_dir, _ = published
    process_batch(input_dir, tmp_path, DATE, models=models)
    for name in (storage.ALERTS_SCORED, storage.ALERTS_RANKED, storage.CLUSTERS_SCORED):
        assert (tmp_path / DATE / name).read_bytes() == (output_dir / DATE / name).read_bytes()


def test_the_bodies_rendered_at_publish_are_those_rendered_from_the_files(published, tmp_path):
    output_dir, _ = published
    version = storage.resolve(output_dir / DATE)
    copy = tmp_path / version.name
    copy.mkdir()
    for name in storage.OUTPUT_FILES:
        shutil.copy(version / name, copy / name)
    bodies.render_version(copy)
    for name in bodies.FILES:
        assert (copy / name).read_bytes() == (version / name).read_bytes(), name


def test_a_rerun_renders_the_same_bodies_but_for_its_timestamp(input_dir, models, published,
                                                                tmp_path):
    output_dir, first = published
    second = process_batch(input_dir, tmp_path, DATE, models=models)
    for kind in bodies.LIST_KINDS:
        again = (tmp_path / DATE / kind.body).read_bytes()
        assert again.replace(second["timestamp"].encode(), first["timestamp"].encode()) == \
            (output_dir / DATE / kind.body).read_bytes()
        assert (tmp_path / DATE / kind.index).read_bytes() == \
            (output_dir / DATE / kind.index).read_bytes()


def test_models_dir_path_loads_the_shipped_models_on_the_settings_engine(
        input_dir, settings_module, published, tmp_path):
    metadata = process_batch(input_dir, tmp_path, DATE, models_dir=settings_module.MODELS_DIR,
                             settings=settings_module)
    assert metadata["timings_s"]["load_models"] >= 0
    assert {r["engine"] for r in metadata["predict_engines"].values()} == {COMPILED}
    lightgbm = settings_module.replace(PREDICT_ENGINE=LIGHTGBM)
    metadata = process_batch(input_dir, tmp_path / "lgb", DATE,
                             models_dir=settings_module.MODELS_DIR, settings=lightgbm)
    assert metadata["predict_engines"] == dict.fromkeys(metadata["model_versions"],
                                                        {"engine": LIGHTGBM})


def test_absent_money_flows_still_scores_everything(input_dir, models, tmp_path):
    lean = tmp_path / "input"
    shutil.copytree(input_dir / DATE, lean / DATE)
    (lean / DATE / "money_flows.parquet").unlink()
    metadata = process_batch(lean, tmp_path / "out", DATE, models=models)
    scored = pq.read_table(tmp_path / "out" / DATE / storage.ALERTS_SCORED)
    assert scored.num_rows == metadata["alert_count"]
    assert "money_flows.parquet" not in metadata["input_sha256"]


def test_cluster_whose_members_are_all_missing_is_scored(input_dir, models, tmp_path):
    import pyarrow as pa

    copy = tmp_path / "input"
    shutil.copytree(input_dir / DATE, copy / DATE)
    path = copy / DATE / "clusters.parquet"
    clusters = pq.read_table(path)
    ghost = clusters.slice(0, 1).to_pylist()[0]
    ghost.update(cluster_id="cluster_ghost", primary_alert_id="missing-1",
                 related_alert_ids=["missing-1", "missing-2"], addresses_involved=["nowhere"],
                 primary_address="nowhere")
    pq.write_table(pa.concat_tables([clusters, pa.Table.from_pylist([ghost], clusters.schema)]),
                   path)
    process_batch(copy, tmp_path / "out", DATE, models=models)
    scored = pq.read_table(tmp_path / "out" / DATE / storage.CLUSTERS_SCORED).to_pandas()
    row = scored[scored["cluster_id"] == "cluster_ghost"]
    assert len(row) == 1 and 0 <= row["score"].iloc[0] <= 1
    assert len(scored) == clusters.num_rows + 1


SPECS = [(storage.ALERTS_SCORED, "ALERTS"), (storage.CLUSTERS_SCORED, "CLUSTERS")]


@pytest.mark.parametrize("name, spec", SPECS)
def test_scored_files_hold_every_input_column_cleaned_to_the_result_schema(input_dir, published,
                                                                         name, spec):
    from shared import contract

    spec = getattr(contract, spec)
    path = input_dir / DATE / spec.file
    expected = contract.clean_arrow(path, pq.read_table(path), spec)
    expected = expected.cast(contract.result_schema(expected.schema, spec))
    scored = pq.read_table(published[0] / DATE / name)
    assert scored.column_names == expected.column_names + ["score", "model_version"]
    assert scored.select(expected.column_names).equals(expected)
    assert pa.types.is_float64(scored.schema.field("volume_usd" if spec is contract.ALERTS
                                                   else "total_volume_usd").type)


def _rewrite(path, change) -> pa.Table:
    table = pq.read_table(path)
    for name, kind in change.items():
        table = table.set_column(table.schema.get_field_index(name), pa.field(name, kind, False),
                                 table.column(name).cast(kind))
    pq.write_table(table, path)
    return table


def test_one_result_schema_whatever_types_the_input_writer_chose(input_dir, models, published,
                                                                 tmp_path):
    """Another writer: float64 volumes, large strings and lists, dictionaries, required
    fields. The result files have the same schema and values as from the usual writer."""
    copy = tmp_path / "input"
    shutil.copytree(input_dir / DATE, copy / DATE)
    _rewrite(copy / DATE / "alerts.parquet", {
        "volume_usd": pa.float64(), "description": pa.large_string(),
        "typology_type": pa.dictionary(pa.int32(), pa.string()),
        "risk_indicators": pa.large_list(pa.large_string()), "window_days": pa.int64()})
    _rewrite(copy / DATE / "clusters.parquet", {
        "total_volume_usd": pa.float64(), "cluster_type": pa.large_string(),
        "related_alert_ids": pa.large_list(pa.string())})
    process_batch(copy, tmp_path / "out", DATE, models=models)
    for name, _ in SPECS:
        ours = pq.read_table(tmp_path / "out" / DATE / name)
        usual = pq.read_table(published[0] / DATE / name)
        assert ours.schema == usual.schema, name
        assert ours.equals(usual), name  # decimals were cast exactly, by either writer


def test_an_input_score_column_is_replaced_by_ours(input_dir, models, published, tmp_path):
    copy = tmp_path / "input"
    shutil.copytree(input_dir / DATE, copy / DATE)
    path = copy / DATE / "alerts.parquet"
    table = pq.read_table(path)
    pq.write_table(table.append_column("score", pa.array([-1.0] * table.num_rows)), path)
    process_batch(copy, tmp_path / "out", DATE, models=models)
    scored = pq.read_table(tmp_path / "out" / DATE / storage.ALERTS_SCORED)
    assert scored.column_names == table.column_names + ["score", "model_version"]
    usual = pq.read_table(published[0] / DATE / storage.ALERTS_SCORED)
    assert scored.column("score").equals(usual.column("score"))  # ours, not the input's -1


def test_alert_rows_match_a_full_read_across_batches(input_dir):
    from services.processor.inputs import alert_rows, load_inputs
    from shared import contract

    inputs = load_inputs(input_dir / DATE)
    batches = list(alert_rows(inputs, batch_rows=7))  # many batches, crossing chunk edges
    assert len(batches) > 2
    whole = list(contract.iter_arrow(input_dir / DATE, contract.ALERTS))
    assert _concat(batches).equals(_concat(whole))


def _concat(tables):
    return pa.concat_tables(tables).combine_chunks()


def test_result_columns_use_dictionaries_and_statistics_only_where_they_pay(published):
    """The columns this code encodes; the scored files' input columns keep the input's."""
    output_dir, _ = published
    for name, key in ((storage.ALERTS_SCORED, None), (storage.CLUSTERS_SCORED, None),
                      (storage.ALERTS_RANKED, "alert_id")):
        group = pq.ParquetFile(output_dir / DATE / name).metadata.row_group(0)
        chunks = {group.column(i).path_in_schema.split(".")[0]: group.column(i)
                  for i in range(group.num_columns)}
        dictionary = {c for c, chunk in chunks.items() if "RLE_DICTIONARY" in chunk.encodings}
        assert "score" not in dictionary and key not in dictionary, name
        assert "model_version" in dictionary, name
        assert chunks["score"].is_stats_set, name
        if key:
            assert chunks[key].is_stats_set, name


def _features(input_dir):
    from services.processor.features import alert_features, cluster_features
    from services.processor.inputs import load_inputs

    inputs = load_inputs(input_dir / DATE)
    alerts = alert_features(inputs.alerts, inputs.features, inputs.clusters, inputs.money_flows,
                            inputs.links)
    clusters = cluster_features(inputs.clusters, inputs.alerts, inputs.features,
                                inputs.money_flows, inputs.links, alerts)
    return inputs, alerts, clusters


def _published_scores(output_dir, inputs) -> dict:
    """Each model's published scores in the input's row order (the ranker's through its
    sigmoid, as alerts_ranked holds them)."""
    ranked = _read(output_dir, storage.ALERTS_RANKED).set_index("alert_id")["score"]
    ids = inputs.alerts.column("alert_id").to_pylist()
    return {"alert_scorer": pq.read_table(output_dir / DATE / storage.ALERTS_SCORED)
            .column("score").to_numpy(),
            "alert_ranker": ranked.loc[ids].to_numpy(),
            "cluster_scorer": pq.read_table(output_dir / DATE / storage.CLUSTERS_SCORED)
            .column("score").to_numpy()}


def _expected(models, alerts, clusters, predict) -> dict:
    from services.processor.outputs import sigmoid

    return {"alert_scorer": predict(models.alert_scorer, alerts),
            "alert_ranker": sigmoid(predict(models.alert_ranker, alerts)),
            "cluster_scorer": predict(models.cluster_scorer, clusters)}


def _lightgbm(model, frame):
    """LightGBM's own prediction, on the float32 matrix it was always given."""
    return model.booster.predict(model.matrix(frame).astype(np.float32), num_threads=2)


def test_published_scores_are_one_prediction_on_all_the_features_within_1e9_of_lightgbm(
        input_dir, models, published):
    """Chunks, the trimmed address table and streamed writes change nothing: the scores are
    the bytes of one compiled prediction over features built from the whole input, and every
    row is within 1e-9 of LightGBM's own prediction."""
    output_dir, _ = published
    inputs, alerts, clusters = _features(input_dir)
    scores = _published_scores(output_dir, inputs)
    compiled = _expected(models, alerts, clusters, lambda m, f: m.predict(f))
    lightgbm = _expected(models, alerts, clusters, _lightgbm)
    for name, values in scores.items():
        assert values.tobytes() == compiled[name].tobytes(), name
        assert np.abs(values - lightgbm[name]).max() <= TOLERANCE, name


def test_on_the_lightgbm_engine_published_scores_are_lightgbms_bytes(input_dir, settings_module,
                                                                    tmp_path):
    lightgbm = load_models(settings_module.MODELS_DIR)
    process_batch(input_dir, tmp_path, DATE, models=lightgbm)
    inputs, alerts, clusters = _features(input_dir)
    expected = _expected(lightgbm, alerts, clusters, _lightgbm)
    for name, values in _published_scores(tmp_path, inputs).items():
        assert values.tobytes() == expected[name].tobytes(), name


def test_a_date_without_clusters_publishes_an_empty_clusters_scored(input_dir, models,
                                                                   tmp_path):
    copy = tmp_path / "input"
    shutil.copytree(input_dir / DATE, copy / DATE)
    path = copy / DATE / "clusters.parquet"
    pq.write_table(pq.read_table(path).slice(0, 0), path)
    metadata = process_batch(copy, tmp_path / "out", DATE, models=models)
    clusters = pq.read_table(tmp_path / "out" / DATE / storage.CLUSTERS_SCORED)
    assert metadata["cluster_count"] == 0 and clusters.num_rows == 0
    assert clusters.column_names[-2:] == ["score", "model_version"]
    alerts = pq.read_table(tmp_path / "out" / DATE / storage.ALERTS_SCORED)
    assert alerts.num_rows == metadata["alert_count"] > 0


def test_a_set_whose_sidecar_says_so_scores_clusters_by_their_best_member_alert(
        input_dir, published, tmp_path):
    from shared.labels import cluster_members
    from tests.conftest import REPO

    models_dir = tmp_path / "models"
    shutil.copytree(REPO / "trained_models", models_dir)
    sidecar = models_dir / "cluster_scorer_v1.0.0.json"
    sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()),
                                   "cluster_score": "member_alert_max"}))
    out = tmp_path / "out"
    process_batch(input_dir, out, DATE, models=load_models(models_dir, engine=LIGHTGBM))
    alerts, clusters = _read(out, "alerts_scored.parquet"), _read(out, "clusters_scored.parquet")
    shipped = _read(published[0], "clusters_scored.parquet")
    members = cluster_members(pq.read_table(input_dir / DATE / "clusters.parquet").to_pandas())
    score = pd.Series(alerts["score"].to_numpy(), index=alerts["alert_id"])
    members = members[members["alert_id"].isin(score.index)]
    best = score.loc[members["alert_id"]].groupby(members["cluster"].to_numpy()).max()
    expected = shipped["score"].to_numpy().copy()  # the model's, where no member is found
    expected[best.index.to_numpy()] = best.to_numpy()
    assert len(best) > 0 and (clusters["cluster_id"] == shipped["cluster_id"]).all()
    assert np.allclose(clusters["score"].to_numpy(), expected, rtol=0, atol=1e-9)
    assert not np.allclose(clusters["score"].to_numpy(), shipped["score"].to_numpy())
