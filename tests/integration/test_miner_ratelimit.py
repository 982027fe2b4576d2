"""The fixed-window counter in real Redis, driven by an injected clock."""

import pytest

from services.miner.errors import Refused
from services.miner.ratelimit import KEY_PREFIX, RateLimiter
from tests.miner_fixtures import redis11  # noqa: F401


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


def test_the_window_fills_resets_and_tells_how_long_to_wait(redis11):
    clock = Clock(1_000_000.0)  # a window boundary (multiple of 10)
    limiter = RateLimiter(redis11, limit=2, window=10, clock=clock)
    assert [limiter.hit("5A").allowed for _ in range(2)] == [True, True]
    clock.now += 6.5
    verdict = limiter.hit("5A")
    assert (verdict.allowed, verdict.count, verdict.retry_after) == (False, 3, 4)
    clock.now += 3.5  # next window
    assert limiter.hit("5A").allowed and limiter.hit("5A").count == 2


def test_counters_expire_with_their_window(redis11):
    limiter = RateLimiter(redis11, limit=5, window=30, clock=Clock(90.0))
    limiter.hit("5A")
    assert 0 < redis11.ttl(f"{KEY_PREFIX}5A:3") <= 31


def test_enforce_raises_429_with_retry_after(redis11):
    limiter = RateLimiter(redis11, limit=1, window=60, clock=Clock(120.0))
    limiter.enforce("5A")
    with pytest.raises(Refused) as info:
        limiter.enforce("5A")
    assert info.value.code == 429 and info.value.extra_headers == {"Retry-After": "60"}


@pytest.mark.parametrize("limit,window", [(0, 60), (10, 0)])
def test_a_nonsense_limit_is_refused_naming_the_settings(redis11, limit, window):
    with pytest.raises(ValueError, match="MINER_RATE_LIMIT >= 1 and MINER_RATE_WINDOW_SECONDS"):
        RateLimiter(redis11, limit=limit, window=window)
