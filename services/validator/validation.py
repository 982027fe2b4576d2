"""Judge one date's published result: integrity gate, behaviour, ground truth, determinism."""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from services.validator import behaviour, determinism, inputs, integrity, metrics, plots, truth
from services.validator.integrity import Check
from services.validator.sources import SourceError, previous_date
from shared.contract import ContractError

log = logging.getLogger(__name__)

EXIT_OK, EXIT_GATE, EXIT_UNREADABLE, EXIT_NONDETERMINISTIC = 0, 1, 2, 3


@dataclass
class Outcome:
    """A finished judgement: the report (JSON-ready), its figures and the process exit code."""

    report: dict
    figures: dict[str, str]
    exit_code: int


@dataclass
class Rerun:
    """How to re-run the processor for the determinism check (None = skip it).

    models_dir None: the set the date's metadata.json records (found by `recorded`), so a
    promotion since the date was published is not taken for non-determinism.
    """

    models_dir: Path | None
    command: list[str] | None = None
    env: dict | None = None
    recorded: Callable[[dict], Path] | None = None

    def folder(self, metadata: dict) -> Path:
        """The models folder to re-run with."""
        if self.models_dir is not None or self.recorded is None:
            return Path(self.models_dir)
        return self.recorded(metadata)


def with_addresses(alerts: pd.DataFrame, address_of: pd.Series | None) -> pd.DataFrame:
    """alert_id + score (+ address from the input, else from the result's own column)."""
    frame = alerts[["alert_id", "score"]].copy()
    if address_of is not None:
        frame["address"] = frame["alert_id"].map(address_of)
    elif "address" in alerts.columns:
        frame["address"] = alerts["address"]
    return frame


def _previous(source, input_dir: Path, processing_date: str) -> tuple[pd.DataFrame | None, str | None]:
    try:
        prev = previous_date(source.dates(), processing_date)
        if prev is None:
            return None, None
        result = source.load(prev)
        address_of = inputs.addresses(input_dir, prev)
    except (SourceError, ContractError) as exc:
        log.warning("day-over-day stability skipped: %s", exc)
        return None, None
    return with_addresses(result.alerts, address_of), prev


def behaviour_section(source, result, batch: inputs.Input, input_dir: Path) -> dict:
    """Behaviour of the result, with stability against the previous published date if any."""
    address_of = pd.Series(batch.alerts["address"].astype(str).to_numpy(dtype=object),
                           index=batch.alerts["alert_id"].astype(str).to_numpy(dtype=object))
    scored = with_addresses(result.alerts, address_of)
    previous, prev_date = _previous(source, input_dir, result.processing_date)
    return behaviour.summarise(scored, previous, prev_date)


def truth_section(result, batch: inputs.Input) -> tuple[dict, dict]:
    """Ground-truth metrics and the (labels, scores) pairs for the curves."""
    if batch.labels is None:
        return {"skipped": "the input has no address_labels.parquet"}, {}
    labelled = truth.from_batch(batch.alerts, batch.clusters, batch.labels)
    if not labelled.has_labels:
        return {"skipped": "no alert address carries a usable label"}, {}
    section = metrics.ground_truth(labelled.alerts, labelled.clusters, result.alerts,
                                   result.ranking, result.clusters)
    return section, {"alerts": metrics.labelled_pairs(labelled.alerts, result.alerts, "alert_id")}


def determinism_section(result, input_dir: Path, rerun: Rerun | None) -> dict:
    """Re-run and compare, or say why it was skipped; a failed re-run is a failed check."""
    if rerun is None:
        return {"skipped": "--no-determinism"}
    started = time.monotonic()
    models_dir = rerun.folder(result.metadata)
    with tempfile.TemporaryDirectory(prefix="aml-validate-") as tmp:
        try:
            checks = determinism.check(result, input_dir, models_dir, Path(tmp),
                                       rerun.command, rerun.env)
        except (determinism.ProcessorFailed, SourceError, OSError) as exc:
            checks = [Check("determinism.rerun", False, str(exc)[-1000:])]
    return {"checks": [c.as_dict() for c in checks], "seconds": round(time.monotonic() - started, 2),
            "models_dir": str(models_dir)}


def verdict(gate: list[Check], det: dict) -> dict:
    """Overall verdict and exit code: the gate first, then determinism."""
    gate_ok = integrity.gate_passed(gate)
    det_ok = "skipped" in det or all(c["passed"] for c in det["checks"])
    code = EXIT_OK if gate_ok and det_ok else EXIT_GATE if not gate_ok else EXIT_NONDETERMINISTIC
    summary = {EXIT_OK: "integrity gate passed" + ("" if "skipped" in det else ", deterministic"),
               EXIT_GATE: "INTEGRITY GATE FAILED",
               EXIT_NONDETERMINISTIC: "integrity gate passed, NOT DETERMINISTIC"}[code]
    return {"integrity_gate": "pass" if gate_ok else "fail",
            "determinism": "skipped" if "skipped" in det else "pass" if det_ok else "fail",
            "summary": summary, "exit_code": code}


def validate(source, input_dir: Path, processing_date: str, rerun: Rerun | None) -> Outcome:
    """The whole judgement of one date; raises ContractError/SourceError when it cannot start."""
    batch = inputs.load(input_dir, processing_date)
    result = source.load(processing_date)
    gate = integrity.run_gate(result, batch.alerts, batch.clusters, batch.meta)
    behave = behaviour_section(source, result, batch, input_dir)
    ground, curves = truth_section(result, batch)
    det = determinism_section(result, input_dir, rerun)
    report = {
        "kind": "validate", "processing_date": processing_date, "source": result.origin,
        "input": str(batch.folder), "generated_at": dt.datetime.now(dt.timezone.utc).isoformat(),
        "model_versions": result.metadata.get("model_versions"),
        "verdict": verdict(gate, det), "integrity": [c.as_dict() for c in gate],
        "behaviour": behave, "ground_truth": ground, "determinism": det,
    }
    figures = plots.figures({processing_date: behave["histogram"]}, curves)
    log.info("validate %s: gate %s, %d checks, exit %d", processing_date,
             report["verdict"]["integrity_gate"], len(gate), report["verdict"]["exit_code"])
    return Outcome(report, figures, report["verdict"]["exit_code"])
