"""The test command: make sure the tests' Redis answers (start one if not), then run pytest."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time

import redis

from shared.redis_ping import redis_answers
from tests import redis_db


def start_redis(url: str) -> subprocess.Popen:
    port = redis.Redis.from_url(url).connection_pool.connection_kwargs.get("port", 6379)
    server = shutil.which("redis-server")
    if server is None:
        sys.exit("tests: no Redis answers at %s and redis-server is not installed "
                 "(apt-get install redis-server)" % url)
    workdir = tempfile.mkdtemp(prefix="aml-redis-")
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", workdir],
                            stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if redis_answers(url):
            return proc
        time.sleep(0.1)
    proc.kill()
    sys.exit(f"tests: started redis-server on port {port} but it did not answer within 10 s")


def main() -> int:
    url = redis_db.url(0)
    proc = None if redis_answers(url) else start_redis(url)
    try:
        return subprocess.call([sys.executable, "-m", "pytest", *sys.argv[1:]])
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
