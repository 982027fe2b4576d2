"""One publisher per date at a time: a lock file on the shared volume itself.

A file on the volume (not a Redis key) because the volume is what publishers share: two
stacks, a manual `process` beside a worker, workers on several hosts all see it. It is
created with link(2) (atomic, fails if it exists, also on NFS) and names its owner (host,
pid, since); the owner touches it every HEARTBEAT_S. A lock whose owner is a dead pid on
this host, or that nobody touched for stale_s, is taken over.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Callable, Iterator

log = logging.getLogger(__name__)

LOCKS = ".locks"
HEARTBEAT_S = 15.0
POLL_S = 0.5


class DateLocked(RuntimeError):
    """Another run is publishing the date; the message names its host, pid and start."""


def lock_path(root: Path, processing_date: str) -> Path:
    """Where a date's lock file lives under an input or output root."""
    return Path(root) / LOCKS / f"{processing_date}.lock"


def owner(path: Path) -> dict | None:
    """The owner record of a lock file, or None when there is no (readable) lock."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}  # being written or damaged: judged by its age alone


def describe(processing_date: str, record: dict) -> str:
    """'date D is being published by HOST pid N since T'."""
    return (f"date {processing_date} is being published by {record.get('host', '?')} "
            f"pid {record.get('pid', '?')} since {record.get('since', '?')}")


def _alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, TypeError, ValueError):
        return True
    return True


def is_stale(path: Path, record: dict, stale_s: float, now: float | None = None) -> bool:
    """A dead owner on this host, or no heartbeat for stale_s."""
    if record.get("host") == socket.gethostname() and not _alive(record.get("pid")):
        return True
    try:
        age = (now or time.time()) - Path(path).stat().st_mtime
    except FileNotFoundError:
        return True
    return age > stale_s


def held(root: Path, processing_date: str, stale_s: float) -> bool:
    """True while a live publisher holds the date's lock."""
    path = lock_path(root, processing_date)
    record = owner(path)
    return record is not None and not is_stale(path, record, stale_s)


def _try_create(path: Path, record: dict) -> bool:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{record['token']}")
    tmp.write_text(json.dumps(record))
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)


def _take_over(path: Path, seen: dict) -> None:
    """Move a stale lock aside; put it back if it changed hands since it was judged stale."""
    aside = path.with_name(f".{path.name}.stale-{uuid.uuid4().hex[:8]}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return
    if owner(aside) != seen:  # a fresh owner got in between: restore its lock
        with contextlib.suppress(FileExistsError):
            os.link(aside, path)
    aside.unlink(missing_ok=True)


def acquire(root: Path, processing_date: str, wait_s: float, stale_s: float,
            sleep: Callable[[float], None] = time.sleep) -> dict:
    """Create the date's lock, waiting up to wait_s for a live owner; raise DateLocked after."""
    path = lock_path(root, processing_date)
    record = {"host": socket.gethostname(), "pid": os.getpid(),
              "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "token": uuid.uuid4().hex}
    deadline = time.monotonic() + wait_s
    while not _try_create(path, record):
        current = owner(path)
        if current is not None and is_stale(path, current, stale_s):
            log.warning("%s; that lock is stale (owner gone or silent for %.0f s): taking it "
                        "over", describe(processing_date, current), stale_s)
            _take_over(path, current)
            continue
        if time.monotonic() >= deadline:
            raise DateLocked(f"{describe(processing_date, current or {})}; gave up after "
                             f"waiting {wait_s:.0f} s (PUBLISH_LOCK_WAIT_SECONDS)")
        sleep(POLL_S)
    return record


def release(root: Path, processing_date: str, record: dict) -> None:
    """Remove the lock if it is still ours."""
    path = lock_path(root, processing_date)
    if (owner(path) or {}).get("token") == record["token"]:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def publishing(root: Path, processing_date: str, wait_s: float,
               stale_s: float) -> Iterator[dict]:
    """Hold the date's lock for the block, touching it every HEARTBEAT_S."""
    record = acquire(root, processing_date, wait_s, stale_s)
    path, done = lock_path(root, processing_date), threading.Event()

    def beat():
        while not done.wait(min(HEARTBEAT_S, stale_s / 3)):
            with contextlib.suppress(OSError):
                if (owner(path) or {}).get("token") == record["token"]:
                    os.utime(path)

    thread = threading.Thread(target=beat, name=f"lock-{processing_date}", daemon=True)
    thread.start()
    try:
        yield record
    finally:
        done.set()
        thread.join()
        release(root, processing_date, record)
