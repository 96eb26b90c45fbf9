"""Queries on remembered write answers."""

from __future__ import annotations

from sqlalchemy import delete, select
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

    def forget(self, user_id: int, key: str) -> None:
        self.session.execute(
            delete(IdempotentRequest).where(
                IdempotentRequest.user_id == user_id, IdempotentRequest.key == key
            )
        )
        self.session.expunge_all()
