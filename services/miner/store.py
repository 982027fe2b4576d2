"""The miner's own Redis (request nonces and rate counters), configured to fail fast.

It is not the job queue's Redis: the internet-facing miner has no reason to reach the
workers' broker (compose puts this one on a network the broker is not on). A request
waits on it before anything else, so a slow or dead Redis must turn into a quick 503
(the miner fails closed), never into a request that hangs through redis-py's default
retries with exponential backoff.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from shared.settings import Settings

from .errors import MinerConfigError

# One immediate retry: a pooled connection that Redis closed (a restart) reconnects once
# instead of failing the request; a Redis that is down costs at most two short timeouts.
RETRIES = 1


def check(settings: Settings) -> None:
    """Refuse a MINER_REDIS_URL or MINER_REDIS_TIMEOUT that cannot work, naming it."""
    scheme = urlsplit(settings.MINER_REDIS_URL).scheme
    if scheme not in ("redis", "rediss", "unix"):
        raise MinerConfigError(f"MINER_REDIS_URL must be a redis://, rediss:// or unix:// URL "
                               f"(got a {scheme or 'schemeless'} value)")
    if settings.MINER_REDIS_TIMEOUT <= 0:
        raise MinerConfigError(f"MINER_REDIS_TIMEOUT={settings.MINER_REDIS_TIMEOUT} must be "
                               "greater than 0")


def connect(settings: Settings) -> redis.Redis:
    """A client with short connect/read timeouts and no backoff (production and tests alike)."""
    timeout = settings.MINER_REDIS_TIMEOUT
    return redis.Redis.from_url(settings.MINER_REDIS_URL, socket_connect_timeout=timeout,
                                socket_timeout=timeout, retry=Retry(NoBackoff(), RETRIES))
