"""The database store's file cache: a copy only whole and checked, served while the
database still has the blob, trimmed least recently used first."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from ledgerdesk.attachments.cache import BlobCache
from ledgerdesk.attachments.storage import CHUNK, DatabaseBlobStore
from ledgerdesk.db.engine import unit_of_work
from ledgerdesk.db.prepared import session_db
from ledgerdesk.runtime import Runtime
from tests.support import incoming


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_copy_is_kept_only_whole_and_matching(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path / "cache", 10_000_000)
    data = os.urandom(3000)
    pieces = [data[:1000], data[1000:2000], data[2000:]]
    assert list(cache.filling(sha(data), 3000, iter(pieces))) == pieces
    assert cache.find(sha(data), 3000) == cache.path_of(sha(data))
    assert cache.path_of(sha(data)).read_bytes() == data
    assert cache.find(sha(data), 2999) is None  # not the size the database says

    # A download cut short leaves nothing, nor do bytes that are not what the name says.
    other = os.urandom(3000)
    cut = cache.filling(sha(other), 3000, iter([other[:1000], other[1000:]]))
    next(cut)
    cut.close()
    assert cache.find(sha(other), 3000) is None
    assert list(cache.filling(sha(other), 3000, iter([b"x" * 3000]))) == [b"x" * 3000]
    assert cache.find(sha(other), 3000) is None
    assert [p.name for p in cache.path_of(sha(other)).parent.iterdir()] == []


def test_the_least_recently_used_go_first(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path / "cache", 2500)
    blobs = [os.urandom(1000) for _ in range(3)]
    for n, data in enumerate(blobs[:2]):
        list(cache.filling(sha(data), 1000, iter([data])))
        os.utime(cache.path_of(sha(data)), (time.time() - 100 + n, time.time() - 100 + n))
    cache.find(sha(blobs[0]), 1000)  # used now: the second is the oldest
    list(cache.filling(sha(blobs[2]), 1000, iter([blobs[2]])))
    assert cache.find(sha(blobs[1]), 1000) is None
    assert cache.find(sha(blobs[0]), 1000) is not None
    assert cache.find(sha(blobs[2]), 1000) is not None
    # The partial file of a process that is gone is removed at the next trim.
    dead = cache.path_of(sha(blobs[0])).parent / ".partial-999999999-ab"
    dead.write_bytes(b"half")
    cache.trim()
    assert not dead.exists()


def test_downloads_from_the_database_store_fill_and_use_the_cache(
    runtime: Runtime, tmp_path: Path
) -> None:
    data = os.urandom(2 * CHUNK + 77)
    upload = incoming(tmp_path / "in", data, "big.bin")
    cache = BlobCache(tmp_path / "cache", 10 * CHUNK)
    store = DatabaseBlobStore(runtime.engine, cache)
    with unit_of_work(runtime.sessions, write=True) as session:
        store.batch().add(session, upload)

    def download() -> tuple[bytes, Path | None] | None:
        with unit_of_work(runtime.sessions, write=False) as session:
            content = store.open(session_db(session), upload.sha256)
        return None if content is None else (content.read(), content.path)

    assert download() == (data, None)  # from the database, copied on the way
    assert download() == (data, cache.path_of(upload.sha256))  # from the copy
    # Gone from the database: the copy is not served.
    with unit_of_work(runtime.sessions, write=True) as session:
        store.remove(session, [upload.sha256])
    assert cache.path_of(upload.sha256).exists()
    assert download() is None
