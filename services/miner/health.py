"""Health: a status for anyone (/health), the details for the operator and the log.

The unauthenticated answer says only ok / degraded / unhealthy: an internet-facing
port must not tell strangers our internal API URL, chain endpoint, errors or pids.
The details go to the log whenever a worker's status changes, and to
/health/details for a request signed by the miner's own hotkey.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Optional

import redis

from shared.redact import mask_text, mask_url

from .metagraph import MetagraphRefresher
from .proxy import Upstream

log = logging.getLogger(__name__)


def metagraph_report(refresher: Optional[MetagraphRefresher], network: str,
                     netuid: Optional[int]) -> dict:
    """The refresh loop's liveness and the age of the snapshot it serves from."""
    if refresher is None:
        return {"enabled": False}
    snapshot, status = refresher.snapshot, refresher.status
    age = refresher.age()
    return {
        "enabled": True,
        "network": mask_url(network),
        "netuid": netuid,
        "thread_alive": refresher.alive(),
        "refresh_seconds": refresher.interval,
        "loaded": snapshot is not None,
        "block": snapshot.block if snapshot else None,
        "neurons": len(snapshot) if snapshot else None,
        "age_seconds": round(age, 3) if age is not None else None,
        "last_success": status.last_success,
        "last_attempt": status.last_attempt,
        "last_error": status.last_error,
        "failures": status.failures,
    }


def redis_ok(client: redis.Redis) -> tuple[bool, Optional[str]]:
    """Redis holds the nonces and rate counters: without it nothing can be served."""
    try:
        client.ping()
    except redis.RedisError as exc:
        return False, mask_text(f"{type(exc).__name__}: {exc}")
    return True, None


def _status(store_ok: bool, api_ok: bool, graph: dict, max_age: Optional[float]) -> tuple[str, int]:
    """ok / degraded / unhealthy and the HTTP status: 503 only when the miner cannot work."""
    loop_dead = graph["enabled"] and not graph["thread_alive"]
    if not store_ok or loop_dead:
        return "unhealthy", 503
    too_old = (graph["enabled"] and max_age is not None and graph["age_seconds"] is not None
               and graph["age_seconds"] > max_age)
    stale = graph["enabled"] and (graph["last_error"] is not None or not graph["loaded"]
                                  or too_old)
    return ("degraded" if not api_ok or stale else "ok"), 200


def build_report(*, hotkey: str, allow_list_size: int, upstream: Upstream,
                 redis_client: redis.Redis, refresher: Optional[MetagraphRefresher],
                 network: str, netuid: Optional[int],
                 max_age: Optional[float] = None) -> tuple[dict, int]:
    """The detailed report and its HTTP status."""
    api = upstream.health()
    store_ok, store_error = redis_ok(redis_client)
    graph = metagraph_report(refresher, network, netuid)
    if graph["enabled"]:
        graph["max_age_seconds"] = max_age
    status, code = _status(store_ok, api.reachable, graph, max_age)
    report = {
        "status": status,
        "hotkey": hotkey,
        "worker": os.getpid(),
        "allow_list_size": allow_list_size,
        "upstream": {"url": mask_url(upstream.base_url), "reachable": api.reachable,
                     "status": api.status, "error": api.error and mask_text(api.error)},
        "redis": {"ok": store_ok, "error": store_error},
        "metagraph": graph,
    }
    return report, code


class StatusLog:
    """Logs a worker's detailed report when its status changes (not on every probe)."""

    def __init__(self):
        self._last: Optional[str] = None
        self._lock = threading.Lock()

    def note(self, report: dict) -> None:
        with self._lock:
            changed, self._last = report["status"] != self._last, report["status"]
        if not changed:
            return
        level = logging.INFO if report["status"] == "ok" else logging.WARNING
        log.log(level, "health: %s (worker %s): upstream %s, redis %s, metagraph %s",
                report["status"], report["worker"], report["upstream"], report["redis"],
                report["metagraph"])
