"""A stored blob's chunks on an event loop: at once when the page cache holds them,
else read in a worker thread; the same bytes either way."""

from __future__ import annotations

import errno
import os
import platform
from pathlib import Path
from typing import Any

import pytest

from ledgerdesk.attachments import storage
from ledgerdesk.attachments.storage import CHUNK, BlobContent, FileChunks, streamed

pytestmark = pytest.mark.anyio

NOWAIT_READS = pytest.mark.skipif(
    platform.system() != "Linux" or storage._NOWAIT is None, reason="preadv2 RWF_NOWAIT"
)


def a_file(tmp_path: Path) -> tuple[Path, bytes]:
    data = os.urandom(CHUNK * 2 + CHUNK // 2)
    path = tmp_path / "blob"
    path.write_bytes(data)
    return path, data


class Counted(FileChunks):
    """A FileChunks that counts the chunks that had to be read with waiting."""

    waited = 0

    def read(self) -> bytes:
        Counted.waited += 1
        return super().read()


async def chunks_of(content: BlobContent) -> bytes:
    return b"".join([bytes(chunk) async for chunk in streamed(content)])


@NOWAIT_READS
async def test_a_file_in_the_page_cache_is_read_without_a_thread_after_its_first_chunk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, data = a_file(tmp_path)  # just written: its pages are in memory
    monkeypatch.setattr(storage, "FileChunks", Counted)
    Counted.waited = 0
    assert await chunks_of(BlobContent(size=len(data), path=path)) == data
    assert Counted.waited == 1  # the first chunk, which opens the file


async def test_chunks_the_kernel_would_wait_for_are_read_in_a_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, data = a_file(tmp_path)

    def on_disk(*args: Any) -> int:
        raise BlockingIOError(errno.EAGAIN, "would block")

    monkeypatch.setattr(storage, "_NOWAIT", 8)
    monkeypatch.setattr(os, "preadv", on_disk)
    monkeypatch.setattr(storage, "FileChunks", Counted)
    Counted.waited = 0
    assert await chunks_of(BlobContent(size=len(data), path=path)) == data
    assert Counted.waited == 4  # three chunks and the end


async def test_a_file_system_that_cannot_say_is_read_in_threads_from_then_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, data = a_file(tmp_path)
    asked = []

    def unsupported(*args: Any) -> int:
        asked.append(args)
        raise OSError(errno.EOPNOTSUPP, "not supported")

    monkeypatch.setattr(storage, "_NOWAIT", 8)
    monkeypatch.setattr(os, "preadv", unsupported)
    reader = FileChunks(path)
    try:
        assert reader.ready() is None  # not open yet
        assert reader.read() == data[:CHUNK]
        assert reader.ready() is None
        assert reader.ready() is None
        assert len(asked) == 1
        assert reader.read() == data[CHUNK : 2 * CHUNK]
    finally:
        reader.close()
    assert reader.fd is None


async def test_chunks_in_memory_or_from_an_iterator_come_whole() -> None:
    assert await chunks_of(BlobContent(size=3, data=b"abc")) == b"abc"
    pieces = [b"one", b"two", b"three"]
    from_database = BlobContent(size=11, pieces=lambda: iter(pieces))
    assert await chunks_of(from_database) == b"onetwothree"


async def test_a_reader_stopped_early_closes_its_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, data = a_file(tmp_path)
    readers: list[FileChunks] = []

    class Kept(FileChunks):
        def __init__(self, path: Path) -> None:
            super().__init__(path)
            readers.append(self)

    monkeypatch.setattr(storage, "FileChunks", Kept)
    chunks = streamed(BlobContent(size=len(data), path=path))
    assert bytes(await chunks.__anext__()) == data[:CHUNK]
    await chunks.aclose()  # the client went away
    assert readers[0].fd is None
