"""The attachment stores: whole files under real names, nothing lost, nothing left;
the database store in chunks."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from ledgerdesk.attachments.incoming import (
    IncomingArea,
    IncomingWriter,
    sweep_incoming,
)
from ledgerdesk.attachments.storage import CHUNK, DatabaseBlobStore, LocalBlobStore
from ledgerdesk.db.engine import unit_of_work
from ledgerdesk.db.models import BlobChunk
from ledgerdesk.db.prepared import session_db
from ledgerdesk.errors import PayloadTooLarge
from ledgerdesk.runtime import Runtime
from tests.support import incoming


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


def test_sweep_removes_the_folders_of_dead_processes_only(tmp_path: Path) -> None:
    alive = IncomingArea(tmp_path)
    (alive.path / "in-1.part").write_bytes(b"x")
    dead = tmp_path / "p999999-0123456789ab"
    dead.mkdir()
    (dead / "in-2.part").write_bytes(b"y")
    (tmp_path / "p999999-0123456789ab.lock").write_bytes(b"")  # nobody holds it
    removed = sweep_incoming(tmp_path)
    assert dead in removed
    assert not dead.exists()
    assert (alive.path / "in-1.part").exists()
    alive.close()
    assert list(tmp_path.iterdir()) == []


def test_sweep_keeps_recent_loose_files_and_removes_old_ones(tmp_path: Path) -> None:
    old = tmp_path / "in-old.part"
    fresh = tmp_path / "in-fresh.part"
    for path in (old, fresh):
        path.write_bytes(b"x")
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    assert sweep_incoming(tmp_path) == [old]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in-fresh.part"]


def test_a_lock_held_in_another_process_keeps_its_folder(tmp_path: Path) -> None:
    script = (
        "import sys, time; from pathlib import Path; "
        "from ledgerdesk.attachments.incoming import IncomingArea; "
        "a = IncomingArea(Path(sys.argv[1])); print(a.path, flush=True); time.sleep(30)"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        folder = Path(child.stdout.readline().strip())
        assert sweep_incoming(tmp_path) == []
        assert folder.is_dir()
    finally:
        child.kill()
        child.wait()
        assert child.stdout is not None
        child.stdout.close()
    # Killed: its lock went with it, and the next sweep takes the folder.
    assert folder in sweep_incoming(tmp_path)
    assert list(tmp_path.iterdir()) == []


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


def test_the_database_store_keeps_and_reads_bytes_one_chunk_at_a_time(
    runtime: Runtime, tmp_path: Path
) -> None:
    data = os.urandom(2 * CHUNK + 1234)
    upload = incoming(tmp_path / "in", data, "big.bin")
    store = DatabaseBlobStore(runtime.engine)
    for _ in range(2):  # the same bytes again are stored once
        with unit_of_work(runtime.sessions, write=True) as session:
            store.batch().add(session, upload)
    with unit_of_work(runtime.sessions, write=False) as session:
        pieces = session.execute(
            select(BlobChunk.seq, func.length(BlobChunk.data)).order_by(BlobChunk.seq)
        ).all()
        assert [tuple(piece) for piece in pieces] == [(0, CHUNK), (1, CHUNK), (2, 1234)]
        content = store.open(session_db(session), upload.sha256)
        assert store.open(session_db(session), "0" * 64) is None
    assert content is not None
    assert content.size == len(data)
    assert [len(chunk) for chunk in content.chunks()] == [CHUNK, CHUNK, 1234]
    assert content.read() == data
