"""Authentication: every request must carry a fresh btauth/1 signature addressed to our hotkey."""

from __future__ import annotations

import logging
import math
from typing import Mapping

import redis
from bittensor import http_auth

from .errors import Refused

log = logging.getLogger(__name__)

NONCE_PREFIX = "aml:miner:nonce:"

# The SDK's exception classes, mapped to the reason a caller sees in the 401 body.
REASONS = (
    (http_auth.WrongReceiver, "wrong_receiver"),
    (http_auth.StaleRequest, "stale"),
    (http_auth.ReplayedRequest, "replayed"),
    (http_auth.BadSignature, "bad_signature"),
    (http_auth.MalformedAuth, "malformed"),
)

AUTH_HEADERS = tuple(h.lower() for h in (
    http_auth.HEADER_VERSION, http_auth.HEADER_HOTKEY, http_auth.HEADER_RECEIVER,
    http_auth.HEADER_NONCE, http_auth.HEADER_CRYPTO, http_auth.HEADER_SIGNATURE))


class RedisNonceStore:
    """Seen (hotkey, nonce) pairs in Redis with SET NX + TTL, shared by every worker process."""

    def __init__(self, client: redis.Redis, max_age: float = http_auth.DEFAULT_MAX_AGE,
                 allowed_skew: float = http_auth.DEFAULT_ALLOWED_SKEW):
        self.client = client
        # verify() refuses a store whose retention is shorter than its freshness window.
        self.retention = float(math.ceil(max_age + allowed_skew) + 1)

    def check_and_store(self, hotkey_ss58: str, nonce_ns: int) -> bool:
        """True the first time a pair is seen (and records it), False on a replay."""
        key = f"{NONCE_PREFIX}{hotkey_ss58}:{nonce_ns}"
        return bool(self.client.set(key, b"1", nx=True, ex=int(self.retention)))


def _reason(exc: http_auth.AuthError) -> str:
    for cls, reason in REASONS:
        if isinstance(exc, cls):
            return reason
    return "unauthenticated"


def authenticate(headers: Mapping[str, str], body: bytes, *, method: str, target: str,
                 self_hotkey: str, store: RedisNonceStore) -> http_auth.Caller:
    """The verified caller, or Refused(401) with the SDK's reason; Refused(503) if Redis is down."""
    present = {k.lower() for k in headers.keys()}
    if not present.intersection(AUTH_HEADERS):
        raise Refused(401, "unsigned", "the request carries no btauth/1 headers; sign it with "
                                       "bittensor.http_auth.sign(...) for this miner's hotkey")
    try:
        return http_auth.verify(headers, body, method=method, path=target,
                                self_hotkey_ss58=self_hotkey, nonce_store=store)
    except http_auth.AuthError as exc:
        raise Refused(401, _reason(exc), str(exc)) from None
    except redis.RedisError as exc:
        log.error("auth: replay store unavailable: %s", exc)
        raise Refused(503, "replay_store_unavailable",
                      "cannot check the request nonce right now; retry later") from None
