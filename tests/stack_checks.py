"""Checks of a running stack over HTTP, shared by the process-mode system test and the container harness."""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.request
from typing import Callable, TypeVar

T = TypeVar("T")


class CheckFailed(AssertionError):
    """A stack check did not hold; the message says what was seen."""


def http_get(url: str, headers: dict | None = None, timeout: float = 10) -> tuple[int, dict, bytes]:
    """(status, headers, body) of one GET; HTTP errors are returned, not raised."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def poll(probe: Callable[[], T | None], deadline_s: float, what: str, every_s: float = 0.5) -> T:
    """Call probe until it returns something truthy, or fail naming what was awaited."""
    deadline = time.monotonic() + deadline_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = probe()
            if value:
                return value
        except (OSError, ValueError) as exc:  # not up yet / not published yet
            last_error = exc
        time.sleep(every_s)
    raise CheckFailed(f"timed out after {deadline_s:.0f} s waiting for {what}"
                      + (f" (last error: {last_error})" if last_error else ""))


def published(api: str, date: str, network: str | None = None) -> dict | None:
    """The date's alert scores (of `network`, else the default one) once served, else None."""
    query = f"?network={network}" if network else ""
    status, _, body = http_get(f"{api}/scores/alerts/{date}{query}")
    return json.loads(body) if status == 200 else None


def check_alert_scores(payload: dict, expected_ids: set[str] | None = None) -> int:
    """Every alert scored once with a finite score in [0, 1]; returns the alert count."""
    ids = [row["alert_id"] for row in payload["scores"]]
    if len(ids) != len(set(ids)):
        raise CheckFailed("an alert_id is scored more than once")
    if payload["total_alerts"] != len(ids) or not ids:
        raise CheckFailed(f"total_alerts {payload['total_alerts']} != {len(ids)} scores")
    bad = [r for r in payload["scores"] if not (math.isfinite(r["score"]) and 0 <= r["score"] <= 1)]
    if bad:
        raise CheckFailed(f"{len(bad)} scores outside [0, 1], e.g. {bad[:3]}")
    if expected_ids is not None and set(ids) != expected_ids:
        raise CheckFailed(f"scored ids differ from the input: {len(set(ids) ^ expected_ids)} differ")
    if not payload.get("model_version"):
        raise CheckFailed("empty model_version")
    return len(ids)


def signed_get(miner: str, path: str, keypair, miner_ss58: str) -> tuple[int, bytes]:
    """GET a miner path signed with bittensor.http_auth exactly as a validator does."""
    from bittensor import http_auth

    headers = http_auth.sign(keypair, method="GET", path=path, body=b"", receiver_ss58=miner_ss58)
    status, _, body = http_get(f"{miner}{path}", headers=headers)
    return status, body
