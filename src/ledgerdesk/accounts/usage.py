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

    def flush(self, factory: sessionmaker[Session]) -> int:
        """Write what has been gathered; returns how many keys were updated."""
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return 0
        try:
            with unit_of_work(factory, write=True) as session:
                AccountRepository(session).record_uses(
                    KeyUse(key_id, count, last) for key_id, (count, last) in pending.items()
                )
        except Exception:
            # Keep the counts for the next flush rather than lose them.
            with self._lock:
                for key_id, (count, last) in pending.items():
                    old_count, old_last = self._pending.get(key_id, (0, 0))
                    self._pending[key_id] = (old_count + count, max(old_last, last))
            raise
        return len(pending)
