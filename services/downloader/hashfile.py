"""A file that s3transfer writes into and that hashes its own bytes as they land.

s3transfer writes the ranged parts of a download at their offsets from one IO
thread, in roughly ascending order. Bytes that extend the hashed prefix are
hashed straight from memory; bytes written ahead of it are hashed (read back from
the page cache) once the gap before them is filled. So a file's digests are ready
moments after its last byte instead of after a second full read.

If a write ever lands inside the already-hashed prefix (a retried part), the
digests are recomputed from the file at the end, so they always describe the
bytes on disk.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

READ_CHUNK = 1 << 20


class HashingWriter:
    """A seekable, write-only file object whose digests follow the bytes written to it."""

    def __init__(self, path: Path, algorithms: set[str]):
        self.path = Path(path)
        self._algorithms = set(algorithms)
        self._hashes = {name: hashlib.new(name) for name in self._algorithms}
        self._file = open(self.path, "w+b", buffering=0)  # unbuffered: read-back sees every write
        self._position = 0
        self._hashed = 0
        self._ahead: list[list[int]] = []  # merged [start, end) spans written past the prefix
        self._rewritten = False
        self._lock = threading.Lock()
        self._close_lock = threading.Lock()  # sync() never holds _lock: writes go on meanwhile

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self._position = self._file.seek(offset, whence)
        return self._position

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        with self._lock:
            start, done = self._position, 0
            while done < len(view):
                done += self._file.write(view[done:])
            self._position = start + done
            self._account(start, view)
        return done

    def _account(self, start: int, view: memoryview) -> None:
        end = start + len(view)
        if start < self._hashed:
            self._rewritten = True  # bytes already hashed were written again
        if end <= self._hashed:
            return
        if start <= self._hashed:
            self._update(view[self._hashed - start:])
            self._hashed = end
            self._catch_up()
        else:
            self._remember(start, end)

    def _update(self, data) -> None:
        for digest in self._hashes.values():
            digest.update(data)

    def _remember(self, start: int, end: int) -> None:
        spans = sorted(self._ahead + [[start, end]])
        merged = [spans[0]]
        for s, e in spans[1:]:
            if s <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([s, e])
        self._ahead = merged

    def _catch_up(self) -> None:
        while self._ahead and self._ahead[0][0] <= self._hashed:
            _, end = self._ahead.pop(0)
            if end > self._hashed:
                self._hash_from_disk(self._hashed, end)
                self._hashed = end

    def _hash_from_disk(self, start: int, end: int) -> None:
        fd = self._file.fileno()
        while start < end:
            block = os.pread(fd, min(READ_CHUNK, end - start), start)
            if not block:
                raise OSError(f"{self.path}: ended at byte {start}, expected {end}")
            self._update(block)
            start += len(block)

    def sync(self) -> None:
        """Flush what is written so far to disk (from another thread, while writes go on)."""
        with self._close_lock:
            if not self._file.closed:
                os.fdatasync(self._file.fileno())

    def close(self) -> None:
        with self._lock, self._close_lock:
            self._file.close()

    def hexdigests(self, size: int) -> dict[str, str]:
        """Finish: hash whatever is not hashed yet up to size, close, return hex digests."""
        with self._lock:
            if self._rewritten:
                self._hashes = {name: hashlib.new(name) for name in self._algorithms}
                self._hashed = 0
            self._hash_from_disk(self._hashed, size)
            self._hashed = size
            with self._close_lock:
                self._file.close()
            return {name: digest.hexdigest() for name, digest in self._hashes.items()}
