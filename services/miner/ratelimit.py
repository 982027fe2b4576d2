"""Per-hotkey rate limiting: a fixed window counter in Redis shared by every worker."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Callable

import redis

from .errors import Refused

log = logging.getLogger(__name__)

KEY_PREFIX = "aml:miner:rate:"


@dataclass(frozen=True)
class Verdict:
    """One counted request: allowed or not, how many used, and seconds until the window resets."""

    allowed: bool
    count: int
    retry_after: int


class RateLimiter:
    """At most `limit` requests per hotkey in each `window`-second window (aligned to the epoch)."""

    def __init__(self, client: redis.Redis, limit: int, window: int,
                 clock: Callable[[], float] = time.time):
        if limit < 1 or window < 1:
            raise ValueError(f"rate limit needs MINER_RATE_LIMIT >= 1 and "
                             f"MINER_RATE_WINDOW_SECONDS >= 1 (got {limit}, {window})")
        self.client = client
        self.limit = limit
        self.window = window
        self.clock = clock

    def hit(self, hotkey: str) -> Verdict:
        """Count one request for `hotkey` (INCR + EXPIRE in one transaction)."""
        now = self.clock()
        index = int(now // self.window)
        key = f"{KEY_PREFIX}{hotkey}:{index}"
        pipe = self.client.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, self.window + 1)
        count, _ = pipe.execute()
        retry_after = max(1, math.ceil((index + 1) * self.window - now))
        return Verdict(count <= self.limit, int(count), retry_after)

    def enforce(self, hotkey: str) -> Verdict:
        """Raise Refused(429) with Retry-After when over the limit; Refused(503) if Redis is down."""
        try:
            verdict = self.hit(hotkey)
        except redis.RedisError as exc:
            log.error("rate limit: Redis unavailable: %s", exc)
            raise Refused(503, "rate_limit_unavailable",
                          "cannot count requests right now; retry later") from None
        if not verdict.allowed:
            raise Refused(429, "rate_limited",
                          f"more than {self.limit} requests in {self.window}s from this hotkey",
                          headers={"Retry-After": str(verdict.retry_after)})
        return verdict
