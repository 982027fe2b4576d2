import pytest

from shared import storage


def _write(folder, name, text):
    (folder / name).write_text(text)


def test_publish_replaces_a_date_atomically_and_keeps_one_previous_version(tmp_path):
    target = tmp_path / "2025-10-26"
    for n in range(3):
        with storage.staging_dir(target) as tmp:
            _write(tmp, "a.txt", f"v{n}")
        storage.publish(tmp, target)
        assert (target / "a.txt").read_text() == f"v{n}"
    versions = list((tmp_path / storage.VERSIONS).iterdir())
    assert len(versions) == 2  # current + the one a reader may still be inside
    assert storage.published_dates(tmp_path) == ["2025-10-26"]


def test_a_failing_writer_leaves_the_published_folder_untouched(tmp_path):
    target = tmp_path / "2025-10-26"
    with storage.staging_dir(target) as tmp:
        _write(tmp, "a.txt", "good")
    storage.publish(tmp, target)
    with pytest.raises(RuntimeError):
        with storage.staging_dir(target) as tmp:
            _write(tmp, "a.txt", "half")
            raise RuntimeError("boom")
    assert (target / "a.txt").read_text() == "good"
    assert len(list((tmp_path / storage.VERSIONS).iterdir())) == 1


@pytest.mark.parametrize("bad", ["2025-13-45", "../etc", "2025-1-1", "", "latest", "/abs"])
def test_bad_dates_are_refused(bad, tmp_path):
    with pytest.raises(storage.InvalidDate):
        storage.date_dir(tmp_path, bad)


def test_clean_stale_removes_only_unreferenced_old_versions(tmp_path):
    target = tmp_path / "2025-10-26"
    with storage.staging_dir(target) as tmp:
        _write(tmp, "a.txt", "x")
    storage.publish(tmp, target)
    orphan = tmp_path / storage.VERSIONS / "2025-10-27-crashed"
    orphan.mkdir()
    assert storage.clean_stale(tmp_path, older_than_s=0) == 1
    assert not orphan.exists() and (target / "a.txt").exists()
