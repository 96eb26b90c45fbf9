"""Everything a process builds once at start-up and shares between requests."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from ledgerdesk.accounts.usage import KeyUsageRecorder
from ledgerdesk.clock import Clock, SystemClock
from ledgerdesk.config import Settings
from ledgerdesk.db.engine import build_engine, build_session_factory


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    clock: Clock = field(default_factory=SystemClock)
    key_usage: KeyUsageRecorder = field(default_factory=KeyUsageRecorder)

    @classmethod
    def build(cls, settings: Settings, clock: Clock | None = None) -> Runtime:
        engine = build_engine(settings)
        return cls(
            settings=settings,
            engine=engine,
            sessions=build_session_factory(engine),
            clock=clock or SystemClock(),
        )

    def flush_key_usage(self) -> int:
        return self.key_usage.flush(self.sessions)

    def close(self) -> None:
        self.flush_key_usage()
        self.engine.dispose()
