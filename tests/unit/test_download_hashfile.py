"""HashingWriter: digests follow the bytes on disk whatever order s3transfer writes them in."""

from __future__ import annotations

import hashlib
import os
import random

import pytest

from services.downloader.hashfile import HashingWriter

DATA = bytes(random.Random(7).getrandbits(8) for _ in range(300_000))
WANT = {"sha256": hashlib.sha256(DATA).hexdigest(), "md5": hashlib.md5(DATA).hexdigest()}


def _chunks(size=25_000):
    return [(i, DATA[i:i + size]) for i in range(0, len(DATA), size)]


def _write(writer, pieces):
    for offset, piece in pieces:
        writer.seek(offset)
        assert writer.write(piece) == len(piece)


@pytest.mark.parametrize("order", ["ascending", "parts", "reversed", "shuffled"])
def test_digests_match_the_file_in_any_write_order(tmp_path, order):
    pieces = _chunks()
    if order == "parts":  # four ranged parts streaming side by side, as s3transfer does
        quarters = [pieces[i::4] for i in range(4)]
        pieces = [p for group in zip(*quarters) for p in group]
    elif order == "reversed":
        pieces = pieces[::-1]
    elif order == "shuffled":
        random.Random(1).shuffle(pieces)
    writer = HashingWriter(tmp_path / "f", {"sha256", "md5"})
    _write(writer, pieces)
    assert writer.hexdigests(len(DATA)) == WANT
    assert (tmp_path / "f").read_bytes() == DATA


def test_in_order_writes_are_hashed_as_they_land(tmp_path):
    writer = HashingWriter(tmp_path / "f", {"sha256"})
    _write(writer, _chunks()[:3])
    assert writer._hashed == 75_000 and not writer._ahead


def test_a_retried_part_rewriting_hashed_bytes_is_rehashed_from_disk(tmp_path):
    writer = HashingWriter(tmp_path / "f", {"sha256"})
    _write(writer, _chunks())
    _write(writer, [(0, b"X" * 10)])  # a retry that wrote different bytes over the prefix
    on_disk = (tmp_path / "f").read_bytes()
    assert writer.hexdigests(len(DATA))["sha256"] == hashlib.sha256(on_disk).hexdigest()


def test_a_file_shorter_than_its_size_is_an_error(tmp_path):
    writer = HashingWriter(tmp_path / "f", {"sha256"})
    _write(writer, _chunks()[:2])
    with pytest.raises(OSError, match="ended at byte 50000"):
        writer.hexdigests(len(DATA))


def test_sync_flushes_the_bytes_written_so_far_and_is_a_no_op_once_closed(tmp_path, monkeypatch):
    synced = []  # the size of the file each fdatasync call flushed
    real = os.fdatasync
    monkeypatch.setattr(os, "fdatasync", lambda fd: (synced.append(os.fstat(fd).st_size), real(fd)))
    writer = HashingWriter(tmp_path / "f", {"sha256"})
    _write(writer, _chunks()[:2])
    writer.sync()
    assert synced == [50_000]
    writer.hexdigests(50_000)
    writer.sync()  # closed: nothing to flush, no error
    assert synced == [50_000]
