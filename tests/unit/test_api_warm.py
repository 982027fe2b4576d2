"""Warming: the newest date is rendered before anyone asks, once per version folder."""

import json
import time

from services.api.app import create_app
from services.api.cache import LIST_KINDS
from services.api.warm import start_warmer, warm_latest
from shared import storage
from tests.api_fixtures import publish_date


def _rendered(results, date):
    entry = results.cache.peek(results.folder.version(date))
    return entry is not None and all(entry.rendered(k.name) for k in LIST_KINDS) \
        and entry.rendered("metadata") is not None


def test_warm_latest_renders_every_response_of_the_newest_date_once(settings):
    publish_date(settings.OUTPUT_DIR, "2025-10-25")
    publish_date(settings.OUTPUT_DIR, "2025-10-26")
    results = create_app(settings).extensions["aml_results"]
    done = warm_latest(results, None)
    assert done == results.folder.version("2025-10-26").name
    assert _rendered(results, "2025-10-26") and not _rendered(results, "2025-10-25")
    assert warm_latest(results, done) == done


def test_warm_latest_with_nothing_published_does_nothing(settings):
    results = create_app(settings).extensions["aml_results"]
    assert warm_latest(results, None) is None


def test_a_broken_newest_date_is_not_retried_forever(settings, caplog):
    version = publish_date(settings.OUTPUT_DIR, "2025-10-26")
    (version / storage.METADATA).write_text("[]")
    results = create_app(settings).extensions["aml_results"]
    assert warm_latest(results, None) == version.name
    assert "cannot warm 2025-10-26" in caplog.text


def test_the_warmer_thread_picks_up_a_newly_published_date(settings):
    settings.OUTPUT_DIR.mkdir(parents=True)
    app = create_app(settings)
    results = app.extensions["aml_results"]
    start_warmer(app, interval_s=0.05)
    publish_date(settings.OUTPUT_DIR, "2025-10-27")
    deadline = time.monotonic() + 20
    while not _rendered(results, "2025-10-27"):
        assert time.monotonic() < deadline, "the warmer did not render the new date"
        time.sleep(0.05)
    body = json.loads(results.rendered("2025-10-27", "alert-scores").data)
    assert body["processing_date"] == "2025-10-27"
