"""Keeping attachment storage clean: orphan collection and verification.

Orphans are stored bytes that no attachment row points at: what a process killed
between storing bytes and committing leaves behind. Leftovers are the upload folders of
dead processes (see ``incoming.IncomingArea``).

Collecting orphans must never take bytes that a transaction in flight is about to
commit a row for. So it runs in two steps: candidates are found without any lock
(which may take long on a large store), then, holding the lock that every transaction
storing bytes holds shared until it commits (``BlobRepository.lock_for_storing``; on
SQLite the write lock itself), each candidate is checked again and removed. While the
collector holds it no such transaction is in flight, and any committed since the
first step has its rows visible to the second.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from ledgerdesk.attachments.incoming import leftover_uploads, sweep_incoming
from ledgerdesk.attachments.repository import BlobRepository
from ledgerdesk.attachments.storage import BlobStore
from ledgerdesk.db.engine import unit_of_work
from ledgerdesk.db.prepared import session_db


@dataclass
class StorageReport:
    store: str
    checked: int = 0
    missing: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)
    removed: int = 0

    @property
    def healthy(self) -> bool:
        """No attachment has lost its bytes or had them changed."""
        return not self.missing and not self.corrupt


@dataclass(frozen=True)
class StorageMaintenance:
    store: BlobStore
    sessions: sessionmaker[Session]
    incoming_root: Path

    def orphan_candidates(self) -> list[str]:
        with unit_of_work(self.sessions, write=False) as session:
            stored = self.store.stored(session)
            used = BlobRepository(session).used(stored)
        return sorted(set(stored) - used)

    def collect_orphans(self) -> list[str]:
        """Remove stored bytes no attachment row points at; returns their hashes."""
        candidates = self.orphan_candidates()
        if not candidates:
            return []
        with unit_of_work(self.sessions, write=True) as session:
            repository = BlobRepository(session)
            repository.lock_for_collecting()
            orphans = sorted(set(candidates) - repository.used(candidates))
            self.store.remove(session, orphans)
        return orphans

    def clean(self) -> tuple[list[Path], list[str]]:
        """What start-up does: dead processes' uploads, then orphaned bytes."""
        return sweep_incoming(self.incoming_root), self.collect_orphans()

    def verify(self, *, repair: bool) -> StorageReport:
        """Check every attachment's bytes against its SHA-256 and size; find the rest."""
        report = StorageReport(store=self.store.name)
        with unit_of_work(self.sessions, write=False) as session:
            db = session_db(session)
            for sha256, size in BlobRepository(session).referenced():
                report.checked += 1
                content = self.store.open(db, sha256)
                if content is None:
                    report.missing.append(sha256)
                    continue
                digest = hashlib.sha256()
                length = 0
                for chunk in content.chunks():
                    digest.update(chunk)
                    length += len(chunk)
                if length != size or digest.hexdigest() != sha256:
                    report.corrupt.append(sha256)
        if repair:
            removed = sweep_incoming(self.incoming_root)
            report.leftovers = [str(path) for path in removed]
            report.orphans = self.collect_orphans()
            report.removed = len(report.leftovers) + len(report.orphans)
        else:
            report.leftovers = [str(path) for path in leftover_uploads(self.incoming_root)]
            report.orphans = self.orphan_candidates()
        return report
