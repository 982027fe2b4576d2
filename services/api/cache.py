"""Rendered responses of recently served dates, keyed by version folder, in a small LRU.

Each entry is one published version folder; its bodies are rendered on first use
(or when warmed) and never change, because the folder never changes. A re-publish
of a date is a new folder name and so a new entry; the old one ages out.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from shared import storage

from . import render, store
from .render import Body, ListKind

log = logging.getLogger(__name__)

CACHE_DATES = 4

ALERT_SCORES = ListKind("alert-scores", storage.ALERTS_SCORED, ("alert_id", "score"),
                        "scores", "total_alerts", "alert_scorer")
ALERT_RANKINGS = ListKind("alert-rankings", storage.ALERTS_RANKED, ("alert_id", "rank", "score"),
                          "rankings", "total_alerts", "alert_ranker", sort_by="rank")
CLUSTER_SCORES = ListKind("cluster-scores", storage.CLUSTERS_SCORED, ("cluster_id", "score"),
                          "scores", "total_clusters", "cluster_scorer")
LIST_KINDS = (ALERT_SCORES, ALERT_RANKINGS, CLUSTER_SCORES)

# metadata.json keys the list envelopes repeat under "metadata", besides processed_at.
ENVELOPE_METADATA = ("model_versions", "model_github_url", "alert_count", "cluster_count")


class DateResults:
    """The responses of one published version folder, each rendered at most once."""

    def __init__(self, version: Path):
        self.version = version
        self.identity = version.name
        self._bodies: dict[str, Body] = {}
        self._meta: dict | None = None
        self._lock = threading.Lock()

    def metadata(self) -> Body:
        """metadata.json exactly as published."""
        return self._get("metadata", self._render_metadata)

    def listing(self, kind: ListKind) -> Body:
        """The full response of one list endpoint."""
        return self._get(kind.name, lambda: self._render_list(kind))

    def rendered(self, key: str) -> Body | None:
        """A body already rendered under key (a ListKind name or "metadata"), else None."""
        return self._bodies.get(key)

    def _get(self, key: str, make) -> Body:
        body = self._bodies.get(key)
        if body is None:
            with self._lock:  # one thread renders; the others wait for its bytes
                body = self._bodies.get(key)
                if body is None:
                    body = self._bodies[key] = make()
        return body

    def _meta_dict(self) -> dict:
        if self._meta is None:
            self._meta, _ = store.read_metadata(self.version)
        return self._meta

    def _render_metadata(self) -> Body:
        meta, raw = store.read_metadata(self.version)
        self._meta = meta
        return render.static_body(raw, f"{self.identity}\x1fmetadata")

    def _render_list(self, kind: ListKind) -> Body:
        started = time.perf_counter()
        table = store.read_columns(self.version, kind.file, list(kind.columns),
                                   optional=("model_version",))
        if kind.sort_by:
            table = table.take(pc.sort_indices(table, [(kind.sort_by, "ascending")]))
        meta = self._meta_dict()
        body = render.list_body(kind, table, self._head(kind, table, meta),
                                self._envelope_metadata(meta), self.identity)
        log.info("%s: rendered %s, %d rows, %d bytes (%d gzip) in %.3f s", self.identity, kind.name,
                 table.num_rows, body.size, body.gzip_size, time.perf_counter() - started)
        return body

    def _head(self, kind: ListKind, table: pa.Table, meta: dict) -> dict:
        missing = [k for k in ("processing_date", "network", "window_days") if k not in meta]
        if missing:
            raise store.ResultFileError(f"{self.identity[:10]}/{storage.METADATA} has no {missing[0]!r}")
        return {"processing_date": meta["processing_date"], "network": meta["network"],
                "window_days": meta["window_days"], "model_version": _model_version(kind, table, meta),
                kind.total_key: table.num_rows}

    def _envelope_metadata(self, meta: dict) -> dict:
        if "timestamp" not in meta:
            raise store.ResultFileError(f"{self.identity[:10]}/{storage.METADATA} has no 'timestamp'")
        extra = {k: meta[k] for k in ENVELOPE_METADATA if k in meta}
        return {"processed_at": meta["timestamp"], **extra}


def _model_version(kind: ListKind, table: pa.Table, meta: dict) -> str | None:
    """The file's model_version (all rows share it); metadata's when the file has none."""
    if "model_version" in table.column_names:
        versions = table.column("model_version").drop_null()
        if len(versions):
            return str(versions[0].as_py())
    return (meta.get("model_versions") or {}).get(kind.model_key)


class ResultCache:
    """LRU of DateResults by version folder name; thread-safe."""

    def __init__(self, size: int = CACHE_DATES):
        self.size = size
        self._entries: OrderedDict[str, DateResults] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, version: Path) -> DateResults:
        """The entry of a version folder, created empty on first use."""
        with self._lock:
            entry = self._entries.get(version.name)
            if entry is None:
                entry = self._entries[version.name] = DateResults(version)
                while len(self._entries) > self.size:
                    evicted, _ = self._entries.popitem(last=False)
                    log.info("result cache: evicted %s", evicted)
            else:
                self._entries.move_to_end(version.name)
            return entry

    def peek(self, version: Path) -> DateResults | None:
        """The entry of a version folder if cached (counts as a use), else None."""
        with self._lock:
            entry = self._entries.get(version.name)
            if entry is not None:
                self._entries.move_to_end(version.name)
            return entry

    def discard(self, version: Path) -> None:
        """Forget a version folder (it was removed under us)."""
        with self._lock:
            self._entries.pop(version.name, None)

    def identities(self) -> list[str]:
        """Cached version names, least recently used first."""
        with self._lock:
            return list(self._entries)
