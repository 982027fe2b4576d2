"""The miner as operators run it: `serve-miner` (real gunicorn, 2 workers) before `serve-api`."""

import gzip
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import threading

import bittensor as bt
import pytest
import redis

from tests.miner_fixtures import (REDIS_URL, REPO, SAMPLE_DATE, ApiServer, free_port, get_json,
                                  make_wallet, miner_settings, new_keypair, settings_env, sign,
                                  start_miner_process, stop_process, wait_for, wait_healthy)

PATH = f"/scores/alerts/{SAMPLE_DATE}"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """One miner (2 gthread workers, allow-list, no chain) in front of the real API."""
    root = tmp_path_factory.mktemp("miner")
    wallet = make_wallet(root)
    validator = new_keypair()
    # A validator with a wallet on disk, as in docs/miner.md's snippet.
    vali_wallet = bt.Wallet(name="validator", hotkey="default", path=str(root))
    vali_wallet.create_new_hotkey(use_password=False, suppress=True)
    redis.Redis.from_url(REDIS_URL).flushdb()
    api = ApiServer(root)
    settings = miner_settings(root, api.url, MINER_WORKERS=2,
                              MINER_VALIDATOR_HOTKEYS=(validator.ss58_address,
                                                       vali_wallet.hotkey.ss58_address))
    port = free_port()
    proc = start_miner_process(settings, port, root / "miner.log")
    try:
        wait_healthy(port, proc)
        wait_for_workers(port, wallet.hotkey, 2)
        yield {"port": port, "me": wallet.hotkey.ss58_address, "validator": validator,
               "api": api, "wallet": vali_wallet, "operator": wallet.hotkey}
    finally:
        stop_process(proc)
        api.stop()
        redis.Redis.from_url(REDIS_URL).flushdb()


def operator_headers(operator, path="/health/details"):
    """Signed by the miner's own hotkey: what /health/details asks for."""
    return sign(operator, path, operator.ss58_address)


class Connection:
    """One keep-alive connection; a worker keeps it for as long as it stays open."""

    def __init__(self, port, operator):
        self.operator = operator
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        self.conn.connect()
        self.sock = self.conn.sock

    def get(self, path, headers=None):
        self.conn.request("GET", path, headers=headers or {})
        response = self.conn.getresponse()
        body = response.read()
        # http.client silently reconnects if the server closed the socket; that would move us
        # to an arbitrary worker and make the test meaningless, so insist on the same socket.
        assert self.conn.sock is self.sock, "the keep-alive connection was reopened"
        return response.status, response.headers, body

    def worker(self):
        status, _, body = self.get("/health/details", operator_headers(self.operator))
        assert status == 200
        return json.loads(body)["worker"]

    def close(self):
        self.conn.close()


def connection_on_other_worker(port, operator, pid, timeout=20.0):
    """A keep-alive connection held by a worker other than `pid` (fresh connections until one)."""
    found = []

    def other():
        conn = Connection(port, operator)
        if conn.worker() != pid:
            found.append(conn)
            return True
        conn.close()
        return False
    wait_for(other, timeout, f"a connection served by a worker other than {pid}")
    return found[0]


def wait_for_workers(port, operator, count, timeout=30.0):
    """/health/details from `count` distinct worker processes: all of them have booted the app."""
    seen = set()

    def enough():
        seen.add(get_json(port, "/health/details", operator_headers(operator))[2]["worker"])
        return len(seen) >= count
    wait_for(enough, timeout, f"{count} workers answering /health (saw {seen})")


def test_an_allowed_validator_gets_the_same_gzip_bytes_and_304(served):
    port, me, vali, api = served["port"], served["me"], served["validator"], served["api"]
    gz = {"Accept-Encoding": "gzip"}
    status, headers, body = get_json(port, PATH, dict(sign(vali, PATH, me), **gz))
    api_status, api_headers, api_body = api.get(PATH, gz)
    assert (status, body) == (api_status, api_body) == (200, api_body)
    for name in ("Content-Encoding", "Content-Length", "ETag", "Content-Type"):
        assert headers[name] == api_headers[name], name
    assert headers["Cache-Control"] == api_headers["Cache-Control"].replace("public", "private")
    assert json.loads(gzip.decompress(body))["processing_date"] == SAMPLE_DATE
    conditional = dict(gz, **{"If-None-Match": api_headers["ETag"]})
    status, headers, body = get_json(port, PATH, dict(sign(vali, PATH, me), **conditional))
    assert (status, body) == (304, b"") and headers["ETag"] == api_headers["ETag"]


def test_a_replay_is_refused_by_the_same_worker_and_by_the_other_one(served):
    port, me, vali, operator = served["port"], served["me"], served["validator"], served["operator"]
    first = Connection(port, operator)
    first_pid = first.worker()
    headers = sign(vali, PATH, me)
    status, _, body = first.get(PATH, headers)
    assert status == 200 and body == served["api"].get(PATH)[2]
    other = connection_on_other_worker(port, operator, first_pid)
    try:
        other_pid = other.worker()
        status, _, body = other.get(PATH, headers)  # same signed request, another process
        assert status == 401 and b'"reason":"replayed"' in body.replace(b" ", b"")
        status, _, body = first.get(PATH, headers)  # and again on the worker that accepted it
        assert status == 401 and b'"replayed"' in body
        assert first_pid != other_pid
        assert (first.worker(), other.worker()) == (first_pid, other_pid)
    finally:
        first.close()
        other.close()


def test_refusals_are_json_through_gunicorn(served):
    port, me = served["port"], served["me"]
    status, headers, body = get_json(port, PATH)
    assert status == 401 and body["reason"] == "unsigned" and "json" in headers["Content-Type"]
    status, _, body = get_json(port, PATH, sign(new_keypair(), PATH, me))
    assert (status, body["reason"]) == (403, "not_allowed")


def test_the_documented_validator_snippet_works(served):
    doc = (REPO / "docs" / "miner.md").read_text()
    section = doc.split("## How a validator calls the miner", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)
    namespace = {}
    exec(compile(code, "docs/miner.md", "exec"), namespace)
    url = f"http://127.0.0.1:{served['port']}"
    scores = namespace["fetch"](served["wallet"], url, served["me"], PATH)
    assert scores == json.loads(served["api"].get(PATH)[2])
    assert scores["processing_date"] == SAMPLE_DATE and len(scores["scores"]) == 300


def run_cli(env_changes, timeout=60):
    env = dict(os.environ, **env_changes)
    return subprocess.run([sys.executable, "-m", "services.cli", "serve-miner", "--host",
                           "127.0.0.1", "--port", str(free_port())], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_a_missing_wallet_refuses_to_start_naming_the_variables(tmp_path):
    env = settings_env(miner_settings(tmp_path, "http://127.0.0.1:1",
                                      MINER_VALIDATOR_HOTKEYS=("5V",)))
    result = run_cli(env)
    assert result.returncode == 2
    assert "refusing to start" in result.stderr
    assert "BT_WALLET_NAME, BT_WALLET_HOTKEY, BT_WALLET_PATH" in result.stderr


def test_neither_allow_list_nor_chain_refuses_to_start(tmp_path):
    make_wallet(tmp_path)
    result = run_cli(settings_env(miner_settings(tmp_path, "http://127.0.0.1:1")))
    assert result.returncode == 2
    assert "MINER_VALIDATOR_HOTKEYS" in result.stderr and "SUBTENSOR_NETWORK" in result.stderr


def test_an_unreachable_chain_with_an_allow_list_starts_and_says_so(tmp_path):
    operator = make_wallet(tmp_path).hotkey
    # Nothing listens: the real SDK fails to connect. An RPC provider's key sits in the URL.
    chain = f"ws://ops:hunter2SECRET@127.0.0.1:{free_port()}/ws?apikey=KEY0123456789abcdef"
    settings = miner_settings(tmp_path, "http://127.0.0.1:1", SUBTENSOR_NETWORK=chain,
                              MINER_VALIDATOR_HOTKEYS=("5V",), MINER_WORKERS=1)
    port = free_port()
    proc = start_miner_process(settings, port, tmp_path / "miner.log")
    answers = []

    def failed_refresh():
        answers.append(get_json(port, "/health/details", operator_headers(operator))[2])
        return answers[-1]["metagraph"]["last_error"] and answers[-1]["metagraph"]
    try:
        wait_healthy(port, proc)
        graph = wait_for(failed_refresh, 20, "a failed refresh")
        assert graph["enabled"] and graph["thread_alive"] and not graph["loaded"]
        assert "ChainUnavailable" in graph["last_error"]
        answers.append(get_json(port, "/health")[2])
    finally:
        stop_process(proc)
    log = (tmp_path / "miner.log").read_text()
    assert "is UNREACHABLE" in log and "allow-list only (1 hotkeys)" in log
    assert "health: degraded" in log, "the details of a status change go to the log"
    seen = log + json.dumps(answers)
    for secret in ("hunter2SECRET", "KEY0123456789abcdef"):
        assert secret not in seen, secret


def test_an_unreachable_chain_without_allow_list_refuses_to_start(tmp_path):
    make_wallet(tmp_path)
    chain = f"ws://ops:hunter2SECRET@127.0.0.1:{free_port()}"
    result = run_cli(settings_env(miner_settings(tmp_path, "http://127.0.0.1:1",
                                                 SUBTENSOR_NETWORK=chain)))
    assert result.returncode == 2 and "unreachable" in result.stderr
    assert "hunter2SECRET" not in result.stderr + result.stdout


def test_chain_mode_without_netuid_refuses_to_start_naming_it(tmp_path):
    make_wallet(tmp_path)
    env = settings_env(miner_settings(tmp_path, "http://127.0.0.1:1", SUBTENSOR_NETWORK="finney",
                                      NETUID=None, MINER_VALIDATOR_HOTKEYS=("5V",)))
    assert env["NETUID"] == ""
    result = run_cli(env)
    assert result.returncode == 2
    assert "refusing to start: NETUID is not set" in result.stderr


class Trickler:
    """Connections that send a request line, then one header line at a time, never the end."""

    def __init__(self, port, count, every_s=0.5):
        self.socks = []
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.sendall(f"GET {PATH} HTTP/1.1\r\nHost: miner\r\n".encode())
            self.socks.append(sock)
        self.errors = []
        self.stop = threading.Event()
        self.every_s = every_s
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        line = 0
        while not self.stop.wait(self.every_s):
            line += 1
            for i, sock in enumerate(self.socks):
                try:
                    sock.sendall(f"X-Slow-{line}: {'x' * 20}\r\n".encode())
                except OSError as exc:
                    self.errors.append((i, exc))

    def close(self):
        self.stop.set()
        self.thread.join()
        for sock in self.socks:
            sock.close()


def test_64_connections_trickling_headers_do_not_starve_a_signed_validator(served):
    port, me, vali, api = served["port"], served["me"], served["validator"], served["api"]
    slow = Trickler(port, 64)
    try:
        # Every slow connection has been accepted and is sending header lines.
        wait_for(lambda: slow.thread.is_alive() and slow.errors == [], 5, "the slow clients")
        status, _, body = get_json(port, PATH, sign(vali, PATH, me), timeout=60)
        assert (status, body) == (200, json.loads(api.get(PATH)[2]))
        assert slow.errors == [], "the slow clients were still connected while it was answered"
    finally:
        slow.close()
