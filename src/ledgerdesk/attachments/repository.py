"""Queries about stored bytes: attachments' (their rows live with the tickets) and
received mail's (``mail_messages.raw_sha256``), kept in the same store."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import bindparam, delete, func, select, union
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ledgerdesk.db.models import Attachment, Blob, BlobChunk, MailMessage
from ledgerdesk.db.prepared import Db, Prepared

# PostgreSQL advisory lock between requests that store attachment bytes (shared) and
# the collector of orphaned bytes (exclusive). On SQLite both run in write transactions,
# which exclude each other already.
_BLOB_LOCK = 0x6C64_626C_6F62  # "ldblob"
_CHUNK = 500


class BlobRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    @property
    def _postgresql(self) -> bool:
        return self.session.get_bind().dialect.name == "postgresql"

    def lock_for_storing(self) -> None:
        """Held until commit by a transaction that stores bytes: no collection meanwhile."""
        if self._postgresql:
            self.session.execute(select(func.pg_advisory_xact_lock_shared(_BLOB_LOCK)))

    def lock_for_collecting(self) -> None:
        """Held until commit by the collector: waits for transactions storing bytes."""
        if self._postgresql:
            self.session.execute(select(func.pg_advisory_xact_lock(_BLOB_LOCK)))

    def used(self, hashes: Iterable[str]) -> set[str]:
        """Which of these hashes a committed attachment or mail row points at."""
        found: set[str] = set()
        batch = list(hashes)
        for start in range(0, len(batch), _CHUNK):
            chunk = batch[start : start + _CHUNK]
            found.update(
                self.session.scalars(
                    union(
                        select(Attachment.sha256).where(Attachment.sha256.in_(chunk)),
                        select(MailMessage.raw_sha256).where(MailMessage.raw_sha256.in_(chunk)),
                    )
                )
            )
        return found

    def referenced(self) -> list[tuple[str, int]]:
        """Every distinct (sha256, size) that attachment and mail rows point at."""
        both = union(
            select(Attachment.sha256, Attachment.size),
            select(MailMessage.raw_sha256, MailMessage.size),
        ).subquery()
        rows = self.session.execute(select(both.c[0], both.c[1]).order_by(both.c[0]))
        return [(sha256, size) for sha256, size in rows]

    def stored_blobs(self) -> list[str]:
        return list(self.session.scalars(select(Blob.sha256)))

    def delete_blobs(self, hashes: Iterable[str]) -> None:
        batch = list(hashes)
        for start in range(0, len(batch), _CHUNK):
            self.session.execute(delete(Blob).where(Blob.sha256.in_(batch[start : start + _CHUNK])))

    def in_use(self, sha256: str) -> bool:
        """Whether any committed attachment or mail row still points at these bytes."""
        return bool(self.used([sha256]))

    def put(self, sha256: str, size: int, pieces: Iterable[bytes]) -> None:
        """Store a blob unless it is stored already, one piece (chunk row) at a time."""
        insert = (
            postgresql.insert
            if self.session.get_bind().dialect.name == "postgresql"
            else sqlite.insert
        )
        created = self.session.execute(
            insert(Blob)
            .values(sha256=sha256, size=size)
            .on_conflict_do_nothing()
            .returning(Blob.sha256)
        ).first()
        if created is None:
            return  # the same bytes are stored already (or by a concurrent request)
        for seq, data in enumerate(pieces):
            self.session.execute(insert(BlobChunk).values(sha256=sha256, seq=seq, data=data))


_BLOB_SIZE = Prepared(select(Blob.size).where(Blob.sha256 == bindparam("sha256")))
_BLOB_CHUNK = Prepared(
    select(BlobChunk.data).where(
        BlobChunk.sha256 == bindparam("sha256"), BlobChunk.seq == bindparam("seq")
    )
)


def blob_size(db: Db, sha256: str) -> int | None:
    """The size of bytes kept in the database store, or None when there are none."""
    row = db.first(_BLOB_SIZE, sha256=sha256)
    return None if row is None else int(row[0])


def blob_chunk(db: Db, sha256: str, seq: int) -> bytes | None:
    """One piece of a stored blob; None past the last."""
    rows = db.binary_rows(_BLOB_CHUNK, sha256=sha256, seq=seq)
    return bytes(rows[0][0]) if rows else None
