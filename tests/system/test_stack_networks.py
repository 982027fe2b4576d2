"""One stack serving two networks, as local processes started from compose.yaml.

The same harness as test_stack_system (real redis-server, sample S3 server, RQ workers,
gunicorn API and miner) with NETWORKS=bitcoin,torus. Learning is off here: the
single-network system test covers it, and this one is about keeping networks apart.
"""

from __future__ import annotations

import datetime as dt
import json

import pyarrow.parquet as pq
import pytest

from tests.stack_checks import check_alert_scores, http_get, poll, published, signed_get
from tests.system.test_stack_system import RunningStack, running_stack

pytestmark = pytest.mark.slow

NETWORKS = ("bitcoin", "torus")


@pytest.fixture(scope="module")
def stack(tmp_path_factory, compiled_cache):
    yield from running_stack(tmp_path_factory.mktemp("networks"), compiled_cache,
                             (f"NETWORKS={','.join(NETWORKS)}", "LEARN_ENABLED=false"))


def _input_ids(stack: RunningStack, network: str, date: str) -> set[str]:
    path = stack.project / "volumes" / "input" / network / date / "alerts.parquet"
    return set(pq.read_table(path, columns=["alert_id"]).column("alert_id").to_pylist())


@pytest.fixture(scope="module")
def date(stack) -> str:
    """Yesterday, enqueued for both networks and published for both."""
    day = (dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)).isoformat()
    for network in NETWORKS:
        done = stack.cli("enqueue", "--network", network, "--processing-date", day)
        assert done.returncode == 0, done.stdout + done.stderr
    for network in NETWORKS:
        poll(lambda: published(stack.api, day, network), 300, f"{network} {day} to be served")
    return day


def test_each_network_is_published_in_its_own_folder_and_served_under_its_own_name(stack, date):
    payloads = {}
    for network in NETWORKS:
        payloads[network] = published(stack.api, date, network)
        assert check_alert_scores(payloads[network], _input_ids(stack, network, date)) > 0
        assert (stack.project / "volumes" / "output" / network / date).is_dir()
        meta = json.loads(http_get(f"{stack.api}/metadata/{date}?network={network}")[2])
        assert meta["network"] == network, meta
    assert not (stack.project / "volumes" / "output" / date).exists()
    ids = [{row["alert_id"] for row in payloads[n]["scores"]} for n in NETWORKS]
    assert ids[0] != ids[1], "two networks served the same alerts"
    # No ?network= means the first configured network.
    assert published(stack.api, date) == payloads[NETWORKS[0]]


def test_an_unknown_network_is_a_404_naming_the_configured_ones(stack, date):
    status, _, body = http_get(f"{stack.api}/scores/alerts/{date}?network=ethereum")
    assert status == 404
    assert all(network in body.decode() for network in NETWORKS), body


def test_a_validator_gets_each_networks_bytes_through_the_miner(stack, date):
    for network in NETWORKS:
        path = f"/scores/alerts/{date}?network={network}"
        status, _, api_body = http_get(f"{stack.api}{path}")
        code, body = signed_get(stack.miner, path, stack.validator, stack.miner_ss58)
        assert status == 200 and code == 200 and body == api_body, network


def test_status_answers_per_network_and_gives_an_overview(stack, date):
    for network in NETWORKS:
        one = stack.cli("status", "--network", network, "--processing-date", date, "--json")
        assert one.returncode == 0, one.stderr
        assert json.loads(one.stdout)["state"] == "published", one.stdout
    overview = stack.cli("status")
    assert overview.returncode == 0, overview.stderr
    assert all(network in overview.stdout for network in NETWORKS), overview.stdout
