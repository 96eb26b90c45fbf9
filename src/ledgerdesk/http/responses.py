"""Request ids and JSON answers, for every door."""

from __future__ import annotations

import itertools
import re
import secrets
from collections.abc import Mapping

from starlette.responses import Response
from starlette.types import Message, Scope, Send

JSON_MEDIA_TYPE = "application/json"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
# Fresh request ids: a random per-process prefix and a counter. Unique without asking the
# operating system for randomness on every request; they need not be unguessable.
_REQUEST_ID_PREFIX = secrets.token_hex(8)
_request_numbers = itertools.count(1)


def request_id_of(headers: Mapping[str, str]) -> str:
    """A well-formed ``X-Request-Id`` from the client, or a fresh one."""
    candidate = headers.get("x-request-id")
    if candidate is not None and _REQUEST_ID.fullmatch(candidate):
        return candidate
    return f"{_REQUEST_ID_PREFIX}{next(_request_numbers):016x}"


def request_headers(scope: Scope) -> dict[str, str]:
    """The request headers by lower-case name (ASGI already lower-cases them)."""
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}


def json_response(
    body: bytes, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """A Starlette response with a JSON body (for the routes outside the protocol)."""
    return Response(
        body, status_code=status, media_type=JSON_MEDIA_TYPE, headers=dict(headers or {})
    )


async def send_json(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    """A whole JSON answer straight through ASGI."""
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *headers,
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


def encoded(headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    """Header names and values as ASGI carries them."""
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


class Answered:
    """``send`` passed through, noting the status and headers of the answer it starts
    (for what is logged or counted once the answer has gone)."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = message.get("headers", [])
        await self.send(message)

    def header(self, name: bytes) -> str | None:
        return next((v.decode("latin-1") for n, v in self.headers if n == name), None)
