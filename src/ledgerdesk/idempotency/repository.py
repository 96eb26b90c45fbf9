"""Queries on remembered write answers."""

from __future__ import annotations

from sqlalchemy import delete, select, tuple_
from sqlalchemy.orm import Session

from ledgerdesk.db.models import IdempotentRequest


class IdempotencyRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, user_id: int, key: str) -> IdempotentRequest | None:
        return self.session.scalars(
            select(IdempotentRequest).where(
                IdempotentRequest.user_id == user_id, IdempotentRequest.key == key
            )
        ).one_or_none()

    def add(self, row: IdempotentRequest) -> None:
        self.session.add(row)
        self.session.flush()

    def prune(self, *, before: int, limit: int) -> int:
        """Remove up to ``limit`` remembered answers made before ``before``; how many."""
        oldest = (
            select(IdempotentRequest.user_id, IdempotentRequest.key)
            .where(IdempotentRequest.created_at < before)
            .order_by(IdempotentRequest.created_at)
            .limit(limit)
        )
        removed = self.session.execute(
            delete(IdempotentRequest).where(
                tuple_(IdempotentRequest.user_id, IdempotentRequest.key).in_(oldest)
            )
        )
        return int(removed.rowcount or 0)  # type: ignore[attr-defined]

    def forget(self, user_id: int, key: str) -> None:
        self.session.execute(
            delete(IdempotentRequest).where(
                IdempotentRequest.user_id == user_id, IdempotentRequest.key == key
            )
        )
        self.session.expunge_all()
