"""Model sets: the current one, pins, the learn record, what a published date recorded."""

import json
import logging
import threading
from pathlib import Path

import pytest

from services.processor.models import load_models, version_key
from shared import modelsets

NET, DAYS = "bitcoin", 7
REPO = Path(__file__).resolve().parents[2]


def learned_set(settings, version: str) -> Path:
    """A learned set folder holding copies of the shipped models under a learned version."""
    folder = modelsets.root(settings, NET, DAYS) / version
    folder.mkdir(parents=True)
    for model in Path(settings.MODELS_DIR).glob("*_v1.0.0.txt"):
        name = model.name.replace("_v1.0.0.txt", "")
        text = model.read_text()
        (folder / f"{name}_v{version}.txt").write_text(text)
        sidecar = json.loads(model.with_suffix(".json").read_text())
        sidecar.update(version=version, model_file=f"{name}_v{version}.txt")
        (folder / f"{name}_v{version}.json").write_text(json.dumps(sidecar))
    return folder


def test_without_a_learned_set_the_shipped_one_is_current(settings):
    chosen = modelsets.current(settings, NET, DAYS)
    assert (chosen.version, chosen.source, chosen.folder) == ("shipped", "shipped",
                                                              Path(settings.MODELS_DIR))


def test_make_current_points_processing_at_a_learned_set(settings):
    folder = learned_set(settings, "20251026T000000Z")
    modelsets.make_current(settings, NET, DAYS, "20251026T000000Z", by="test")
    chosen = modelsets.current(settings, NET, DAYS)
    assert (chosen.version, chosen.source, chosen.folder) == ("20251026T000000Z", "learned",
                                                              folder)
    assert load_models(chosen.folder).versions()["alert_scorer"] == \
        "alert_scorer_v20251026T000000Z"


def test_sets_belong_to_their_network_and_window(settings):
    learned_set(settings, "20251026T000000Z")
    modelsets.make_current(settings, NET, DAYS, "20251026T000000Z", by="test")
    assert modelsets.current(settings, "torus", DAYS).version == "shipped"
    assert modelsets.current(settings, NET, 30).version == "shipped"


def test_an_unknown_version_is_refused_naming_the_known_ones(settings):
    learned_set(settings, "20251026T000000Z")
    with pytest.raises(modelsets.ModelSetError) as err:
        modelsets.make_current(settings, NET, DAYS, "20990101T000000Z", by="test")
    assert "20990101T000000Z" in str(err.value) and "shipped, 20251026T000000Z" in str(err.value)
    with pytest.raises(modelsets.ModelSetError):
        modelsets.find(settings, NET, DAYS, "../../etc")


def test_a_current_set_that_vanished_falls_back_to_shipped_with_a_warning(settings, caplog):
    folder = learned_set(settings, "20251026T000000Z")
    modelsets.make_current(settings, NET, DAYS, "20251026T000000Z", by="test")
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()
    with caplog.at_level(logging.WARNING):
        assert modelsets.current(settings, NET, DAYS).version == "shipped"
    assert "20251026T000000Z" in caplog.text


def test_an_unreadable_current_json_is_an_error_naming_the_file(settings):
    path = modelsets.root(settings, NET, DAYS) / modelsets.CURRENT_FILE
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(modelsets.ModelSetError, match="current.json"):
        modelsets.current(settings, NET, DAYS)


def test_pin_and_unpin(settings):
    learned_set(settings, "20251026T000000Z")
    modelsets.make_current(settings, NET, DAYS, "shipped", by="operator", pinned=True)
    assert modelsets.current(settings, NET, DAYS).pinned
    unpinned = modelsets.unpin(settings, NET, DAYS)
    assert unpinned.version == "shipped" and not modelsets.current(settings, NET, DAYS).pinned


def test_learn_due_counts_processing_dates(settings):
    assert modelsets.needs_first_learn(settings, NET, DAYS)
    assert modelsets.learn_due(settings, NET, DAYS, "2025-10-26")
    modelsets.record_learn(settings, NET, DAYS, {"processing_date": "2025-10-26",
                                                  "decision": "kept"})
    assert not modelsets.needs_first_learn(settings, NET, DAYS)
    assert not modelsets.learn_due(settings, NET, DAYS, "2025-10-26")
    assert modelsets.learn_due(settings, NET, DAYS, "2025-10-27")
    weekly = settings.replace(LEARN_EVERY_DAYS=7)
    assert not modelsets.learn_due(weekly, NET, DAYS, "2025-11-01")
    assert modelsets.learn_due(weekly, NET, DAYS, "2025-11-02")
    off = settings.replace(LEARN_ENABLED=False)
    assert not modelsets.learn_due(off, NET, DAYS, "2025-12-01")
    assert not modelsets.needs_first_learn(off, "torus", DAYS)


def test_recorded_finds_the_set_a_date_was_scored_with(settings):
    folder = learned_set(settings, "20251026T000000Z")
    learned = {"network": NET, "window_days": DAYS,
               "model_set": {"source": "learned", "version": "20251026T000000Z"}}
    assert modelsets.recorded(settings, learned).folder == folder
    override = {"model_set": {"source": "override", "folder": "/somewhere/models"}}
    assert modelsets.recorded(settings, override).folder == Path("/somewhere/models")
    assert modelsets.recorded(settings, {}).folder == Path(settings.MODELS_DIR)


def test_learned_versions_sort_after_shipped_ones_and_by_time():
    versions = ["20251027T000000Z", "1.10.0", "20251026T235959Z", "1.9.0"]
    assert sorted(versions, key=version_key) == ["1.9.0", "1.10.0", "20251026T235959Z",
                                                "20251027T000000Z"]
    assert modelsets.is_learned_version(modelsets.new_version())
    assert not modelsets.is_learned_version("1.0.0")


def test_a_reader_always_loads_one_complete_set_while_current_flips(settings):
    learned_set(settings, "20251026T000000Z")
    learned_set(settings, "20251027T000000Z")
    stop, seen, errors = threading.Event(), set(), []

    def flip():
        versions = ("20251026T000000Z", "20251027T000000Z", "shipped")
        n = 0
        while not stop.is_set():
            modelsets.make_current(settings, NET, DAYS, versions[n % 3], by="test")
            n += 1

    flipper = threading.Thread(target=flip)
    flipper.start()
    try:
        for _ in range(15):
            chosen = modelsets.current(settings, NET, DAYS)
            try:
                tags = set(load_models(chosen.folder).versions().values())
            except Exception as exc:  # any half-seen state is a failure
                errors.append(exc)
                continue
            assert len({t.rsplit("_v", 1)[1] for t in tags}) == 1  # one set, never a mix
            seen.add(chosen.version)
    finally:
        stop.set()
        flipper.join()
    assert not errors and len(seen) >= 2
