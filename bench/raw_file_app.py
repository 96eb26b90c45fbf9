"""The downloads yardstick: one file served raw from disk (bench/downloads.py).

A bare ASGI app that reads the request body, then sends ``RAW_FILE`` in 1 MiB blocks
read on the event loop (from the page cache: no thread, no database, no checks).
"""

from __future__ import annotations

import os
from typing import Any

PATH = os.environ.get("RAW_FILE", "")
BLOCK = 1024 * 1024


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    size = os.path.getsize(PATH)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/octet-stream"),
                (b"content-length", str(size).encode()),
            ],
        }
    )
    with open(PATH, "rb") as handle:  # the yardstick reads on the loop
        while block := handle.read(BLOCK):
            await send({"type": "http.response.body", "body": block, "more_body": True})
    await send({"type": "http.response.body", "body": b""})
