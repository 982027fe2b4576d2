"""The API as operators run it: `aml-miner serve-api` exec's real gunicorn; real HTTP on loopback."""

import gzip
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from services.api import responses
from shared import bodies, storage
from tests.api_fixtures import publish_date

REPO = Path(__file__).resolve().parents[2]
DATE = "2025-10-26"
LARGE = "2025-10-24"  # older than DATE: `latest` stays DATE


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _request(port, path, headers=None, method="GET"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


class Server:
    """`python -m services.cli serve-api` as a subprocess, its output in a file."""

    def __init__(self, output_dir: Path, log_path: Path):
        self.port = _free_port()
        self.log_path = log_path
        env = {**os.environ, "OUTPUT_DIR": str(output_dir), "NETWORK": "bitcoin",
               "API_WORKERS": "2", "API_THREADS": "2", "LOG_LEVEL": "INFO"}
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "serve-api", "--host", "127.0.0.1",
             "--port", str(self.port)], cwd=REPO, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self._wait_healthy(deadline_s=30)

    def _wait_healthy(self, deadline_s: float) -> None:
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve-api exited: {self.log_path.read_text()}")
            try:
                if _request(self.port, "/health")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"serve-api not healthy within {deadline_s} s: {self.log_path.read_text()}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=30)
        self.log.close()
        return code


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("api") / "output"
    publish_date(root, "2025-10-25", alerts=50, clusters=5, seed=1)
    publish_date(root, DATE, alerts=300, clusters=20, seed=2)
    publish_date(root, LARGE, alerts=40_000, clusters=20, seed=3)
    srv = Server(root, root.parent / "gunicorn.log")
    srv.root = root
    yield srv
    srv.stop()


def _json(server, path, **kw):
    status, headers, body = _request(server.port, path, **kw)
    assert status == 200, body
    return headers, json.loads(body)


def test_every_endpoint_answers_over_real_http(server):
    _, scores = _json(server, f"/scores/alerts/{DATE}")
    _, ranks = _json(server, f"/rankings/alerts/{DATE}")
    _, clusters = _json(server, f"/scores/clusters/{DATE}")
    _, meta = _json(server, f"/metadata/{DATE}")
    assert scores["total_alerts"] == len(scores["scores"]) == 300
    assert sorted(r["alert_id"] for r in ranks["rankings"]) == sorted(r["alert_id"] for r in scores["scores"])
    assert clusters["total_clusters"] == 20 and meta["processing_date"] == DATE
    assert _json(server, "/dates")[1] == {"dates": [DATE, "2025-10-25", LARGE], "latest": DATE}
    assert _json(server, "/health")[1]["latest"] == DATE
    assert "/scores/alerts/{date}" in _json(server, "/openapi.json")[1]["paths"]


def test_latest_and_pages(server):
    headers, latest = _json(server, "/rankings/alerts/latest")
    assert headers["Cache-Control"] == "public, no-cache"
    _, page = _json(server, "/rankings/alerts/latest?offset=10&limit=7")
    assert page["rankings"] == latest["rankings"][10:17] and page["total_alerts"] == 300


def test_gzip_and_304_over_real_http(server):
    plain = _request(server.port, f"/scores/alerts/{DATE}")
    packed = _request(server.port, f"/scores/alerts/{DATE}", {"Accept-Encoding": "gzip"})
    assert packed[1]["Content-Encoding"] == "gzip" and gzip.decompress(packed[2]) == plain[2]
    assert int(packed[1]["Content-Length"]) == len(packed[2])
    again = _request(server.port, f"/scores/alerts/{DATE}",
                     {"Accept-Encoding": "gzip", "If-None-Match": packed[1]["ETag"]})
    assert again[0] == 304 and again[2] == b""


@pytest.mark.parametrize("path,code", [
    ("/scores/alerts/../../etc/passwd", 400), ("/scores/alerts/..%2F..%2Fetc", 400),
    ("/metadata//etc/passwd", 400), ("/scores/clusters/2025-13-45", 400),
    (f"/scores/alerts/{DATE}?limit=99999999999", 400), (f"/scores/alerts/{DATE}?offset=-1", 400),
    (f"/scores/alerts/{DATE}?limit=ten", 400), (f"/dates?network=ethereum", 404),
    ("/scores/alerts/2030-01-01", 404), ("/nothing", 404),
])
def test_errors_are_json_over_real_http(server, path, code):
    status, headers, body = _request(server.port, path)
    assert status == code
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body)["code"] == code


def test_republishing_under_real_load_never_serves_a_mix(server):
    failures, seen, done = [], set(), threading.Event()

    def reader():
        while not done.is_set():
            status, _, body = _request(server.port, "/scores/alerts/2025-10-20")
            if status == 404:
                continue  # not published yet
            data = json.loads(body)
            k = int(data["model_version"].rsplit(".", 1)[1])
            seen.add(k)
            if {r["score"] for r in data["scores"]} != {k / 1000} or data["total_alerts"] != 10 + k:
                failures.append(k)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for k in range(1, 13):
        publish_date(server.root, "2025-10-20", alerts=10 + k, marker=k / 1000, tag=f"1.0.{k}")
        _wait_until_seen(seen, k)
    done.set()
    for t in threads:
        t.join(timeout=60)
    assert failures == [] and len(seen) >= 6


@pytest.mark.parametrize("kind", bodies.LIST_KINDS, ids=lambda k: k.name)
def test_a_full_response_is_the_published_file_byte_for_byte(server, kind):
    version = storage.resolve(server.root / DATE)
    url = {bodies.ALERT_SCORES: "/scores/alerts/", bodies.ALERT_RANKINGS: "/rankings/alerts/",
           bodies.CLUSTER_SCORES: "/scores/clusters/"}[kind] + DATE
    plain = _request(server.port, url)
    packed = _request(server.port, url, headers={"Accept-Encoding": "gzip"})
    assert plain[0] == packed[0] == 200
    assert plain[2] == (version / kind.body).read_bytes()
    assert packed[2] == (version / kind.gzip).read_bytes()
    assert int(plain[1]["Content-Length"]) == len(plain[2])


def test_a_body_of_many_send_blocks_arrives_whole(server):
    """Files go out SEND_BLOCK bytes at a time (gunicorn's sendfile off): every block arrives."""
    version = storage.resolve(server.root / LARGE)
    for headers, name in (({}, bodies.ALERT_SCORES.body),
                          ({"Accept-Encoding": "gzip"}, bodies.ALERT_SCORES.gzip)):
        expected = (version / name).read_bytes()
        status, answer_headers, body = _request(server.port, "/scores/alerts/" + LARGE, headers)
        assert status == 200 and body == expected
        assert int(answer_headers["Content-Length"]) == len(expected)
    assert len((version / bodies.ALERT_SCORES.body).read_bytes()) > 2 * responses.SEND_BLOCK


def _wait_until_seen(seen: set, k: int, deadline_s: float = 10) -> None:
    """Let the readers catch up with version k (a loaded machine may be slow), then go on."""
    deadline = time.monotonic() + deadline_s
    while k not in seen and time.monotonic() < deadline:
        time.sleep(0.005)


def test_sigterm_reaches_gunicorn_and_it_exits_cleanly(tmp_path):
    publish_date(tmp_path / "output", DATE)
    srv = Server(tmp_path / "output", tmp_path / "log.txt")
    assert _request(srv.port, f"/metadata/{DATE}")[0] == 200
    deadline = time.monotonic() + 30
    while (tmp_path / "log.txt").read_text().count("Booting worker") < 2:
        assert time.monotonic() < deadline, "gunicorn did not boot both workers"
        time.sleep(0.1)
    assert srv.stop() == 0
    log = (tmp_path / "log.txt").read_text()
    assert "Starting gunicorn" in log and "gthread" in log
    assert f'"GET /metadata/{DATE} HTTP/1.1" 200' in log  # the access log goes to stdout


GUNICORN_HEADERS = {"date", "server", "connection"}


def _flask_only(root: Path):
    """The same OUTPUT_DIR answered by Flask alone (no WSGI shortcut), through its test client."""
    from services.api.app import create_app
    from shared.settings import Settings

    settings = Settings.from_env({}).replace(OUTPUT_DIR=root, NETWORK="bitcoin")
    return create_app(settings, shortcut=False).test_client()


@pytest.mark.parametrize("url", [f"/scores/alerts/{DATE}", "/rankings/alerts/latest",
                                 f"/scores/clusters/{DATE}", f"/metadata/{DATE}", "/metadata/latest",
                                 f"/scores/alerts/{DATE}?offset=3&limit=4", "/scores/alerts/2025-01-01"])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("encoding", ["", "gzip", "gzip;q=0"])
def test_gunicorn_answers_exactly_as_flask_alone(server, url, method, encoding):
    client = _flask_only(server.root)
    headers = {"Accept-Encoding": encoding} if encoding else {}
    first = _request(server.port, url, headers, method)
    etag = first[1].get("ETag")
    for extra in ({}, {"If-None-Match": etag} if etag else {}):
        status, got, body = _request(server.port, url, {**headers, **extra}, method)
        flask = client.open(url, method=method, headers={**headers, **extra})
        assert status == flask.status_code
        assert [(k, v) for k, v in got.items() if k.lower() not in GUNICORN_HEADERS] == \
            list(flask.headers.items())
        assert body == flask.get_data()
