"""What a process counts for Prometheus: the metrics, and their files when several
worker processes serve together.

One process (``serve`` with one worker, ``worker``) keeps its values in memory. Several
(``serve --workers N``) write them to files in one directory, prometheus_client's
multiprocess mode: ``serving.run_server`` gives each ``serve`` a new, empty directory
(``PROMETHEUS_MULTIPROC_DIR``) before its workers start, so the mode is chosen before
prometheus_client is imported there. A worker that dies and is started again leaves its
files behind; ``compact`` folds the counts of processes that are gone into one file per
kind, so counters never go backwards and the directory holds a file per live process
and kind, however often workers are restarted. Readers take a shared lock on the
directory, the compaction an exclusive one, so no scrape sees a count twice or not at
all.

Labels are only ever names from a fixed set (actions of the registry, error codes,
doors, outcomes): never a path, a user id or a key.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import re
import shutil
import sys
import tempfile
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from pathlib import Path

MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
if os.environ.get(MULTIPROCESS_VARIABLE):
    # prometheus_client opens this process's files as the metrics below are defined.
    os.makedirs(os.environ[MULTIPROCESS_VARIABLE], exist_ok=True)

from prometheus_client import (  # noqa: E402
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics_core import Metric  # noqa: E402
from prometheus_client.mmap_dict import MmapedDict  # noqa: E402
from prometheus_client.multiprocess import (  # noqa: E402
    MultiProcessCollector,
    mark_process_dead,
)
from prometheus_client.registry import Collector  # noqa: E402

# The text format generate_latest writes (every name here is plain ASCII).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Seconds; from a read answered from memory to a slow upload.
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
UNKNOWN_ACTION = "(unknown)"
OK = "ok"
# A client that went away before its request arrived whole.
DISCONNECTED = "disconnected"

requests = Counter(
    "ledgerdesk_api_requests",
    "API requests, by action and outcome: ok, the errorCode answered, or disconnected "
    "(the client left before its request arrived whole).",
    ["action", "outcome"],
)
request_seconds = Histogram(
    "ledgerdesk_api_request_duration_seconds",
    "Time from a request's arrival to its answer sent, by action.",
    ["action"],
    buckets=DURATION_BUCKETS,
)
pages = Counter(
    "ledgerdesk_http_requests",
    "Requests outside the API (console, portal, documents, health), by door and status.",
    ["door", "status"],
)
page_seconds = Histogram(
    "ledgerdesk_http_request_duration_seconds",
    "Time to answer a request outside the API, by door.",
    ["door"],
    buckets=DURATION_BUCKETS,
)
rate_limited = Counter(
    "ledgerdesk_rate_limit_refusals",
    "Requests refused by a rate limit, by limit (key, customer, authentication failures).",
    ["limit"],
)
memory_waits = Counter(
    "ledgerdesk_memory_budget_waits",
    "Request bodies that waited for room in the body memory budget.",
)
memory_refusals = Counter(
    "ledgerdesk_memory_budget_refusals",
    "Request bodies refused for want of memory: busy (no room in time) or reclaimed (an "
    "address over its share gave it back).",
    ["reason"],
)
connections = Gauge(
    "ledgerdesk_open_connections",
    "Client connections open now.",
    multiprocess_mode="livesum",
)
connections_refused = Counter(
    "ledgerdesk_connections_refused",
    "Connections refused before a byte was read, by cap (process or address).",
    ["cap"],
)
pool_connections = Gauge(
    "ledgerdesk_db_pool_connections",
    "Database connections of this server's pools, by pool and state (in use or idle).",
    ["pool", "state"],
    multiprocess_mode="livesum",
)
read_cache = Counter(
    "ledgerdesk_read_cache_lookups",
    "Lookups of answers kept while the database is unchanged (SQLite), by result.",
    ["result"],
)
webhook_attempts = Counter(
    "ledgerdesk_webhook_deliveries",
    "Webhook delivery attempts by outcome: delivered, retrying (failed, tried again "
    "later), failed (given up).",
    ["outcome"],
)
mail_attempts = Counter(
    "ledgerdesk_mail_deliveries",
    "Notification mail by outcome: sent, retrying, failed (given up), skipped.",
    ["outcome"],
)
mail_received = Counter(
    "ledgerdesk_inbound_mail",
    "Mail taken in, by outcome: processed, deferred (the database or disk failed; the "
    "sender or mailbox tries again) or failed (kept for staff to look at).",
    ["outcome"],
)
build_info = Gauge(
    "ledgerdesk_build_info",
    "Always 1; the running version in its labels.",
    ["version", "python"],
    multiprocess_mode="livemax",
)


def multiprocess() -> bool:
    """Whether this process is one of several workers sharing a directory."""
    return bool(os.environ.get(MULTIPROCESS_VARIABLE))


def set_build_info(version: str) -> None:
    build_info.labels(version, ".".join(map(str, sys.version_info[:3]))).set(1)


class RequestMeter:
    """Counts API requests and their durations in plain numbers on the hot path (a dict
    lookup, two additions and a bisection), handed to the metrics by ``flush``: before a
    scrape in this process, and every second (``app``), so that another worker's scrape
    is at most a second behind. Call both from the event loop."""

    def __init__(self) -> None:
        self._pending: dict[tuple[str, str], _Tally] = {}

    def done(self, action: str | None, outcome: str, seconds: float) -> None:
        key = (action or UNKNOWN_ACTION, outcome)
        tally = self._pending.get(key)
        if tally is None:
            tally = self._pending[key] = _Tally()
        tally.count += 1
        tally.seconds += seconds
        tally.buckets[bisect_left(DURATION_BUCKETS, seconds)] += 1

    def flush(self) -> None:
        pending, self._pending = self._pending, {}
        for (action, outcome), tally in pending.items():
            requests.labels(action, outcome).inc(tally.count)
            histogram = request_seconds.labels(action)
            # Histogram.observe takes one value; these are many, by bucket (the values
            # are prometheus_client's own, in memory or in this process's file).
            histogram._sum.inc(tally.seconds)
            for bucket, count in zip(histogram._buckets, tally.buckets, strict=True):
                if count:
                    bucket.inc(count)


class _Tally:
    __slots__ = ("buckets", "count", "seconds")

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0
        self.buckets = [0] * (len(DURATION_BUCKETS) + 1)  # the last: +Inf


class Collection:
    """What ``/metrics`` shows from this process, in one registry: the collectors given
    first (they may write this process's values before they are read), then this
    process's own metrics, or, in multiprocess mode, every worker's files."""

    def __init__(self, collectors: Iterable[Collector] = ()) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        for collector in collectors:
            self.registry.register(collector)
        if multiprocess():
            _LockedCollector(self.registry, os.environ[MULTIPROCESS_VARIABLE])
        else:
            self.registry.register(REGISTRY)

    def exposition(self) -> bytes:
        """The text format, version 0.0.4."""
        return generate_latest(self.registry)


class _LockedCollector(MultiProcessCollector):
    """Reads the directory under a shared lock (see ``compact``)."""

    def collect(self) -> Iterable[Metric]:
        with _locked(Path(self._path), fcntl.LOCK_SH):
            files = glob.glob(os.path.join(self._path, "*.db"))
            return list(self.merge(files, accumulate=True))


# -- the directory of several workers ---------------------------------------------------

_FILE = re.compile(r"^(?P<kind>counter|histogram|summary|gauge)_(?:[a-z]+_)?(?P<pid>\d+)\.db$")
ARCHIVE = "archive"


@contextlib.contextmanager
def worker_directory() -> Iterator[Path]:
    """The directory one server's workers share, set in the environment they inherit:
    a new one, removed afterwards; or the operator's own ``PROMETHEUS_MULTIPROC_DIR``,
    emptied first (files of an earlier run would count again)."""
    given = os.environ.get(MULTIPROCESS_VARIABLE)
    if given:
        directory = Path(given)
        directory.mkdir(parents=True, exist_ok=True)
        for old in directory.glob("*.db"):
            old.unlink()
        yield directory
        return
    directory = Path(tempfile.mkdtemp(prefix="ledgerdesk-metrics-"))
    os.environ[MULTIPROCESS_VARIABLE] = str(directory)
    try:
        yield directory
    finally:
        os.environ.pop(MULTIPROCESS_VARIABLE, None)
        shutil.rmtree(directory, ignore_errors=True)


def compact(directory: Path, alive: Iterable[int] = ()) -> int:
    """Fold the files of processes that are gone into one file per kind; returns how
    many files were folded. Safe beside live workers and scrapes (an exclusive lock)."""
    keep = {os.getpid(), *alive}
    folded = 0
    with _locked(directory, fcntl.LOCK_EX):
        for path in sorted(directory.glob("*.db")):
            found = _FILE.match(path.name)
            if found is None:
                continue
            pid = int(found["pid"])
            if pid in keep or _alive(pid):
                continue
            kind = found["kind"]
            if kind == "gauge":
                mark_process_dead(pid, str(directory))  # live gauges: their files go
                path.unlink(missing_ok=True)
            else:
                _fold(path, directory / f"{kind}_{ARCHIVE}.db")
                path.unlink()
            folded += 1
    return folded


def _fold(source: Path, archive: Path) -> None:
    into = MmapedDict(str(archive))
    try:
        for key, value, timestamp, _ in MmapedDict.read_all_values_from_file(str(source)):
            held, _ = into.read_value(key)
            into.write_value(key, held + value, timestamp)
    finally:
        into.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (dead, not yet reaped by its parent) writes nothing more.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rpartition(")")[2].split()[0] != "Z"
    return True


@contextlib.contextmanager
def _locked(directory: Path, how: int) -> Iterator[None]:
    with open(directory / ".lock", "a+b") as lock:
        fcntl.flock(lock, how)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
