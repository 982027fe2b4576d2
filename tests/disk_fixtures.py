"""A real full disk for the tests: a small tmpfs mounted for one test (needs root; else skipped)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest


class SmallDisk:
    """A tmpfs of a given size; `grow` remounts it bigger (the operator freed space)."""

    def __init__(self, path: Path, size_kb: int):
        self.path = path
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs",
                               str(path)], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a small tmpfs (needs root): {done.stderr.strip()}")

    def grow(self, size_kb: int) -> None:
        subprocess.run(["mount", "-o", f"remount,size={size_kb}k", str(self.path)], check=True)

    def unmount(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], check=False)


@pytest.fixture
def small_disk(tmp_path):
    """256 KB of disk at tmp_path/disk: writing more fails with ENOSPC, as a full disk does."""
    path = tmp_path / "disk"
    path.mkdir()
    disk = SmallDisk(path, 256)
    yield disk
    disk.unmount()
