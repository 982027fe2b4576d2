"""The Redis the tests use: 127.0.0.1 at AML_TEST_REDIS_PORT (default 6379), one DB per test area.

A second checkout can run its suite beside this one with its own port (`tests.run`
starts a redis-server there when none answers).
"""

from __future__ import annotations

import os

PORT = int(os.environ.get("AML_TEST_REDIS_PORT", "6379"))


def url(db: int) -> str:
    """The URL of one test database."""
    return f"redis://127.0.0.1:{PORT}/{db}"
