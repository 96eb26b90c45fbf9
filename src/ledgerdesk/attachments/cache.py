"""A read-through file cache of the database store's bytes, on each server's own disk.

Bytes under a SHA-256 never change, so a copy is never stale: a download from the
database store (``DatabaseBlobStore``) is served from ``<data dir>/blob-cache/ab/cd/<sha256>``
when that file is there, and otherwise streamed from the database while it is written
there beside the answer. The database stays the authority on what exists: a blob is
looked up there before its copy is used, so a removed blob is never served.

A copy becomes visible only whole and checked: it is written under a name of its own,
its SHA-256 computed on the way, and renamed into place only if it matches. A download
cut short leaves nothing. Several processes may fill the same file at once (the same
bytes, one rename wins). Files used least recently (their modification time, touched
at each use) are removed when the cache grows past its size
(``LEDGERDESK_BLOB_CACHE_BYTES``); a disk that refuses writes only turns the cache off
for that download.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger("ledgerdesk.attachments")

# After growing past its size, the cache is trimmed to this part of it.
TRIM_TO = 0.9
_PARTIAL = ".partial-"


class BlobCache:
    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes

    def path_of(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def find(self, sha256: str, size: int) -> Path | None:
        """The cached copy, if there is a whole one (and mark it used)."""
        path = self.path_of(sha256)
        try:
            if path.stat().st_size != size:
                return None
            os.utime(path)
        except OSError:
            return None
        return path

    def filling(self, sha256: str, size: int, pieces: Iterator[bytes]) -> Iterator[bytes]:
        """``pieces`` passed through, copied into the cache on the way."""
        target = self.path_of(sha256)
        partial = target.parent / f"{_PARTIAL}{os.getpid()}-{secrets.token_hex(4)}"
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            handle = partial.open("wb")
        except OSError as exc:
            log.warning("blob cache: cannot write in %s (%s)", self.root, type(exc).__name__)
            yield from pieces
            return
        digest = hashlib.sha256()
        length = 0
        kept = False
        try:
            with handle:
                for piece in pieces:
                    handle.write(piece)
                    digest.update(piece)
                    length += len(piece)
                    yield piece
            if length == size and digest.hexdigest() == sha256:
                os.replace(partial, target)
                kept = True
        except OSError as exc:  # a full disk: the download goes on without the cache
            log.warning("blob cache: could not keep %s (%s)", sha256, type(exc).__name__)
        finally:
            if not kept:
                partial.unlink(missing_ok=True)
        if kept:
            self.trim()

    def trim(self) -> int:
        """Remove the least recently used copies while the cache is over its size;
        how many were removed. Partial files of processes that died go too."""
        entries = []
        total = 0
        for path in self.root.glob("[0-9a-f][0-9a-f]/[0-9a-f][0-9a-f]/*"):
            try:
                found = path.stat()
            except FileNotFoundError:
                continue
            if path.name.startswith(_PARTIAL):
                if not _alive(path.name):
                    path.unlink(missing_ok=True)
                continue
            entries.append((found.st_mtime, found.st_size, path))
            total += found.st_size
        if total <= self.max_bytes:
            return 0
        removed = 0
        for _, size, path in sorted(entries):
            if total <= self.max_bytes * TRIM_TO:
                break
            path.unlink(missing_ok=True)
            total -= size
            removed += 1
        return removed


def _alive(partial_name: str) -> bool:
    pid = partial_name.removeprefix(_PARTIAL).partition("-")[0]
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
