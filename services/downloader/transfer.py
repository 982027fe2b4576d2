"""Fetch a batch's objects into a folder with one transfer manager, verifying each as it lands.

All files are submitted at once to a single s3transfer manager, so small files
and the ranged parts of big ones share SOT_S3_MAX_CONCURRENCY threads. Sizes and
ETags come from the listing, which saves a HEAD per file and pins every ranged GET
to the listed object (If-Match). Each file is written through a HashingWriter, so
its checksum is known moments after its last byte; the size and checksum check
and the fsync then run on a side thread while other files are still downloading.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from boto3.s3.transfer import TransferConfig, create_transfer_manager
from s3transfer.subscribers import BaseSubscriber

from services.downloader.errors import ChecksumMismatch, DownloadError, s3_errors
from services.downloader.hashfile import HashingWriter
from services.downloader.plan import RemoteFile

log = logging.getLogger(__name__)

MB = 1 << 20
CHECK_THREADS = 2
FLUSH_EVERY = 16 * MB


@dataclass(frozen=True)
class Fetched:
    """One downloaded, verified file: where it is, how long it took, its sha256."""

    file: RemoteFile
    path: Path
    seconds: float
    sha256: str


def rate(size: int, seconds: float) -> str:
    """'12.3 MB in 0.40 s (30.8 MB/s)' for progress lines."""
    return f"{size / MB:.1f} MB in {seconds:.2f} s ({size / MB / max(seconds, 1e-6):.1f} MB/s)"


def algorithms(file: RemoteFile) -> set[str]:
    """sha256 (for DOWNLOAD.json) plus the algorithm META.json uses for this file."""
    return {"sha256"} | ({file.checksum.algorithm} if file.checksum else set())


def verify(file: RemoteFile, writer: HashingWriter, seconds: float) -> Fetched:
    """Check a downloaded file's size and checksum, fsync it, log it; DownloadError if wrong."""
    size = writer.path.stat().st_size
    if size != file.size:
        writer.close()
        raise DownloadError(file.key, f"downloaded {size} bytes but the listing said {file.size}")
    found = writer.hexdigests(size)
    if file.checksum and found[file.checksum.algorithm] != file.checksum.hexdigest:
        raise ChecksumMismatch(file.key, f"{file.checksum.algorithm} mismatch: META.json says "
                                      f"{file.checksum.hexdigest}, the object has "
                                      f"{found[file.checksum.algorithm]}")
    with open(writer.path, "rb") as handle:
        os.fsync(handle.fileno())  # flush now, in parallel with other downloads, not at publish
    how = f"{file.checksum.algorithm} ok" if file.checksum else "size ok, no checksum"
    log.info("fetched %s: %s, %s", file.key, rate(size, seconds), how)
    return Fetched(file, writer.path, seconds, found["sha256"])


class _Flusher:
    """One thread that flushes big files to disk while they are still downloading.

    Without it all of a file's pages are still dirty when it ends, and its fsync
    (before the folder is published) would wait for all of them at the very end.
    """

    def __init__(self):
        self._pending: list[HashingWriter] = []
        self._wake = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="flush", daemon=True)
        self._thread.start()

    def request(self, writer: HashingWriter) -> None:
        with self._wake:
            if writer not in self._pending:
                self._pending.append(writer)
                self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._pending and not self._stopped:
                    self._wake.wait()
                if self._stopped:
                    return
                writer = self._pending.pop(0)
            writer.sync()

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify()
        self._thread.join()


class _Watch(BaseSubscriber):
    """Supplies the listed size/ETag to the transfer, times it, flushes it, queues its check."""

    def __init__(self, file: RemoteFile, folder: Path, checker: ThreadPoolExecutor,
                 flusher: _Flusher):
        self.file, self.checker, self.flusher = file, checker, flusher
        self.writer = HashingWriter(Path(folder) / file.name, algorithms(file))
        self.started = time.perf_counter()
        self.check: Future | None = None
        self.done = threading.Event()
        self._unflushed = 0

    def on_progress(self, future, bytes_transferred, **kwargs):
        self._unflushed += bytes_transferred  # racy across threads: only paces the flushes
        if self._unflushed >= FLUSH_EVERY:
            self._unflushed = 0
            self.flusher.request(self.writer)

    def on_queued(self, future, **kwargs):
        future.meta.provide_transfer_size(self.file.size)
        if self.file.etag:
            future.meta.provide_object_etag(self.file.etag)
        self.started = time.perf_counter()

    def on_done(self, future, **kwargs):
        seconds = time.perf_counter() - self.started
        if _failed(future):
            self.writer.close()
        else:
            self.check = self.checker.submit(verify, self.file, self.writer, seconds)
        self.done.set()


def _failed(future) -> bool:
    try:
        future.result()
    except BaseException:  # reported by the caller from future.result() with the key named
        return True
    return False


def _transfer(manager, bucket: str, watches: list[_Watch]) -> None:
    futures = [(watch, manager.download(bucket, watch.file.key, watch.writer,
                                        subscribers=[watch])) for watch in watches]
    for watch, future in futures:
        with s3_errors(watch.file.key):
            future.result()


def fetch_all(client, bucket: str, files: tuple[RemoteFile, ...], folder: Path,
              config: TransferConfig) -> list[Fetched]:
    """Download files into folder concurrently; return them verified, in the given order."""
    flusher = _Flusher()
    with ThreadPoolExecutor(CHECK_THREADS, thread_name_prefix="verify") as checker:
        watches = [_Watch(file, folder, checker, flusher) for file in files]
        try:
            with create_transfer_manager(client, config) as manager:
                _transfer(manager, bucket, watches)
            for watch in watches:
                watch.done.wait()  # on_done may still be running after result() returned
            checked = [watch.check.result() for watch in watches]
        finally:
            flusher.stop()
            for watch in watches:
                watch.writer.close()
    return checked
