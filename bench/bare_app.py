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

import yardstick

BODY = os.environ.get(
    "BARE_BODY", '{"status":"Success","msg":"OK","data":{"invoiceIds":[1,2,3]}}'
).encode()
_answers_file = os.environ.get("BARE_ANSWERS")
ANSWERS: dict[str, bytes] | None = None
if _answers_file:
    with open(_answers_file) as answers:
        ANSWERS = {action: body.encode() for action, body in json.load(answers).items()}


async def _answer(body: bytes) -> tuple[int, bytes]:
    if ANSWERS is None:
        return 200, BODY
    return 200, ANSWERS[json.loads(body)["action"]]


async def _nothing() -> None:
    pass


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await yardstick.asgi(scope, receive, send, startup=_nothing, shutdown=_nothing, handler=_answer)
