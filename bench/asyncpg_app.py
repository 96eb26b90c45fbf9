"""The PostgreSQL yardstick: a minimal raw ASGI + asyncpg app doing ledgerdesk's queries.

What a hand-written service would do for the same protocol and the same data, with
nothing else: parse the JSON body, look up the customer's keys by user id and compare
the key's SHA-256, run the action's queries through an asyncpg pool (statements are
prepared and cached by asyncpg), encode the answer with orjson. No rate limits, audit,
validation messages or key-usage counting. Run by bench/realistic.py with
``DATABASE_URL`` (postgresql://...).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import random
import time
from datetime import date, datetime
from typing import Any

import asyncpg
import orjson

KEYS = """
SELECT k.id, k.key_hash, k.categories, k.ip_ranges, k.expires_on FROM api_keys k
JOIN users u ON u.id = k.user_id
WHERE k.user_id = $1 AND k.revoked_at IS NULL AND u.is_staff = false
AND u.disabled_at IS NULL
"""
OVERVIEW = """
SELECT id, code, user_id, title, reference, status, priority, created_at,
status_updated_at, last_updated_at FROM tickets WHERE user_id = $1
ORDER BY created_at DESC, id DESC
"""
TICKET = """
SELECT id, code, user_id, title, reference, status, priority, created_at,
status_updated_at, last_updated_at FROM tickets WHERE id = $1 AND user_id = $2
"""
REPLIES = """
SELECT r.author_id, u.name, r.created_at, r.title, r.content FROM ticket_replies r
JOIN users u ON u.id = r.author_id WHERE r.ticket_id = $1 AND r.internal = false
ORDER BY r.id
"""
ATTACHMENTS = """
SELECT a.id, a.reply_id, a.name, a.content_type, a.size FROM attachments a
JOIN ticket_replies r ON r.id = a.reply_id WHERE a.ticket_id = $1 AND r.internal = false
ORDER BY a.id
"""
INVOICE_IDS = """
SELECT id FROM invoices WHERE user_id = $1 AND created_on >= $2 AND created_on <= $3
AND kind = 'invoice' ORDER BY created_on, id
"""
INVOICE = """
SELECT i.id, i.number, i.title, i.description, i.created_on, i.pay_before,
i.amount_excl_vat_cents, i.vat_cents, i.vat_perc_hundredths, i.paid_on, i.kind, i.currency,
i.paid_cents, i.credited_cents, i.corrects_id, l.description, l.quantity_e4,
l.unit_price_e4, l.category, l.rate, l.net_cents
FROM invoices i JOIN invoice_lines l ON l.invoice_id = i.id
WHERE i.id = $1 AND i.user_id = $2 ORDER BY l.position
"""
NEW_TICKET = """
INSERT INTO tickets (code, user_id, title, reference, status, priority, created_at,
status_updated_at, last_updated_at) VALUES ($1, $2, $3, '', 1, $4, $5, $5, $5) RETURNING id
"""
NEW_REPLY = """
INSERT INTO ticket_replies (ticket_id, author_id, created_at, title, content, internal)
VALUES ($1, $2, $3, $4, $5, false)
"""

_pool: asyncpg.Pool | None = None


def _summary(row: Any) -> dict[str, Any]:
    return {
        "userId": row[2],
        "ticketId": row[0],
        "ticketCode": row[1],
        "created": row[7],
        "title": row[3],
        "reference": row[4],
        "status": row[5],
        "statusUpdateTime": row[8],
        "timeLastUpdated": row[9],
        "priorityId": row[6],
    }


def _day(text: str) -> date:
    return datetime.strptime(text, "%d-%m-%Y").date()


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


async def _answer(connection: asyncpg.Connection, user_id: int, fields: dict[str, Any]) -> Any:
    action = fields["action"]
    if action == "getTicketOverview":
        rows = await connection.fetch(OVERVIEW, user_id)
        return {"tickets": [_summary(row) for row in rows]}
    if action == "getTicket":
        ticket = await connection.fetchrow(TICKET, fields["ticketId"], user_id)
        if ticket is None:
            raise LookupError
        replies = await connection.fetch(REPLIES, ticket[0])
        files = await connection.fetch(ATTACHMENTS, ticket[0])
        return {
            "thread": _summary(ticket),
            "replies": [
                {
                    "by": r[1],
                    "userId": r[0],
                    "created": r[2],
                    "title": r[3],
                    "content": r[4],
                    "attachments": [
                        {"attachmentId": f[0], "name": f[2], "contentType": f[3], "size": f[4]}
                        for f in files
                    ],
                }
                for r in replies
            ],
        }
    if action == "getInvoiceIds":
        rows = await connection.fetch(
            INVOICE_IDS, user_id, _day(fields["dateStart"]), _day(fields["dateEnd"])
        )
        return {"invoiceIds": [row[0] for row in rows]}
    if action == "getInvoiceDetails":
        rows = await connection.fetch(INVOICE, fields["invoiceId"], user_id)
        if not rows:
            raise LookupError
        row = rows[0]
        total = row[6] + row[7]
        return {
            "invoices": [
                {
                    "invoiceId": row[0],
                    "number": row[1],
                    "title": row[2],
                    "description": row[3],
                    "createdOn": row[4].isoformat(),
                    "payBefore": row[5].isoformat(),
                    "amountNet": _money(total),
                    "vat": _money(row[7]),
                    "vatPerc": f"{row[8] / 100:.2f}",
                    "status": "unpaid" if row[9] is None else "paid",
                    "documentType": "creditNote" if row[10] == "credit_note" else "invoice",
                    "currency": row[11],
                    "amountExclVat": _money(row[6]),
                    "amountPaid": _money(row[12]),
                    "amountDue": _money(max(total - row[12] - row[13], 0)),
                    "correctsInvoiceId": row[14],
                    "lines": [
                        {
                            "description": line[15],
                            "quantity": line[16] / 10_000,
                            "unitPrice": line[17] / 10_000,
                            "vatCategory": line[18],
                            "vatPerc": f"{line[19] / 100:.2f}",
                            "amountExclVat": _money(line[20]),
                        }
                        for line in rows
                    ],
                }
            ]
        }
    if action == "createTicket":
        now = int(time.time())
        while True:  # random 8-digit codes, as ledgerdesk's; a taken one is drawn again
            try:
                async with connection.transaction():
                    ticket_id = await connection.fetchval(
                        NEW_TICKET,
                        random.randrange(10_000_000, 100_000_000),
                        user_id,
                        fields["title"],
                        fields["priorityId"],
                        now,
                    )
                    await connection.execute(
                        NEW_REPLY, ticket_id, user_id, now, fields["title"], fields["content"]
                    )
            except asyncpg.UniqueViolationError:
                continue
            return {"ticketId": ticket_id}
    raise LookupError


async def _init(connection: asyncpg.Connection) -> None:
    await connection.set_type_codec(
        "json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
    )


async def _handle(body: bytes) -> tuple[int, bytes]:
    assert _pool is not None
    fields = orjson.loads(body)
    user_id = int(fields["userId"])
    digest = hashlib.sha256(str(fields["apiKey"]).encode()).hexdigest().encode()
    async with _pool.acquire() as connection:
        keys = await connection.fetch(KEYS, user_id)
        if not any(hmac.compare_digest(key[1].encode(), digest) for key in keys):
            return 401, b'{"status":"Error","msg":"Authentication failed","data":{}}'
        try:
            data = await _answer(connection, user_id, fields)
        except LookupError:
            return 404, b'{"status":"Error","msg":"Not found","data":{}}'
    return 200, orjson.dumps({"status": "Success", "msg": "OK", "data": data})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global _pool
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                _pool = await asyncpg.create_pool(
                    os.environ["DATABASE_URL"], min_size=10, max_size=10, init=_init
                )
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if _pool is not None:
                    await _pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    status, body = await _handle(b"".join(chunks))
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
