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


def test_publish_never_removes_a_folder_it_did_not_publish(tmp_path):
    """Another run's staging folder of the same date survives any number of publishes."""
    target = tmp_path / "2025-10-26"
    with storage.staging_dir(target) as other:
        _write(other, "a.txt", "other run, still writing")
        for n in range(3):
            with storage.staging_dir(target) as tmp:
                _write(tmp, "a.txt", f"v{n}")
            storage.publish(tmp, target)
        assert (other / "a.txt").exists()
    assert (target / "a.txt").read_text() == "v2"
    dirs = [p for p in (tmp_path / storage.VERSIONS).iterdir() if p.is_dir()]
    assert len(dirs) == 3  # v2, v1 (a reader may be inside) and the other run's staging


def test_clean_stale_leaves_a_date_being_published_alone(tmp_path):
    from shared import publish_lock

    orphan = tmp_path / storage.VERSIONS / "2025-10-27-20251027T000000-abcd1234"
    orphan.mkdir(parents=True)
    record = publish_lock.acquire(tmp_path, "2025-10-27", wait_s=0, stale_s=120)
    assert storage.clean_stale(tmp_path, older_than_s=0) == 0 and orphan.exists()
    publish_lock.release(tmp_path, "2025-10-27", record)
    assert storage.clean_stale(tmp_path, older_than_s=0) == 1 and not orphan.exists()


def _publish_dates(root, *dates):
    for day in dates:
        for n in range(2):
            with storage.staging_dir(root / day) as tmp:
                _write(tmp, "a.txt", f"{day} v{n}")
            storage.publish(tmp, root / day)


def test_retention_removes_dates_older_than_the_newest_minus_days_with_their_versions(tmp_path):
    _publish_dates(tmp_path, "2025-06-01", "2025-03-03", "2025-03-02", "2025-01-01")
    crashed = tmp_path / storage.VERSIONS / "2024-12-31-20241231T000000-deadbeef"
    crashed.mkdir()
    assert storage.apply_retention(tmp_path, 90) == (2, 5)  # 03-02, 01-01 (2 each) + crashed
    assert storage.published_dates(tmp_path) == ["2025-06-01", "2025-03-03"]
    left = {p.name[:10] for p in (tmp_path / storage.VERSIONS).iterdir()}
    assert left == {"2025-06-01", "2025-03-03"}
    assert (tmp_path / "2025-03-03" / "a.txt").read_text() == "2025-03-03 v1"


def test_retention_zero_keeps_everything_and_a_locked_date_is_skipped(tmp_path):
    from shared import publish_lock

    _publish_dates(tmp_path, "2025-06-01", "2025-01-01", "2024-01-01")
    assert storage.apply_retention(tmp_path, 0) == (0, 0)
    record = publish_lock.acquire(tmp_path, "2025-01-01", wait_s=0, stale_s=120)
    assert storage.apply_retention(tmp_path, 30) == (1, 2)
    assert storage.published_dates(tmp_path) == ["2025-06-01", "2025-01-01"]
    publish_lock.release(tmp_path, "2025-01-01", record)


def test_retention_never_removes_the_date_a_run_just_published(tmp_path):
    """An old date fetched on request (a re-run, a check) stays until a later publish."""
    _publish_dates(tmp_path, "2025-06-01", "2024-01-01")
    assert storage.apply_retention(tmp_path, 90, keep="2024-01-01") == (0, 0)
    assert storage.published_dates(tmp_path) == ["2025-06-01", "2024-01-01"]
    assert storage.apply_retention(tmp_path, 90, keep="2025-06-01") == (1, 2)
