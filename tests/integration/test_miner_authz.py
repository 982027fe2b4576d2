"""Authorisation against an injected metagraph (the only stub), /health, rate limits, 502s.

The miner runs in front of the real result API on a published sample date.
"""

import socket
from importlib import metadata

import pytest

from services.miner.app import create_app
from bittensor_wallet import Wallet

from tests.miner_fixtures import (SAMPLE_DATE, StubSource, api, details,  # noqa: F401
                                  free_port, make_wallet, miner_settings, new_keypair, redis11,
                                  sign, snapshot_of, wait_for)

VERSION = metadata.version("aml-miner")  # both /health answers name the running code

PATH = f"/metadata/{SAMPLE_DATE}"


class Fatal(BaseException):
    """Escapes every per-refresh handler, like a bug that would kill a naive loop."""


@pytest.fixture
def keys():
    return {name: new_keypair() for name in ("vali", "no_permit", "poor", "listed", "stranger")}


@pytest.fixture
def source(keys):
    return StubSource(snapshot_of((keys["vali"].ss58_address, True, 5000.0),
                                  (keys["no_permit"].ss58_address, False, 9000.0),
                                  (keys["poor"].ss58_address, True, 10.0), block=321))


@pytest.fixture
def make_miner(tmp_path, api, redis11, keys):
    wallet = make_wallet(tmp_path)
    apps = []

    def build(source, **changes):
        settings = miner_settings(tmp_path, api.url, SUBTENSOR_NETWORK="ws://127.0.0.1:1",
                                  MINER_VALIDATOR_HOTKEYS=(keys["listed"].ss58_address,),
                                  MINER_MIN_STAKE=1000.0, **changes)
        app = create_app(settings, metagraph_source=source)
        apps.append(app)
        return app.test_client(), app.extensions["aml_miner"]

    yield build, wallet.hotkey.ss58_address
    for app in apps:
        app.extensions["aml_miner"].close()


@pytest.fixture
def operator(tmp_path, make_miner):
    """The miner's own hotkey (make_miner created the wallet), which may read /health/details."""
    return Wallet(name="miner", hotkey="default", path=str(tmp_path)).hotkey


def get(client, key, me, path=PATH):
    return client.get(path, headers=sign(key, path, me))


def loaded(build, source, **changes):
    client, state = build(source, **changes)
    assert state.refresher.wait_loaded(5)
    return client, state


def test_validators_are_judged_by_the_metagraph(make_miner, source, keys, api):
    build, me = make_miner
    client, _ = loaded(build, source)
    ok = get(client, keys["vali"], me)
    assert (ok.status_code, ok.data) == (200, api.get(PATH)[2])
    assert get(client, keys["listed"], me).status_code == 200  # allow-list, not registered
    expected = {"no_permit": "no_validator_permit", "poor": "stake_too_low",
                "stranger": "not_registered"}
    for name, reason in expected.items():
        response = get(client, keys[name], me)
        assert (response.status_code, response.get_json()["reason"]) == (403, reason), name


def test_the_permit_rule_follows_its_setting(make_miner, source, keys):
    build, me = make_miner
    client, _ = loaded(build, source, MINER_REQUIRE_VALIDATOR_PERMIT=False)
    assert get(client, keys["no_permit"], me).status_code == 200


def test_the_metagraph_is_read_in_the_background_not_per_request(make_miner, source, keys):
    build, me = make_miner
    client, _ = loaded(build, source)
    calls = source.calls
    for _ in range(5):
        get(client, keys["vali"], me)
    assert source.calls == calls == 1


def test_a_failed_refresh_keeps_serving_the_last_snapshot(make_miner, source, keys, operator):
    build, me = make_miner
    client, state = loaded(build, source)
    source.error = ConnectionError("subtensor went away")
    assert state.refresher.refresh_once() is False
    assert get(client, keys["vali"], me).status_code == 200
    assert get(client, keys["stranger"], me).status_code == 403
    assert client.get("/health").get_json() == {"status": "degraded", "version": VERSION}
    report = details(client, operator).get_json()
    graph = report["metagraph"]
    assert report["status"] == "degraded"
    assert graph["last_error"] == "ConnectionError: subtensor went away"
    assert graph["failures"] == 1 and graph["block"] == 321 and graph["thread_alive"] is True
    assert graph["age_seconds"] >= 0


def test_no_snapshot_yet_is_503_for_the_chain_path_but_the_allow_list_still_works(
        make_miner, keys, operator):
    build, me = make_miner
    dead_chain = StubSource()
    dead_chain.error = ConnectionError("refused")
    client, state = build(dead_chain)
    wait_for(lambda: state.refresher.status.failures, 5, "the first failed refresh")
    response = get(client, keys["vali"], me)
    assert (response.status_code, response.get_json()["reason"]) == (503, "metagraph_unavailable")
    assert get(client, keys["listed"], me).status_code == 200
    health = details(client, operator)
    assert health.status_code == 200 and health.get_json()["metagraph"]["loaded"] is False


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_dead_refresh_thread_shows_in_health(make_miner, source, operator):
    build, _ = make_miner
    source.error = Fatal("unexpected")
    client, state = build(source)
    wait_for(lambda: not state.refresher.alive(), 5, "the refresh thread to die")
    status = client.get("/health")
    assert (status.status_code, status.get_json()) == (
        503, {"status": "unhealthy", "version": VERSION})
    health = details(client, operator)
    graph = health.get_json()["metagraph"]
    assert health.status_code == 503 and health.get_json()["status"] == "unhealthy"
    assert graph["thread_alive"] is False
    assert graph["last_error"] == "refresh thread died: Fatal: unexpected"


def test_health_details_report_upstream_metagraph_and_allow_list(make_miner, source, api,
                                                                  operator):
    build, me = make_miner
    client, _ = loaded(build, source)
    health = details(client, operator)
    report = health.get_json()
    assert health.status_code == 200 and report["status"] == "ok"
    assert report["hotkey"] == me and report["allow_list_size"] == 1
    assert report["upstream"] == {"url": api.url, "reachable": True, "status": 200,
                                  "error": None}
    assert report["metagraph"]["neurons"] == 3 and report["metagraph"]["netuid"] == 7


def test_the_rate_limit_is_per_hotkey_with_retry_after(make_miner, source, keys):
    build, me = make_miner
    client, _ = loaded(build, source, MINER_RATE_LIMIT=3, MINER_RATE_WINDOW_SECONDS=60)
    assert [get(client, keys["vali"], me).status_code for _ in range(3)] == [200] * 3
    limited = get(client, keys["vali"], me)
    assert limited.status_code == 429 and limited.get_json()["reason"] == "rate_limited"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert get(client, keys["listed"], me).status_code == 200  # another hotkey is unaffected


def test_the_rate_limit_is_shared_between_workers(make_miner, source, keys):
    build, me = make_miner
    first, _ = loaded(build, source, MINER_RATE_LIMIT=2)
    second, _ = loaded(build, source, MINER_RATE_LIMIT=2)  # another worker, same Redis
    assert get(first, keys["vali"], me).status_code == 200
    assert get(second, keys["vali"], me).status_code == 200
    assert get(first, keys["vali"], me).status_code == 429


def test_refused_callers_do_not_use_up_the_limit(make_miner, source, keys):
    build, me = make_miner
    client, _ = loaded(build, source, MINER_RATE_LIMIT=1)
    for _ in range(3):
        assert get(client, keys["stranger"], me).status_code == 403
    assert get(client, keys["listed"], me).status_code == 200


def test_api_down_is_502_json_and_health_says_so(tmp_path, redis11, keys):
    operator = make_wallet(tmp_path).hotkey
    settings = miner_settings(tmp_path, f"http://127.0.0.1:{free_port()}",
                              MINER_VALIDATOR_HOTKEYS=(keys["listed"].ss58_address,))
    app = create_app(settings)
    client, me = app.test_client(), app.extensions["aml_miner"].hotkey
    response = get(client, keys["listed"], me)
    body = response.get_json()
    assert response.status_code == 502 and body["reason"] == "upstream_unavailable"
    assert set(body) == {"code", "name", "description", "reason"}
    assert client.get("/health").get_json() == {"status": "degraded", "version": VERSION}
    report = details(client, operator).get_json()
    assert report["status"] == "degraded" and report["upstream"]["reachable"] is False


def test_an_api_that_hangs_is_502_after_the_timeout(tmp_path, redis11, keys):
    make_wallet(tmp_path)
    with socket.socket() as hung:  # accepts connections (backlog) but never answers
        hung.bind(("127.0.0.1", 0))
        hung.listen(8)
        url = f"http://127.0.0.1:{hung.getsockname()[1]}"
        settings = miner_settings(tmp_path, url, MINER_UPSTREAM_TIMEOUT=0.3,
                                  MINER_VALIDATOR_HOTKEYS=(keys["listed"].ss58_address,))
        app = create_app(settings)
        client, me = app.test_client(), app.extensions["aml_miner"].hotkey
        response = get(client, keys["listed"], me)
    assert response.status_code == 502 and "ReadTimeoutError" in response.get_json()["description"]


def test_past_the_max_age_chain_callers_get_503_and_the_allow_list_still_passes(
        make_miner, source, keys, operator):
    build, me = make_miner
    client, state = loaded(build, source, MINER_METAGRAPH_REFRESH_SECONDS=60,
                           MINER_METAGRAPH_MAX_AGE=600)
    assert get(client, keys["vali"], me).status_code == 200
    source.error = ConnectionError("chain unreachable for a long time")
    state.refresher.status.last_success -= 601  # the last good read is now older than the limit
    refused = get(client, keys["vali"], me)
    body = refused.get_json()
    assert (refused.status_code, body["reason"]) == (503, "metagraph_stale")
    assert "MINER_METAGRAPH_MAX_AGE=600" in body["description"]
    assert get(client, keys["stranger"], me).get_json()["reason"] == "metagraph_stale"
    assert get(client, keys["listed"], me).status_code == 200
    assert client.get("/health").get_json() == {"status": "degraded", "version": VERSION}
    assert details(client, operator).get_json()["metagraph"]["max_age_seconds"] == 600
    source.error = None
    assert state.refresher.refresh_once()  # the chain is back: a fresh snapshot admits again
    assert get(client, keys["vali"], me).status_code == 200


def test_unauthenticated_health_says_only_the_status_and_version(make_miner, source):
    build, _ = make_miner
    client, _ = loaded(build, source)
    health = client.get("/health")
    assert (health.status_code, health.get_json()) == (200, {"status": "ok", "version": VERSION})


def test_health_details_need_the_miners_own_signature(make_miner, source, keys, operator):
    build, me = make_miner
    client, _ = loaded(build, source)
    path = "/health/details"
    assert client.get(path).get_json()["reason"] == "unsigned"
    for caller in (keys["vali"], keys["listed"]):  # validators see results, not our internals
        response = client.get(path, headers=sign(caller, path, me))
        assert (response.status_code, response.get_json()["reason"]) == (403, "not_operator")
    assert details(client, operator).get_json()["hotkey"] == me


def test_health_changes_are_logged_once_with_the_details(make_miner, source, caplog):
    build, _ = make_miner
    client, state = loaded(build, source)
    with caplog.at_level("INFO", logger="services.miner.health"):
        client.get("/health")
        client.get("/health")
        source.error = ConnectionError("subtensor went away")
        state.refresher.refresh_once()
        client.get("/health")
        client.get("/health")
    lines = [r.getMessage() for r in caplog.records if r.name == "services.miner.health"]
    assert len(lines) == 2, lines
    assert lines[0].startswith("health: ok") and lines[1].startswith("health: degraded")
    assert "subtensor went away" in lines[1] and "worker" in lines[1]


def test_no_secret_of_subtensor_network_reaches_a_response_or_a_log(tmp_path, api, redis11, keys,
                                                                   caplog):
    wallet = make_wallet(tmp_path)
    network = "ws://ops:hunter2SECRET@127.0.0.1:1/rpc?apikey=KEY0123456789abcdef"
    settings = miner_settings(tmp_path, api.url, SUBTENSOR_NETWORK=network,
                              MINER_VALIDATOR_HOTKEYS=(keys["listed"].ss58_address,))
    with caplog.at_level("DEBUG"):
        app = create_app(settings)  # the real SDK, failing to reach 127.0.0.1:1
        state = app.extensions["aml_miner"]
        wait_for(lambda: state.refresher.status.failures, 20, "a failed refresh")
        client = app.test_client()
        answers = [client.get("/health").data, details(client, wallet.hotkey).data]
        state.close()
    text = b"".join(answers).decode() + "\n".join(r.getMessage() for r in caplog.records)
    assert "127.0.0.1:1" in text, "the endpoint itself is shown"
    for secret in ("hunter2SECRET", "KEY0123456789abcdef", "ops:"):
        assert secret not in text, secret
