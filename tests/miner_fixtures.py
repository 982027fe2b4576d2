"""Helpers for the miner tests: real keys and signatures, a stub chain, the real result API.

The upstream is the real API (`serve-api`, gunicorn) on a date published with the API's own
test helper. `StubUpstream` remains only where a test must see what the API *received*.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Optional

import pytest
import redis
from bittensor import http_auth
from bittensor_wallet import Keypair, Wallet

from services.miner.metagraph import Snapshot
from shared.settings import Settings
from tests import redis_db

REPO = Path(__file__).resolve().parent.parent
REDIS_URL = redis_db.url(11)  # the miner's test database; only this one is flushed
SAMPLE_DATE = "2025-10-26"


def new_keypair() -> Keypair:
    """A fresh sr25519 hotkey, as a validator would have."""
    return Keypair.create_from_mnemonic(Keypair.generate_mnemonic())


def make_wallet(root: Path, name: str = "miner", hotkey: str = "default") -> Wallet:
    """A wallet with an unencrypted hotkey on disk under `root` (what btcli creates)."""
    wallet = Wallet(name=name, hotkey=hotkey, path=str(root))
    wallet.create_new_hotkey(use_password=False, overwrite=True, suppress=True)
    return wallet


def sign(keypair: Keypair, target: str, receiver: Optional[str], *, method: str = "GET",
         body: bytes = b"", nonce_ns: Optional[int] = None) -> dict[str, str]:
    """The btauth/1 headers exactly as a validator makes them."""
    return http_auth.sign(keypair, method=method, path=target, body=body, receiver_ss58=receiver,
                          nonce_ns=nonce_ns)


def details(client, operator: Keypair):
    """GET /health/details through a Flask test client, signed by the miner's own hotkey."""
    path = "/health/details"
    return client.get(path, headers=sign(operator, path, operator.ss58_address))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StubSource:
    """Stands in for the chain (the only mocked part): returns a snapshot or raises."""

    def __init__(self, snapshot: Optional[Snapshot] = None):
        self.snapshot = snapshot
        self.error: Optional[BaseException] = None
        self.calls = 0

    def fetch(self) -> Snapshot:
        self.calls += 1
        if self.error is not None:
            raise self.error
        if self.snapshot is None:
            raise ConnectionError("stub chain: no snapshot configured")
        return self.snapshot


def snapshot_of(*neurons: tuple[str, bool, float], block: int = 100) -> Snapshot:
    """A snapshot from (hotkey, permit, stake) rows, uid = position."""
    return Snapshot(hotkeys=tuple(n[0] for n in neurons), permits=tuple(n[1] for n in neurons),
                    stakes=tuple(n[2] for n in neurons), block=block)


# --- a minimal upstream API: fixed JSON, ETag, precompressed gzip, /health ---------------------

def _documents() -> dict[str, bytes]:
    alerts = [{"alert_id": f"a{i}", "score": round(i / 997, 6)} for i in range(2000)]
    docs = {
        "/dates": [SAMPLE_DATE],
        f"/scores/alerts/{SAMPLE_DATE}": alerts,
        f"/rankings/alerts/{SAMPLE_DATE}": [dict(a, rank=i + 1) for i, a in enumerate(alerts)],
        f"/scores/clusters/{SAMPLE_DATE}": [{"cluster_id": "c1", "score": 0.5}],
        f"/metadata/{SAMPLE_DATE}": {"processing_date": SAMPLE_DATE, "alerts": len(alerts)},
    }
    return {path: json.dumps(doc, separators=(",", ":")).encode() for path, doc in docs.items()}


@dataclass
class StubUpstream:
    """A loopback HTTP server standing in for the internal API until it lands on main."""

    docs: dict[str, bytes] = field(default_factory=_documents)
    seen: list = field(default_factory=list)
    broken: list = field(default_factory=list)  # paths whose answer the peer closed mid-body
    server: Optional[ThreadingHTTPServer] = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def etag(self, path: str) -> str:
        return '"' + hashlib.sha256(self.docs[path]).hexdigest()[:16] + '"'

    def gzipped(self, path: str) -> bytes:
        return gzip.compress(self.docs[path], mtime=0)

    def start(self) -> "StubUpstream":
        self.server = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # The miner's pool drops idle keep-alive connections; that is not a test failure.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _handler_for(upstream: StubUpstream):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # keep test output quiet
            pass

        def do_GET(self):
            upstream.seen.append((self.path, dict(self.headers)))
            if self.path == "/health":
                return self._send(200, b'{"status":"ok"}', {})
            if self.path not in upstream.docs:
                return self._send(404, b'{"code":404,"name":"Not Found","description":"x"}', {})
            etag = upstream.etag(self.path)
            headers = {"ETag": etag, "Cache-Control": "public, max-age=60"}
            if self.headers.get("If-None-Match") == etag:
                return self._send(304, b"", headers, content_type=None)
            if "gzip" in (self.headers.get("Accept-Encoding") or ""):
                headers.update({"Content-Encoding": "gzip", "Vary": "Accept-Encoding"})
                return self._send(200, upstream.gzipped(self.path), headers)
            return self._send(200, upstream.docs[self.path], headers)

        def _send(self, status, body, headers, content_type="application/json"):
            self.send_response(status)
            if content_type:
                self.send_header("Content-Type", content_type)
            for name, value in headers.items():
                self.send_header(name, value)
            if status != 304:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                self.wfile.write(body)
            except ConnectionError:
                upstream.broken.append(self.path)
                raise

    return Handler


# --- the real result API ----------------------------------------------------------------------

class ApiServer:
    """`python -m services.cli serve-api` on a published sample date, output in a file."""

    def __init__(self, root: Path, alerts: int = 300, clusters: int = 20):
        from tests.api_fixtures import publish_date  # the API's own publishing helper

        output = root / "output"
        publish_date(output, "2025-10-25", alerts=10, clusters=2, seed=1)
        publish_date(output, SAMPLE_DATE, alerts=alerts, clusters=clusters, seed=2)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(__import__("os").environ, OUTPUT_DIR=str(output), NETWORK="bitcoin",
                   API_WORKERS="1", API_THREADS="4")
        with open(root / "api.log", "wb") as log_file:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "services.cli", "serve-api", "--host", "127.0.0.1",
                 "--port", str(self.port)], cwd=REPO, env=env, stdout=log_file,
                stderr=subprocess.STDOUT)
        wait_healthy(self.port, self.proc)

    def get(self, path: str, headers: Optional[dict] = None):
        """(status, headers, raw bytes) straight from the API, to compare with the miner's."""
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", path, headers=headers or {})
            response = conn.getresponse()
            return response.status, dict(response.headers), response.read()
        finally:
            conn.close()

    def stop(self) -> None:
        stop_process(self.proc)


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """The real API for one test module (started once: gunicorn takes a few seconds)."""
    server = ApiServer(tmp_path_factory.mktemp("api"))
    yield server
    server.stop()


# --- settings, Redis, processes -------------------------------------------------------------

def miner_settings(wallet_root: Path, api_url: str, **changes) -> Settings:
    """Settings for a miner with no chain unless the test says otherwise."""
    base = Settings.from_env({}).replace(
        REDIS_URL=REDIS_URL, MINER_REDIS_URL=REDIS_URL, API_URL=api_url,
        BT_WALLET_NAME="miner", BT_WALLET_HOTKEY="default",
        BT_WALLET_PATH=str(wallet_root), SUBTENSOR_NETWORK="", NETUID=7,
        MINER_METAGRAPH_REFRESH_SECONDS=3600, MINER_METAGRAPH_MAX_AGE=7200,
        MINER_UPSTREAM_TIMEOUT=3.0)
    return base.replace(**changes)


@pytest.fixture
def redis11():
    """The miner's Redis test database, flushed before and after."""
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture
def upstream():
    stub = StubUpstream().start()
    yield stub
    stub.stop()


def settings_env(settings: Settings) -> dict[str, str]:
    """The settings as environment variables, for a subprocess."""
    return settings.to_env()


def wait_for(predicate, timeout: float, what: str):
    """Poll until `predicate()` is truthy; fail with `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def start_miner_process(settings: Settings, port: int, log_path: Path,
                        extra_env: Optional[dict] = None) -> subprocess.Popen:
    """`python -m services.cli serve-miner` as a subprocess (real gunicorn), output to a file."""
    import os

    env = dict(os.environ, **settings_env(settings), **(extra_env or {}))
    with open(log_path, "wb") as log_file:  # a file, not a pipe: a full pipe would block gunicorn
        return subprocess.Popen([sys.executable, "-m", "services.cli", "serve-miner",
                                 "--host", "127.0.0.1", "--port", str(port)],
                                cwd=REPO, env=env, stdout=log_file, stderr=subprocess.STDOUT)


def get_json(port: int, path: str, headers: Optional[dict] = None, timeout: float = 5.0):
    """(status, headers, parsed JSON or raw bytes) of one GET on a fresh connection."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    try:
        return response.status, dict(response.headers), json.loads(body)
    except ValueError:
        return response.status, dict(response.headers), body


def wait_healthy(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> dict:
    """Poll /health until it answers 200; fail early if the process died."""
    def ready():
        if proc.poll() is not None:
            raise AssertionError(f"miner exited with {proc.returncode} before answering /health")
        try:
            status, _, body = get_json(port, "/health", timeout=1.0)
        except OSError:
            return None
        return body if status == 200 else None
    return wait_for(ready, timeout, f"the miner on port {port} to answer /health")


def stop_process(proc: subprocess.Popen) -> None:
    """SIGTERM (gunicorn shuts down gracefully), then kill if it lingers."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
