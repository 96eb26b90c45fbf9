"""Writing and reading audit events."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from ledgerdesk.db.models import AuditEvent
from ledgerdesk.db.prepared import PreparedInsert, session_db

_INSERT = PreparedInsert(AuditEvent)


class AuditRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, event: dict[str, object]) -> None:
        """One event, through a prepared statement (it rides along with every write)."""
        _INSERT.insert(session_db(self.session), event)

    def add_all(self, events: Iterable[dict[str, object]]) -> None:
        rows = list(events)
        if rows:
            self.session.execute(insert(AuditEvent), rows)

    def list(self, *, user_id: int | None, since: int | None, limit: int) -> Sequence[AuditEvent]:
        """Newest first."""
        statement = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
        if user_id is not None:
            statement = statement.where(AuditEvent.user_id == user_id)
        if since is not None:
            statement = statement.where(AuditEvent.created_at >= since)
        return self.session.scalars(statement).all()

    def delete_before(self, timestamp: int) -> int:
        """Remove events older than ``timestamp``; returns how many."""
        result = self.session.execute(delete(AuditEvent).where(AuditEvent.created_at < timestamp))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
