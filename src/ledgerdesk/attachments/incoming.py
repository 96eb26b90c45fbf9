"""Uploads on their way in: written to a temporary file as they arrive, hashed on the fly.

Every attachment, whether it came as base64 in JSON or as a multipart file part, becomes
an ``IncomingFile`` before the domain sees it: a complete, fsynced temporary file with
its SHA-256 and size. The stores take it from there (a local store links it into place
without copying). Temporary files are removed when the request ends.
"""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
import time
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


def sweep_incoming(directory: Path, older_than_seconds: float) -> int:
    """Remove uploads left behind by a crashed process; returns how many."""
    if not directory.is_dir():
        return 0
    cutoff = time.time() - older_than_seconds
    removed = 0
    for leftover in directory.glob("in-*.part"):
        try:
            if leftover.stat().st_mtime < cutoff:
                leftover.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed


def decode_base64(text: str) -> bytes:
    """Standard padded base64 (RFC 4648 section 4); MIME-style line breaks allowed.

    Raises ``binascii.Error`` (a ValueError) on anything else.
    """
    return base64.b64decode(text.replace("\r", "").replace("\n", ""), validate=True)


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
            writer.write(decode_base64(content))
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
