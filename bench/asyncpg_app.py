"""The PostgreSQL yardstick: a minimal raw ASGI + asyncpg app doing ledgerdesk's queries
(``yardstick``: what it does and leaves out). Statements are prepared and cached by
asyncpg. Run by bench/realistic.py with ``DATABASE_URL`` (postgresql://...).
"""

from __future__ import annotations

import json
import os
from datetime import date
from typing import Any

import asyncpg
import yardstick


class Postgres:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self.connection = connection

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        return list(await self.connection.fetch(sql, *args))

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        return await self.connection.fetchrow(sql, *args)

    def day(self, text: str) -> date:
        return yardstick.day(text)

    async def create_ticket(self, user_id: int, fields: dict[str, Any], now: int) -> int:
        while True:
            try:
                async with self.connection.transaction():
                    ticket_id: int = await self.connection.fetchval(
                        yardstick.NEW_TICKET,
                        yardstick.new_code(),
                        user_id,
                        fields["title"],
                        fields["priorityId"],
                        now,
                    )
                    await self.connection.execute(
                        yardstick.NEW_REPLY,
                        ticket_id,
                        user_id,
                        now,
                        fields["title"],
                        fields["content"],
                    )
            except asyncpg.UniqueViolationError:
                continue
            return ticket_id


_pool: asyncpg.Pool | None = None


async def _init(connection: asyncpg.Connection) -> None:
    await connection.set_type_codec(
        "json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
    )


async def _startup() -> None:
    global _pool
    _pool = await asyncpg.create_pool(
        os.environ["DATABASE_URL"], min_size=10, max_size=10, init=_init
    )


async def _shutdown() -> None:
    if _pool is not None:
        await _pool.close()


async def _handle(body: bytes) -> tuple[int, bytes]:
    assert _pool is not None
    async with _pool.acquire() as connection:
        return await yardstick.handle(Postgres(connection), body)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """(A function of its own: uvicorn takes anything else for an ASGI 2 app.)"""
    await yardstick.asgi(
        scope, receive, send, startup=_startup, shutdown=_shutdown, handler=_handle
    )
