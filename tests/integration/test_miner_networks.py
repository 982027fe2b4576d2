"""Two networks through the real miner (gunicorn) in front of the real API (gunicorn).

Requests are signed with real sr25519 keys; the query string, `?network=` included, is part
of the signed target, and each network's data is answered only under its own name.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from tests.api_fixtures import publish_date
from tests.miner_fixtures import (REDIS_URL, REPO, free_port, get_json, make_wallet,
                                  miner_settings, new_keypair, sign, start_miner_process,
                                  stop_process, wait_healthy)

NETWORKS = ("bitcoin", "torus")
BOTH, TORUS_ONLY = "2025-10-26", "2025-10-27"


def start_api(root: Path) -> tuple[subprocess.Popen, str]:
    """`serve-api` with NETWORKS=bitcoin,torus over OUTPUT_DIR/{network}/ (each its own rows)."""
    output = root / "output"
    for seed, network in enumerate(NETWORKS):
        publish_date(output / network, BOTH, network=network, alerts=120 + seed, seed=seed)
    publish_date(output / "torus", TORUS_ONLY, network="torus", alerts=50, seed=7)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "NETWORK"}
    env.update(OUTPUT_DIR=str(output), NETWORKS=",".join(NETWORKS), API_WORKERS="1",
               API_THREADS="4")
    with open(root / "api.log", "wb") as log_file:
        proc = subprocess.Popen([sys.executable, "-m", "services.cli", "serve-api", "--host",
                                 "127.0.0.1", "--port", str(port)], cwd=REPO, env=env,
                                stdout=log_file, stderr=subprocess.STDOUT)
    wait_healthy(port, proc)
    return proc, port


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A miner (one gevent worker, allow-list, no chain) in front of the two-network API."""
    root = tmp_path_factory.mktemp("networks")
    wallet = make_wallet(root)
    validator = new_keypair()
    redis.Redis.from_url(REDIS_URL).flushdb()
    api, api_port = start_api(root)
    settings = miner_settings(root, f"http://127.0.0.1:{api_port}", MINER_WORKERS=1,
                              MINER_VALIDATOR_HOTKEYS=(validator.ss58_address,))
    port = free_port()
    miner = start_miner_process(settings, port, root / "miner.log")
    try:
        wait_healthy(port, miner)
        yield {"port": port, "api_port": api_port, "me": wallet.hotkey.ss58_address,
               "validator": validator}
    finally:
        stop_process(miner)
        stop_process(api)
        redis.Redis.from_url(REDIS_URL).flushdb()


def signed(served, target, headers=None, sent=None):
    """GET `sent` (default: target) from the miner, signed for `target` by the validator."""
    auth = sign(served["validator"], target, served["me"])
    return get_json(served["port"], sent or target, {**auth, **(headers or {})})


def direct(served, target, headers=None):
    return get_json(served["api_port"], target, headers)


@pytest.mark.parametrize("template", ["/scores/alerts/{}", "/rankings/alerts/{}",
                                      "/scores/clusters/{}", "/metadata/{}"])
def test_each_network_is_answered_under_its_own_name_only(served, template):
    bodies = {}
    for network in NETWORKS:
        target = template.format(BOTH) + f"?network={network}"
        status, headers, body = signed(served, target)
        assert status == 200 and body["network"] == network
        assert body == direct(served, target)[2]
        bodies[network] = body
    assert bodies["bitcoin"] != bodies["torus"]
    assert signed(served, template.format(BOTH))[2] == bodies["bitcoin"]  # the default network


def test_a_date_of_one_network_is_404_under_the_other(served):
    target = f"/scores/alerts/{TORUS_ONLY}"
    assert signed(served, f"{target}?network=torus")[0] == 200
    assert signed(served, f"{target}?network=bitcoin")[0] == 404
    status, _, body = signed(served, "/rankings/alerts/latest?network=torus&limit=5")
    assert status == 200 and body["processing_date"] == TORUS_ONLY and len(body["rankings"]) == 5


def test_dates_per_network(served):
    assert signed(served, "/dates?network=torus")[2] == {"dates": [TORUS_ONLY, BOTH],
                                                         "latest": TORUS_ONLY}
    assert signed(served, "/dates?network=bitcoin")[2] == {"dates": [BOTH], "latest": BOTH}


def test_an_unknown_network_is_the_apis_404_naming_the_served_ones(served):
    status, headers, body = signed(served, f"/metadata/{BOTH}?network=ethereum")
    assert status == 404 and body["description"].endswith("this API serves 'bitcoin', 'torus'")
    assert headers["Cache-Control"] == "private, no-store"


def test_the_network_is_part_of_the_signed_target(served):
    # Signed for bitcoin, sent for torus: a tampered query, refused before the API is asked.
    status, _, body = signed(served, f"/metadata/{BOTH}?network=bitcoin",
                             sent=f"/metadata/{BOTH}?network=torus")
    assert (status, body["reason"]) == (401, "bad_signature")


def test_etags_and_304_pass_through_per_network(served):
    targets = {n: f"/scores/alerts/{BOTH}?network={n}" for n in NETWORKS}
    gz = {"Accept-Encoding": "gzip"}
    etags = {n: signed(served, t, gz)[1]["ETag"] for n, t in targets.items()}
    assert etags["bitcoin"] != etags["torus"]
    assert etags == {n: direct(served, t, gz)[1]["ETag"] for n, t in targets.items()}
    assert signed(served, targets["torus"], {**gz, "If-None-Match": etags["torus"]})[0] == 304
    assert signed(served, targets["torus"], {**gz, "If-None-Match": etags["bitcoin"]})[0] == 200
