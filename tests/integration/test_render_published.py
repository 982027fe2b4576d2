"""Dates published before the processor rendered response bodies: rendered once, then served."""

import json
import os

from services.api.app import create_app
from shared import bodies, storage
from tests.api_fixtures import publish_date
from tests.chain_fixtures import CHAIN, cli, process_env

OLD, NEW = "2025-10-25", "2025-10-26"


def test_render_publishes_a_legacy_date_again_with_its_bodies(settings):
    legacy = publish_date(settings.OUTPUT_DIR, OLD, alerts=25, render=False)
    current = publish_date(settings.OUTPUT_DIR, NEW, alerts=5)
    client = create_app(settings).test_client()
    assert client.get(f"/scores/alerts/{OLD}").status_code == 404  # not served without bodies
    done = cli("render", "--output-dir", str(settings.OUTPUT_DIR), env=process_env(settings))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {OLD: "rendered"}  # the rendered date is left alone
    again = storage.resolve(settings.OUTPUT_DIR / OLD)
    assert again != legacy and bodies.is_rendered(again) and not bodies.is_rendered(legacy)
    assert storage.resolve(settings.OUTPUT_DIR / NEW) == current
    for name in storage.OUTPUT_FILES:  # the published files are the same files, linked
        assert os.stat(again / name).st_ino == os.stat(legacy / name).st_ino
    response = client.get(f"/scores/alerts/{OLD}")
    assert response.status_code == 200 and len(json.loads(response.data)["scores"]) == 25
    assert json.loads(cli("render", "--output-dir", str(settings.OUTPUT_DIR),
                          env=process_env(settings)).stdout.splitlines()[-1]) == {}


def test_render_reports_a_date_it_cannot_render_and_renders_the_others(settings):
    broken = publish_date(settings.OUTPUT_DIR, OLD, render=False)
    os.chmod(broken / storage.METADATA, 0o644)
    (broken / storage.METADATA).write_text("{not json")
    publish_date(settings.OUTPUT_DIR, NEW, render=False)
    done = cli("render", "--output-dir", str(settings.OUTPUT_DIR), env=process_env(settings))
    assert done.returncode == 1
    outcomes = json.loads(done.stdout.splitlines()[-1])
    assert outcomes[NEW] == "rendered"
    assert outcomes[OLD].startswith(f"failed: {OLD}/metadata.json is not valid JSON")
    assert storage.resolve(settings.OUTPUT_DIR / OLD) == broken  # left as it was


def test_the_process_worker_renders_legacy_dates_before_taking_a_job(settings, compiled_cache):
    publish_date(settings.OUTPUT_DIR, OLD, render=False)
    done = cli("worker", "process", "--burst", env=process_env(settings.replace(**CHAIN)),
               timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.index("rendered the response bodies") < done.stdout.index("listening on")
    assert bodies.is_rendered(storage.resolve(settings.OUTPUT_DIR / OLD))
