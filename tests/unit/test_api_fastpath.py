"""The cache-hit fast path answers exactly as the Flask views do, and only when it may."""

import pytest

from services.api.app import create_app
from tests.api_fixtures import publish_date

DATE = "2025-10-26"
PATHS = [f"/scores/alerts/{DATE}", f"/rankings/alerts/{DATE}", f"/scores/clusters/{DATE}",
         f"/metadata/{DATE}", "/scores/alerts/latest", "/metadata/latest"]
HEADER_SETS = [{}, {"Accept-Encoding": "gzip"}, {"Accept-Encoding": "gzip;q=0"},
               {"Accept-Encoding": "*"}]


@pytest.fixture
def apps(settings):
    publish_date(settings.OUTPUT_DIR, DATE, alerts=50)
    fast, slow = create_app(settings), create_app(settings, fast_path=False)
    entries = fast.extensions["test_flask_entries"] = []
    fast.before_request(lambda: entries.append(1) and None)
    for app in (fast, slow):
        for path in PATHS:
            app.test_client().get(path)  # render, so the fast path has something to serve
    return fast, slow


def _flask_entries(app):
    """The (emptied) record of requests that reach Flask's views."""
    entries = app.extensions["test_flask_entries"]
    entries.clear()
    return entries


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("headers", HEADER_SETS)
@pytest.mark.parametrize("path", PATHS)
def test_fast_and_flask_answers_are_identical(apps, path, headers, method):
    fast, slow = apps
    entered = _flask_entries(fast)
    a = fast.test_client().open(path, method=method, headers=headers)
    b = slow.test_client().open(path, method=method, headers=headers)
    assert entered == []  # the fast path answered
    assert (a.status_code, a.data) == (b.status_code, b.data)
    assert sorted(a.headers.items()) == sorted(b.headers.items())
    etag = a.headers["ETag"]
    a304 = fast.test_client().open(path, method=method, headers={**headers, "If-None-Match": etag})
    b304 = slow.test_client().open(path, method=method, headers={**headers, "If-None-Match": etag})
    assert a304.status_code == b304.status_code == 304
    assert sorted(a304.headers.items()) == sorted(b304.headers.items())


@pytest.mark.parametrize("url", [f"/scores/alerts/{DATE}?limit=3", f"/scores/alerts/{DATE}?network=x",
                                 "/scores/alerts/2025-13-45", "/scores/alerts/2024-01-01",
                                 "/scores/alerts/..%2F..%2Fetc", "/metadata//etc/passwd", "/dates",
                                 "/health", "/openapi.json"])
def test_everything_else_goes_to_flask(apps, url):
    fast, slow = apps
    entered = _flask_entries(fast)
    a, b = fast.test_client().get(url), slow.test_client().get(url)
    assert entered == [1]
    assert (a.status_code, a.data) == (b.status_code, b.data)


def test_posts_go_to_flask_and_get_405(apps):
    fast, _ = apps
    entered = _flask_entries(fast)
    assert fast.test_client().post(f"/metadata/{DATE}").status_code == 405
    assert entered == [1]


def test_a_not_yet_rendered_date_is_rendered_by_flask_then_served_fast(settings, apps):
    fast, _ = apps
    publish_date(settings.OUTPUT_DIR, "2025-10-27", alerts=5)
    entered = _flask_entries(fast)
    client = fast.test_client()
    first, second = client.get("/scores/alerts/latest"), client.get("/scores/alerts/latest")
    assert entered == [1] and first.data == second.data
    assert b'"total_alerts":5' in second.data


def test_a_fast_path_failure_falls_back_to_flask(apps, monkeypatch):
    fast, slow = apps
    results = fast.extensions["aml_results"]
    monkeypatch.setattr(results, "rendered", lambda *a: 1 / 0)
    entered = _flask_entries(fast)
    a, b = fast.test_client().get(PATHS[0]), slow.test_client().get(PATHS[0])
    assert entered == [1] and a.data == b.data
