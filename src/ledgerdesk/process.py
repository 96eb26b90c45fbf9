"""Process tuning, done once per server process: the allocator (how freed memory goes
back to the system), the garbage collector (what start-up built is left alone), and
stopping (told to stop, the process drains before it stops accepting)."""

from __future__ import annotations

import ctypes
import gc
import platform
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

# glibc mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


def tune_allocator() -> bool:
    """Give large request bodies' memory back to the system when they are freed.

    glibc raises its mmap threshold after the first large free, so later 10 MB bodies
    come from the heap and their pages stay with the process; each worker thread also
    gets an arena of its own. A fixed 1 MiB threshold and two arenas keep the resident
    size close to what is in use (16 concurrent 10 MB uploads: 409 MB -> 288 MB peak).
    With a fixed mmap threshold glibc also stops raising its trim threshold: every
    chunk of a download just under 1 MiB, freed at the top of the heap, was handed back
    and the next one faulted in every page again (a third of a download's system
    time); up to 8 MiB of free heap top is kept instead. Only on glibc; elsewhere
    nothing changes.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return (
        bool(libc.mallopt(_M_MMAP_THRESHOLD, 1024 * 1024))
        and bool(libc.mallopt(_M_TRIM_THRESHOLD, 8 * 1024 * 1024))
        and bool(libc.mallopt(_M_ARENA_MAX, 2))
    )


def freeze_startup() -> None:
    """What start-up built (modules, models, the engine, templates) lives as long as
    the process: moved out of the cyclic collector's sight, a full collection walks only
    what requests left behind (100 ms pauses several times a second otherwise, bench/)."""
    gc.freeze()


# -- stopping ---------------------------------------------------------------------------

_STOPPING = threading.Event()


def stopping() -> bool:
    """Whether this process was told to stop (it may still be draining its requests)."""
    return _STOPPING.is_set()


def drain_on_signals(seconds: float) -> Callable[[], None]:
    """On the first SIGTERM or SIGINT, mark the process as stopping (readiness fails,
    so a load balancer sends no more) and only ``seconds`` later hand the signal to the
    handler that was there (the server's: stop accepting, finish what is in flight); a
    second signal is handed on at once. Returns the function that puts the handlers
    back. Only in the main thread (where signal handlers live) and over handlers that
    are functions (a server's); elsewhere nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    signals = (signal.SIGTERM, signal.SIGINT)
    previous: dict[int, Any] = {int(sig): signal.getsignal(sig) for sig in signals}
    if not all(callable(handler) for handler in previous.values()):
        return lambda: None

    def hand_on(sig: int, frame: FrameType | None) -> None:
        handler = previous[sig]
        if callable(handler):  # (always: checked above)
            handler(sig, frame)

    def first(sig: int, frame: FrameType | None) -> None:
        if _STOPPING.is_set():
            hand_on(sig, frame)
            return
        _STOPPING.set()
        timer = threading.Timer(seconds, hand_on, (sig, None))
        timer.daemon = True
        timer.start()

    for sig in signals:
        signal.signal(sig, first)

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(signal.Signals(sig), handler)

    return restore
