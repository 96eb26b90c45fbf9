"""The yardstick: a bare ASGI app that answers the same JSON as getInvoiceIds does.

It reads the request body (as any real endpoint must) and returns fixed bytes.
Run by bench/throughput.py; set BARE_BODY to the exact answer to mirror.
"""

from __future__ import annotations

import os
from typing import Any

BODY = os.environ.get(
    "BARE_BODY", '{"status":"Success","msg":"OK","data":{"invoiceIds":[1,2,3]}}'
).encode()


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(BODY)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": BODY})
