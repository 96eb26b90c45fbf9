"""Uploads on their way in: written to a temporary file as they arrive, hashed on the fly.

Every attachment, whether it came as base64 in JSON or as a multipart file part, becomes
an ``IncomingFile`` before the domain sees it: a complete, fsynced temporary file with
its SHA-256 and size. The stores take it from there (a local store links it into place
without copying). Temporary files are removed when the request ends.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import hashlib
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ledgerdesk.errors import PayloadTooLarge


@dataclass(frozen=True)
class IncomingFile:
    name: str
    content_type: str
    size: int
    sha256: str
    path: Path

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


class IncomingWriter:
    """Writes one upload; refuses it with 4001 as soon as it passes ``limit`` bytes."""

    def __init__(self, directory: Path, limit: int, label: str) -> None:
        self.limit = limit
        self.label = label
        self.size = 0
        self._hash = hashlib.sha256()
        handle, name = tempfile.mkstemp(dir=directory, prefix="in-", suffix=".part")
        self.path = Path(name)
        self._file = os.fdopen(handle, "wb")

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.limit:
            self.discard()
            raise PayloadTooLarge(f"Attachment {self.label!r} is larger than {self.limit} bytes.")
        self._hash.update(data)
        self._file.write(data)

    def finish(self, name: str, content_type: str) -> IncomingFile:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        return IncomingFile(
            name=name,
            content_type=content_type,
            size=self.size,
            sha256=self._hash.hexdigest(),
            path=self.path,
        )

    def discard(self) -> None:
        if not self._file.closed:
            self._file.close()
        self.path.unlink(missing_ok=True)


def incoming_directory(data_dir: Path) -> Path:
    return data_dir / "attachments" / "incoming"


# A folder of a process that died without a lock file (its sweeper crashed half-way)
# is removed once it is this old: far longer than any request of a live process takes.
STALE_SECONDS = 3600.0


class IncomingArea:
    """This process's own folder under ``incoming/``, locked for as long as it lives.

    Several workers (or servers sharing the data directory) each write uploads into a
    folder of their own, ``<name>/``, beside a lock file ``<name>.lock`` on which they
    hold an exclusive ``flock`` until they exit. The lock goes when the process goes,
    however it ends, so at start-up every folder whose lock can be taken belongs to a
    dead process and is removed whole (``sweep_incoming``), with no age to wait for.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock: int | None = None
        self._path: Path | None = None

    @property
    def path(self) -> Path:
        if self._path is None:
            self._path = self._open()
        return self._path

    def _open(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        while True:
            name = f"p{os.getpid()}-{secrets.token_hex(6)}"
            lock_path = self.root / f"{name}.lock"
            descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            if _same_file(descriptor, lock_path):
                break
            os.close(descriptor)  # a sweeper removed it between open and lock: again
        directory = self.root / name
        directory.mkdir()
        self._lock = descriptor
        return directory

    def close(self) -> None:
        """Remove the folder (a clean exit); a crash leaves it to the next sweep."""
        if self._lock is None or self._path is None:
            return
        shutil.rmtree(self._path, ignore_errors=True)
        Path(f"{self._path}.lock").unlink(missing_ok=True)
        os.close(self._lock)
        self._lock = None
        self._path = None


def _same_file(descriptor: int, path: Path) -> bool:
    try:
        on_disk = path.stat()
    except FileNotFoundError:
        return False
    held = os.fstat(descriptor)
    return (held.st_dev, held.st_ino) == (on_disk.st_dev, on_disk.st_ino)


def sweep_incoming(root: Path) -> list[Path]:
    """Remove the upload folders of dead processes; returns what was removed.

    Safe while other processes run: a live process holds its folder's lock.
    """
    return _leftovers(root, remove=True)


def leftover_uploads(root: Path) -> list[Path]:
    """What ``sweep_incoming`` would remove, without removing it (for storage verify)."""
    return _leftovers(root, remove=False)


def _leftovers(root: Path, *, remove: bool) -> list[Path]:
    if not root.is_dir():
        return []
    found: list[Path] = []
    for lock_path in root.glob("*.lock"):
        try:
            descriptor = os.open(lock_path, os.O_RDWR)
        except FileNotFoundError:
            continue
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # its process is alive
            if not _same_file(descriptor, lock_path):
                continue
            folder = lock_path.with_suffix("")
            found.append(folder)
            if remove:
                shutil.rmtree(folder, ignore_errors=True)
                lock_path.unlink(missing_ok=True)
        finally:
            os.close(descriptor)
    cutoff = time.time() - STALE_SECONDS
    for entry in root.iterdir():
        # Uploads of older versions (directly in incoming/) and folders whose lock file
        # is gone: only when old enough that no live request can be using them.
        if entry.suffix == ".lock" or Path(f"{entry}.lock").exists():
            continue
        try:
            if entry.lstat().st_mtime >= cutoff:
                continue
            if remove and entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            elif remove:
                entry.unlink()
        except FileNotFoundError:
            continue
        found.append(entry)
    return found


_LINE_BREAKS = str.maketrans("", "", "\r\n")
# Base64 is decoded this many characters at a time (a multiple of 4), so a 10 MiB
# attachment never exists as a second whole copy in memory.
DECODE_CHUNK = 4 * 64 * 1024


def base64_decoded_size(text: str) -> int | None:
    """The decoded length of padded base64 (line breaks allowed), or None if it can't be.

    Counts instead of decoding: the bytes are decoded once, in chunks, when they are
    written to disk (``decode_base64_chunks``), which also checks every character.
    """
    length = len(text) - text.count("\r") - text.count("\n")
    if length % 4:
        return None
    if length == 0:
        return 0
    tail = text.rstrip("\r\n")[-2:]
    return length // 4 * 3 - tail.count("=")


def decode_base64_chunks(text: str) -> Iterator[bytes]:
    """Standard padded base64 (RFC 4648 section 4) as decoded chunks; MIME line breaks allowed.

    Raises ``binascii.Error`` (a ValueError) on anything else, padding included that
    is not at the very end.
    """
    if "\r" in text or "\n" in text:
        text = text.translate(_LINE_BREAKS)
    last = len(text) - DECODE_CHUNK
    for start in range(0, len(text), DECODE_CHUNK):
        chunk = text[start : start + DECODE_CHUNK]
        if start < last and "=" in chunk:
            raise binascii.Error("padding before the end")
        yield base64.b64decode(chunk, validate=True)


@dataclass
class RequestFiles:
    """The request's attachments as incoming files: multipart uploads, plus base64 ones
    decoded on demand. All of them are temporary and removed when the request ends."""

    directory: Path
    limit: int
    uploaded: list[IncomingFile]
    decoded: list[IncomingFile] = field(default_factory=list)

    def from_base64(self, name: str, content_type: str, content: str) -> IncomingFile:
        writer = IncomingWriter(self.directory, self.limit, name)
        try:
            for chunk in decode_base64_chunks(content):
                writer.write(chunk)
            incoming = writer.finish(name, content_type)
        except BaseException:
            writer.discard()
            raise
        self.decoded.append(incoming)
        return incoming

    def discard(self) -> None:
        for incoming in (*self.uploaded, *self.decoded):
            incoming.discard()
        self.decoded.clear()
