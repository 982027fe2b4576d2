"""Checks on the miner's settings, run once before gunicorn starts and again in each worker."""

from __future__ import annotations

from urllib.parse import urlsplit

from shared.settings import Settings

from . import store
from .chain import check_authorisable, check_netuid
from .errors import MinerConfigError


def check(settings: Settings) -> None:
    """Raise MinerConfigError naming the first variable that cannot work."""
    check_authorisable(settings)
    check_netuid(settings)
    positive = {
        "MINER_RATE_LIMIT": settings.MINER_RATE_LIMIT,
        "MINER_RATE_WINDOW_SECONDS": settings.MINER_RATE_WINDOW_SECONDS,
        "MINER_METAGRAPH_REFRESH_SECONDS": settings.MINER_METAGRAPH_REFRESH_SECONDS,
        "MINER_UPSTREAM_TIMEOUT": settings.MINER_UPSTREAM_TIMEOUT,
        "MINER_WORKERS": settings.MINER_WORKERS,
        "MINER_WORKER_CONNECTIONS": settings.MINER_WORKER_CONNECTIONS,
    }
    for name, value in positive.items():
        if value <= 0:
            raise MinerConfigError(f"{name}={value} must be greater than 0")
    if settings.MINER_METAGRAPH_MAX_AGE <= settings.MINER_METAGRAPH_REFRESH_SECONDS:
        raise MinerConfigError(
            f"MINER_METAGRAPH_MAX_AGE={settings.MINER_METAGRAPH_MAX_AGE} must be greater than "
            f"MINER_METAGRAPH_REFRESH_SECONDS={settings.MINER_METAGRAPH_REFRESH_SECONDS} (a "
            "snapshot ages by one interval between two good refreshes)")
    store.check(settings)
    url = urlsplit(settings.API_URL)
    if url.scheme not in ("http", "https") or not url.netloc:
        raise MinerConfigError(f"API_URL={settings.API_URL!r} is not an http(s) URL of the "
                               "internal result API")
