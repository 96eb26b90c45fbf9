"""One log line a request (``--access-log`` / ``LEDGERDESK_ACCESS_LOG``): its id, method,
path, status and duration, and for the API its action, the user it authenticated as
and the error code it answered (the endpoint leaves them in ``scope["ledgerdesk"]``).

Paths are logged without their query, and a path segment that could be a secret (a
password or confirmation link's token: 20 characters or more) is logged as ``…``.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Receive, Scope, Send

from ledgerdesk.http.responses import Answered

log = logging.getLogger("ledgerdesk.request")

TOKEN_LENGTH = 20


def loggable_path(path: str) -> str:
    return "/".join("…" if len(part) >= TOKEN_LENGTH else part for part in path.split("/"))


class RequestLog:
    """ASGI middleware: the line is written once the answer is sent."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        said: dict[str, object] = {}
        scope["ledgerdesk"] = said
        answered = Answered(send)
        try:
            await self.app(scope, receive, answered)
        finally:
            status = answered.status
            request_id = answered.header(b"x-request-id")
            path = loggable_path(scope["path"])
            log.info(
                "%s %s %s",
                scope["method"],
                path,
                status or "-",
                extra={
                    "request_id": request_id,
                    "method": scope["method"],
                    "path": path,
                    "status": status or None,
                    "duration_ms": round((time.perf_counter() - began) * 1000, 2),
                    "action": said.get("action"),
                    "user_id": said.get("user_id"),
                    "error_code": said.get("error_code"),
                },
            )
