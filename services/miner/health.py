"""The unauthenticated /health report: can this miner serve, and how fresh is what it knows."""

from __future__ import annotations

import os
from typing import Optional

import redis

from .metagraph import MetagraphRefresher
from .proxy import Upstream


def metagraph_report(refresher: Optional[MetagraphRefresher], network: str, netuid: int) -> dict:
    """The refresh loop's liveness and the age of the snapshot it serves from."""
    if refresher is None:
        return {"enabled": False}
    snapshot, status = refresher.snapshot, refresher.status
    age = refresher.age()
    return {
        "enabled": True,
        "network": network,
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
        return False, f"{type(exc).__name__}: {exc}"
    return True, None


def build_report(*, hotkey: str, allow_list_size: int, upstream: Upstream,
                 redis_client: redis.Redis, refresher: Optional[MetagraphRefresher],
                 network: str, netuid: int) -> tuple[dict, int]:
    """The report and its HTTP status: 503 only when the miner itself cannot work."""
    api = upstream.health()
    store_ok, store_error = redis_ok(redis_client)
    graph = metagraph_report(refresher, network, netuid)
    loop_dead = graph["enabled"] and not graph["thread_alive"]
    healthy = store_ok and not loop_dead
    stale = graph["enabled"] and (graph["last_error"] is not None or not graph["loaded"])
    degraded = not api.reachable or stale
    report = {
        "status": "unhealthy" if not healthy else ("degraded" if degraded else "ok"),
        "hotkey": hotkey,
        "worker": os.getpid(),
        "allow_list_size": allow_list_size,
        "upstream": {"url": upstream.base_url, "reachable": api.reachable, "status": api.status,
                     "error": api.error},
        "redis": {"ok": store_ok, "error": store_error},
        "metagraph": graph,
    }
    return report, 200 if healthy else 503
