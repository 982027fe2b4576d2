"""Learn from the SOT's labelled history: train a candidate set on past dates, compare, promote.

`learn(settings, network, window, D)`:

1. History: the labelled input dates strictly before D (the newest LEARN_MAX_DATES),
   judged by the labels file downloaded with the newest date <= D. Nothing of D or later
   is ever read for training or comparison.
2. The newest of them is the comparison date; the others train a candidate set with the
   project's trainer (which holds out its own newest date for validation).
3. `aml-miner evaluate` runs the real processor on the comparison date with the current
   and the candidate set and judges both as the validator does (integrity gate, alert
   ROC AUC and Brier, NDCG@100, cluster ROC AUC).
4. The candidate is promoted (current.json, one rename) only when it wins on alert AUC by
   LEARN_MIN_GAIN and is no worse than LEARN_TOLERANCE on the others; every set, kept or
   promoted, is stored with set.json saying what it was trained on and why it was decided.
5. A candidate that won has its binary models (alert and cluster scorers) refit
   (LEARN_REFIT, default on) on every history date, the comparison date and the trainer's
   validation date included, with the same parameters and rounds: the newest labelled days
   are the ones most like the next. The ranker stays the measured one. The measured models
   are kept in the set's measured/ folder; set.json records the refit.

The binary models weigh each training row by its date's recency (half-life
LEARN_HALF_LIFE_DAYS, 0 = all dates alike), in the candidate and the refit alike; their
rounds are chosen by early stopping on the trainer's validation date and reused by the refit.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from services.processor import memory, predictor
from services.processor.models import CLUSTER_SCORER, model_file, sidecar_file
from services.processor.scoring import MODEL_SCORES
from services.processor.dataset import TrainingError, read_labels
from services.processor.train import (CHOOSE, LEARNING_SPECS, RANKING_OBJECTIVES, ModelSpec,
                                      train_models)
from shared import contract, modelsets, networks, storage
from shared.labels import address_labels, lookup
from shared.manifest import read_manifest
from shared.settings import Settings

log = logging.getLogger(__name__)

PROMOTED, KEPT, NOT_LEARNED = "promoted", "kept", "not-learned"
KEEP_SETS = 10  # learned sets kept besides the current one (the newest first), for roll-backs
PROJECT_ROOT = Path(__file__).resolve().parents[2]


class LearnError(RuntimeError):
    """Learning could not run to a decision (a broken input, the comparison failed)."""


@dataclass
class History:
    """The dates a learn may use, and why others were left out."""

    dates: list[str]  # ascending, every one strictly before the processing date
    labels: Path | None  # the labels file they are judged by
    skipped: dict[str, str] = field(default_factory=dict)


@dataclass
class Outcome:
    """What one learn decided, and on what evidence."""

    network: str
    window_days: int
    processing_date: str
    decision: str  # promoted | kept | not-learned
    reason: str
    version: str | None = None
    current: str | None = None  # the set compared against (the one in use before)
    training_dates: list[str] = field(default_factory=list)
    comparison_date: str | None = None
    labels: str | None = None
    metrics: dict = field(default_factory=dict)
    refit_dates: list[str] = field(default_factory=list)  # empty: the measured set is the set
    refit_models: list[str] = field(default_factory=list)
    report: str | None = None
    seconds: float = 0.0

    @property
    def promoted(self) -> bool:
        """True when the candidate became the current set."""
        return self.decision == PROMOTED

    def record(self) -> dict:
        """JSON-ready form (last_learn.json, the report, the job result)."""
        return asdict(self)


# --- history -------------------------------------------------------------------------------

def labels_file(input_dir: Path, processing_date: str) -> Path | None:
    """The labels file downloaded with the newest input date <= processing_date (it is
    cumulative: the newest copy knows every label the older ones did)."""
    for date in storage.published_dates(input_dir):
        path = Path(input_dir) / date / contract.LABELS_FILE
        if date <= processing_date and path.is_file():
            return path
    return None


def _identity(folder: Path) -> tuple[str | None, int | None]:
    """The (network, window) an input date was downloaded for, from META.json or DOWNLOAD.json."""
    meta = folder / contract.META_FILE
    if meta.is_file():
        try:
            data = json.loads(meta.read_text())
            return data.get("network"), int(data["window_days"])
        except (OSError, ValueError, KeyError, TypeError):
            pass
    source = (read_manifest(folder) or {}).get("source", {})
    parts = str(source.get("prefix", "")).strip("/").split("/")
    if len(parts) == 4 and parts[0] == "snapshots" and parts[3].isdigit():
        return parts[1], int(parts[3])
    window = source.get("window_days")
    return source.get("network"), int(window) if window is not None else None


def _unusable(folder: Path, network: str, window: int, known) -> str:
    """Why an input date cannot teach this network's and window's models ('' if it can)."""
    if not (folder / contract.ALERTS_FILE).is_file():
        present = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
        return (f"no {contract.ALERTS_FILE} (the producer's export without alerts); "
                f"has {', '.join(present) or 'nothing'}")
    got_network, got_window = _identity(folder)
    if got_network not in (None, network) or got_window not in (None, window):
        return f"downloaded for {got_network} {got_window}d, not {network} {window}d"
    addresses = pq.read_table(folder / contract.ALERTS_FILE, columns=["address"]).column(0)
    labelled = int(np.count_nonzero(~np.isnan(lookup(known, addresses.to_numpy()))))
    return "" if labelled else "no alert address carries a high/critical or low/medium label"


def history(input_dir: Path, processing_date: str, network: str, window: int,
            max_dates: int) -> History:
    """The newest max_dates labelled input dates strictly before processing_date."""
    storage.parse_date(processing_date)
    labels = labels_file(input_dir, processing_date)
    known = address_labels(read_labels(labels) if labels else None)
    chosen, skipped = [], {}
    for date in storage.published_dates(input_dir):  # newest first
        if len(chosen) >= max_dates:
            break
        if date >= processing_date:
            continue
        reason = _unusable(Path(input_dir) / date, network, window, known)
        if reason:
            skipped[date] = reason
            log.info("learn %s: input date %s left out: %s", processing_date, date, reason)
        else:
            chosen.append(date)
    return History(sorted(chosen), labels, skipped)


def check_past_only(dates: list[str], processing_date: str) -> None:
    """The guard of the whole design: no date at or after the one being scored is learned from."""
    late = [d for d in dates if d >= processing_date]
    if late:
        raise LearnError(f"refusing to learn for {processing_date} from {', '.join(late)}: "
                         "only dates strictly before it may be used")


# --- comparison ----------------------------------------------------------------------------

def reports_dir(settings: Settings) -> Path:
    """Where learn reports go: the same 'reports' folder `aml-miner validate` writes to."""
    return Path(settings.OUTPUT_DIR).parent / "reports"


def compare(settings: Settings, input_dir: Path, date: str, current: Path, candidate: Path,
            labels: Path | None, report_dir: Path, stem: str, network: str | None = None) -> dict:
    """Run `aml-miner evaluate` (current = A, candidate = B) on one date of a network (default:
    the first) whose input folder is input_dir; its JSON report."""
    argv = [sys.executable, "-m", "services.cli", "evaluate", "--input-dir", _abs(input_dir),
            "--dates", date, "--models-dir", _abs(current), "--compare-models-dir",
            _abs(candidate), "--report-dir", _abs(report_dir), "--report-name", stem]
    if labels is not None:
        argv += ["--labels", _abs(labels)]
    # Our working folder, so relative settings mean what they mean here; our checkout's code.
    # One network only: input_dir is already that network's folder, which `evaluate` then
    # takes as it is instead of looking for a {network} folder in it.
    env = {**os.environ, **networks.single(settings, network).to_env(),
           "PYTHONPATH": str(PROJECT_ROOT)}
    started = time.monotonic()
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    if done.returncode not in (0, 1):  # 1: an output failed the gate, which the report says
        tail = (done.stderr or done.stdout).strip()[-2000:]
        raise LearnError(f"the comparison on {date} failed (exit {done.returncode}): {tail}")
    log.info("learn: compared current and candidate on %s in %.1f s", date,
             time.monotonic() - started)
    return json.loads((report_dir / f"{stem}.json").read_text())


def _abs(path: Path) -> str:
    return str(Path(path).resolve())


# A deployment setting (MODEL_GITHUB_URL), not a property of the models: it fails both sets
# alike, so it must not decide between them (`validate` reports it for the published date).
NOT_ABOUT_MODELS = ("metadata.model_github_url",)


def measures(run: dict) -> dict:
    """The validator's measures of one evaluated set: gate, alert AUC/Brier, NDCG@100, cluster AUC."""
    pooled = run["pooled"]
    failed = [name for one in run["per_date"].values() for name in one["integrity"]["failed"]
              if name not in NOT_ABOUT_MODELS]
    return {"gate_passed": not failed, "gate_failures": failed,
            "alert_auc": pooled["alerts"]["roc_auc"], "alert_brier": pooled["alerts"]["brier"],
            "ndcg_at_100": pooled["ranking"].get("ndcg_at_100"),
            "cluster_auc": pooled["clusters"]["roc_auc"],
            "alert_labelled": pooled["alerts"]["labelled"],
            "alert_positives": pooled["alerts"]["positives"]}


def _worse(name: str, current, candidate, tolerance: float, lower_wins: bool = False) -> str:
    """Why the candidate is worse than tolerance on one measure ('' when it is not, or n/a)."""
    if current is None or candidate is None:
        return ""
    loss = (candidate - current) if lower_wins else (current - candidate)
    if loss > tolerance:
        return (f"{name} {candidate:.4f} vs current {current:.4f}: worse by {loss:.4f} "
                f"> LEARN_TOLERANCE {tolerance:g}")
    return ""


def decide(current: dict, candidate: dict, min_gain: float, tolerance: float) -> tuple[bool, str]:
    """Promote or keep, and the number that decided it (one line)."""
    if not candidate["gate_passed"]:
        return False, f"the candidate failed the integrity gate: {', '.join(candidate['gate_failures'])}"
    new, old = candidate["alert_auc"], current["alert_auc"]
    if new is None:
        return False, "alert ROC AUC cannot be measured on the comparison date (one class only)"
    gain = new - (old if old is not None else 0.5)
    if gain < min_gain:
        return False, (f"alert ROC AUC {new:.4f} vs current {_fmt(old)}: gain {gain:+.4f} "
                       f"< LEARN_MIN_GAIN {min_gain:g}")
    for reason in (_worse("alert Brier", current["alert_brier"], candidate["alert_brier"],
                          tolerance, lower_wins=True),
                   _worse("NDCG@100", current["ndcg_at_100"], candidate["ndcg_at_100"], tolerance),
                   _worse("cluster ROC AUC", current["cluster_auc"], candidate["cluster_auc"],
                          tolerance)):
        if reason:
            return False, reason
    return True, (f"alert ROC AUC {new:.4f} vs current {_fmt(old)} ({gain:+.4f}); Brier "
                  f"{_fmt(candidate['alert_brier'])} vs {_fmt(current['alert_brier'])}; NDCG@100 "
                  f"{_fmt(candidate['ndcg_at_100'])} vs {_fmt(current['ndcg_at_100'])}; cluster "
                  f"ROC AUC {_fmt(candidate['cluster_auc'])} vs {_fmt(current['cluster_auc'])}")


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


# --- the whole learn -----------------------------------------------------------------------

def learn(settings: Settings, network: str, window: int, processing_date: str,
          input_dir: Path | None = None, max_dates: int | None = None,
          specs: tuple[ModelSpec, ...] = LEARNING_SPECS) -> Outcome:
    """Learn for processing_date from the input dates before it; promote only what wins.

    specs: the models to train (the trainer's own by default; tests train fewer rounds).
    """
    started = time.monotonic()
    input_dir = Path(input_dir or networks.input_root(settings, network))
    found = history(input_dir, processing_date, network, window,
                    max_dates or settings.LEARN_MAX_DATES)
    outcome = Outcome(network, window, processing_date, NOT_LEARNED, "",
                      current=modelsets.current(settings, network, window).version,
                      labels=str(found.labels) if found.labels else None)
    if len(found.dates) < settings.LEARN_MIN_DATES:
        outcome.reason = (f"{len(found.dates)} labelled input date(s) before {processing_date} "
                          f"({', '.join(found.dates) or 'none'}); learning needs "
                          f"LEARN_MIN_DATES={settings.LEARN_MIN_DATES} (two to train on, one to "
                          "compare on): backfill more history")
    else:
        _learn_on(settings, input_dir, found, outcome, specs)
    outcome.seconds = round(time.monotonic() - started, 1)
    _finish(settings, outcome)
    return outcome


def _learn_on(settings: Settings, input_dir: Path, found: History, outcome: Outcome,
              specs: tuple[ModelSpec, ...]) -> None:
    """Train a candidate, compare it with the current set, store it, promote it if it wins."""
    network, window, date = outcome.network, outcome.window_days, outcome.processing_date
    check_past_only(found.dates, date)
    *training, comparison = found.dates
    outcome.training_dates, outcome.comparison_date = training, comparison
    sets = modelsets.root(settings, network, window)
    sets.mkdir(parents=True, exist_ok=True)
    storage.clean_stale(sets)
    version = _fresh_version(sets)
    try:
        with storage.staging_dir(sets / version) as stage:
            train_models(input_dir, training, stage, version, report_dir=stage / "report",
                         specs=specs, labels=found.labels, max_rows=settings.LEARN_MAX_ROWS,
                         half_life_days=settings.LEARN_HALF_LIFE_DAYS or None,
                         cluster_score=CHOOSE)
            gc.collect()  # the training rows are dropped: their pages are not the comparison's
            memory.release_unused()
            wins = _judge(settings, input_dir, found, outcome, stage, version)
            if wins and settings.LEARN_REFIT:
                _refit(settings, input_dir, found, outcome, stage, version, specs)
            modelsets.write_json(stage / modelsets.SET_FILE, _set_record(outcome, wins))
    except TrainingError as exc:  # the staging folder is gone with it
        outcome.reason = f"cannot train a candidate: {exc}"
        return
    os.rename(stage, sets / version)  # complete before anyone can see it
    if wins:
        _compile(settings, sets / version)
        modelsets.make_current(settings, network, window, version, by=f"learn {date}")
        outcome.decision = PROMOTED
    _prune(settings, network, window)


def _judge(settings: Settings, input_dir: Path, found: History, outcome: Outcome, stage: Path,
           version: str) -> bool:
    """Compare the staged candidate with the current set; record the decision in set.json."""
    network, window, date = outcome.network, outcome.window_days, outcome.processing_date
    comparison = outcome.comparison_date
    current = modelsets.current(settings, network, window)
    outcome.current = current.version
    stem = f"learn_{network}_{window}d_{date}_comparison"
    report = compare(settings, input_dir, comparison, current.folder, stage, found.labels,
                     reports_dir(settings), stem, network)
    outcome.report = str(reports_dir(settings) / f"{stem}.html")
    old, new = (measures(run) for run in report["runs"])
    outcome.metrics = {"current": old, "candidate": new}
    wins, outcome.reason = decide(old, new, settings.LEARN_MIN_GAIN, settings.LEARN_TOLERANCE)
    outcome.version, outcome.decision = version, KEPT
    if wins and current.pinned:
        outcome.reason = (f"the candidate won ({outcome.reason}) but {current.version} is "
                          f"pinned: `aml-miner models use {version}` takes it")
        wins = False
    return wins


MEASURED = "measured"  # a refit set's folder for the models the comparison measured


def _refit(settings: Settings, input_dir: Path, found: History, outcome: Outcome, stage: Path,
           version: str, specs: tuple[ModelSpec, ...]) -> None:
    """Train the winning candidate's models again on every history date (all strictly before
    the processing date), with the same parameters and the rounds early stopping chose on the
    trainer's validation date: no choice looks at the comparison date, which only decided
    that this recipe wins. The measured models move to measured/."""
    check_past_only(found.dates, outcome.processing_date)
    measured = stage / MEASURED
    measured.mkdir()
    for path in sorted(stage.iterdir()):
        if path.is_file() and path.name != modelsets.SET_FILE:
            os.rename(path, measured / path.name)
    # The ranker stays the measured one: its NDCG@100 was what the comparison judged, and a
    # refit ranker was not stable (sample history: 0.95 measured, 0.76 refit).
    binary = tuple(_measured_rounds(s, measured, version) for s in specs
                   if s.params["objective"] not in RANKING_OBJECTIVES)
    for spec in specs:
        if spec.params["objective"] in RANKING_OBJECTIVES:
            for path in measured.glob(f"{spec.name}_v*"):
                shutil.copy2(path, stage / path.name)
    started = time.monotonic()
    train_models(input_dir, found.dates, stage, version, report_dir=stage / "report-refit",
                 specs=binary, labels=found.labels, max_rows=settings.LEARN_MAX_ROWS,
                 holdout=False, half_life_days=settings.LEARN_HALF_LIFE_DAYS or None,
                 cluster_score=_measured_cluster_score(measured, version))
    outcome.refit_dates = list(found.dates)
    outcome.refit_models = [spec.name for spec in binary]
    log.info("learn %s: the winning candidate was refit on %d dates (%s .. %s) in %.1f s",
             outcome.processing_date, len(found.dates), found.dates[0], found.dates[-1],
             time.monotonic() - started)


def _measured_rounds(spec: ModelSpec, measured: Path, version: str) -> ModelSpec:
    """The spec with the rounds its measured model ended with (early stopping chose them on
    the trainer's validation date), trained without stopping: a refit has no date to stop on."""
    if not spec.early_stopping:
        return spec
    sidecar = sidecar_file(model_file(measured, spec.name, version))
    rounds = json.loads(sidecar.read_text())["num_trees"]
    return dataclasses.replace(spec, rounds=rounds, early_stopping=0)


def _measured_cluster_score(measured: Path, version: str) -> str:
    """The cluster scoring rule the measured set was judged with (the refit keeps it)."""
    sidecar = sidecar_file(model_file(measured, CLUSTER_SCORER, version))
    return json.loads(sidecar.read_text()).get("cluster_score", MODEL_SCORES)


def _compile(settings: Settings, folder: Path) -> None:
    """Compile a set about to be promoted into the processor's cache (a no-op for models the
    comparison already compiled), so the first job after the promotion starts warm."""
    if predictor.engine_setting(settings) != predictor.COMPILED:
        return
    started = time.monotonic()
    engines = predictor.warm_cache(folder, settings.COMPILED_MODELS_DIR)
    log.info("learn: %s compiled into %s in %.1f s: %s", folder.name,
             settings.COMPILED_MODELS_DIR, time.monotonic() - started,
             {name: report["engine"] for name, report in engines.items()})


def _fresh_version(sets: Path) -> str:
    """A learned version no set of this network and window has yet (one per second)."""
    version = modelsets.new_version()
    while (sets / version).exists():
        time.sleep(1)
        version = modelsets.new_version()
    return version


def _set_record(outcome: Outcome, promoted: bool) -> dict:
    record = outcome.record()
    if outcome.refit_dates:
        record.update(decision=PROMOTED if promoted else KEPT, refit=True,
                      refit_why="the candidate won on the comparison date; its binary models "
                                "were then trained again on every history date (the newest are "
                                "the most like the next day); the measured models are in "
                                f"{MEASURED}/")
    else:
        record.update(decision=PROMOTED if promoted else KEPT, refit=False,
                      refit_why="the promoted set is exactly the one that was measured")
    return record


def _prune(settings: Settings, network: str, window: int) -> None:
    """Remove learned sets beyond the newest KEEP_SETS; never the current one."""
    keep = modelsets.current(settings, network, window).version
    versions = modelsets.learned_versions(settings, network, window)
    for version in versions[:-KEEP_SETS]:
        if version != keep:
            shutil.rmtree(modelsets.root(settings, network, window) / version, ignore_errors=True)
            log.info("learn: removed the old learned set %s of %s %dd", version, network, window)


def _finish(settings: Settings, outcome: Outcome) -> None:
    """Record the learn (last_learn.json, the report) and log its decision."""
    record = outcome.record()
    modelsets.record_learn(settings, outcome.network, outcome.window_days, record)
    path = reports_dir(settings) / (f"learn_{outcome.network}_{outcome.window_days}d_"
                                    f"{outcome.processing_date}.json")
    modelsets.write_json(path, {**record, "generated_at": dt.datetime.now(
        dt.timezone.utc).isoformat(timespec="seconds")})
    log.info("learn %s %s %dd: %s%s in %.1f s: %s (report %s)", outcome.network,
             outcome.processing_date, outcome.window_days, outcome.decision,
             f" {outcome.version}" if outcome.version else "", outcome.seconds, outcome.reason,
             path)
