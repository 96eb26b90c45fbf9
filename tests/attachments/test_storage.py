"""The local attachment store: whole files under real names, nothing lost, nothing left."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from ledgerdesk.attachments.incoming import IncomingFile, IncomingWriter, sweep_incoming
from ledgerdesk.attachments.storage import LocalBlobStore
from ledgerdesk.errors import PayloadTooLarge
from ledgerdesk.runtime import Runtime


def incoming(directory: Path, data: bytes, name: str = "f.bin") -> IncomingFile:
    directory.mkdir(parents=True, exist_ok=True)
    writer = IncomingWriter(directory, 1 << 20, name)
    writer.write(data)
    return writer.finish(name, "application/octet-stream")


def test_incoming_file_is_hashed_as_it_is_written(tmp_path: Path) -> None:
    writer = IncomingWriter(tmp_path, 100, "a")
    writer.write(b"hello ")
    writer.write(b"world")
    done = writer.finish("a.txt", "text/plain")
    assert done.sha256 == hashlib.sha256(b"hello world").hexdigest()
    assert done.size == 11
    assert done.path.read_bytes() == b"hello world"


def test_incoming_file_over_the_limit_is_refused_and_removed(tmp_path: Path) -> None:
    writer = IncomingWriter(tmp_path, 10, "big.bin")
    writer.write(b"x" * 10)
    with pytest.raises(PayloadTooLarge, match=r"big\.bin"):
        writer.write(b"y")
    assert list(tmp_path.iterdir()) == []


def test_sweep_removes_only_old_leftovers(tmp_path: Path) -> None:
    old = tmp_path / "in-old.part"
    fresh = tmp_path / "in-fresh.part"
    other = tmp_path / "keep.txt"
    for path in (old, fresh, other):
        path.write_bytes(b"x")
    an_hour_ago = time.time() - 7200
    os.utime(old, (an_hour_ago, an_hour_ago))
    os.utime(other, (an_hour_ago, an_hour_ago))
    assert sweep_incoming(tmp_path, 3600) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in-fresh.part", "keep.txt"]


@pytest.fixture
def store(runtime: Runtime, tmp_path: Path) -> LocalBlobStore:
    sessions: sessionmaker[Session] = runtime.sessions
    return LocalBlobStore(tmp_path / "blobs", sessions)


def test_stored_file_is_named_by_its_sha256(
    store: LocalBlobStore, runtime: Runtime, tmp_path: Path
) -> None:
    upload = incoming(tmp_path / "in", b"content")
    batch = store.batch()
    with runtime.sessions() as session:
        batch.add(session, upload)
    batch.committed()
    target = store.path_of(upload.sha256)
    assert target == tmp_path / "blobs" / upload.sha256[:2] / upload.sha256[2:4] / upload.sha256
    upload.discard()
    assert target.read_bytes() == b"content"


def test_rollback_removes_what_the_batch_created(
    store: LocalBlobStore, runtime: Runtime, tmp_path: Path
) -> None:
    upload = incoming(tmp_path / "in", b"doomed")
    batch = store.batch()
    with runtime.sessions() as session:
        batch.add(session, upload)
    assert store.path_of(upload.sha256).exists()
    batch.rolled_back()
    assert not store.path_of(upload.sha256).exists()


def test_commit_restores_a_file_a_concurrent_rollback_removed(
    store: LocalBlobStore, runtime: Runtime, tmp_path: Path
) -> None:
    # A creates the file; B finds it and relies on it; A fails before B commits.
    first = incoming(tmp_path / "in", b"same bytes", "a")
    second = incoming(tmp_path / "in", b"same bytes", "b")
    a, b = store.batch(), store.batch()
    with runtime.sessions() as session:
        a.add(session, first)
        b.add(session, second)
    a.rolled_back()
    assert not store.path_of(first.sha256).exists()
    b.committed()
    assert store.path_of(second.sha256).read_bytes() == b"same bytes"
