"""The three LightGBM models: files, sidecars, loading with checks, and inference.

A model is `{name}_v{version}.txt` (LightGBM text) with a sidecar
`{name}_v{version}.json` (feature names in order, training window, metrics,
params, and the model file's sha256). A sidecar that disagrees with its model
is an error at load, so a half-copied or mismatched pair is never used. Each
model predicts with the engine it was loaded with (predictor.py).
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from services.processor import predictor
from shared.storage import sha256_file

log = logging.getLogger(__name__)

ALERT_SCORER = "alert_scorer"
ALERT_RANKER = "alert_ranker"
CLUSTER_SCORER = "cluster_scorer"
MODEL_NAMES = (ALERT_SCORER, ALERT_RANKER, CLUSTER_SCORER)
# X.Y.Z for shipped and hand-trained models; a UTC timestamp for learned ones (shared.modelsets).
_VERSION = r"\d+\.\d+\.\d+|\d{8}T\d{6}Z"
VERSION_RE = re.compile(rf"^(?:{_VERSION})$")
_FILE_RE = re.compile(rf"^(?P<name>[a-z_]+)_v(?P<version>{_VERSION})\.txt$")
_ROW_BLOCK = 8_192  # rows copied at a time into a C-order matrix (a block stays in cache)


class ModelError(Exception):
    """A model file or its sidecar is missing, unreadable or inconsistent; names the file(s)."""


def cpu_threads() -> int:
    """Cores this process may run on (all of them are used for prediction)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def model_tag(name: str, version: str) -> str:
    """The model's id as written in outputs, e.g. alert_scorer_v1.0.0."""
    return f"{name}_v{version}"


def model_file(models_dir: Path, name: str, version: str) -> Path:
    """Path of a model's LightGBM text file."""
    return Path(models_dir) / f"{model_tag(name, version)}.txt"


def sidecar_file(model_path: Path) -> Path:
    """Path of the JSON sidecar next to a model file."""
    return Path(model_path).with_suffix(".json")


def version_key(version: str) -> tuple:
    """Sort key of a version: X.Y.Z numerically (1.10.0 after 1.9.0), learned ones after, by time."""
    if "." in version:
        return (0, tuple(int(part) for part in version.split(".")))
    return (1, version)


def available_versions(models_dir: Path, name: str) -> list[str]:
    """Versions of one model present in a folder, oldest first."""
    folder = Path(models_dir)
    if not folder.is_dir():
        return []
    found = [m["version"] for p in folder.iterdir()
             if (m := _FILE_RE.match(p.name)) and m["name"] == name]
    return sorted(found, key=version_key)


def column_sources(frame: pd.DataFrame, names) -> list:
    """Each named column of frame as a float32 array, None for a column frame lacks.

    Float32, as the feature frame holds them: every engine sees the same float32 values.
    """
    return [frame[name].to_numpy(np.float32) if name in frame else None for name in names]


def fill_rows(out: np.ndarray, sources: list, start: int, stop: int) -> np.ndarray:
    """Copy rows [start, stop) of the column sources into the C-order matrix out (from its first
    row on); returns the filled rows.

    Copied in row blocks so each block's writes stay in cache.
    """
    for first in range(start, stop, _ROW_BLOCK):
        last = min(first + _ROW_BLOCK, stop)
        block = out[first - start:last - start]
        for j, source in enumerate(sources):
            block[:, j] = np.nan if source is None else source[first:last]
    return out[:stop - start]


def to_matrix(frame: pd.DataFrame, names: list[str] | tuple[str, ...]) -> np.ndarray:
    """A C-order float64 matrix of frame's columns in the given order (NaN for absent ones)."""
    out = np.empty((len(frame), len(names)), dtype=np.float64)
    return fill_rows(out, column_sources(frame, names), 0, len(frame))


@dataclass
class Model:
    """One loaded booster with its saved feature list, sidecar and prediction engine."""

    name: str
    version: str
    booster: object  # lightgbm.Booster
    features: tuple[str, ...]
    sidecar: dict
    path: Path
    engine: object = None  # predictor.CompiledEngine or LightGBMEngine (the default)
    fallback: str | None = None  # why the compiled engine is not used, when it was asked for
    _warned: set = field(default_factory=set, repr=False)

    def __post_init__(self):
        if self.engine is None:
            self.engine = predictor.LightGBMEngine(self.booster)

    @property
    def tag(self) -> str:
        """The model's id as written in outputs, e.g. alert_scorer_v1.0.0."""
        return model_tag(self.name, self.version)

    @property
    def sha256(self) -> str:
        """The model file's sha256 (checked against the file at load)."""
        return self.sidecar["model_sha256"]

    def warn_missing(self, frame: pd.DataFrame) -> None:
        """Log, once per column, the model's features that frame lacks (they become NaN)."""
        missing = [name for name in self.features
                   if name not in frame and name not in self._warned]
        if missing:
            self._warned.update(missing)
            log.warning("%s: %d feature column(s) absent, using NaN: %s",
                        self.tag, len(missing), ", ".join(missing))

    def matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """The frame's columns in the model's saved order; a missing one is NaN, logged once."""
        self.warn_missing(frame)
        return to_matrix(frame, self.features)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Scores of each row of a feature frame (extra columns are ignored), on one thread."""
        return self.engine.predict(self.matrix(frame))


@dataclass(frozen=True)
class Models:
    """The three models the processor needs, loaded once and shared by every job."""

    alert_scorer: Model
    alert_ranker: Model
    cluster_scorer: Model

    def __iter__(self):
        return iter(getattr(self, name) for name in MODEL_NAMES)

    def versions(self) -> dict[str, str]:
        """Model ids by role, as written to metadata.json."""
        return {name: getattr(self, name).tag for name in MODEL_NAMES}

    def engines(self) -> dict[str, dict]:
        """Each model's engine and, where compiled trees were asked for but not used, why."""
        return {m.name: {"engine": m.engine.name, **({"fallback": m.fallback} if m.fallback else {})}
                for m in self}


def _read_sidecar(path: Path, sidecar: Path) -> dict:
    if not sidecar.is_file():
        raise ModelError(f"{path}: its sidecar {sidecar} is missing")
    try:
        data = json.loads(sidecar.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{sidecar}: not readable JSON ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("features"), list):
        raise ModelError(f"{sidecar}: no 'features' list")
    return data


def _load_booster(path: Path):
    import lightgbm

    try:
        return lightgbm.Booster(model_file=str(path))
    except lightgbm.basic.LightGBMError as exc:
        raise ModelError(f"{path}: not a readable LightGBM model ({exc})") from exc


def _check_pair(path: Path, sidecar: Path, data: dict, booster, name: str, version: str) -> None:
    """Raise ModelError naming both files where the sidecar disagrees with the model."""
    pair = f"{path} and {sidecar} disagree"
    if data.get("model_sha256") != sha256_file(path):
        raise ModelError(f"{pair}: the model's sha256 is not the sidecar's model_sha256")
    if (data.get("name"), data.get("version")) != (name, version):
        raise ModelError(f"{pair}: sidecar names {data.get('name')} v{data.get('version')}")
    saved = booster.feature_name()
    if len(saved) != len(data["features"]):
        raise ModelError(f"{pair}: {len(saved)} features in the model, "
                         f"{len(data['features'])} in the sidecar")
    if saved != data["features"]:
        first = next(i for i, (a, b) in enumerate(zip(saved, data["features"])) if a != b)
        raise ModelError(f"{pair}: feature {first} is {saved[first]!r} in the model, "
                         f"{data['features'][first]!r} in the sidecar")


def load_model(models_dir: Path | str, name: str, version: str | None = None) -> Model:
    """Load one model: the given version, or the highest one in the folder."""
    if version is None:
        versions = available_versions(models_dir, name)
        if not versions:
            raise ModelError(f"{models_dir}: no {name}_v<version>.txt model file")
        version = versions[-1]
    elif not VERSION_RE.match(version):
        raise ModelError(f"model version {version!r} is not in X.Y.Z form (or a learned "
                         "set's YYYYMMDDTHHMMSSZ)")
    path = model_file(models_dir, name, version)
    if not path.is_file():
        raise ModelError(f"{path}: model file is missing")
    sidecar = sidecar_file(path)
    data = _read_sidecar(path, sidecar)
    booster = _load_booster(path)
    _check_pair(path, sidecar, data, booster, name, version)
    log.info("loaded %s (%d trees, %d features)", path, booster.num_trees(), len(data["features"]))
    return Model(name, version, booster, tuple(data["features"]), data, path)


def load_models(models_dir: Path | str, version: str | None = None,
                engine: str | dict = predictor.LIGHTGBM, cache_dir: Path | str | None = None) -> Models:
    """Load the three models (each at its highest version, or all at a pinned version).

    engine: predictor.COMPILED or LIGHTGBM for all three, or a mapping by model name; compiled
    models come from (and are compiled into) cache_dir, see predictor.use_engines.
    """
    predictor.requested(engine, MODEL_NAMES)  # a bad value fails before the models are read
    models = Models(**{name: load_model(models_dir, name, version) for name in MODEL_NAMES})
    predictor.use_engines(models, engine, cache_dir)
    return models
