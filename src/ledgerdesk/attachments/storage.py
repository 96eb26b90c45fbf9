"""Where attachment bytes live: a content-addressed directory, or the database.

A store works in step with the request's transaction through a ``BlobBatch``:

- ``add`` runs inside the transaction. The local store links the complete incoming
  file under its SHA-256 name (a real name only ever holds a whole file); the database
  store inserts the bytes in the same transaction as the rows.
- ``committed`` runs after a commit: the local store makes sure every file it relied
  on is still in place (a concurrent failed request may have removed a file with the
  same content that it had created itself).
- ``rolled_back`` runs after a rollback: the local store removes the files this batch
  created, unless a committed row uses the same bytes. Nothing is left behind.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import AsyncGenerator, Callable, Generator, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Protocol

from anyio import to_thread
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from ledgerdesk.attachments.cache import BlobCache
from ledgerdesk.attachments.incoming import IncomingFile
from ledgerdesk.attachments.repository import BlobRepository, blob_chunk, blob_size
from ledgerdesk.db.engine import unit_of_work
from ledgerdesk.db.prepared import Db, read_transaction

# Bytes read, sent and stored in the database at a time: a 10 MiB download is eleven
# of them, eight at once stay well under 100 MiB. Just under 1 MiB, the threshold from
# which the allocator maps fresh pages for each block (process.tune_allocator): at
# 1 MiB every block cost a mapping, page faults and an unmapping (0.26x raw speed).
CHUNK = 1024 * 1024 - 64 * 1024
_SHA256 = re.compile(r"[0-9a-f]{64}")


# Read what the page cache already holds without waiting (Linux 4.14+; None elsewhere).
_NOWAIT: int | None = getattr(os, "RWF_NOWAIT", None)


class ChunkReader(Protocol):
    """A blob's bytes a chunk at a time, for a reader on an event loop."""

    def ready(self) -> bytes | memoryview | None:
        """The next chunk if it can be had without waiting on a disk or a database
        (``b""``: the end); None when ``read`` must fetch it, away from the loop."""
        ...

    def read(self) -> bytes | memoryview:
        """The next chunk, ``b""`` at the end; may block."""
        ...

    def close(self) -> None: ...


class FileChunks:
    """A stored file read a chunk at a time from its own file descriptor.

    ``ready`` asks the kernel for only what its page cache holds (``preadv2`` with
    ``RWF_NOWAIT``): a file that is being downloaded again and again, or was just
    written, is sent from the event loop without a thread hop a chunk (which cost two
    fifths of a download's speed); a chunk on disk waits for ``read`` in a thread,
    as does the first one, which opens the file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None
        self.offset = 0
        self.nowait = _NOWAIT

    def ready(self) -> bytes | memoryview | None:
        if self.fd is None or self.nowait is None:
            return None
        buffer = bytearray(CHUNK)
        try:
            count = os.preadv(self.fd, [buffer], self.offset, self.nowait)
        except BlockingIOError:
            return None  # not all in memory: read() waits for the disk
        except OSError:
            self.nowait = None  # this file system cannot say: read() from now on
            return None
        self.offset += count
        return memoryview(buffer)[:count]

    def read(self) -> bytes:
        if self.fd is None:
            self.fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        chunk = os.pread(self.fd, CHUNK, self.offset)
        self.offset += len(chunk)
        return chunk

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class IteratorChunks:
    """Chunks that come from a generator (the database, the cache filling): each one
    waits in ``read``. ``at_hand``: bytes already in memory, ready at once."""

    def __init__(self, chunks: Generator[bytes, None, None], *, at_hand: bool = False) -> None:
        self.chunks = chunks
        self.at_hand = at_hand

    def ready(self) -> bytes | None:
        return next(self.chunks, b"") if self.at_hand else None

    def read(self) -> bytes:
        return next(self.chunks, b"")

    def close(self) -> None:
        self.chunks.close()


@dataclass(frozen=True)
class BlobContent:
    """Bytes to send: from a file or the database, streamed in chunks; or in memory."""

    size: int
    path: Path | None = None
    data: bytes | None = None
    pieces: Callable[[], Iterator[bytes]] | None = None

    def chunks(self) -> Generator[bytes, None, None]:
        if self.data is not None:
            yield self.data
            return
        if self.pieces is not None:
            yield from self.pieces()
            return
        assert self.path is not None
        yield from _file_pieces(self.path)

    def reader(self) -> ChunkReader:
        """The chunks for a reader on an event loop (see ``streamed``)."""
        if self.path is not None and self.data is None and self.pieces is None:
            return FileChunks(self.path)
        return IteratorChunks(self.chunks(), at_hand=self.data is not None)

    def read(self) -> bytes:
        return b"".join(self.chunks())


async def streamed(content: BlobContent) -> AsyncGenerator[bytes | memoryview, None]:
    """The content's chunks on an event loop: each at once when it is at hand (in
    memory, or a file's pages in the page cache), else read in a worker thread."""
    reader = content.reader()
    try:
        while True:
            chunk = reader.ready()
            if chunk is None:
                chunk = await to_thread.run_sync(reader.read)
            if not chunk:
                return
            yield chunk
    finally:
        reader.close()


class BlobBatch(Protocol):
    def add(self, session: Session, incoming: IncomingFile) -> None: ...
    def committed(self) -> None: ...
    def rolled_back(self) -> None: ...


class BlobStore(Protocol):
    name: str

    def batch(self) -> BlobBatch: ...
    def open(self, db: Db, sha256: str) -> BlobContent | None: ...
    def stored(self, session: Session) -> list[str]:
        """The hashes of every stored blob (for verifying and collecting)."""
        ...

    def remove(self, session: Session, hashes: list[str]) -> None:
        """Remove these blobs (the collector holds the lock; see maintenance)."""
        ...


class LocalBlobStore:
    """Files named by their SHA-256 under ``<data dir>/attachments/ab/cd/<sha256>``."""

    name = "local"

    def __init__(self, root: Path, sessions: sessionmaker[Session]) -> None:
        self.root = root
        self.sessions = sessions

    def path_of(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def batch(self) -> LocalBatch:
        return LocalBatch(self)

    def stored(self, session: Session) -> list[str]:
        if not self.root.is_dir():
            return []
        return [
            path.name
            for path in self.root.glob("[0-9a-f][0-9a-f]/[0-9a-f][0-9a-f]/*")
            if _SHA256.fullmatch(path.name) and path.name.startswith(path.parent.parent.name)
        ]

    def remove(self, session: Session, hashes: list[str]) -> None:
        for sha256 in hashes:
            self.path_of(sha256).unlink(missing_ok=True)

    def open(self, db: Db, sha256: str) -> BlobContent | None:
        path = self.path_of(sha256)
        try:
            return BlobContent(size=path.stat().st_size, path=path)
        except FileNotFoundError:
            return None


@dataclass
class LocalBatch:
    store: LocalBlobStore
    used: list[IncomingFile] = field(default_factory=list)
    created: list[str] = field(default_factory=list)

    def add(self, session: Session, incoming: IncomingFile) -> None:
        BlobRepository(session).lock_for_storing()
        target = self.store.path_of(incoming.sha256)
        self.used.append(incoming)
        if _link(incoming.path, target):
            self.created.append(incoming.sha256)

    def committed(self) -> None:
        # The incoming files live until the request ends, after this runs.
        for incoming in self.used:
            target = self.store.path_of(incoming.sha256)
            if not target.exists():
                _link(incoming.path, target)

    def rolled_back(self) -> None:
        if not self.created:
            return
        with unit_of_work(self.store.sessions, write=False) as session:
            blobs = BlobRepository(session)
            for sha256 in self.created:
                if not blobs.in_use(sha256):
                    self.store.path_of(sha256).unlink(missing_ok=True)


def _link(source: Path, target: Path) -> bool:
    """Give ``source`` the name ``target`` unless it exists; True when this call made it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except FileExistsError:
        return False
    return True


class DatabaseBlobStore:
    """Bytes in the database (``blobs`` and its ``blob_chunks``), for servers that share
    one PostgreSQL database. Read one chunk at a time, each in a short transaction of
    its own, so a download never holds a connection or a whole file (the bytes under a
    hash never change). With a ``cache``, a download is served from a checked copy on
    this server's disk when there is one, and makes one when there is not (see
    ``attachments.cache``)."""

    name = "database"

    def __init__(self, engine: Engine, cache: BlobCache | None = None) -> None:
        self.engine = engine
        self.cache = cache

    def batch(self) -> DatabaseBatch:
        return DatabaseBatch()

    def stored(self, session: Session) -> list[str]:
        return BlobRepository(session).stored_blobs()

    def remove(self, session: Session, hashes: list[str]) -> None:
        BlobRepository(session).delete_blobs(hashes)

    def open(self, db: Db, sha256: str) -> BlobContent | None:
        size = blob_size(db, sha256)
        if size is None:
            return None
        if self.cache is None:
            return BlobContent(size=size, pieces=partial(self._pieces, sha256))
        copy = self.cache.find(sha256, size)
        if copy is not None:
            return BlobContent(size=size, path=copy)
        return BlobContent(
            size=size, pieces=partial(self.cache.filling, sha256, size, self._pieces(sha256))
        )

    def _pieces(self, sha256: str) -> Iterator[bytes]:
        for seq in itertools.count():
            with read_transaction(self.engine) as db:
                piece = blob_chunk(db, sha256, seq)
            if piece is None:
                return
            yield piece


class DatabaseBatch:
    def add(self, session: Session, incoming: IncomingFile) -> None:
        repository = BlobRepository(session)
        repository.lock_for_storing()
        repository.put(incoming.sha256, incoming.size, _file_pieces(incoming.path))

    def committed(self) -> None:
        """The bytes were committed with the rows."""

    def rolled_back(self) -> None:
        """The bytes were rolled back with the rows."""


def _file_pieces(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while piece := handle.read(CHUNK):
            yield piece
