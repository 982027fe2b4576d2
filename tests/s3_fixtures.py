"""Loopback S3 for the downloader tests: a moto server, a fault-injecting proxy, batch helpers.

The proxy is a real HTTP server on 127.0.0.1 in front of moto. Tests point the
downloader at it to see every request on the wire (signed or not, Range headers,
list pages) and to make chosen requests fail with 5xx or stall past the read
timeout, so botocore's and s3transfer's real retry paths run. Nothing in boto
is mocked.
"""

from __future__ import annotations

import hashlib
import http.client
import http.server
import json
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from shared import storage
from shared.s3 import make_client
from shared.settings import Settings

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}
NETWORK, DATE, WINDOW = "bitcoin", "2025-10-26", 7
ERROR_XML = ('<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
             '<Message>injected by the test proxy</Message><RequestId>test</RequestId></Error>')
ERROR_CODES = {500: "InternalError", 503: "ServiceUnavailable", 403: "AccessDenied"}


@dataclass
class Seen:
    """One request as the proxy saw it, and the status it answered."""

    method: str
    path: str
    query: str
    authorization: str | None
    range: str | None
    status: int = 0


@dataclass
class Fault:
    """Fail (status) or stall (seconds) the next `remaining` matching requests."""

    method: str
    key_suffix: str
    remaining: int
    status: int = 0
    stall: float = 0.0

    def matches(self, method: str, path: str) -> bool:
        return self.remaining > 0 and method == self.method and path.endswith(self.key_suffix)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    proxy: "FaultProxy"

    def log_message(self, *args) -> None:
        pass

    def _forward(self) -> None:
        path, _, query = self.path.partition("?")
        seen = Seen(self.command, path, query, self.headers.get("Authorization"),
                    self.headers.get("Range"))
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        fault = self.proxy.take_fault(self.command, path)
        self.proxy.record(seen)
        if fault and fault.stall:
            time.sleep(fault.stall)  # the client's read timeout fires first
            self.close_connection = True
            return
        if fault:
            return self._answer_error(seen, fault.status)
        self._relay(seen, body)

    def _answer_error(self, seen: Seen, status: int) -> None:
        data = ERROR_XML.format(code=ERROR_CODES.get(status, "InternalError")).encode()
        seen.status = status
        self.send_response_only(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _relay(self, seen: Seen, body: bytes) -> None:
        conn = http.client.HTTPConnection(*self.proxy.upstream, timeout=30)
        try:
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                conn.putheader(name, value)
            conn.endheaders(body or None)
            response = conn.getresponse()
            data = response.read()
            headers = response.getheaders()
        finally:
            conn.close()
        seen.status = response.status
        self.send_response_only(response.status)
        for name, value in headers:
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        length = dict((k.lower(), v) for k, v in headers).get("content-length", len(data))
        self.send_header("Content-Length", str(length if self.command == "HEAD" else len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _forward


class FaultProxy:
    """A threaded HTTP proxy on 127.0.0.1 that relays to an S3 server, with injectable faults."""

    def __init__(self, upstream: tuple[str, int]):
        self.upstream = upstream
        self.seen: list[Seen] = []
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"proxy": self})
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        with self._lock:
            self.seen.clear()
            self._faults.clear()

    def fail(self, times: int, status: int = 503, method: str = "GET", key_suffix: str = "") -> None:
        """Answer the next `times` matching requests with an S3 error of this status."""
        with self._lock:
            self._faults.append(Fault(method, key_suffix, times, status=status))

    def stall(self, times: int, seconds: float, method: str = "GET", key_suffix: str = "") -> None:
        """Hold the next `times` matching requests for `seconds`, then drop the connection."""
        with self._lock:
            self._faults.append(Fault(method, key_suffix, times, stall=seconds))

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.remaining -= 1
                    return fault
        return None

    def record(self, seen: Seen) -> None:
        with self._lock:
            self.seen.append(seen)

    def requests(self, method: str | None = None, key_suffix: str = "") -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if (method is None or s.method == method)
                    and s.path.endswith(key_suffix)]

    def object_gets(self) -> list[Seen]:
        """GETs of objects (not bucket listings)."""
        return [s for s in self.requests("GET") if "list-type=2" not in s.query]

    def list_pages(self, bucket: str) -> list[Seen]:
        return [s for s in self.requests("GET") if s.path.rstrip("/") == f"/{bucket}"
                and "list-type=2" in s.query]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def meta_document(files: dict[str, bytes], shape: str = "sha256", **identity) -> dict:
    """A META.json in one of the three producer shapes."""
    doc = {"schema_version": "1.0.0", "network": NETWORK, "processing_date": DATE,
           "window_days": WINDOW, **identity}
    if shape == "sha256":
        doc["sha256"] = {name: sha256(data) for name, data in files.items()}
    elif shape == "files-md5":
        doc["files"] = {name: {"md5": hashlib.md5(data).hexdigest()} for name, data in files.items()}
    elif shape == "files-list":
        doc["files"] = [{"filename": name, "checksum": sha256(data)} for name, data in files.items()]
    else:
        raise ValueError(shape)
    return doc


def fake_batch(size: int = 3000, seed: int = 0) -> dict[str, bytes]:
    """Distinct bytes for each batch file (the downloader never parses them)."""
    names = ("alerts.parquet", "features.parquet", "clusters.parquet", "money_flows.parquet")
    return {name: hashlib.sha256(f"{seed}{name}".encode()).digest() * (size // 32 + i)
            for i, name in enumerate(names)}


@dataclass
class Sot:
    """A fresh bucket on the moto server, a direct client to fill it, and download settings."""

    bucket: str
    client: object
    settings: Settings  # downloads go through the fault proxy
    proxy: FaultProxy

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data)

    def put_tree(self, root: Path) -> None:
        """Upload every file under root (a folder in the SOT layout) under its relative key."""
        for path in sorted(p for p in Path(root).rglob("*") if p.is_file()):
            self.put(str(path.relative_to(root)), path.read_bytes())

    def make_public(self) -> None:
        """A public-read bucket policy, like the real SOT's: anonymous list and get."""
        statement = [{"Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject"],
                      "Resource": f"arn:aws:s3:::{self.bucket}/*"},
                     {"Effect": "Allow", "Principal": "*", "Action": ["s3:ListBucket"],
                      "Resource": f"arn:aws:s3:::{self.bucket}"}]
        self.client.put_bucket_policy(Bucket=self.bucket, Policy=json.dumps(
            {"Version": "2012-10-17", "Statement": statement}))

    def put_batch(self, files: dict[str, bytes], meta: str | None = "sha256", date: str = DATE,
                  window: int = WINDOW, labels: bytes | None = b"labels-bytes" * 100) -> str:
        """Upload batch files (+ META.json in the given shape, + labels); return the prefix."""
        prefix = storage.sot_prefix(NETWORK, date, window)
        for name, data in files.items():
            self.put(prefix + name, data)
        if meta:
            doc = meta_document(files, meta, processing_date=date, window_days=window)
            self.put(prefix + "META.json", json.dumps(doc).encode())
        if labels is not None:
            self.put(storage.labels_key(NETWORK), labels)
        return prefix


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def moto_endpoint():
    """A moto S3 server on loopback for the whole session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def s3_proxy(moto_endpoint):
    host, port = moto_endpoint.removeprefix("http://").split(":")
    proxy = FaultProxy((host, int(port)))
    proxy.start()
    yield proxy
    proxy.stop()


@pytest.fixture
def proxy(s3_proxy):
    s3_proxy.reset()
    yield s3_proxy
    s3_proxy.reset()


def s3_settings(base: Settings, endpoint: str, bucket: str, **changes) -> Settings:
    """Settings for a test bucket: keyed, short timeouts, few fast retries, small parts."""
    return base.replace(**{
        "SOT_S3_ENDPOINT": endpoint, "SOT_S3_BUCKET": bucket, "SOT_S3_REGION": "nl-ams",
        "SOT_S3_ACCESS_KEY": "testing-key", "SOT_S3_SECRET_KEY": "testing-secret",
        "SOT_S3_CONNECT_TIMEOUT": 2.0, "SOT_S3_READ_TIMEOUT": 2.0,
        "SOT_S3_MAX_ATTEMPTS": 3, "SOT_S3_RETRY_MODE": "standard",
        "SOT_S3_MAX_CONCURRENCY": 4, "SOT_S3_MULTIPART_THRESHOLD_MB": 1,
        "SOT_S3_MULTIPART_CHUNK_MB": 1, "SOT_CHECKSUM_RETRY_SECONDS": 0.0, **changes})


@pytest.fixture
def sot(settings, moto_endpoint, proxy) -> Sot:
    """An empty bucket of its own for each test."""
    bucket = f"sot-{uuid.uuid4().hex[:12]}"
    direct = s3_settings(settings, moto_endpoint, bucket)
    client = make_client(direct)
    client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "nl-ams"})
    return Sot(bucket, client, s3_settings(settings, proxy.url, bucket), proxy)


def tree_bytes(folder: Path) -> dict[str, bytes]:
    """Every file under a folder, by relative path (for byte-for-byte comparisons)."""
    folder = Path(folder)
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}
