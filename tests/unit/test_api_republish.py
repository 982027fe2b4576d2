"""A date re-published while requests run: every response comes whole from one version."""

import json
import threading
import time

from services.api.app import create_app
from tests.api_fixtures import publish_date

DATE = "2025-10-26"
VERSIONS = 25


def _publish(root, k):
    """Version k: 10+k alerts, every score k/1000, model tag 1.0.k."""
    publish_date(root, DATE, alerts=10 + k, clusters=1 + k % 4, marker=k / 1000, tag=f"1.0.{k}")


def _tag(version: str) -> int:
    return int(version.rsplit(".", 1)[1])


def _check_list(body: dict, key: str, total_key: str) -> int:
    """The version number of a list response, after checking it is all that version."""
    k = _tag(body["model_version"])
    rows = body[key]
    assert all(r["score"] == k / 1000 for r in rows), body["model_version"]
    assert body["metadata"]["model_versions"]["alert_scorer"].endswith(f".{k}")
    if total_key == "total_alerts":
        assert body["metadata"]["alert_count"] == body[total_key] == 10 + k
    return k


def _check(url: str, body: dict) -> int:
    if url.startswith("/metadata"):
        k = _tag(body["model_versions"]["alert_scorer"])
        assert body["alert_count"] == 10 + k and body["cluster_count"] == 1 + k % 4
        return k
    if "rankings" in url:
        k = _check_list(body, "rankings", "total_alerts")
        assert [r["rank"] for r in body["rankings"]] == list(range(1, 11 + k))
        return k
    if "clusters" in url:
        k = _check_list(body, "scores", "total_clusters")
        assert body["total_clusters"] == len(body["scores"]) == 1 + k % 4
        return k
    k = _check_list(body, "scores", "total_alerts")
    if "limit" not in url:
        assert len(body["scores"]) == 10 + k
    return k


URLS = [f"/scores/alerts/{DATE}", f"/rankings/alerts/latest", f"/scores/clusters/{DATE}",
        f"/metadata/{DATE}", f"/scores/alerts/latest?offset=3&limit=5"]


def test_no_response_mixes_versions_while_a_date_is_republished(settings):
    _publish(settings.OUTPUT_DIR, 0)
    app = create_app(settings)
    done, seen, failures = threading.Event(), set(), []

    def reader(offset):
        client = app.test_client()
        i = offset
        while not done.is_set() or i < offset + len(URLS):
            url = URLS[i % len(URLS)]
            i += 1
            response = client.get(url)
            try:
                assert response.status_code == 200, response.data
                seen.add(_check(url, json.loads(response.data)))
            except AssertionError as exc:
                failures.append(f"{url}: {exc}")

    threads = [threading.Thread(target=reader, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for k in range(1, VERSIONS + 1):
        _publish(settings.OUTPUT_DIR, k)
        deadline = time.monotonic() + 10
        while k not in seen and time.monotonic() < deadline:  # let the readers catch up
            time.sleep(0.002)
    done.set()
    for t in threads:
        t.join(timeout=60)
    assert failures == []
    assert len(seen) >= VERSIONS // 2  # the readers really did see the date change under them
    final = json.loads(app.test_client().get(URLS[0]).data)
    assert _check(URLS[0], final) == VERSIONS


def test_a_version_removed_under_a_reader_is_retried_on_the_current_one(settings):
    _publish(settings.OUTPUT_DIR, 1)
    app = create_app(settings)
    folder = app.extensions["aml_networks"][settings.default_network].folder
    stale = folder.version(DATE)
    _publish(settings.OUTPUT_DIR, 2)
    _publish(settings.OUTPUT_DIR, 3)  # publish keeps one previous version: 1 is gone now
    assert not stale.exists()
    real = folder.version
    looks = iter([stale])
    folder.version = lambda date: next(looks, None) or real(date)
    response = app.test_client().get(f"/scores/alerts/{DATE}")
    assert response.status_code == 200
    assert json.loads(response.data)["model_version"] == "alert_scorer_v1.0.3"
    assert next(looks, None) is None  # the stale folder was tried first
