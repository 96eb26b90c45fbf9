"""Queries about stored attachment bytes (the metadata rows live with the tickets)."""

from __future__ import annotations

from sqlalchemy import bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ledgerdesk.db.models import Attachment, Blob
from ledgerdesk.db.prepared import Db, Prepared


class BlobRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def in_use(self, sha256: str) -> bool:
        """Whether any committed attachment row still points at these bytes."""
        found = self.session.scalars(
            select(Attachment.id).where(Attachment.sha256 == sha256).limit(1)
        ).first()
        return found is not None

    def put(self, sha256: str, data: bytes) -> None:
        insert = (
            postgresql.insert
            if self.session.get_bind().dialect.name == "postgresql"
            else sqlite.insert
        )
        self.session.execute(insert(Blob).values(sha256=sha256, data=data).on_conflict_do_nothing())


_BLOB = Prepared(select(Blob.data).where(Blob.sha256 == bindparam("sha256")))


def read_blob(db: Db, sha256: str) -> bytes | None:
    """The bytes kept in the database store (a read on the request path)."""
    row = db.first(_BLOB, sha256=sha256)
    return None if row is None else bytes(row[0])
