"""The first start with several networks moves a one-network layout into its network's folder.

A one-network stack keeps its dates directly in INPUT_DIR and OUTPUT_DIR (date links,
`.versions/`, `.published/`, `.locks/`); with several networks every network's dates live in
ROOT/{network}/. A root's old entries are renamed one by one into a hidden staging folder
ROOT/.migrating-{network}/, which then becomes ROOT/{network} in one rename: a multi-network
reader (which only looks in ROOT/{network}) sees nothing or the whole layout, never part of
it. The date links are relative (`.versions/...`), so they resolve the same in their new
folder. A start killed mid-way leaves the staging folder, and the next start finishes the
move; a flock on ROOT/.layout.lock keeps two services starting together from racing.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from pathlib import Path
from typing import Iterator

from shared import manifest, publish_lock, storage
from shared.settings import Settings, SettingsError

log = logging.getLogger(__name__)

STAGING_PREFIX = ".migrating-"
LOCK_FILE = ".layout.lock"
SOT_META = "META.json"  # contract.META_FILE, without importing pandas into every service's start
# What a one-network root holds besides its date links (storage's and publish_lock's names).
ONE_NETWORK_FOLDERS = (storage.VERSIONS, storage.PUBLISHED, publish_lock.LOCKS)


class LayoutError(SettingsError):
    """An old layout cannot be moved by itself; the message names the folder and the fix."""


def old_entries(root: Path) -> list[Path]:
    """The entries of a one-network layout directly in root (dates and their bookkeeping)."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir()
                  if storage.DATE_RE.match(p.name) or p.name in ONE_NETWORK_FOLDERS
                  or p.name.startswith(storage.TMP_PREFIX))


def _staging(root: Path) -> list[Path]:
    root = Path(root)
    return sorted(root.glob(f"{STAGING_PREFIX}*")) if root.is_dir() else []


def _read_network(path: Path) -> str | None:
    try:
        value = json.loads(path.read_text()).get("network")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) and value else None


def date_network(folder: Path) -> str | None:
    """The network a date folder records: metadata.json (output), META.json or DOWNLOAD.json
    (input); None when none of them says."""
    for name in (storage.METADATA, SOT_META):
        if found := _read_network(Path(folder) / name):
            return found
    record = manifest.read_manifest(Path(folder)) or {}
    source = record.get("source") if isinstance(record.get("source"), dict) else {}
    found = source.get("network")
    return found if isinstance(found, str) and found else None


def recorded_networks(root: Path) -> dict[str, str]:
    """{network: an example folder} of every network the old layout's dates record."""
    found: dict[str, str] = {}
    for entry in old_entries(root):
        if storage.DATE_RE.match(entry.name) and entry.is_dir():
            network = date_network(entry)
            if network:
                found.setdefault(network, str(entry))
    return found


def target_network(settings: Settings, roots: list[Path]) -> str:
    """The network the old data belongs to: the one its files record, else the first one."""
    found: dict[str, str] = {}
    for root in roots:
        for network, example in recorded_networks(root).items():
            found.setdefault(network, example)
    unknown = sorted(set(found) - set(settings.networks))
    if unknown:
        raise LayoutError(
            f"{found[unknown[0]]} records network {unknown[0]!r}, which NETWORKS="
            f"{','.join(settings.networks)} does not name: add it to NETWORKS, or move the "
            f"one-network layout out of {', '.join(map(str, roots))}")
    if len(found) > 1:
        raise LayoutError(f"the one-network layout records several networks "
                          f"({', '.join(f'{n} in {p}' for n, p in sorted(found.items()))}): "
                          "move each network's dates into ROOT/{network}/ by hand")
    return next(iter(found), settings.default_network)


@contextlib.contextmanager
def _locked(roots: list[Path]) -> Iterator[None]:
    """An exclusive flock on each existing root's LOCK_FILE, in a fixed order."""
    with contextlib.ExitStack() as stack:
        for root in sorted({Path(r).resolve() for r in roots if Path(r).is_dir()}):
            handle = stack.enter_context(open(root / LOCK_FILE, "a"))
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _move(root: Path, network: str) -> int:
    """Move root's old entries into root/{network} through the staging folder; the count."""
    entries, target = old_entries(root), root / network
    staging = root / f"{STAGING_PREFIX}{network}"
    if target.exists():
        names = ", ".join(e.name for e in entries)
        raise LayoutError(f"{root} holds a one-network layout ({names}) beside {target}: move "
                          "one of them away, then start again")
    staging.mkdir(exist_ok=True)
    for entry in entries:
        os.replace(entry, staging / entry.name)
    os.replace(staging, target)
    storage.fsync_dir(root)
    return len(entries)


def _other_staging(root: Path, network: str) -> list[Path]:
    return [p for p in _staging(root) if p.name != f"{STAGING_PREFIX}{network}"]


def migrate(settings: Settings) -> dict[str, int]:
    """With several networks, move a one-network layout of INPUT_DIR and OUTPUT_DIR into its
    network's folder; {root: entries moved}. A no-op with one network or nothing to move."""
    if not settings.multi_network:
        return {}
    roots = [Path(settings.INPUT_DIR), Path(settings.OUTPUT_DIR)]
    with _locked(roots):
        pending = [r for r in roots if old_entries(r) or _staging(r)]
        if not pending:
            return {}
        network = _resumed(pending) or target_network(settings, roots)
        settings.check_network(network)
        moved = {}
        for root in pending:
            if stray := _other_staging(root, network):
                raise LayoutError(f"{stray[0]} is an unfinished move to another network than "
                                  f"{network}: finish or undo it by hand")
            moved[str(root)] = _move(root, network)
            log.info("layout: moved %d one-network entr%s of %s into %s/ (%s)", moved[str(root)],
                     "y" if moved[str(root)] == 1 else "ies", root, network,
                     "NETWORKS has several networks")
    return moved


def _resumed(roots: list[Path]) -> str | None:
    """The network of a move a killed start left half done (its staging folder's name)."""
    for root in roots:
        for folder in _staging(root):
            return folder.name.removeprefix(STAGING_PREFIX)
    return None
