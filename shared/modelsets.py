"""Model sets: the shipped set, the sets learned per network and window, and which one is current.

A learned set is a folder `LEARNED_MODELS_DIR/{network}/{window}d/{version}/` holding the
three models with their sidecars and `set.json` (how it was learned and judged). It is
written under a temporary name and renamed into place, and never edited afterwards.
Beside the sets, two small JSON files, each replaced with one rename:

- `current.json`: the set processing uses (`{"version": V | "shipped", "pinned": bool, ...}`);
  absent means the shipped set in MODELS_DIR.
- `last_learn.json`: the last learn's processing date and decision, so the chain knows
  whether a learn is due and whether the first one (with its backfill) has run.

Every service reads these through this module; only the learner and `aml-miner models`
write them.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

from shared.settings import Settings

log = logging.getLogger(__name__)

SHIPPED = "shipped"
CURRENT_FILE = "current.json"
LAST_LEARN_FILE = "last_learn.json"
SET_FILE = "set.json"
# Learned versions are UTC timestamps: they sort by time and never look like a shipped X.Y.Z.
LEARNED_VERSION_RE = re.compile(r"^\d{8}T\d{6}Z$")


class ModelSetError(ValueError):
    """A model set named by an operator does not exist, or a state file is unreadable."""


@dataclass(frozen=True)
class ModelSet:
    """One set of the three models: where it lives and where it comes from."""

    version: str  # a learned version, or SHIPPED
    source: str  # "learned", "shipped" or "override" (a folder given on the command line)
    folder: Path
    pinned: bool = False

    def describe(self) -> dict:
        """The set as metadata.json records it."""
        return {"source": self.source, "version": self.version, "folder": str(self.folder),
                "pinned": self.pinned}


def root(settings: Settings, network: str, window_days: int) -> Path:
    """The folder of one network's and window's learned sets."""
    return Path(settings.LEARNED_MODELS_DIR) / network / f"{int(window_days)}d"


def new_version(now: dt.datetime | None = None) -> str:
    """A learned version for a set made now: its UTC time to the second."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return now.astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def is_learned_version(version: str) -> bool:
    """True for a learned set's version (a UTC timestamp), False for a shipped X.Y.Z."""
    return bool(LEARNED_VERSION_RE.match(str(version)))


def read_json(path: Path) -> dict | None:
    """A small state file's content, None when it does not exist; unreadable is an error."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ModelSetError(f"{path}: not readable JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ModelSetError(f"{path}: not a JSON object")
    return data


def write_json(path: Path, data: dict) -> None:
    """Replace a small JSON file in one rename, so a reader sees the old or the new content."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def shipped(settings: Settings) -> ModelSet:
    """The shipped set in MODELS_DIR (every network's cold start)."""
    return ModelSet(SHIPPED, "shipped", Path(settings.MODELS_DIR))


def learned_versions(settings: Settings, network: str, window_days: int) -> list[str]:
    """Versions of the learned sets of one network and window, oldest first."""
    folder = root(settings, network, window_days)
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir()
                  if p.is_dir() and is_learned_version(p.name))


def find(settings: Settings, network: str, window_days: int, version: str) -> ModelSet:
    """The set of a version (SHIPPED or a learned one), or ModelSetError naming what exists."""
    if version == SHIPPED:
        return shipped(settings)
    folder = root(settings, network, window_days) / version
    if not is_learned_version(version) or not folder.is_dir():
        known = ", ".join([SHIPPED, *learned_versions(settings, network, window_days)])
        raise ModelSetError(f"no model set {version!r} for {network} {int(window_days)}d "
                            f"(known: {known})")
    return ModelSet(version, "learned", folder)


def current(settings: Settings, network: str, window_days: int) -> ModelSet:
    """The set processing uses now: current.json's learned set, else the shipped one.

    A current.json naming a set that is gone falls back to the shipped set with a warning,
    so a deleted folder never stops processing.
    """
    state_path = root(settings, network, window_days) / CURRENT_FILE
    state = read_json(state_path)
    if not state or state.get("version") in (None, SHIPPED):
        return ModelSet(SHIPPED, "shipped", Path(settings.MODELS_DIR),
                        bool(state and state.get("pinned")))
    try:
        found = find(settings, network, window_days, str(state["version"]))
    except ModelSetError as exc:
        log.warning("%s: %s; using the shipped models", state_path, exc)
        return shipped(settings)
    return ModelSet(found.version, found.source, found.folder, bool(state.get("pinned")))


def recorded(settings: Settings, metadata: dict) -> ModelSet:
    """The set a published date was scored with, as its metadata.json records it, found here
    (a learned set under this LEARNED_MODELS_DIR; the shipped one in MODELS_DIR)."""
    record = metadata.get("model_set") or {}
    source, version = record.get("source", "shipped"), str(record.get("version") or "")
    if source == "learned":
        network, window = metadata.get("network"), metadata.get("window_days")
        return ModelSet(version, source, root(settings, str(network), int(window)) / version)
    if source == "override" and record.get("folder"):
        return ModelSet(version, source, Path(record["folder"]))
    return shipped(settings)


def make_current(settings: Settings, network: str, window_days: int, version: str,
                 by: str, pinned: bool = False) -> ModelSet:
    """Point current.json at a set (atomic); returns it. `by` says who: learn or an operator."""
    chosen = find(settings, network, window_days, version)
    write_json(root(settings, network, window_days) / CURRENT_FILE,
               {"version": chosen.version, "pinned": pinned, "by": by, "since": _now()})
    log.info("model set of %s %dd: %s is now current (%s%s)", network, int(window_days),
             chosen.version, by, ", pinned" if pinned else "")
    return ModelSet(chosen.version, chosen.source, chosen.folder, pinned)


def unpin(settings: Settings, network: str, window_days: int) -> ModelSet:
    """Let learning promote again; the current set stays as it is until then."""
    now = current(settings, network, window_days)
    write_json(root(settings, network, window_days) / CURRENT_FILE,
               {"version": now.version, "pinned": False, "by": "operator", "since": _now()})
    return ModelSet(now.version, now.source, now.folder, False)


def last_learn(settings: Settings, network: str, window_days: int) -> dict | None:
    """The last learn's record (processing_date, decision, version, reason), None if none ran."""
    return read_json(root(settings, network, window_days) / LAST_LEARN_FILE)


def record_learn(settings: Settings, network: str, window_days: int, record: dict) -> None:
    """Replace last_learn.json with this learn's record."""
    write_json(root(settings, network, window_days) / LAST_LEARN_FILE, {**record, "at": _now()})


def needs_first_learn(settings: Settings, network: str, window_days: int) -> bool:
    """True when learning is on and no learn has run yet for this network and window."""
    return settings.LEARN_ENABLED and last_learn(settings, network, window_days) is None


def learn_due(settings: Settings, network: str, window_days: int, processing_date: str) -> bool:
    """True when learning is on and the last learn is LEARN_EVERY_DAYS processing dates old."""
    if not settings.LEARN_ENABLED:
        return False
    last = last_learn(settings, network, window_days)
    if last is None or not last.get("processing_date"):
        return True
    age = (dt.date.fromisoformat(processing_date)
           - dt.date.fromisoformat(str(last["processing_date"]))).days
    return age >= settings.LEARN_EVERY_DAYS
