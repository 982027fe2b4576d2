"""The WSGI shortcut answers exactly as Flask does, and leaves everything else to Flask."""

import pytest
from werkzeug.test import EnvironBuilder

from services.api.app import create_app
from services.api.shortcut import Shortcut
from tests.api_fixtures import publish_date

DATE = "2025-10-26"
OLDER = "2025-10-25"
ENDPOINTS = ["/scores/alerts/{}", "/rankings/alerts/{}", "/scores/clusters/{}", "/metadata/{}"]


class FileWrapper:
    """A stand-in for gunicorn's wsgi.file_wrapper, to see that files go out through it."""

    def __init__(self, handle, block_size=8192):
        self.handle = handle

    def __iter__(self):
        with self.handle:
            yield self.handle.read()


class Apps:
    """One app with the shortcut and one without, on the same OUTPUT_DIR; counts Flask's calls."""

    def __init__(self, settings):
        self.fast = create_app(settings)
        self.slow = create_app(settings, shortcut=False)
        assert isinstance(self.fast.wsgi_app, Shortcut)
        assert not isinstance(self.slow.wsgi_app, Shortcut)
        self.flask_calls = 0
        flask_wsgi = self.fast.wsgi_app.flask_wsgi

        def counting(environ, start_response):
            self.flask_calls += 1
            return flask_wsgi(environ, start_response)

        self.fast.wsgi_app.flask_wsgi = counting

    def both(self, url, method="GET", headers=None):
        """(fast answer, slow answer), each (status line, header list, body, payload type)."""
        return _call(self.fast, url, method, headers), _call(self.slow, url, method, headers)


def _call(app, url, method, headers):
    environ = EnvironBuilder(path=url, method=method, headers=headers or {}).get_environ()
    environ["wsgi.file_wrapper"] = FileWrapper
    seen = {}

    def start_response(status, header_list, exc_info=None):
        seen["status"], seen["headers"] = status, list(header_list)

    payload = app(environ, start_response)
    try:
        body = b"".join(payload)
    finally:
        if hasattr(payload, "close"):
            payload.close()
    return seen["status"], seen["headers"], body, type(payload)


@pytest.fixture
def apps(settings):
    publish_date(settings.OUTPUT_DIR, OLDER, alerts=40, clusters=4, seed=1)
    publish_date(settings.OUTPUT_DIR, DATE, alerts=200, clusters=20, seed=2)
    return Apps(settings)


def _etag(apps, url, headers=None):
    return dict(_call(apps.slow, url, "GET", headers)[1])["ETag"]


def _same_and_shortcut(apps, url, method="GET", headers=None):
    fast, slow = apps.both(url, method, headers)
    assert fast[:3] == slow[:3]
    assert apps.flask_calls == 0, "the shortcut handed a request it should answer to Flask"
    return fast


@pytest.mark.parametrize("template", ENDPOINTS)
@pytest.mark.parametrize("date", [DATE, "latest", OLDER])
@pytest.mark.parametrize("encoding", [None, "gzip", "gzip;q=0", "br, gzip;q=0.5", "*", "identity"])
def test_get_equals_flask(apps, template, date, encoding):
    headers = {"Accept-Encoding": encoding} if encoding is not None else {}
    status, headers_out, body, payload_type = _same_and_shortcut(apps, template.format(date),
                                                                 headers=headers)
    assert status == "200 OK" and body
    assert payload_type is FileWrapper  # the server's file wrapper sends it in blocks


@pytest.mark.parametrize("template", ENDPOINTS)
@pytest.mark.parametrize("date", [DATE, "latest"])
@pytest.mark.parametrize("query", ["?network=bitcoin", "?network=Bitcoin"])
def test_the_one_network_named_takes_the_shortcut(apps, template, date, query):
    """Validators always name the network: with one network that is the short way too."""
    status, _, body, _ = _same_and_shortcut(apps, template.format(date) + query)
    assert status == "200 OK" and body == _call(apps.slow, template.format(date), "GET", {})[2]


@pytest.mark.parametrize("template", ENDPOINTS)
@pytest.mark.parametrize("date", [DATE, "latest"])
@pytest.mark.parametrize("encoding", [None, "gzip"])
def test_if_none_match_equals_flask(apps, template, date, encoding):
    url = template.format(date)
    headers = {"Accept-Encoding": encoding} if encoding else {}
    etag = _etag(apps, url, headers)
    for if_none_match in (etag, f'"other", W/{etag}', "*"):
        status, _, body, _ = _same_and_shortcut(apps, url, headers={**headers,
                                                                    "If-None-Match": if_none_match})
        assert status.startswith("304") and body == b""
    status, _, body, _ = _same_and_shortcut(apps, url, headers={**headers, "If-None-Match": '"no"'})
    assert status == "200 OK" and body


@pytest.mark.parametrize("template", ENDPOINTS)
@pytest.mark.parametrize("date", [DATE, "latest"])
@pytest.mark.parametrize("encoding", [None, "gzip"])
def test_head_equals_flask(apps, template, date, encoding):
    headers = {"Accept-Encoding": encoding} if encoding else {}
    status, headers_out, body, _ = _same_and_shortcut(apps, template.format(date), "HEAD", headers)
    assert status == "200 OK" and body == b"" and int(dict(headers_out)["Content-Length"]) > 0
    etag = _etag(apps, template.format(date), headers)
    status, _, _, _ = _same_and_shortcut(apps, template.format(date), "HEAD",
                                         {**headers, "If-None-Match": etag})
    assert status.startswith("304")


@pytest.mark.parametrize("template", ENDPOINTS)
def test_a_republished_date_is_seen_and_equals_flask(apps, settings, template):
    for date in (DATE, "latest"):
        for encoding in (None, "gzip"):
            headers = {"Accept-Encoding": encoding} if encoding else {}
            _same_and_shortcut(apps, template.format(date), headers=headers)
    before = {d: _same_and_shortcut(apps, template.format(d)) for d in (DATE, "latest")}
    publish_date(settings.OUTPUT_DIR, DATE, alerts=70, clusters=7, seed=3, tag="2.0.0")
    for date in (DATE, "latest"):
        for encoding in (None, "gzip"):
            headers = {"Accept-Encoding": encoding} if encoding else {}
            after = _same_and_shortcut(apps, template.format(date), headers=headers)
            if encoding is None:
                assert after[2] != before[date][2]
                assert dict(after[1])["ETag"] != dict(before[date][1])["ETag"]
    # A newer date becomes `latest` for the shortcut as for Flask.
    publish_date(settings.OUTPUT_DIR, "2025-10-27", alerts=30, clusters=3, seed=4)
    fast = _same_and_shortcut(apps, template.format("latest"))
    newest = _call(apps.slow, template.format("2025-10-27"), "GET", None)
    assert fast[2] == newest[2] and dict(fast[1])["ETag"] == dict(newest[1])["ETag"]


FALL_THROUGH = [
    f"/scores/alerts/{DATE}?offset=3&limit=5",  # a page
    f"/scores/alerts/{DATE}?limit=5",
    f"/scores/alerts/{DATE}?network=bitcoin&limit=5",
    f"/metadata/{DATE}?network=ethereum",
    "/scores/alerts/2025-10-01",  # not published: 404
    "/rankings/alerts/2025-02-30",  # not a calendar date: 400
    "/scores/clusters/2025-1-26",
    f"/scores/alerts/{DATE}/",
    f"/metadata//{DATE}",
    "/scores/clusters/Latest",
    f"/scores/things/{DATE}",
    f"/alerts/scores/{DATE}",
    "/dates",
    "/health",
    "/openapi.json",
    "/nowhere",
]


@pytest.mark.parametrize("url", FALL_THROUGH)
def test_requests_it_must_not_handle_reach_flask(apps, url):
    fast, slow = apps.both(url)
    assert apps.flask_calls == 1
    assert fast[:3] == slow[:3]


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS"])
def test_other_methods_reach_flask(apps, method):
    fast, slow = apps.both(f"/scores/alerts/{DATE}", method)
    assert apps.flask_calls == 1
    assert fast[:3] == slow[:3] and fast[0].startswith("200" if method == "OPTIONS" else "405")


def test_an_incomplete_version_folder_reaches_flask(settings):
    publish_date(settings.OUTPUT_DIR, DATE, render=False)
    apps = Apps(settings)
    for template in ENDPOINTS:
        for date in (DATE, "latest"):
            fast, slow = apps.both(template.format(date))
            assert fast[:3] == slow[:3] and fast[0].startswith("404")
    assert apps.flask_calls == 2 * len(ENDPOINTS)


def test_a_file_gone_after_the_lookup_reaches_flask(apps, monkeypatch):
    from services.api import store

    real, calls = store.open_file, []

    def gone_once(path):
        calls.append(path)
        if len(calls) == 1:  # the shortcut's open: the folder went after the lookup
            raise store.VersionGone(str(path))
        return real(path)

    monkeypatch.setattr(store, "open_file", gone_once)
    fast, slow = apps.both(f"/scores/alerts/{DATE}")
    assert apps.flask_calls == 1 and fast[:3] == slow[:3] and fast[0] == "200 OK"
    assert len(calls) == 3  # the shortcut's, then Flask's for each app


def test_an_error_in_the_shortcut_reaches_flask(apps, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("broken")

    monkeypatch.setattr(apps.fast.wsgi_app.by_query[""].folder, "version", broken)
    fast = _call(apps.fast, f"/metadata/{DATE}", "GET", None)
    assert apps.flask_calls == 1 and fast[0].startswith("500")
