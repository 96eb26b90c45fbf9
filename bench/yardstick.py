"""What the yardstick apps share: ledgerdesk's queries, written as a hand-written service
would write them, and its answers laid out from their rows.

Each yardstick is a minimal raw ASGI app (``asgi``) doing the same queries on the same
data through one driver (``asyncpg_app``: asyncpg on PostgreSQL; ``sqlite_app``: the
standard library's sqlite3): parse the JSON body, look up the customer's keys by user id
and compare the key's SHA-256, run the action's queries, encode the answer with orjson.
No rate limits, audit, validation messages or key-usage counting. Queries number their
parameters (``$1``; SQLite reads them as ``?1``).
"""

from __future__ import annotations

import hashlib
import hmac
import random
import time
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import Any, Protocol

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


def day(text: str) -> date:
    return datetime.strptime(text, "%d-%m-%Y").date()


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


class Database(Protocol):
    """What an action needs of the database: rows, the first row, a new ticket."""

    async def fetch(self, sql: str, *args: Any) -> list[Any]: ...

    async def fetchrow(self, sql: str, *args: Any) -> Any: ...

    async def create_ticket(self, user_id: int, fields: dict[str, Any], now: int) -> int: ...

    def day(self, text: str) -> Any: ...


def iso(value: Any) -> str:
    """A date as the API writes it (asyncpg gives dates, SQLite the ISO text)."""
    return value if isinstance(value, str) else value.isoformat()


async def answer(db: Database, user_id: int, fields: dict[str, Any]) -> Any:
    """The ``data`` of an action's answer, as ledgerdesk lays it out; LookupError: none."""
    action = fields["action"]
    if action == "getTicketOverview":
        rows = await db.fetch(OVERVIEW, user_id)
        return {"tickets": [_summary(row) for row in rows]}
    if action == "getTicket":
        ticket = await db.fetchrow(TICKET, fields["ticketId"], user_id)
        if ticket is None:
            raise LookupError
        replies = await db.fetch(REPLIES, ticket[0])
        files = await db.fetch(ATTACHMENTS, ticket[0])
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
        rows = await db.fetch(
            INVOICE_IDS, user_id, db.day(fields["dateStart"]), db.day(fields["dateEnd"])
        )
        return {"invoiceIds": [row[0] for row in rows]}
    if action == "getInvoiceDetails":
        rows = await db.fetch(INVOICE, fields["invoiceId"], user_id)
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
                    "createdOn": iso(row[4]),
                    "payBefore": iso(row[5]),
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
        return {"ticketId": await db.create_ticket(user_id, fields, int(time.time()))}
    raise LookupError


def new_code() -> int:
    """A random 8-digit ticket code, as ledgerdesk's (a taken one is drawn again)."""
    return random.randrange(10_000_000, 100_000_000)


async def handle(db: Database, body: bytes) -> tuple[int, bytes]:
    fields = orjson.loads(body)
    user_id = int(fields["userId"])
    digest = hashlib.sha256(str(fields["apiKey"]).encode()).hexdigest().encode()
    keys = await db.fetch(KEYS, user_id)
    if not any(hmac.compare_digest(key[1].encode(), digest) for key in keys):
        return 401, b'{"status":"Error","msg":"Authentication failed","data":{}}'
    try:
        data = await answer(db, user_id, fields)
    except LookupError:
        return 404, b'{"status":"Error","msg":"Not found","data":{}}'
    return 200, orjson.dumps({"status": "Success", "msg": "OK", "data": data})


Handler = Callable[[bytes], Awaitable[tuple[int, bytes]]]


async def asgi(
    scope: dict[str, Any],
    receive: Any,
    send: Any,
    *,
    startup: Callable[[], Awaitable[None]],
    shutdown: Callable[[], Awaitable[None]],
    handler: Handler,
) -> None:
    """The ASGI app around a driver: its lifespan, then body in, answer out."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await startup()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await shutdown()
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
    status, body = await handler(b"".join(chunks))
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
