"""Everything a process builds once at start-up and shares between requests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from ledgerdesk.accounts.usage import KeyUsageRecorder
from ledgerdesk.attachments.cache import BlobCache
from ledgerdesk.attachments.incoming import IncomingArea, incoming_directory
from ledgerdesk.attachments.maintenance import StorageMaintenance
from ledgerdesk.attachments.storage import BlobBatch, BlobStore, DatabaseBlobStore, LocalBlobStore
from ledgerdesk.audit.service import AuditLog
from ledgerdesk.clock import Clock, SystemClock, day_of
from ledgerdesk.config import Settings
from ledgerdesk.db.engine import build_engine, build_session_factory, unit_of_work
from ledgerdesk.events.work import Actor, Origin, Work
from ledgerdesk.service_levels import ServiceLevels


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    blobs: BlobStore
    clock: Clock = field(default_factory=SystemClock)
    key_usage: KeyUsageRecorder = field(default_factory=KeyUsageRecorder)
    audit: AuditLog = field(default_factory=AuditLog)
    _last_day: tuple[int, date] | None = field(default=None, init=False, repr=False)

    @classmethod
    def build(cls, settings: Settings, clock: Clock | None = None) -> Runtime:
        engine = build_engine(settings)
        sessions = build_session_factory(engine)
        blobs: BlobStore = (
            LocalBlobStore(settings.data_dir / "attachments", sessions)
            if settings.attachment_store == "local"
            else DatabaseBlobStore(
                engine,
                BlobCache(settings.data_dir / "blob-cache", settings.blob_cache_bytes)
                if settings.blob_cache_bytes
                else None,
            )
        )
        return cls(
            settings=settings,
            engine=engine,
            sessions=sessions,
            blobs=blobs,
            clock=clock or SystemClock(),
        )

    @cached_property
    def service_levels(self) -> ServiceLevels | None:
        """The settings' service levels, parsed once (None: off)."""
        return self.settings.service_levels()

    @cached_property
    def incoming(self) -> IncomingArea:
        return IncomingArea(incoming_directory(self.settings.data_dir))

    @property
    def incoming_dir(self) -> Path:
        """This process's folder for uploads as they arrive (created on first use)."""
        return self.incoming.path

    @contextmanager
    def transaction(self, *, write: bool) -> Iterator[tuple[Session, BlobBatch]]:
        """A unit of work whose attachment bytes are kept or dropped together with it."""
        blobs = self.blobs.batch()
        try:
            with unit_of_work(self.sessions, write=write) as session:
                yield session, blobs
        except BaseException:
            blobs.rolled_back()
            raise
        blobs.committed()

    @contextmanager
    def work(self, actor: Actor, origin: Origin, *, write: bool = True) -> Iterator[Work]:
        """A unit of work for the domain: a transaction (see ``transaction``), who acts,
        through which door, and now. The events its services record commit with it."""
        with self.transaction(write=write) as (session, blobs):
            now = self.clock.timestamp()
            yield Work(session, actor, origin, now, self.day_of(now), blobs, self.service_levels)

    def day_of(self, timestamp: int) -> date:
        """The date at ``timestamp`` in the configured time zone, memoised for the second."""
        cached = self._last_day
        if cached is not None and cached[0] == timestamp:
            return cached[1]
        day = day_of(timestamp, self.settings.timezone)
        self._last_day = (timestamp, day)
        return day

    @property
    def maintenance(self) -> StorageMaintenance:
        return StorageMaintenance(
            self.blobs, self.sessions, incoming_directory(self.settings.data_dir)
        )

    def flush_key_usage(self) -> int:
        return self.key_usage.flush(self.sessions)

    def flush_audit(self) -> int:
        return self.audit.flush(self.sessions)

    def close(self) -> None:
        try:
            self.flush_key_usage()
            self.flush_audit()
        finally:
            self.incoming.close()
            self.engine.dispose()
