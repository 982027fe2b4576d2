"""The move of a one-network layout into its network's folder, on real folders and links."""

import json
import multiprocessing
from pathlib import Path

import pytest

from shared import layout, publish_lock, storage
from shared.settings import SettingsError

DATES = ("2025-10-24", "2025-10-25")


def publish_date(root: Path, date: str, name: str, record: dict) -> Path:
    """A date published the way the chain does it: a version folder and a relative link."""
    target = storage.date_dir(root, date)
    with storage.staging_dir(target) as tmp:
        (tmp / name).write_text(json.dumps(record))
        (tmp / "data.bin").write_bytes(date.encode())
    storage.publish(tmp, target)
    return target


def one_network_layout(settings, network: str | None = "bitcoin") -> None:
    """Input and output roots as a one-network stack leaves them (with a lock file too)."""
    for date in DATES:
        record = {"network": network} if network else {}
        publish_date(settings.INPUT_DIR, date, "META.json", record)
        publish_date(settings.OUTPUT_DIR, date, storage.METADATA, record)
    publish_lock.lock_path(settings.OUTPUT_DIR, DATES[0]).parent.mkdir(exist_ok=True)


def several(settings, *networks):
    return settings.replace(NETWORKS=networks, NETWORK=networks[0])


def test_the_old_layout_moves_into_the_network_it_records(settings, caplog):
    one_network_layout(settings, "torus")
    caplog.set_level("INFO", logger="shared.layout")
    moved = layout.migrate(several(settings, "bitcoin", "torus"))
    assert moved == {str(settings.INPUT_DIR): 4, str(settings.OUTPUT_DIR): 5}
    for root in (settings.INPUT_DIR, settings.OUTPUT_DIR):
        assert layout.old_entries(root) == []
        assert storage.published_dates(root / "torus") == list(reversed(DATES))
        assert not (root / "bitcoin").exists()
        assert not list(root.glob(".migrating-*"))
    # the relative links resolve in their new folder, to the same bytes
    assert (settings.OUTPUT_DIR / "torus" / DATES[0] / "data.bin").read_bytes() == b"2025-10-24"
    assert (settings.OUTPUT_DIR / "torus" / ".locks").is_dir()
    assert "moved 5 one-network entries" in caplog.text


def test_unrecorded_data_goes_to_the_first_network(settings):
    one_network_layout(settings, network=None)
    layout.migrate(several(settings, "ethereum", "bitcoin"))
    assert storage.published_dates(settings.INPUT_DIR / "ethereum") == list(reversed(DATES))


def test_a_second_start_moves_nothing_and_leaves_new_dates_alone(settings):
    one_network_layout(settings)
    s = several(settings, "bitcoin", "torus")
    layout.migrate(s)
    publish_date(settings.OUTPUT_DIR / "torus", DATES[0], storage.METADATA, {"network": "torus"})
    before = sorted(p.name for p in settings.OUTPUT_DIR.iterdir())
    assert layout.migrate(s) == {}
    assert sorted(p.name for p in settings.OUTPUT_DIR.iterdir()) == before


def test_a_network_nobody_configured_is_refused_by_name(settings):
    one_network_layout(settings, "ethereum")
    with pytest.raises(SettingsError) as refused:
        layout.migrate(several(settings, "bitcoin", "torus"))
    assert "'ethereum'" in str(refused.value) and "NETWORKS=bitcoin,torus" in str(refused.value)
    assert len(layout.old_entries(settings.INPUT_DIR)) == 4  # nothing moved


def test_old_dates_beside_the_network_folder_are_refused(settings):
    one_network_layout(settings)
    (settings.OUTPUT_DIR / "bitcoin").mkdir()
    with pytest.raises(SettingsError, match="beside .*bitcoin"):
        layout.migrate(several(settings, "bitcoin", "torus"))


def test_a_move_killed_half_way_is_finished_by_the_next_start(settings):
    one_network_layout(settings, "torus")
    staging = settings.OUTPUT_DIR / ".migrating-torus"
    staging.mkdir()
    storage_folder = settings.OUTPUT_DIR / storage.VERSIONS
    storage_folder.rename(staging / storage.VERSIONS)  # the kill came after the first rename
    layout.migrate(several(settings, "bitcoin", "torus"))
    assert (settings.OUTPUT_DIR / "torus" / DATES[1] / "data.bin").read_bytes() == b"2025-10-25"
    assert not staging.exists()


def test_one_network_never_moves_anything(settings):
    one_network_layout(settings)
    assert layout.migrate(settings) == {}
    assert len(layout.old_entries(settings.OUTPUT_DIR)) == 5


def _migrate(settings, results) -> None:
    results.put(sum(layout.migrate(settings).values()))


def test_two_services_starting_together_move_it_once(settings):
    one_network_layout(settings)
    s = several(settings, "bitcoin", "torus")
    results = multiprocessing.get_context("fork").Queue()
    starts = [multiprocessing.get_context("fork").Process(target=_migrate, args=(s, results))
              for _ in range(2)]
    for p in starts:
        p.start()
    for p in starts:
        p.join(30)
        assert p.exitcode == 0
    assert sorted(results.get(timeout=5) for _ in starts) == [0, 9]
    assert storage.published_dates(settings.OUTPUT_DIR / "bitcoin") == list(reversed(DATES))
