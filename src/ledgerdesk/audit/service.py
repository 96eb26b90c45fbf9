"""What is recorded, and when.

A successful write is recorded in its own transaction, so the event and the change are
committed together or not at all. A failed write (rolled back) and a failed
authentication are recorded by ``AuditLog``: gathered in memory and written in one
statement every second, so that a flood of bad keys does not become a flood of write
transactions. Its buffer is bounded; what does not fit is counted and logged.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict, dataclass

from sqlalchemy.orm import Session, sessionmaker

from ledgerdesk.audit.repository import AuditRepository
from ledgerdesk.db.engine import unit_of_work

log = logging.getLogger("ledgerdesk.audit")

MAX_PENDING = 100_000
MAX_ACTION = 64


@dataclass(frozen=True)
class Event:
    created_at: int
    source: str
    action: str
    outcome: str
    user_id: int | None = None
    key_id: int | None = None
    client_address: str | None = None
    target_id: int | None = None
    error_code: int | None = None
    request_id: str | None = None

    def row(self) -> dict[str, object]:
        row = asdict(self)
        row["action"] = self.action[:MAX_ACTION]
        return row


def record_now(session: Session, event: Event) -> None:
    """Record in the caller's transaction (committed with the change it describes)."""
    AuditRepository(session).add(event.row())


class AuditLog:
    """Events recorded outside a transaction, written in batches."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[dict[str, object]] = []
        self.dropped = 0

    def record(self, event: Event) -> None:
        with self._lock:
            if len(self._pending) >= MAX_PENDING:
                self.dropped += 1
                return
            self._pending.append(event.row())

    def flush(self, sessions: sessionmaker[Session]) -> int:
        with self._lock:
            pending, self._pending = self._pending, []
            dropped, self.dropped = self.dropped, 0
        if dropped:
            log.warning("audit buffer full: %d events were not recorded", dropped)
        if not pending:
            return 0
        try:
            with unit_of_work(sessions, write=True) as session:
                AuditRepository(session).add_all(pending)
        except Exception:
            with self._lock:
                self._pending[:0] = pending[: max(0, MAX_PENDING - len(self._pending))]
            raise
        return len(pending)
