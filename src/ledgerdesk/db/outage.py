"""When the database (or the disk under it) fails: a clean answer and a quiet log.

A database that is down, hung or out of disk fails every request the same way. Each is
answered 503 (errorCode 5000, ``Retry-After``) with one sentence, never a traceback;
and the log gets one line a second saying what failed and how many more requests it
failed since, not one traceback per request (4,100 in ten seconds otherwise).
"""

from __future__ import annotations

import errno
import logging
import time

import asyncpg
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from ledgerdesk.errors import DatabaseUnavailable

RETRY_AFTER_SECONDS = 5
# Errors of the disk itself, rather than of a request.
_DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO})


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` says the database or its disk failed, not the request."""
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeout | TimeoutError):
        return True
    if isinstance(exc, asyncpg.PostgresConnectionError | asyncpg.InterfaceError):
        return True
    if isinstance(exc, asyncpg.QueryCanceledError | asyncpg.CannotConnectNowError):
        return True
    if isinstance(exc, ConnectionError):
        return True
    return isinstance(exc, OSError) and exc.errno in _DISK_ERRNOS


def unavailable() -> DatabaseUnavailable:
    return DatabaseUnavailable(RETRY_AFTER_SECONDS)


class OutageLog:
    """Logs outages at most once a second, with how many were left unsaid."""

    def __init__(self, log: logging.Logger, *, every: float = 1.0) -> None:
        self.log = log
        self.every = every
        self.last = float("-inf")
        self.unsaid = 0

    def failed(self, exc: BaseException, request_id: str) -> None:
        now = time.monotonic()
        if now - self.last < self.every:
            self.unsaid += 1
            return
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        more = f" ({self.unsaid} more requests failed alike since)" if self.unsaid else ""
        self.log.error(
            "database unavailable: %s: %s; request %s answered 503%s",
            type(exc).__name__,
            first_line[:300],
            request_id,
            more,
        )
        self.last = now
        self.unsaid = 0
