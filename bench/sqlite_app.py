"""The SQLite yardstick: a minimal raw ASGI + standard-library ``sqlite3`` app doing
ledgerdesk's queries (``yardstick``: what it does and leaves out). One connection, used
on the event loop (SQLite answers from memory-mapped pages in microseconds; a thread
hop would cost more than the query), in WAL mode with the same ``mmap_size`` as
ledgerdesk's reader. Run by bench/realistic.py with ``DATABASE_PATH``.
"""

from __future__ import annotations

import os
import re
import sqlite3
from functools import lru_cache
from typing import Any

import yardstick

MMAP_BYTES = 1 << 31


@lru_cache(maxsize=64)
def _numbered(sql: str) -> str:
    """``$1`` as SQLite's ``?1``."""
    return re.sub(r"\$(\d+)", r"?\1", sql)


class Sqlite:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        return self.connection.execute(_numbered(sql), args).fetchall()

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        return self.connection.execute(_numbered(sql), args).fetchone()

    def day(self, text: str) -> str:
        return yardstick.day(text).isoformat()

    async def create_ticket(self, user_id: int, fields: dict[str, Any], now: int) -> int:
        while True:
            try:
                with self.connection:  # one transaction
                    (ticket_id,) = self.connection.execute(
                        _numbered(yardstick.NEW_TICKET),
                        (yardstick.new_code(), user_id, fields["title"], fields["priorityId"], now),
                    ).fetchone()
                    self.connection.execute(
                        _numbered(yardstick.NEW_REPLY),
                        (ticket_id, user_id, now, fields["title"], fields["content"]),
                    )
            except sqlite3.IntegrityError:
                continue
            return int(ticket_id)


_db: Sqlite | None = None


async def _startup() -> None:
    global _db
    connection = sqlite3.connect(os.environ["DATABASE_PATH"], timeout=30)
    connection.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
    connection.execute("PRAGMA journal_mode=WAL")
    _db = Sqlite(connection)


async def _shutdown() -> None:
    if _db is not None:
        _db.connection.close()


async def _handle(body: bytes) -> tuple[int, bytes]:
    assert _db is not None
    return await yardstick.handle(_db, body)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """(A function of its own: uvicorn takes anything else for an ASGI 2 app.)"""
    await yardstick.asgi(
        scope, receive, send, startup=_startup, shutdown=_shutdown, handler=_handle
    )
