"""`aml-miner models list`: every model set of a network and window, as rows and as text."""

from __future__ import annotations

import json
from pathlib import Path

from services.processor.models import MODEL_NAMES, available_versions, model_file, sidecar_file
from shared import modelsets
from shared.settings import Settings


def _span(dates: list[str]) -> str:
    if not dates:
        return "-"
    return f"{dates[0]}..{dates[-1]} ({len(dates)} dates)" if len(dates) > 1 else dates[0]


def _shipped_row(settings: Settings) -> dict:
    folder = Path(settings.MODELS_DIR)
    tags, dates = [], set()
    for name in MODEL_NAMES:
        versions = available_versions(folder, name)
        if not versions:
            continue
        tags.append(f"{name}_v{versions[-1]}")
        try:
            sidecar = json.loads(sidecar_file(model_file(folder, name, versions[-1])).read_text())
            dates.update(sidecar.get("training_dates") or [])
        except (OSError, ValueError):
            pass
    return {"version": modelsets.SHIPPED, "folder": str(folder), "models": tags,
            "training_dates": sorted(dates), "decision": "", "reason": "the cold start"}


def _learned_row(settings: Settings, network: str, days: int, version: str) -> dict:
    folder = modelsets.root(settings, network, days) / version
    try:
        record = modelsets.read_json(folder / modelsets.SET_FILE) or {}
    except modelsets.ModelSetError as exc:
        record = {"reason": str(exc)}
    metrics = record.get("metrics") or {}
    return {"version": version, "folder": str(folder),
            "learned_for": record.get("processing_date"),
            "training_dates": record.get("training_dates") or [],
            "comparison_date": record.get("comparison_date"),
            "alert_auc": (metrics.get("candidate") or {}).get("alert_auc"),
            "alert_auc_of_current": (metrics.get("current") or {}).get("alert_auc"),
            "compared_with": record.get("current"),
            "decision": record.get("decision", "?"), "reason": record.get("reason", "")}


def rows(settings: Settings, network: str, days: int) -> list[dict]:
    """The shipped set, then the learned ones newest first; `current` marks the one in use."""
    current = modelsets.current(settings, network, days)
    found = [_shipped_row(settings)] + [
        _learned_row(settings, network, days, v)
        for v in reversed(modelsets.learned_versions(settings, network, days))]
    for row in found:
        row["current"] = row["version"] == current.version
        row["pinned"] = row["current"] and current.pinned
    return found


def _number(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _line(row: dict) -> str:
    mark = "*" if row["current"] else " "
    pinned = " (pinned)" if row["pinned"] else ""
    if row["version"] == modelsets.SHIPPED:
        return (f"{mark} shipped{pinned}: {', '.join(row['models']) or 'no models'} in "
                f"{row['folder']}; trained on {_span(row['training_dates'])}")
    return (f"{mark} {row['version']}{pinned}: learned for {row['learned_for']} on "
            f"{_span(row['training_dates'])}; on {row['comparison_date']} alert ROC AUC "
            f"{_number(row['alert_auc'])} vs {_number(row['alert_auc_of_current'])} "
            f"({row['compared_with']}): {row['decision']}\n      {row['reason']}")


def render(found: list[dict], network: str, days: int) -> str:
    """The rows as text, one set per entry, the current one marked with *."""
    head = f"model sets of {network} {days}d (* current; `aml-miner models use VERSION` pins one)"
    return "\n".join([head, *(_line(r) for r in found)])
