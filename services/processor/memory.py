"""How the processor asks the kernel for memory.

Arrow hands freed pages back to the OS quickly and numpy asks for transparent huge
pages on large arrays, so with THP each page fault of a batch zeroes a fresh 2 MiB
page. Turning THP off for the processor's own process (PR_SET_THP_DISABLE, Linux
3.15+) makes a fault zero 4 KiB and lowers peak RSS; other processes are not affected.

Arrow allocates with the C library's malloc, as numpy does (share_one_allocator), so
memory one of them frees is reused by the other. Their effect shows in
`bench/bench_process.py`'s kernel time and peak RSS (docs/performance.md).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import sys

import pyarrow as pa

log = logging.getLogger(__name__)

_PR_SET_THP_DISABLE = 41
_PR_GET_THP_DISABLE = 42


def _libc():
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


@functools.cache
def disable_huge_pages() -> bool:
    """Turn transparent huge pages off for this process (and its children); True if off.

    Runs once per process (cached); where the call fails it logs once and changes nothing.
    """
    if not sys.platform.startswith("linux"):
        return False
    if _libc().prctl(_PR_SET_THP_DISABLE, 1, 0, 0, 0) != 0:
        log.warning("could not turn transparent huge pages off (errno %d); processing is "
                    "slower on hosts with THP", ctypes.get_errno())
        return False
    return True


def huge_pages_disabled() -> bool:
    """Whether THP is off for this process (as the kernel reports it)."""
    if not sys.platform.startswith("linux"):
        return False
    return _libc().prctl(_PR_GET_THP_DISABLE, 0, 0, 0, 0) == 1


@functools.cache
def share_one_allocator() -> str:
    """Make the system allocator Arrow's default memory pool (once per process).

    Buffers already allocated keep the pool they came from. Returns the backend name.
    """
    pa.set_memory_pool(pa.system_memory_pool())
    return pa.default_memory_pool().backend_name


def release_unused() -> None:
    """Hand freed memory back to the OS: Arrow's pool, then every glibc arena (malloc_trim).

    A long-lived process that read many tables keeps their freed pages otherwise, and they
    count against the peak of whatever it starts next.
    """
    pa.default_memory_pool().release_unused()
    try:
        _libc().malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass
