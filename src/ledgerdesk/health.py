"""Whether this process should be sent requests (``/readyz``): its database answers and
is at the schema this code expects, Redis answers when one is set, the attachment store
takes files, and the process is not stopping. ``/healthz`` asks less: that the process
answers at all.

Each check says what it found in a few words, never a driver's message (those may name
hosts and users; the log gets the first line).
"""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass, field

import redis
from sqlalchemy import text

from ledgerdesk.attachments.storage import LocalBlobStore
from ledgerdesk.db.migrate import current_revision, head_revision
from ledgerdesk.process import stopping
from ledgerdesk.runtime import Runtime

log = logging.getLogger("ledgerdesk.health")

# Each outside service gets this long to answer a readiness check.
CHECK_SECONDS = 2.0


@dataclass
class Readiness:
    checks: dict[str, str] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return not self.failed

    def body(self) -> dict[str, object]:
        return {"status": "ready" if self.ready else "unready", "checks": self.checks}

    def passed(self, name: str, found: str) -> None:
        self.checks[name] = found

    def failing(self, name: str, found: str, exc: BaseException | None = None) -> None:
        self.checks[name] = found
        self.failed.append(name)
        if exc is not None:
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            log.warning("readiness: %s: %s: %s", name, type(exc).__name__, first)


def readiness(runtime: Runtime) -> Readiness:
    """Every check, each on its own (blocking: run it in a thread)."""
    found = Readiness()
    if stopping():
        found.failing("process", "stopping")
    else:
        found.passed("process", "serving")
    _database(runtime, found)
    _redis(runtime, found)
    _attachments(runtime, found)
    return found


def _database(runtime: Runtime, found: Readiness) -> None:
    try:
        with runtime.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        found.failing("database", f"unavailable ({type(exc).__name__})", exc)
        return
    found.passed("database", "ok")
    try:
        revision = current_revision(runtime.engine)
    except Exception as exc:
        found.failing("migration", f"unreadable ({type(exc).__name__})", exc)
        return
    expected = head_revision()
    if revision == expected:
        found.passed("migration", revision)
    else:
        found.failing("migration", f"at {revision or 'none'}, this version needs {expected}")


def _redis(runtime: Runtime, found: Readiness) -> None:
    url = runtime.settings.redis_url
    if url is None:
        found.passed("redis", "not used")
        return
    client = redis.Redis.from_url(
        url, socket_timeout=CHECK_SECONDS, socket_connect_timeout=CHECK_SECONDS
    )
    try:
        client.ping()
    except Exception as exc:
        found.failing("redis", f"unavailable ({type(exc).__name__})", exc)
        return
    finally:
        client.close()
    found.passed("redis", "ok")


def _attachments(runtime: Runtime, found: Readiness) -> None:
    store = runtime.blobs
    if not isinstance(store, LocalBlobStore):
        found.passed("attachments", "in the database")
        return
    probe = store.root / f".ready-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        store.root.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"ready")
        probe.unlink()
    except OSError as exc:
        found.failing("attachments", f"not writable ({type(exc).__name__})", exc)
        return
    found.passed("attachments", "writable")
