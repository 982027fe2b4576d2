"""Every endpoint on published dates: bodies match the published files exactly."""

import json
from importlib import metadata

import pyarrow.parquet as pq
import pytest

from services.api import openapi
from services.api.app import create_app
from shared import storage
from tests.api_fixtures import publish_date

OLD, NEW = "2025-10-25", "2025-10-26"


@pytest.fixture
def published(settings):
    """Two published dates; returns {date: version folder}."""
    return {OLD: publish_date(settings.OUTPUT_DIR, OLD, alerts=30, clusters=7, seed=1),
            NEW: publish_date(settings.OUTPUT_DIR, NEW, alerts=40, clusters=9, seed=2)}


@pytest.fixture
def client(settings, published):
    return create_app(settings).test_client()


def _get_json(client, url):
    response = client.get(url)
    assert response.status_code == 200, response.data
    assert response.mimetype == "application/json"
    return json.loads(response.data)


def test_alert_scores_are_the_published_rows_exactly(client, published):
    body = _get_json(client, f"/scores/alerts/{NEW}")
    table = pq.read_table(published[NEW] / storage.ALERTS_SCORED).to_pydict()
    meta = json.loads((published[NEW] / storage.METADATA).read_text())
    assert [r["alert_id"] for r in body["scores"]] == table["alert_id"]
    assert [r["score"] for r in body["scores"]] == table["score"]  # exact float64 equality
    assert body["total_alerts"] == 40 and body["processing_date"] == NEW
    assert body["network"] == "bitcoin" and body["window_days"] == 7
    assert body["model_version"] == "alert_scorer_v1.0.0"
    assert body["metadata"]["processed_at"] == meta["timestamp"]
    assert body["metadata"]["model_versions"] == meta["model_versions"]
    assert body["metadata"]["model_github_url"] == meta["model_github_url"]
    assert list(body) == ["processing_date", "network", "window_days", "model_version",
                          "total_alerts", "scores", "metadata"]


def test_rankings_are_ordered_by_rank_and_match_the_file(client, published):
    body = _get_json(client, f"/rankings/alerts/{OLD}")
    table = pq.read_table(published[OLD] / storage.ALERTS_RANKED).to_pylist()
    expected = sorted(table, key=lambda r: r["rank"])
    assert [r["rank"] for r in body["rankings"]] == list(range(1, 31))
    assert [(r["alert_id"], r["rank"], r["score"]) for r in body["rankings"]] == \
        [(r["alert_id"], r["rank"], r["score"]) for r in expected]
    assert body["model_version"] == "alert_ranker_v1.0.0" and body["total_alerts"] == 30


def test_cluster_scores_match_the_file(client, published):
    body = _get_json(client, f"/scores/clusters/{NEW}")
    table = pq.read_table(published[NEW] / storage.CLUSTERS_SCORED).to_pydict()
    assert [(r["cluster_id"], r["score"]) for r in body["scores"]] == \
        list(zip(table["cluster_id"], table["score"]))
    assert body["total_clusters"] == 9 and body["model_version"] == "cluster_scorer_v1.0.0"
    assert "total_alerts" not in body


def test_metadata_is_the_published_file_byte_for_byte(client, published):
    response = client.get(f"/metadata/{OLD}")
    assert response.status_code == 200
    assert response.data == (published[OLD] / storage.METADATA).read_bytes()


def test_dates_lists_newest_first(client):
    assert _get_json(client, "/dates") == {"dates": [NEW, OLD], "latest": NEW}


@pytest.mark.parametrize("path", ["/scores/alerts/{}", "/rankings/alerts/{}",
                                  "/scores/clusters/{}", "/metadata/{}"])
def test_latest_is_the_newest_date_with_a_revalidating_cache_policy(client, path):
    latest = client.get(path.format("latest"))
    concrete = client.get(path.format(NEW))
    assert latest.data == concrete.data and latest.headers["ETag"] == concrete.headers["ETag"]
    assert latest.headers["Cache-Control"] == "public, no-cache"
    assert "immutable" in concrete.headers["Cache-Control"]


def test_health_reports_the_newest_date_and_the_version(client):
    assert _get_json(client, "/health") == {"status": "ok", "output_dir_readable": True,
                                            "latest": NEW, "network": "bitcoin",
                                            "version": metadata.version("aml-miner")}


def test_health_is_503_when_the_output_folder_is_missing(settings):
    client = create_app(settings.replace(OUTPUT_DIR=settings.OUTPUT_DIR / "absent")).test_client()
    response = client.get("/health")
    assert response.status_code == 503
    assert json.loads(response.data)["output_dir_readable"] is False


def test_with_no_published_date_dates_is_empty_and_latest_is_404(settings):
    settings.OUTPUT_DIR.mkdir(parents=True)
    client = create_app(settings).test_client()
    assert _get_json(client, "/dates") == {"dates": [], "latest": None}
    response = client.get("/scores/alerts/latest")
    assert response.status_code == 404 and json.loads(response.data)["code"] == 404


@pytest.mark.parametrize("offset,limit", [(0, 5), (5, 10), (35, 10), (39, 1), (40, 3), (500, 2),
                                          (0, 0), (3, None), (0, 40), (0, 100000)])
@pytest.mark.parametrize("path,key", [("/scores/alerts", "scores"),
                                      ("/rankings/alerts", "rankings")])
def test_a_page_is_the_full_body_with_its_list_sliced(client, path, key, offset, limit):
    full = _get_json(client, f"{path}/{NEW}")
    query = f"offset={offset}" + ("" if limit is None else f"&limit={limit}")
    paged = _get_json(client, f"{path}/{NEW}?{query}")
    stop = None if limit is None else offset + limit
    assert paged == {**full, key: full[key][offset:stop]}


def test_cluster_pages_and_limit_alone(client):
    full = _get_json(client, f"/scores/clusters/{OLD}")
    assert _get_json(client, f"/scores/clusters/{OLD}?limit=2")["scores"] == full["scores"][:2]
    assert _get_json(client, f"/scores/clusters/{OLD}?offset=6")["scores"] == full["scores"][6:]


@pytest.mark.parametrize("url", [f"/scores/alerts/{NEW}", f"/rankings/alerts/{NEW}",
                                 f"/scores/clusters/{NEW}", f"/metadata/{NEW}", "/dates"])
def test_the_deployments_own_network_is_accepted_in_any_case(client, url):
    assert client.get(url + "?network=bitcoin").status_code == 200
    assert client.get(url + "?network=Bitcoin").status_code == 200


def test_two_apps_render_identical_bytes_and_etags(settings, published):
    first, second = create_app(settings).test_client(), create_app(settings).test_client()
    for url in (f"/scores/alerts/{NEW}", f"/rankings/alerts/{NEW}", f"/scores/clusters/{OLD}"):
        a, b = first.get(url), second.get(url)
        assert a.data == b.data and a.headers["ETag"] == b.headers["ETag"]


def test_a_republished_date_is_served_from_its_new_folder(settings, published):
    client = create_app(settings).test_client()
    before = client.get(f"/scores/alerts/{NEW}")
    publish_date(settings.OUTPUT_DIR, NEW, alerts=3, seed=9, tag="2.0.0")
    after = client.get(f"/scores/alerts/{NEW}")
    assert json.loads(after.data)["total_alerts"] == 3
    assert json.loads(after.data)["model_version"] == "alert_scorer_v2.0.0"
    assert after.headers["ETag"] != before.headers["ETag"]


def test_openapi_document_is_served(client):
    assert _get_json(client, "/openapi.json") == json.loads(json.dumps(openapi.SPEC))


def test_openapi_paths_and_methods_match_the_routes(settings):
    app = create_app(settings)
    routed = {}
    for rule in app.url_map.iter_rules():
        path = rule.rule.replace("<anytext:date>", "{date}")
        routed[path] = sorted(m.lower() for m in rule.methods - {"HEAD", "OPTIONS"})
    documented = {path: sorted(item) for path, item in openapi.SPEC["paths"].items()}
    assert routed == documented
    for path, item in openapi.SPEC["paths"].items():
        names = {p["name"] for p in item["get"].get("parameters", []) if p["in"] == "path"}
        assert names == set(p.strip("{}") for p in path.split("/") if p.startswith("{"))
