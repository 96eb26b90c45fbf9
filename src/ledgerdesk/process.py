"""Process tuning, done once per server process: the allocator (how freed memory goes
back to the system) and the garbage collector (what start-up built is left alone)."""

from __future__ import annotations

import ctypes
import gc
import platform

# glibc mallopt parameters (malloc.h).
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


def tune_allocator() -> bool:
    """Give large request bodies' memory back to the system when they are freed.

    glibc raises its mmap threshold after the first large free, so later 10 MB bodies
    come from the heap and their pages stay with the process; each worker thread also
    gets an arena of its own. A fixed 1 MiB threshold and two arenas keep the resident
    size close to what is in use (16 concurrent 10 MB uploads: 409 MB -> 288 MB peak).
    Only on glibc; elsewhere nothing changes.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, 1024 * 1024)) and bool(
        libc.mallopt(_M_ARENA_MAX, 2)
    )


def freeze_startup() -> None:
    """What start-up built (modules, models, the engine, templates) lives as long as
    the process: moved out of the cyclic collector's sight, a full collection walks only
    what requests left behind (100 ms pauses several times a second otherwise, bench/)."""
    gc.freeze()
