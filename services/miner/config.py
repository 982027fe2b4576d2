"""Checks on the miner's settings, run once before gunicorn starts and again in each worker."""

from __future__ import annotations

from urllib.parse import urlsplit

from shared.settings import Settings

from .chain import check_authorisable
from .errors import MinerConfigError


def check(settings: Settings) -> None:
    """Raise MinerConfigError naming the first variable that cannot work."""
    check_authorisable(settings)
    positive = {
        "MINER_RATE_LIMIT": settings.MINER_RATE_LIMIT,
        "MINER_RATE_WINDOW_SECONDS": settings.MINER_RATE_WINDOW_SECONDS,
        "MINER_METAGRAPH_REFRESH_SECONDS": settings.MINER_METAGRAPH_REFRESH_SECONDS,
        "MINER_UPSTREAM_TIMEOUT": settings.MINER_UPSTREAM_TIMEOUT,
        "MINER_WORKERS": settings.MINER_WORKERS,
        "MINER_THREADS": settings.MINER_THREADS,
    }
    for name, value in positive.items():
        if value <= 0:
            raise MinerConfigError(f"{name}={value} must be greater than 0")
    url = urlsplit(settings.API_URL)
    if url.scheme not in ("http", "https") or not url.netloc:
        raise MinerConfigError(f"API_URL={settings.API_URL!r} is not an http(s) URL of the "
                               "internal result API")
