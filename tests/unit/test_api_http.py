"""HTTP behaviour: ETag and 304, precompressed gzip, Cache-Control, Vary, HEAD."""

import gzip
import json

import pytest

from services.api.app import create_app
from tests.api_fixtures import publish_date

DATE = "2025-10-26"
LISTS = [f"/scores/alerts/{DATE}", f"/rankings/alerts/{DATE}", f"/scores/clusters/{DATE}"]


@pytest.fixture
def client(settings):
    publish_date(settings.OUTPUT_DIR, DATE, alerts=200, clusters=20)
    return create_app(settings).test_client()


@pytest.mark.parametrize("url", [*LISTS, f"/metadata/{DATE}"])
def test_gzip_is_the_same_body_compressed(client, url):
    plain = client.get(url)
    packed = client.get(url, headers={"Accept-Encoding": "gzip, deflate, br"})
    assert "Content-Encoding" not in plain.headers
    assert packed.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(packed.data) == plain.data
    assert int(packed.headers["Content-Length"]) == len(packed.data) < len(plain.data)
    assert packed.headers["ETag"] != plain.headers["ETag"]  # a strong ETag per representation
    assert packed.headers["Vary"] == plain.headers["Vary"] == "Accept-Encoding"


@pytest.mark.parametrize("header,gzipped", [("gzip;q=0", False), ("identity", False),
                                            ("*", True), ("br, gzip;q=0.5", True)])
def test_accept_encoding_qualities_are_honoured(client, header, gzipped):
    response = client.get(LISTS[0], headers={"Accept-Encoding": header})
    assert (response.headers.get("Content-Encoding") == "gzip") is gzipped


@pytest.mark.parametrize("url", [*LISTS, f"/metadata/{DATE}", "/scores/alerts/latest", "/dates",
                                 "/openapi.json", f"{LISTS[0]}?offset=3&limit=4"])
@pytest.mark.parametrize("encoding", ["", "gzip"])
def test_if_none_match_with_the_etag_answers_304_without_a_body(client, url, encoding):
    headers = {"Accept-Encoding": encoding} if encoding else {}
    first = client.get(url, headers=headers)
    etag = first.headers["ETag"]
    again = client.get(url, headers={**headers, "If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    assert again.headers["ETag"] == etag
    assert again.headers["Cache-Control"] == first.headers["Cache-Control"]
    assert again.headers["Vary"] == "Accept-Encoding"
    weak = client.get(url, headers={**headers, "If-None-Match": f'"other", W/{etag}'})
    assert weak.status_code == 304


def test_a_non_matching_etag_gets_the_body(client):
    response = client.get(LISTS[0], headers={"If-None-Match": '"not-it"'})
    assert response.status_code == 200 and response.data


def test_star_matches_any_current_representation(client):
    assert client.get(LISTS[0], headers={"If-None-Match": "*"}).status_code == 304


def test_pages_have_their_own_etags_and_are_not_compressed(client):
    a = client.get(f"{LISTS[0]}?offset=0&limit=10", headers={"Accept-Encoding": "gzip"})
    b = client.get(f"{LISTS[0]}?offset=10&limit=10", headers={"Accept-Encoding": "gzip"})
    full = client.get(LISTS[0])
    assert "Content-Encoding" not in a.headers
    assert len({a.headers["ETag"], b.headers["ETag"], full.headers["ETag"]}) == 3
    assert a.headers["Cache-Control"] == full.headers["Cache-Control"]


def test_a_full_page_is_the_cached_full_response(client):
    explicit = client.get(f"{LISTS[0]}?offset=0", headers={"Accept-Encoding": "gzip"})
    plain = client.get(LISTS[0], headers={"Accept-Encoding": "gzip"})
    assert explicit.data == plain.data and explicit.headers["ETag"] == plain.headers["ETag"]


def test_cache_control_is_immutable_for_dates_and_revalidating_for_moving_targets(client):
    assert client.get(LISTS[0]).headers["Cache-Control"] == "public, max-age=86400, immutable"
    for url in ("/scores/alerts/latest", "/dates", "/openapi.json"):
        assert client.get(url).headers["Cache-Control"] == "public, no-cache"
    assert client.get("/health").headers["Cache-Control"] == "no-store"
    assert client.get("/scores/alerts/2020-01-01").headers["Cache-Control"] == "no-store"


def test_dates_etag_changes_when_a_date_is_published(client, settings):
    before = client.get("/dates").headers["ETag"]
    publish_date(settings.OUTPUT_DIR, "2025-10-27")
    after = client.get("/dates", headers={"If-None-Match": before})
    assert after.status_code == 200
    assert json.loads(after.data)["latest"] == "2025-10-27"


def test_head_sends_headers_only(client):
    get, head = client.get(LISTS[0]), client.head(LISTS[0])
    assert head.status_code == 200 and head.data == b""
    assert head.headers["ETag"] == get.headers["ETag"]
    assert head.headers["Content-Length"] == get.headers["Content-Length"]
