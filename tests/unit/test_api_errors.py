"""Bad input and broken folders: JSON errors with the right code, nothing read outside OUTPUT_DIR."""

import json
import os
import re
import shutil
import sys
import threading

import pyarrow.parquet as pq
import pytest

from services.api import store
from services.api.app import create_app
from services.api.params import MAX_LIMIT
from shared import bodies, storage
from tests.api_fixtures import publish_date, publish_incomplete

DATE = "2025-10-26"
ENDPOINTS = ["/scores/alerts", "/rankings/alerts", "/scores/clusters", "/metadata"]


class FileAccess:
    """Records paths this thread opens or lists (sys audit hooks cannot be removed, so gate them)."""

    def __init__(self):
        self.paths, self.active = [], threading.local()
        sys.addaudithook(self._hook)

    def _hook(self, event, args):
        if getattr(self.active, "on", False) and event in ("open", "os.listdir", "os.scandir"):
            if args and isinstance(args[0], (str, bytes, os.PathLike)):
                self.paths.append(os.fsdecode(args[0]))

    def __enter__(self):
        self.paths.clear()
        self.active.on = True
        return self

    def __exit__(self, *exc):
        self.active.on = False


ACCESS = FileAccess()


@pytest.fixture
def client(settings):
    publish_date(settings.OUTPUT_DIR, DATE, alerts=20)
    client = create_app(settings).test_client()
    client.get(f"/scores/alerts/{DATE}")  # lazy imports happen now, not while recording
    return client


def _error(response, code):
    assert response.status_code == code, response.data
    assert response.mimetype == "application/json"
    body = json.loads(response.data)
    assert set(body) == {"code", "name", "description"} and body["code"] == code
    assert "Traceback" not in body["description"]
    return body


BAD_DATES = ["..%2F..%2Fetc", "..%2F..%2F..%2Fetc%2Fpasswd", "../../etc/passwd", "/etc/passwd",
             "%2Fetc%2Fpasswd", "2025-13-45", "2025-02-30", "2025-1-1", "20251026", "LATEST",
             "2025-10-26%00", "2025-10-26/", "2025-10-26%2F..%2F2025-10-25", ".versions",
             "%E2%80%8B2025-10-26", "2025-10-26 ", "%20latest", "x" * 300, "2025-10-26%0A",
             "%D9%A2%D9%A0%D9%A2%D9%A5-%D9%A1%D9%A0-%D9%A2%D9%A6"]  # Arabic-Indic digits


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("raw", BAD_DATES)
def test_a_bad_date_is_400_and_touches_no_file_outside_output(client, settings, path, raw):
    with ACCESS:
        body = _error(client.get(f"{path}/{raw}"), 400)
    assert "YYYY-MM-DD" in body["description"]
    root = str(settings.OUTPUT_DIR.resolve())
    outside = [p for p in ACCESS.paths if not os.path.abspath(p).startswith(root)
               and not p.startswith(sys.prefix)]
    assert outside == []


def test_the_file_access_recorder_sees_reads_inside_output(settings, client):
    publish_date(settings.OUTPUT_DIR, "2025-10-25")
    with ACCESS:
        assert client.get("/metadata/2025-10-25").status_code == 200
    assert any(p.endswith("metadata.json") for p in ACCESS.paths)


@pytest.mark.parametrize("query,name", [
    ("limit=abc", "limit"), ("limit=-1", "limit"), ("limit=1.5", "limit"), ("limit=", "limit"),
    ("limit=1e3", "limit"), (f"limit={MAX_LIMIT + 1}", "limit"), ("limit=" + "9" * 40, "limit"),
    ("offset=-5", "offset"), ("offset=x", "offset"), ("offset=3000000000", "offset"),
    ("offset=0x10", "offset"), ("limit=%2B5", "limit"),
])
@pytest.mark.parametrize("path", ENDPOINTS[:3])
def test_bad_limit_or_offset_is_400_naming_the_parameter(client, path, query, name):
    body = _error(client.get(f"{path}/{DATE}?{query}"), 400)
    assert body["description"].startswith(f"{name}=")


@pytest.mark.parametrize("url", [*(f"{p}/{DATE}" for p in ENDPOINTS), "/dates"])
def test_another_network_is_404(client, url):
    body = _error(client.get(f"{url}?network=ethereum"), 404)
    assert "ethereum" in body["description"] and "bitcoin" in body["description"]


@pytest.mark.parametrize("path", ENDPOINTS)
def test_an_unknown_date_is_404(client, path):
    body = _error(client.get(f"{path}/2024-02-29"), 404)
    assert "2024-02-29" in body["description"]


@pytest.mark.parametrize("missing", [*storage.OUTPUT_FILES, *bodies.FILES])
def test_a_date_whose_version_folder_is_incomplete_does_not_exist(settings, missing):
    publish_date(settings.OUTPUT_DIR, "2025-10-25")
    publish_incomplete(settings.OUTPUT_DIR, DATE, missing)
    client = create_app(settings).test_client()
    for path in ENDPOINTS:
        _error(client.get(f"{path}/{DATE}"), 404)
    assert json.loads(client.get("/dates").data) == {"dates": ["2025-10-25"], "latest": "2025-10-25"}
    assert json.loads(client.get("/metadata/latest").data)["processing_date"] == "2025-10-25"


def test_a_required_name_that_is_a_folder_does_not_make_a_date_complete(settings):
    version = publish_incomplete(settings.OUTPUT_DIR, DATE, storage.METADATA)
    (version / storage.METADATA).mkdir()
    client = create_app(settings).test_client()
    _error(client.get(f"/scores/alerts/{DATE}"), 404)
    assert json.loads(client.get("/dates").data)["dates"] == []


def test_a_plain_folder_that_was_never_published_does_not_exist(settings):
    version = publish_date(settings.OUTPUT_DIR, "2025-10-25")
    shutil.copytree(version, settings.OUTPUT_DIR / DATE)  # complete files, but no atomic publish
    client = create_app(settings).test_client()
    _error(client.get(f"/scores/alerts/{DATE}"), 404)


def test_a_date_symlinked_outside_the_output_folder_is_not_served(settings, tmp_path):
    version = publish_date(settings.OUTPUT_DIR, "2025-10-25")
    outside = tmp_path / "elsewhere"
    shutil.copytree(version, outside)
    os.symlink(outside, settings.OUTPUT_DIR / DATE)
    client = create_app(settings).test_client()
    _error(client.get(f"/scores/alerts/{DATE}"), 404)
    assert json.loads(client.get("/dates").data)["dates"] == ["2025-10-25"]


def test_a_staging_folder_is_never_served(settings):
    with storage.staging_dir(settings.OUTPUT_DIR / DATE) as tmp:
        publish_date(settings.OUTPUT_DIR, "2025-10-25")
        client = create_app(settings).test_client()
        _error(client.get(f"/scores/alerts/{DATE}"), 404)
        assert tmp.is_dir()


def _internal(response, caplog) -> str:
    """A 500 that says "internal error" and an id; returns the log line carrying that id."""
    body = _error(response, 500)
    match = re.fullmatch(r"internal error \(id ([0-9a-f]{12})\); the server's log has the "
                         r"details under this id", body["description"])
    assert match, body["description"]
    lines = [r.getMessage() for r in caplog.records if match.group(1) in r.getMessage()]
    assert len(lines) == 1, lines
    return lines[0]


def _malformed_index(settings) -> None:
    version = publish_date(settings.OUTPUT_DIR, DATE)
    _replace(version / bodies.ALERT_SCORES.index, b"\x00" * 20)


def test_a_malformed_row_index_is_500_and_the_log_names_the_file(settings, caplog):
    _malformed_index(settings)
    client = create_app(settings).test_client()
    line = _internal(client.get(f"/scores/alerts/{DATE}?limit=3"), caplog)
    assert f"{DATE}/alert-scores.idx" in line
    assert client.get(f"/scores/alerts/{DATE}").status_code == 200  # the full body needs no index


def test_an_index_that_does_not_match_its_body_is_500(settings, caplog):
    version = publish_date(settings.OUTPUT_DIR, DATE)
    _replace(version / bodies.ALERT_SCORES.body, b"{}")
    line = _internal(create_app(settings).test_client().get(f"/scores/alerts/{DATE}?offset=2"),
                     caplog)
    assert "alert-scores.idx does not match" in line


def test_an_unexpected_error_is_500_without_details(client, monkeypatch, caplog):
    def explode(*args, **kwargs):
        raise RuntimeError("secret detail /srv/internal")

    monkeypatch.setattr(store, "open_file", explode)
    response = client.get(f"/scores/clusters/{DATE}")
    assert "secret" not in response.get_data(True) and "/srv" not in response.get_data(True)
    line = _internal(response, caplog)
    assert "unhandled error" in line
    assert "secret detail" in caplog.text  # the operator still sees it in the log, with the id


def test_two_errors_get_two_ids(settings, caplog):
    _malformed_index(settings)
    client = create_app(settings).test_client()
    first = _error(client.get(f"/scores/alerts/{DATE}?limit=1"), 500)["description"]
    second = _error(client.get(f"/scores/alerts/{DATE}?limit=1"), 500)["description"]
    assert first != second


def test_unknown_paths_and_methods_are_json(client):
    _error(client.get("/nothing-here"), 404)
    _error(client.get("/scores/alerts"), 404)
    body = _error(client.post(f"/scores/alerts/{DATE}"), 405)
    assert body["name"] == "Method Not Allowed"
    assert "GET" in client.delete("/dates").headers["Allow"]


def _replace(path, data: bytes) -> None:
    os.chmod(path, 0o644)
    path.write_bytes(data)


def test_a_file_without_model_version_falls_back_to_metadata(settings):
    def drop(folder):
        path = folder / storage.ALERTS_RANKED
        pq.write_table(pq.read_table(path).drop(["model_version"]), path)

    publish_date(settings.OUTPUT_DIR, DATE, before_render=drop)
    body = json.loads(create_app(settings).test_client().get(f"/rankings/alerts/{DATE}").data)
    assert body["model_version"] == "alert_ranker_v1.0.0"
