"""Answers to repeated reads, kept while the SQLite database has not changed.

SQLite tells a connection whether any other connection (in this process or another)
has committed since it last asked: ``PRAGMA data_version``. While the answer stays the
same, a customer's keys and the answer to a read with the same parameters cannot have
changed either, so they are served from memory. Any commit (a reply, a revoked key, an
invoice, even the periodic key-usage write) empties the cache.

When to ask: asking costs a shared-lock round trip, about as much as a query, so it is
asked after every commit made in this process (every write of this server, seen through
the ORM's after-commit event) and otherwise at most every ``CHECK_INTERVAL`` seconds.
A change made by another process (the admin CLI, another worker) is therefore seen
within that interval; a change made through this server is seen by the very next read.

What it keeps: answers (the protocol's read answers, as bytes) and rows of repeated
lookups (``remembered``: a customer's keys, whose expiry, category and address checks
still run on every request).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Hashable

from sqlalchemy import event
from sqlalchemy.orm import Session

from ledgerdesk import metrics

CHECK_INTERVAL = 0.01

# Commits made in this process, counted after they are visible to other connections.
_local_commits = itertools.count(1)
_last_local_commit = 0


@event.listens_for(Session, "after_commit")
def _count_commit(_: Session) -> None:
    global _last_local_commit
    _last_local_commit = next(_local_commits)


MAX_ANSWERS = 4096
MAX_ANSWER_BYTES = 64 * 1024
MAX_TOTAL_BYTES = 32 * 1024 * 1024
MAX_ROW_ENTRIES = 4096


_HIT = metrics.read_cache.labels("hit")
_MISS = metrics.read_cache.labels("miss")


class ReadCache:
    def __init__(
        self,
        data_version: Callable[[], Hashable],
        *,
        check_interval: float = CHECK_INTERVAL,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.data_version = data_version
        self.check_interval = check_interval
        self.monotonic = monotonic
        self.version: Hashable | None = None
        self.next_check = 0.0
        self.seen_local_commit = -1
        self.answers: dict[Hashable, bytes] = {}
        # Rows of repeated lookups (a customer's keys), by the caller's own key.
        self.rows: dict[Hashable, object] = {}
        self.total_bytes = 0
        self.hits = 0

    def refresh(self) -> None:
        """Called before each request: forget everything if the database has changed."""
        now = self.monotonic()
        local = _last_local_commit
        if local == self.seen_local_commit and now < self.next_check:
            return
        self.seen_local_commit = local
        self.next_check = now + self.check_interval
        self.observe(self.data_version())

    def observe(self, version: Hashable) -> None:
        """Forget everything when the database has changed since the last request."""
        if version != self.version:
            self.answers.clear()
            self.rows.clear()
            self.total_bytes = 0
            self.version = version

    def answer(self, key: Hashable) -> bytes | None:
        found = self.answers.get(key)
        if found is not None:
            self.hits += 1
            _HIT.inc()
        else:
            _MISS.inc()
        return found

    def keep_answer(self, key: Hashable, answer: bytes) -> None:
        if len(answer) > MAX_ANSWER_BYTES:
            return
        while self.answers and (
            len(self.answers) >= MAX_ANSWERS or self.total_bytes + len(answer) > MAX_TOTAL_BYTES
        ):
            oldest = next(iter(self.answers))
            self.total_bytes -= len(self.answers.pop(oldest))
        self.answers[key] = answer
        self.total_bytes += len(answer)

    def remembered(self, key: Hashable, lookup: Callable[[], object]) -> object:
        """The rows of ``lookup``, kept under ``key`` while the database is unchanged."""
        found = self.rows.get(key)
        if found is None:
            found = lookup()
            if len(self.rows) >= MAX_ROW_ENTRIES:
                self.rows.clear()
            self.rows[key] = found
        return found
