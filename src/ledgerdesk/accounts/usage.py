"""Key usage (use count, last used) gathered in memory and written in batches.

Writing it on every request would turn every read into a write transaction; instead
each process adds up its uses and flushes them every few seconds and at shutdown.
Counts are added to what is stored, so several processes can share one database.
"""

from __future__ import annotations

import threading

from sqlalchemy.orm import Session, sessionmaker

from ledgerdesk.accounts.repository import AccountRepository, KeyUse
from ledgerdesk.db.engine import unit_of_work


class KeyUsageRecorder:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[int, tuple[int, int]] = {}

    def record(self, key_id: int, now: int) -> None:
        with self._lock:
            count, last = self._pending.get(key_id, (0, 0))
            self._pending[key_id] = (count + 1, max(last, now))

    def pending(self) -> int:
        """How many keys have uses not yet written."""
        return len(self._pending)

    def take(self) -> list[KeyUse]:
        """Everything gathered so far, which is now the caller's to write (or give back)."""
        with self._lock:
            pending, self._pending = self._pending, {}
        return [KeyUse(key_id, count, last) for key_id, (count, last) in pending.items()]

    def give_back(self, uses: list[KeyUse]) -> None:
        """Uses that could not be written: kept for the next flush rather than lost."""
        with self._lock:
            for use in uses:
                old_count, old_last = self._pending.get(use.key_id, (0, 0))
                self._pending[use.key_id] = (
                    old_count + use.count,
                    max(old_last, use.last_used_at),
                )

    def flush(self, factory: sessionmaker[Session]) -> int:
        """Write what has been gathered; returns how many keys were updated."""
        uses = self.take()
        if not uses:
            return 0
        try:
            with unit_of_work(factory, write=True) as session:
                AccountRepository(session).record_uses(uses)
        except Exception:
            self.give_back(uses)
            raise
        return len(uses)
