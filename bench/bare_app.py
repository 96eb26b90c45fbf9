"""The yardstick: a bare ASGI app that answers the same JSON as ledgerdesk does.

It reads the request body (as any real endpoint must) and returns fixed bytes.
Run by bench/throughput.py (``BARE_BODY``: the one answer to mirror) and by
bench/realistic.py (``BARE_ANSWERS``: a JSON file of answers by action; the body is
parsed to find the action, as any JSON endpoint must).
"""

from __future__ import annotations

import json
import os
from typing import Any

BODY = os.environ.get(
    "BARE_BODY", '{"status":"Success","msg":"OK","data":{"invoiceIds":[1,2,3]}}'
).encode()
_answers_file = os.environ.get("BARE_ANSWERS")
ANSWERS: dict[str, bytes] | None = None
if _answers_file:
    with open(_answers_file) as answers:
        ANSWERS = {action: body.encode() for action, body in json.load(answers).items()}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body = BODY
    if ANSWERS is not None:
        body = ANSWERS[json.loads(b"".join(chunks))["action"]]
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
