"""The input side of a judgement: the alerts, clusters, labels and META.json of one date."""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from shared import contract, storage

log = logging.getLogger(__name__)


@dataclass
class Input:
    """What the validator needs of an input date (features are not needed to judge scores)."""

    folder: Path
    alerts: pd.DataFrame
    clusters: pd.DataFrame
    labels: pd.DataFrame | None
    meta: dict


def _meta(folder: Path) -> dict:
    path = folder / contract.META_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise contract.ContractError(path, f"not valid JSON ({exc})") from exc
    return data if isinstance(data, dict) else {}


def read_labels(path: Path) -> pd.DataFrame:
    """An address labels file (any name), validated like the input's own."""
    path = Path(path)
    if not path.is_file():
        raise contract.ContractError(path, "labels file does not exist")
    return contract.read_table(path.parent, dataclasses.replace(contract.LABELS, file=path.name))


def load(input_dir: Path, processing_date: str, labels_path: Path | None = None) -> Input:
    """Read one input date, or raise ContractError naming the file and problem.

    labels_path: judge by this labels file instead of the date's own (e.g. a newer copy
    of the cumulative file, which knows more of the date's addresses).
    """
    folder = storage.date_dir(Path(input_dir), processing_date)
    if not folder.is_dir():
        raise contract.ContractError(folder, "input date folder does not exist")
    labels = None
    if labels_path is not None:
        labels = read_labels(labels_path)
    elif (folder / contract.LABELS_FILE).is_file():
        labels = contract.read_table(folder, contract.LABELS)
    else:
        log.warning("%s: no %s, ground-truth metrics are skipped", folder, contract.LABELS_FILE)
    return Input(folder, contract.read_table(folder, contract.ALERTS),
                 contract.read_table(folder, contract.CLUSTERS), labels, _meta(folder))


def addresses(input_dir: Path, processing_date: str) -> pd.Series | None:
    """alert_id -> address of an input date, or None when that date's input is not here."""
    folder = Path(input_dir) / processing_date
    if not (folder / contract.ALERTS_FILE).is_file():
        return None
    alerts = contract.read_table(folder, contract.ALERTS)
    return pd.Series(alerts["address"].astype(str).to_numpy(dtype=object),
                     index=alerts["alert_id"].astype(str).to_numpy(dtype=object))
