"""Re-run the processor on the same input and compare: same scores (to 1e-12), same ranking.

The processor is another service, so it is run as a subprocess through the
`aml-miner` command line (`python -m services.cli process ...`), never imported.
The re-run predicts each model on the engine the date recorded in metadata.json
(compiled trees or LightGBM), and a check says whether it could.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from services.validator.integrity import Check, finding
from services.validator.sources import FolderSource, Result
from shared.settings import Settings

log = logging.getLogger(__name__)

TOLERANCE = 1e-12
# The directory holding the `services` package: `-m services.cli` must import this
# same checkout, not whichever copy happens to be installed.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_COMMAND = (sys.executable, "-m", "services.cli")
# What a date published before engines were recorded ran on: LightGBM was the only engine.
UNRECORDED_ENGINE = "lightgbm"


class ProcessorFailed(RuntimeError):
    """The processor subprocess exited non-zero; the message carries its exit code and stderr tail."""


def child_env(settings: Settings, base: dict[str, str]) -> dict[str, str]:
    """The environment for a child `aml-miner`: `base` with every settings field written out."""
    return {**base, **settings.to_env()}


def recorded_engines(metadata: dict) -> dict[str, str]:
    """The engine each model ran on, by model name, as metadata.json recorded it ({} if not)."""
    reports = metadata.get("predict_engines")
    if not isinstance(reports, dict):
        return {}
    return {name: str(report.get("engine")) for name, report in reports.items()
            if isinstance(report, dict)}


def engine_arguments(engines: dict[str, str]) -> list[str]:
    """`--engine MODEL=ENGINE` for each model (`--engine lightgbm` when none is recorded)."""
    if not engines:
        return ["--engine", UNRECORDED_ENGINE]
    return [arg for name, engine in engines.items() for arg in ("--engine", f"{name}={engine}")]


def run_processor(input_dir: Path, output_dir: Path, processing_date: str, models_dir: Path,
                  command: list[str] | None = None, env: dict | None = None,
                  timeout: float = 3600, engines: dict[str, str] | None = None) -> Path:
    """Process one date into output_dir with the given models; returns the published date folder.

    `env` is the child's whole environment (see child_env); None inherits ours. `engines`
    (model name -> engine) pins each model's engine; None leaves it to PREDICT_ENGINE.
    """
    argv = [*(command or DEFAULT_COMMAND), "process", "--input-dir", str(input_dir),
            "--output-dir", str(output_dir), "--processing-date", processing_date,
            "--models-dir", str(models_dir),
            *(engine_arguments(engines) if engines is not None else [])]
    started = time.monotonic()
    done = subprocess.run(argv, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip()[-2000:]
        raise ProcessorFailed(f"{' '.join(argv)} exited {done.returncode}: {tail}")
    log.info("processor run of %s with %s took %.1f s", processing_date, models_dir,
             time.monotonic() - started)
    return Path(output_dir) / processing_date


def _scores(frame: pd.DataFrame, key: str) -> pd.Series:
    return frame.drop_duplicates(subset=[key]).set_index(key)["score"]


def compare_scores(name: str, key: str, published: pd.DataFrame, rerun: pd.DataFrame,
                   tolerance: float = TOLERANCE) -> Check:
    """Scores of the same ids agree to `tolerance`; ids only on one side count as differences."""
    a, b = _scores(published, key), _scores(rerun, key)
    only = a.index.symmetric_difference(b.index)
    common = a.index.intersection(b.index)
    diff = np.abs(a[common].to_numpy(dtype="float64") - b[common].to_numpy(dtype="float64"))
    both_nan = np.isnan(a[common].to_numpy(dtype="float64")) & np.isnan(b[common].to_numpy(dtype="float64"))
    bad = (diff > tolerance) | (np.isnan(diff) & ~both_nan)
    offending = [*map(str, only), *(f"{i} ({d:.3g})" for i, d in zip(common[bad], diff[bad]))]
    worst = float(np.nanmax(diff)) if len(diff) and not np.all(np.isnan(diff)) else 0.0
    one_nan = int((np.isnan(diff) & ~both_nan).sum())
    nan_note = f", {one_nan} NaN on one side only" if one_nan else ""
    return finding(f"determinism.{name}", offending,
                   "{n} id(s) differ between the published output and the re-run "
                   f"(max abs diff {worst:.3g}{nan_note}, tolerance {tolerance:g})",
                   f"{len(common)} scores equal within {tolerance:g} (max abs diff {worst:.3g})")


def compare_ranking(published: pd.DataFrame, rerun: pd.DataFrame) -> Check:
    """The same alert holds the same rank in both."""
    a = published.drop_duplicates(subset=["alert_id"]).set_index("alert_id")["rank"]
    b = rerun.drop_duplicates(subset=["alert_id"]).set_index("alert_id")["rank"]
    joined = pd.concat([a.rename("a"), b.rename("b")], axis=1)
    moved = joined[~((joined["a"] == joined["b"]) | (joined["a"].isna() & joined["b"].isna()))]
    return finding("determinism.ranking", [f"{i} ({_r(r.a)} vs {_r(r.b)})" for i, r in moved.iterrows()],
                   "{n} alert(s) ranked differently in the re-run", f"{len(joined)} ranks identical")


def _r(value) -> str:
    return "absent" if pd.isna(value) else str(int(value))


def compare(published: Result, rerun: Result, tolerance: float = TOLERANCE) -> list[Check]:
    """All determinism checks between a published result and its re-run."""
    return [
        compare_scores("alert_scores", "alert_id", published.alerts, rerun.alerts, tolerance),
        compare_scores("cluster_scores", "cluster_id", published.clusters, rerun.clusters, tolerance),
        compare_ranking(published.ranking, rerun.ranking),
    ]


def compare_engines(recorded: dict[str, str], rerun: dict[str, str]) -> Check:
    """The re-run predicted each model on the engine the published date recorded."""
    expected = recorded or dict.fromkeys(rerun, UNRECORDED_ENGINE)
    moved = [f"{name} ({engine} vs {rerun.get(name, 'unknown')})"
             for name, engine in expected.items() if rerun.get(name) != engine]
    return finding("determinism.engines", moved,
                   "{n} model(s) ran on another engine in the re-run than the date recorded",
                   f"every model re-ran on its recorded engine ({', '.join(sorted(set(expected.values())))})")


def check(published: Result, input_dir: Path, models_dir: Path, workdir: Path,
          command: list[str] | None = None, env: dict | None = None) -> list[Check]:
    """Re-run the processor into workdir on the recorded engines and compare with the
    published result."""
    out = Path(workdir) / "rerun"
    recorded = recorded_engines(published.metadata)
    run_processor(input_dir, out, published.processing_date, models_dir, command, env,
                  engines=recorded)
    rerun = FolderSource(out).load(published.processing_date)
    return [*compare(published, rerun, tolerance=TOLERANCE),
            compare_engines(recorded, recorded_engines(rerun.metadata))]
