"""Training the three models on labelled input dates, with a held-out date for validation.

Deterministic: fixed seeds, deterministic=True, force_col_wise and a fixed
thread count, so the same dates give the same model files byte for byte. The
last date is held out; its metrics go to each model's sidecar and the report.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from services.processor import report
from services.processor.dataset import (DateData, Part, TrainingError, alert_part, cluster_part,
                                        load_date, load_full, read_labels, split_dates)
from services.processor.features import CATEGORICAL
from services.processor.models import (ALERT_RANKER, ALERT_SCORER, CLUSTER_SCORER, VERSION_RE,
                                       model_file, sidecar_file, to_matrix)
from services.processor.scoring import MEMBER_ALERT_MAX, MODEL_SCORES, member_alert_max
from shared.labels import NEGATIVE_RISK, POSITIVE_RISK
from shared.storage import sha256_file

log = logging.getLogger(__name__)

RANKING_OBJECTIVES = ("lambdarank", "rank_xendcg")
MIN_CLASS_ROWS = 10  # fewer positives (or negatives) than this is no basis for a model
MAX_QUERY_ROWS = 10_000  # LightGBM's limit on the rows of one ranking query
# Fixed, so trees never depend on the core count; one, because OpenMP spin-waits badly
# when a 2-core host is busy (2 threads trained 15x slower than 1 under load here).
TRAIN_THREADS = 1
SEED = 20251026

COMMON_PARAMS = {
    "learning_rate": 0.05, "num_leaves": 31, "min_data_in_leaf": 40, "feature_fraction": 0.8,
    "bagging_fraction": 0.8, "bagging_freq": 1, "lambda_l2": 1.0, "max_bin": 255,
    "seed": SEED, "deterministic": True, "force_col_wise": True, "num_threads": TRAIN_THREADS,
    "verbose": -1,
}


@dataclass(frozen=True)
class ModelSpec:
    """What one model learns from: alert or cluster rows, objective, parameters, rounds."""

    name: str
    rows: str  # "alerts" or "clusters"
    params: dict
    rounds: int  # with early_stopping: the most rounds it may train
    early_stopping: int = 0  # stop after this many rounds without a better validation loss


SPECS = (
    ModelSpec(ALERT_SCORER, "alerts", {**COMMON_PARAMS, "objective": "binary"}, 300),
    ModelSpec(ALERT_RANKER, "alerts", {
        **COMMON_PARAMS, "objective": "lambdarank", "lambdarank_truncation_level": 3000,
        "eval_at": [10, 100]}, 300),
    ModelSpec(CLUSTER_SCORER, "clusters", {
        **COMMON_PARAMS, "objective": "binary", "num_leaves": 15, "min_data_in_leaf": 20}, 200),
)
# What the learner trains on a month of history: the same models, but the ranker's gradient
# looks at the top 30 of each query (LightGBM's default) instead of nearly every pair: a
# round costs truncation x rows, and on 300,000 rows of 100k-alert sample dates 3000 did not
# finish in 10 minutes, 200 took 200 s and 30 took 45-90 s with the best NDCG@100 of the three.
# The binary models' rounds are chosen on the trainer's own validation date (never the
# learner's comparison date): the best of at most LEARNING_MAX_ROUNDS by validation log loss,
# stopping EARLY_STOPPING_ROUNDS after the best. A fixed 300 was too few for histories whose
# windows overlap from day to day (IBM AMLSim: 300-1150 chosen; rolling-origin alert ROC AUC
# +0.005, Brier -0.008, see docs/performance.md).
LEARNING_MAX_ROUNDS = 1500
EARLY_STOPPING_ROUNDS = 50
LEARNING_SPECS = tuple(
    ModelSpec(s.name, s.rows, {**s.params, "lambdarank_truncation_level": 30}, s.rounds)
    if s.params["objective"] in RANKING_OBJECTIVES
    else ModelSpec(s.name, s.rows, s.params, LEARNING_MAX_ROUNDS, EARLY_STOPPING_ROUNDS)
    for s in SPECS)


def check_classes(name: str, part: Part, where: str) -> None:
    """Refuse to train on one class or on too few rows of either class."""
    positives = part.positives
    negatives = len(part.label) - positives
    if min(positives, negatives) < MIN_CLASS_ROWS:
        raise TrainingError(
            f"{name}: cannot train on {where}: {positives} positive and {negatives} negative "
            f"labelled rows (need at least {MIN_CLASS_ROWS} of each class)")


def recency_weights(dates: np.ndarray, half_life_days: float | None) -> np.ndarray | None:
    """Each row's weight 0.5 ** (its date's age in days before the newest row's date /
    half_life_days), or None (all alike) without a half-life. The newest days weigh most:
    the SOT's windows overlap from one day to the next, so they are the most like the next."""
    if not half_life_days:
        return None
    unique, inverse = np.unique(np.asarray(dates).astype(str), return_inverse=True)
    days = np.array([dt.date.fromisoformat(d).toordinal() for d in unique], dtype=np.float64)
    return (0.5 ** ((days.max() - days) / float(half_life_days)))[inverse]


def _dataset(spec: ModelSpec, part: Part, names: list[str], half_life_days: float | None = None):
    import lightgbm

    matrix, label, group, weight = to_matrix(part.frame, names), part.label, None, None
    if spec.params["objective"] in RANKING_OBJECTIVES:
        # (no recency weights: LightGBM's ranking objectives weigh whole queries, not rows)
        order, group = part.queries(MAX_QUERY_ROWS, SEED)
        if len(group) > len(np.unique(part.dates)):  # a date was split: rows were reordered
            matrix, label = matrix[order], label[order]
    else:
        weight = recency_weights(part.dates, half_life_days)
    return lightgbm.Dataset(
        matrix, label=label, group=group, weight=weight, feature_name=names,
        categorical_feature=[c for c in CATEGORICAL if c in names],
        params={"max_bin": spec.params["max_bin"], "verbose": -1}, free_raw_data=True)


def fit(spec: ModelSpec, train: Part, half_life_days: float | None = None,
        valid: Part | None = None):
    """Train one booster on the labelled training rows (newer dates weigh more with a
    half-life; see recency_weights). With spec.early_stopping, valid's rows choose the rounds
    and the booster keeps only the best ones."""
    import lightgbm

    names = list(train.frame.columns)
    started = time.perf_counter()
    data = _dataset(spec, train, names, half_life_days)
    if spec.early_stopping:
        if valid is None:
            raise TrainingError(f"{spec.name}: early stopping needs validation rows")
        booster = _early_stopped(spec, data, valid, names)
    else:
        booster = lightgbm.train(spec.params, data, num_boost_round=spec.rounds)
    log.info("%s: trained %d trees on %d rows x %d features in %.1fs", spec.name,
             booster.num_trees(), len(train.label), len(names), time.perf_counter() - started)
    return booster


def _early_stopped(spec: ModelSpec, data, valid: Part, names: list[str]):
    """The best rounds by validation log loss, as a booster holding only those trees."""
    import lightgbm

    held_out = lightgbm.Dataset(to_matrix(valid.frame, names), label=valid.label, reference=data)
    booster = lightgbm.train({**spec.params, "metric": "binary_logloss"}, data,
                             num_boost_round=spec.rounds, valid_sets=[held_out],
                             callbacks=[lightgbm.early_stopping(spec.early_stopping,
                                                                verbose=False)])
    best = booster.best_iteration or booster.current_iteration()
    log.info("%s: validation log loss best after %d rounds (at most %d)", spec.name, best,
             spec.rounds)
    return lightgbm.Booster(model_str=booster.model_to_string(num_iteration=best))


def evaluate(booster, valid: Part) -> tuple[dict, np.ndarray]:
    """Validation metrics and scores of a booster on held-out rows."""
    matrix = to_matrix(valid.frame, booster.feature_name())
    scores = np.asarray(booster.predict(matrix, num_threads=TRAIN_THREADS), dtype=np.float64)
    return report.metrics(valid.label, scores, valid.dates), scores


def _sidecar(spec: ModelSpec, version: str, path: Path, booster, train: Part, valid: Part,
             metrics: dict) -> dict:
    return {
        "name": spec.name, "version": version, "model_file": path.name,
        "model_sha256": sha256_file(path), "objective": spec.params["objective"],
        "rows_from": spec.rows, "features": booster.feature_name(),
        "categorical_features": [c for c in CATEGORICAL if c in booster.feature_name()],
        "training_dates": sorted(set(train.dates.tolist())),
        "validation_dates": sorted(set(valid.dates.tolist())),
        "rows": {"train": len(train.label), "validation": len(valid.label)},
        "positives": {"train": train.positives, "validation": valid.positives},
        "validation": metrics, "params": spec.params, "num_boost_round": spec.rounds,
        "num_trees": booster.num_trees(), "lightgbm_version": _lightgbm_version(),
        "label_rule": f"positive: an address label with risk_level in {list(POSITIVE_RISK)}; "
                      f"negative: only {list(NEGATIVE_RISK)}; unlabelled rows left out",
    }


def _lightgbm_version() -> str:
    import lightgbm

    return lightgbm.__version__


def _replace_file(path: Path, write) -> None:
    """Write through a temporary name and rename, so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    write(tmp)
    os.replace(tmp, path)


def save(models_dir: Path, spec: ModelSpec, version: str, booster, train: Part, valid: Part,
         metrics: dict, max_rows: int | None = None, holdout: bool = True,
         half_life_days: float | None = None, cluster_score: dict | None = None) -> Path:
    """Write the model file, then its sidecar (which carries the model file's sha256)."""
    path = model_file(models_dir, spec.name, version)
    _replace_file(path, lambda tmp: booster.save_model(str(tmp)))
    sidecar = _sidecar(spec, version, path, booster, train, valid, metrics)
    if max_rows is not None:
        sidecar["max_training_rows"] = max_rows
    if spec.early_stopping:
        sidecar["early_stopping"] = {
            "metric": "binary_logloss", "on": sidecar["validation_dates"],
            "patience": spec.early_stopping, "max_rounds": spec.rounds,
            "rounds": booster.num_trees()}
    if half_life_days and spec.params["objective"] not in RANKING_OBJECTIVES:
        sidecar["recency_half_life_days"] = half_life_days
    if cluster_score is not None:  # how the processor scores clusters with this set
        sidecar["cluster_score"] = cluster_score["rule"]
        if "roc_auc" in cluster_score:
            sidecar["cluster_score_choice"] = cluster_score
    if not holdout:  # a refit: its "validation" date was trained on, so its metrics flatter
        sidecar["validation_in_sample"] = True
    text = json.dumps(sidecar, indent=2) + "\n"
    _replace_file(sidecar_file(path), lambda tmp: tmp.write_text(text))
    log.info("%s: wrote %s and its sidecar (validation %s)", spec.name, path, metrics)
    return path


CHOOSE = "choose"  # train_models' cluster_score: pick the rule on the validation dates


def _roc_auc(label: np.ndarray, scores: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    if label.sum() in (0, len(label)):
        return None
    return round(float(roc_auc_score(label, scores)), 6)


def choose_cluster_score(input_dir: Path, dates: list[str], labels, alert_scorer,
                         cluster_scorer) -> dict:
    """The cluster scoring rule with the higher cluster ROC AUC on the validation dates: the
    cluster scorer's own scores or its clusters' highest member-alert score (a cluster's label
    is its members' highest); the model's wins a tie. Both AUCs are returned with the rule."""
    labels_seen, rule_seen, model_seen = [], [], []
    for date in dates:
        full = load_full(Path(input_dir), date, labels)
        alerts = alert_scorer.predict(to_matrix(full.alerts, alert_scorer.feature_name()),
                                      num_threads=TRAIN_THREADS)
        own = cluster_scorer.predict(to_matrix(full.clusters, cluster_scorer.feature_name()),
                                     num_threads=TRAIN_THREADS)
        known = ~np.isnan(full.cluster_y)
        labels_seen.append(full.cluster_y[known])
        model_seen.append(own[known])
        rule_seen.append(member_alert_max(own, alerts, full.links)[known])
    y = np.concatenate(labels_seen)
    aucs = {MODEL_SCORES: _roc_auc(y, np.concatenate(model_seen)),
            MEMBER_ALERT_MAX: _roc_auc(y, np.concatenate(rule_seen))}
    better = (aucs[MEMBER_ALERT_MAX] or 0.0) > (aucs[MODEL_SCORES] or 0.0)
    rule = MEMBER_ALERT_MAX if better else MODEL_SCORES
    log.info("cluster scores on %s: ROC AUC model %s, member-alert max %s: %s", dates,
             aucs[MODEL_SCORES], aucs[MEMBER_ALERT_MAX], rule)
    return {"rule": rule, "on": list(dates), "roc_auc": aucs}


def _parts(spec: ModelSpec, train: list[DateData], valid: list[DateData],
           max_rows: int | None) -> tuple[Part, Part]:
    build = alert_part if spec.rows == "alerts" else cluster_part
    parts = build(train), build(valid)
    check_classes(spec.name, parts[0], f"training dates {[d.date for d in train]}")
    if max_rows is not None and len(parts[0].label) > max_rows:
        log.info("%s: training on %d of %d labelled rows drawn at random (max_rows)",
                 spec.name, max_rows, len(parts[0].label))
        parts = parts[0].sample(max_rows, SEED), parts[1]
    return parts


def train_models(input_dir: Path | str, dates: list[str], models_dir: Path | str,
                 version: str = "1.0.0", report_dir: Path | str | None = None,
                 specs: tuple[ModelSpec, ...] = SPECS, labels: Path | None = None,
                 max_rows: int | None = None, holdout: bool = True,
                 half_life_days: float | None = None, cluster_score: str | None = None) -> dict:
    """Train, validate and save the models; returns the validation metrics by model.

    labels: one address labels file to judge every date by (default: each date's own).
    max_rows: train each model on at most this many labelled rows, drawn uniformly at random
    (the cost of a round grows with the rows; the gain of more rows flattens long before).
    holdout=False (a refit): train on every date, the newest included; its metrics are then
    in-sample and the sidecars say so (validation_in_sample).
    half_life_days: weigh the binary models' rows by their date's recency (recency_weights).
    A spec with early_stopping has its rounds chosen on the validation date.
    cluster_score: None (the sidecar names no rule: the model's scores), CHOOSE (the better rule
    on the validation dates, choose_cluster_score; needs the alert scorer trained too) or a
    rule to record as it is (a refit keeps its candidate's).
    """
    if not VERSION_RE.match(version):
        raise TrainingError(f"model version {version!r} is not in X.Y.Z form")
    if not holdout and any(spec.early_stopping for spec in specs):
        raise TrainingError("a refit has no validation date to stop on: give it fixed rounds")
    if holdout:
        train_dates, valid_dates = split_dates(dates)
    elif dates:
        train_dates, valid_dates = sorted(dates), sorted(dates)[-1:]
    else:
        raise TrainingError("a refit needs at least one date")
    label_rows = read_labels(labels) if labels is not None else None
    data = {d: load_date(Path(input_dir), d, label_rows) for d in sorted(dates)}
    train, valid = [data[d] for d in train_dates], [data[d] for d in valid_dates]
    parts = {spec.name: _parts(spec, train, valid, max_rows)  # refuse before any work
             for spec in specs}
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    results, boosters = [], {}
    for spec in specs:
        train_part, valid_part = parts[spec.name]
        booster = boosters[spec.name] = fit(spec, train_part, half_life_days, valid_part)
        metrics, scores = evaluate(booster, valid_part)
        rule = None
        if spec.name == CLUSTER_SCORER and cluster_score == CHOOSE:
            rule = choose_cluster_score(input_dir, valid_dates, label_rows,
                                        boosters[ALERT_SCORER], booster)
        elif spec.name == CLUSTER_SCORER and cluster_score is not None:
            rule = {"rule": cluster_score}
        save(models_dir, spec, version, booster, train_part, valid_part, metrics, max_rows,
             holdout, half_life_days, rule)
        results.append(report.Result(spec.name, version, metrics, valid_part.label, scores))
    report.write(Path(report_dir) if report_dir else models_dir / "report", results)
    return {r.name: r.metrics for r in results}
