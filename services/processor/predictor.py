"""The engine each model predicts with: compiled trees (lleaves, the default) or LightGBM.

Both engines give one float64 score per row of a C-order float64 matrix, the model's own
output (its objective's transform applied; a ranker has none), on the calling thread only:
the processor runs one call per chunk on each core. The compiled engine is several times
cheaper (docs/performance.md).
LightGBM is the fallback, model by model, wherever the compiled engine is unavailable, does
not compile, or disagrees with LightGBM by more than parity.TOLERANCE: one warning says why,
and the reason is reported with the engine (metadata.json).
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from services.processor import compiled, parity
from shared.settings import Settings, SettingsError

log = logging.getLogger(__name__)

COMPILED = "compiled"
LIGHTGBM = "lightgbm"
ENGINES = (COMPILED, LIGHTGBM)


class LightGBMEngine:
    """LightGBM's own Booster.predict, one thread per call."""

    name = LIGHTGBM

    def __init__(self, booster):
        self.booster = booster

    def predict(self, rows: np.ndarray) -> np.ndarray:
        """Scores of a C-order float64 matrix."""
        return np.asarray(self.booster.predict(rows, num_threads=1), dtype=np.float64)


class CompiledEngine:
    """The model compiled to native code by lleaves; the call releases the GIL."""

    name = COMPILED

    def __init__(self, forest):
        self.forest = forest

    def predict(self, rows: np.ndarray) -> np.ndarray:
        """Scores of a C-order float64 matrix."""
        return self.forest.predict(rows, n_jobs=1)


def engine_setting(settings: Settings) -> str:
    """PREDICT_ENGINE, checked: SettingsError naming the variable when it is not an engine."""
    if settings.PREDICT_ENGINE not in ENGINES:
        raise SettingsError(f"PREDICT_ENGINE={settings.PREDICT_ENGINE!r} is not one of "
                            f"{', '.join(ENGINES)}")
    return settings.PREDICT_ENGINE


def requested(engine: str | Mapping[str, str], names: Iterable[str]) -> dict[str, str]:
    """The engine asked for each model: one for all, or a mapping by name (others: compiled).

    Raises ValueError naming a value that is not an engine or a name that is not a model's.
    """
    names = list(names)
    wanted = dict.fromkeys(names, engine) if isinstance(engine, str) else {
        **dict.fromkeys(names, COMPILED), **engine}
    for name, value in wanted.items():
        if name not in names:
            raise ValueError(f"engine given for {name!r}, which is not one of {', '.join(names)}")
        if value not in ENGINES:
            raise ValueError(f"engine {value!r} for {name} is not one of {', '.join(ENGINES)}")
    return wanted


def fall_back(model, reason: str) -> None:
    """Score this model with LightGBM from now on, and say why, once."""
    model.engine, model.fallback = LightGBMEngine(model.booster), reason
    log.warning("%s: scoring with LightGBM instead of compiled trees: %s", model.tag, reason)


def check(model, rows: np.ndarray) -> float:
    """max |compiled - LightGBM| of the model's scores on rows (float64, C order)."""
    return parity.max_abs_diff(model.engine.predict(rows), LightGBMEngine(model.booster).predict(rows))


def _adopt(model, entry) -> None:
    """Load the compiled model from its cache entry and keep it if it passes the parity probe."""
    if isinstance(entry, compiled.CompileError):
        return fall_back(model, str(entry))
    started = time.perf_counter()
    try:
        forest = compiled.load(model.path, entry)
    except Exception as exc:  # llvmlite raises RuntimeError for an object it cannot link
        return fall_back(model, f"cache entry {entry} could not be loaded ({exc})")
    model.engine = CompiledEngine(forest)
    probe = parity.probe_rows(model.booster)
    diff = check(model, probe)
    if diff > parity.TOLERANCE:
        return fall_back(model, f"compiled scores differ from LightGBM's by up to {diff:.3g} "
                                f"(> {parity.TOLERANCE:g}) on {len(probe)} probe rows")
    log.info("%s: compiled trees from %s in %.2f s (max |diff| %.2g against LightGBM on %d "
             "probe rows)", model.tag, entry, time.perf_counter() - started, diff, len(probe))


def _entries(models: list, cache_dir: Path) -> dict:
    """Each model's cache entry, compiling the missing ones (or the CompileError of each)."""
    key = compiled.toolchain_key()
    entries = {m.name: compiled.cached_entry(cache_dir, m.sha256, key) for m in models}
    missing = {m.name: (m.path, m.sha256) for m in models if entries[m.name] is None}
    if missing:
        started = time.perf_counter()
        log.info("compiling %d model(s) into %s: %s", len(missing), cache_dir, ", ".join(missing))
        entries.update(compiled.compile_all(missing, cache_dir))
        log.info("compiled %d model(s) in %.1f s", len(missing), time.perf_counter() - started)
    return entries


def _all_fall_back(models: list, reason: str) -> None:
    for model in models:
        fall_back(model, reason)


def use_engines(models: Iterable, engine: str | Mapping[str, str],
                cache_dir: Path | str | None) -> None:
    """Give each model the engine asked for: compiled ones from the cache (compiled into it when
    missing; in a temporary folder when cache_dir is None), LightGBM wherever that fails."""
    models = list(models)
    wanted = requested(engine, [m.name for m in models])
    chosen = [m for m in models if wanted[m.name] == COMPILED]
    if not chosen:
        return
    try:
        if cache_dir is None:
            with tempfile.TemporaryDirectory(prefix="aml-compiled-") as tmp:
                entries = _entries(chosen, Path(tmp))
                for model in chosen:  # loaded before the folder goes
                    _adopt(model, entries[model.name])
            return
        entries = _entries(chosen, Path(cache_dir))
    except compiled.CompileError as exc:  # lleaves or llvmlite missing or broken
        return _all_fall_back(chosen, str(exc))
    except OSError as exc:  # the cache folder cannot be read
        return _all_fall_back(chosen, f"compiled-model cache {cache_dir}: {exc}")
    for model in chosen:
        _adopt(model, entries[model.name])


def warm_cache(models_dir: Path | str, cache_dir: Path | str, version: str | None = None) -> dict:
    """Compile a model folder's three models into the cache where missing (e.g. a candidate
    set before it is promoted, so the first job after the promotion starts warm).

    Returns each model's engine report (see Models.engines).
    """
    from services.processor.models import load_models

    return load_models(models_dir, version, engine=COMPILED, cache_dir=cache_dir).engines()
