"""Two networks served side by side: each only under its own `?network=`, the first by default."""

import json
import shutil

import pyarrow.parquet as pq
import pytest

from services.api import openapi
from services.api.app import create_app
from shared import storage
from tests.api_fixtures import publish_date
from tests.unit.test_api_shortcut import Apps, FileWrapper, _call

NETWORKS = ("bitcoin", "torus")
BOTH, BTC_ONLY, TORUS_ONLY = "2025-10-25", "2025-10-26", "2025-10-24"
ENDPOINTS = ["/scores/alerts/{}", "/rankings/alerts/{}", "/scores/clusters/{}", "/metadata/{}"]
LIST_FILES = {"/scores/alerts/{}": storage.ALERTS_SCORED, "/rankings/alerts/{}": storage.ALERTS_RANKED,
              "/scores/clusters/{}": storage.CLUSTERS_SCORED}


@pytest.fixture
def two(settings):
    """Settings serving bitcoin (the default) and torus."""
    return settings.replace(NETWORKS=NETWORKS)


@pytest.fixture
def published(two):
    """{(network, date): version folder}: one date in both, and one date in each network alone."""
    def put(network, date, seed, alerts):
        return publish_date(two.network_output_dir(network), date, network=network, seed=seed,
                            alerts=alerts, clusters=alerts // 4)
    return {("bitcoin", BOTH): put("bitcoin", BOTH, 1, 24), ("torus", BOTH): put("torus", BOTH, 2, 36),
            ("bitcoin", BTC_ONLY): put("bitcoin", BTC_ONLY, 3, 28),
            ("torus", TORUS_ONLY): put("torus", TORUS_ONLY, 4, 32)}


@pytest.fixture
def client(two, published):
    return create_app(two).test_client()


def _ok(response):
    assert response.status_code == 200, response.data
    return response


def _ids(version, url_template):
    column = "cluster_id" if "clusters" in url_template else "alert_id"
    rows = pq.read_table(version / LIST_FILES[url_template]).to_pylist()
    if "rankings" in url_template:
        rows.sort(key=lambda r: r["rank"])
    return [r[column] for r in rows]


@pytest.mark.parametrize("template", list(LIST_FILES))
@pytest.mark.parametrize("network", NETWORKS)
def test_each_network_serves_its_own_rows_under_its_own_name(client, published, network, template):
    body = json.loads(_ok(client.get(template.format(BOTH) + f"?network={network}")).data)
    assert body["network"] == network
    rows = body["scores"] if "scores" in body else body["rankings"]
    key = "cluster_id" if "clusters" in template else "alert_id"
    assert [r[key] for r in rows] == _ids(published[(network, BOTH)], template)


@pytest.mark.parametrize("network", NETWORKS)
def test_metadata_is_the_networks_own_file_byte_for_byte(client, published, network):
    response = _ok(client.get(f"/metadata/{BOTH}?network={network}"))
    assert response.data == (published[(network, BOTH)] / storage.METADATA).read_bytes()


@pytest.mark.parametrize("template", ENDPOINTS)
def test_without_network_the_first_configured_one_answers(client, template):
    for date in (BOTH, "latest"):
        omitted = _ok(client.get(template.format(date)))
        named = _ok(client.get(template.format(date) + "?network=bitcoin"))
        other = _ok(client.get(template.format(date) + "?network=torus"))
        assert omitted.data == named.data != other.data
        assert omitted.headers["ETag"] == named.headers["ETag"]


def test_the_default_is_the_first_of_networks_whatever_its_name(settings):
    torus_first = settings.replace(NETWORKS=("torus", "bitcoin"), NETWORK="torus")
    publish_date(torus_first.network_output_dir("torus"), BOTH, network="torus")
    publish_date(torus_first.network_output_dir("bitcoin"), BTC_ONLY, network="bitcoin")
    client = create_app(torus_first).test_client()
    assert json.loads(client.get("/dates").data) == {"dates": [BOTH], "latest": BOTH}
    assert json.loads(client.get("/metadata/latest").data)["network"] == "torus"


@pytest.mark.parametrize("template", ENDPOINTS)
def test_a_date_only_one_network_published_is_404_in_the_other(client, template):
    _ok(client.get(template.format(BTC_ONLY) + "?network=bitcoin"))
    assert client.get(template.format(BTC_ONLY) + "?network=torus").status_code == 404
    assert client.get(template.format(TORUS_ONLY)).status_code == 404  # the default is bitcoin
    _ok(client.get(template.format(TORUS_ONLY) + "?network=torus"))


@pytest.mark.parametrize("template", ENDPOINTS)
def test_latest_resolves_in_each_network(client, template):
    for network, newest in (("bitcoin", BTC_ONLY), ("torus", BOTH)):
        latest = _ok(client.get(template.format("latest") + f"?network={network}"))
        concrete = _ok(client.get(template.format(newest) + f"?network={network}"))
        assert latest.data == concrete.data and latest.headers["ETag"] == concrete.headers["ETag"]
        assert latest.headers["Cache-Control"] == "public, no-cache"


def test_dates_are_listed_per_network(client):
    assert json.loads(_ok(client.get("/dates?network=torus")).data) == \
        {"dates": [BOTH, TORUS_ONLY], "latest": BOTH}
    assert json.loads(_ok(client.get("/dates?network=bitcoin")).data) == \
        {"dates": [BTC_ONLY, BOTH], "latest": BTC_ONLY}
    assert client.get("/dates").data == client.get("/dates?network=bitcoin").data


@pytest.mark.parametrize("asked", ["ethereum", "", "bitcoin,torus", "x" * 60])
@pytest.mark.parametrize("url", [*(t.format(BOTH) for t in ENDPOINTS), "/dates"])
def test_an_unknown_network_is_404_naming_the_configured_ones(client, url, asked):
    response = client.get(f"{url}?network={asked}")
    body = json.loads(response.data)
    assert response.status_code == 404 and set(body) == {"code", "name", "description"}
    assert body["description"].endswith("this API serves 'bitcoin', 'torus'")
    assert response.headers["Cache-Control"] == "no-store"


def test_network_names_are_matched_in_any_case(client):
    assert client.get(f"/metadata/{BOTH}?network=TORUS").data == \
        client.get(f"/metadata/{BOTH}?network=torus").data


@pytest.mark.parametrize("url", [*(t.format(BOTH) for t in ENDPOINTS), *(t.format("latest") for t in ENDPOINTS),
                                 f"/scores/alerts/{BOTH}?limit=5&offset=2", "/dates"])
@pytest.mark.parametrize("encoding", [None, "gzip"])
def test_etags_differ_per_network_and_each_revalidates_only_its_own(client, url, encoding):
    headers = {"Accept-Encoding": encoding} if encoding else {}
    join = "&" if "?" in url else "?"
    urls = {n: f"{url}{join}network={n}" for n in NETWORKS}
    etags = {n: _ok(client.get(u, headers=headers)).headers["ETag"] for n, u in urls.items()}
    assert etags["bitcoin"] != etags["torus"]
    for network, own in urls.items():
        mine = client.get(own, headers={**headers, "If-None-Match": etags[network]})
        assert mine.status_code == 304 and mine.data == b""
        other = etags["torus" if network == "bitcoin" else "bitcoin"]
        assert client.get(own, headers={**headers, "If-None-Match": other}).status_code == 200


def test_equal_dates_in_two_networks_still_have_their_own_dates_etag(two):
    for network in NETWORKS:
        publish_date(two.network_output_dir(network), BOTH, network=network)
    client = create_app(two).test_client()
    a, b = client.get("/dates?network=bitcoin"), client.get("/dates?network=torus")
    assert a.data == b.data and a.headers["ETag"] != b.headers["ETag"]


def test_a_copied_network_folder_still_has_its_own_etags(two):
    publish_date(two.network_output_dir("bitcoin"), BOTH, network="bitcoin")
    # The same version folder names in both networks (a copied tree): only the scope differs.
    shutil.copytree(two.network_output_dir("bitcoin"), two.network_output_dir("torus"), symlinks=True)
    client = create_app(two).test_client()
    for url in (*(t.format(BOTH) for t in ENDPOINTS), f"/scores/alerts/{BOTH}?limit=2"):
        join = "&" if "?" in url else "?"
        a, b = client.get(f"{url}{join}network=bitcoin"), client.get(f"{url}{join}network=torus")
        assert a.data == b.data and a.headers["ETag"] != b.headers["ETag"], url


def test_a_network_with_nothing_published_yet(two, published):
    three = two.replace(NETWORKS=(*NETWORKS, "ethereum"))
    client = create_app(three).test_client()
    assert json.loads(_ok(client.get("/dates?network=ethereum")).data) == {"dates": [], "latest": None}
    assert client.get("/scores/alerts/latest?network=ethereum").status_code == 404
    health = json.loads(_ok(client.get("/health")).data)
    assert health["networks"] == {"bitcoin": BTC_ONLY, "torus": BOTH, "ethereum": None}


def test_health_names_the_default_network_and_each_networks_newest_date(client):
    health = json.loads(_ok(client.get("/health")).data)
    assert (health["network"], health["latest"]) == ("bitcoin", BTC_ONLY)
    assert health["networks"] == {"bitcoin": BTC_ONLY, "torus": BOTH}
    assert list(health) == ["status", "output_dir_readable", "latest", "network", "networks", "version"]


def test_openapi_lists_the_networks_with_the_first_as_default(client):
    served = json.loads(_ok(client.get("/openapi.json")).data)
    assert served == json.loads(json.dumps(openapi.document(NETWORKS)))
    for path, item in served["paths"].items():
        for parameter in item["get"].get("parameters", []):
            if parameter["name"] == "network":
                assert parameter["schema"] == {"type": "string", "enum": list(NETWORKS),
                                               "default": "bitcoin"}, path
    with_network = [p for p, item in served["paths"].items()
                    if any(q["name"] == "network" for q in item["get"].get("parameters", []))]
    assert sorted(with_network) == sorted(["/dates", *(t.format("{date}") for t in ENDPOINTS)])
    assert "networks" in served["components"]["schemas"]["Health"]["properties"]


def test_openapi_of_one_network_is_the_one_network_document():
    assert openapi.document(("bitcoin",)) is openapi.SPEC
    assert "enum" not in json.dumps(openapi.SPEC["paths"]["/dates"])


# The shortcut in front of Flask answers `?network=` too, with Flask's exact bytes.

@pytest.fixture
def apps(two, published):
    return Apps(two)


@pytest.mark.parametrize("template", ENDPOINTS)
@pytest.mark.parametrize("query", ["", "?network=bitcoin", "?network=torus", "?network=Torus"])
@pytest.mark.parametrize("method,encoding", [("GET", None), ("GET", "gzip"), ("HEAD", "gzip")])
def test_the_shortcut_answers_each_network_as_flask_does(apps, template, query, method, encoding):
    headers = {"Accept-Encoding": encoding} if encoding else {}
    for date in (BOTH, "latest"):
        fast, slow = apps.both(template.format(date) + query, method, headers)
        assert fast[:3] == slow[:3] and fast[0] == "200 OK"
        assert method == "HEAD" or fast[3] is FileWrapper
        etag = dict(fast[1])["ETag"]
        fast, slow = apps.both(template.format(date) + query, method,
                               {**headers, "If-None-Match": etag})
        assert fast[:3] == slow[:3] and fast[0].startswith("304")
    assert apps.flask_calls == 0


@pytest.mark.parametrize("url", [f"/metadata/{BOTH}?network=ethereum",
                                 f"/metadata/{BTC_ONLY}?network=torus",
                                 f"/scores/alerts/{BOTH}?network=torus&limit=3",
                                 f"/scores/alerts/{BOTH}?NETWORK=torus",
                                 f"/scores/alerts/{BOTH}?network=%74orus",
                                 f"/scores/alerts/{BOTH}?network=torus&network=bitcoin"])
def test_the_shortcut_leaves_other_queries_to_flask(apps, url):
    fast, slow = apps.both(url)
    assert apps.flask_calls == 1 and fast[:3] == slow[:3]


def test_the_shortcut_serves_the_network_flask_serves_for_an_ambiguous_query(apps):
    # `NETWORK=` is not the parameter: Flask answers the default network.
    status, _, body, _ = _call(apps.fast, f"/metadata/{BOTH}?NETWORK=torus", "GET", None)
    assert status == "200 OK" and json.loads(body)["network"] == "bitcoin"
