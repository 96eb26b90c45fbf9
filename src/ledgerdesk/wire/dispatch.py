"""The one way a request travels: body -> credentials -> action -> service -> envelope.

``ActionEndpoint`` serves ``/api/rest/v2/{category}`` and every alias
``/api/rest/v2/{category}/{action}``. The protocol work (reading the body, choosing the
action) happens on the event loop; authentication and the action itself run together
in one worker thread and one database transaction.
"""

from __future__ import annotations

import logging
from typing import Any

from anyio import to_thread
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ledgerdesk.accounts.repository import AccountRepository
from ledgerdesk.accounts.service import AccountService, IPAddress
from ledgerdesk.clock import today
from ledgerdesk.db.engine import unit_of_work
from ledgerdesk.errors import (
    InternalError,
    LedgerdeskError,
    MethodNotAllowed,
    UnknownAction,
    UnknownCategory,
    UnsupportedMediaType,
)
from ledgerdesk.runtime import Runtime
from ledgerdesk.wire import envelope
from ledgerdesk.wire.body import (
    MULTIPART,
    Body,
    check_declared_length,
    limited_receive,
    read_body,
)
from ledgerdesk.wire.client_address import client_address
from ledgerdesk.wire.credentials import Credentials, credentials_from
from ledgerdesk.wire.registry import Action, ActionContext, ActionRegistry
from ledgerdesk.wire.types import Result

log = logging.getLogger("ledgerdesk.wire")

CATEGORY = "administration"
MAX_ATTACHMENTS = 10
JSON_MEDIA_TYPE = "application/json"


def json_response(
    body: bytes, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(body, status_code=status, media_type=JSON_MEDIA_TYPE, headers=headers)


def error_response(exc: LedgerdeskError) -> Response:
    headers = None
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        headers = {"Retry-After": str(retry_after)}
    return json_response(envelope.error(exc), exc.http_status, headers)


class ActionEndpoint:
    """ASGI app for the category endpoint and its per-action aliases."""

    def __init__(self, runtime: Runtime, registry: ActionRegistry) -> None:
        self.runtime = runtime
        self.registry = registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            response = await self._handle(scope, receive)
        except LedgerdeskError as exc:
            response = error_response(exc)
        except Exception:
            # Details go to the log, tagged with the request id; never to the client.
            log.exception("unhandled error in request %s", scope.get("ledgerdesk.request_id"))
            response = error_response(InternalError())
        await response(scope, receive, send)

    async def _handle(self, scope: Scope, receive: Receive) -> Response:
        path_params = scope.get("path_params", {})
        if path_params.get("category") != CATEGORY:
            raise UnknownCategory(f"Unknown category {path_params.get('category')!r}.")
        if scope["method"] != "POST":
            raise MethodNotAllowed()
        settings = self.runtime.settings
        request = Request(scope, limited_receive(receive, settings.max_body_bytes))
        check_declared_length(request.headers.get("content-length"), settings.max_body_bytes)
        body = await read_body(
            request,
            max_files=MAX_ATTACHMENTS,
            max_file_bytes=settings.max_attachment_bytes,
        )
        try:
            name = path_params.get("action") or body.fields.get("action")
            action = self.registry.get(name)
            if body.media_type == MULTIPART and action is not None and not action.accepts_files:
                raise UnsupportedMediaType(
                    f"{action.name} takes application/json or form data, not multipart."
                )
            credentials = credentials_from(body.fields, request.headers.get("authorization"))
            address = client_address(
                scope["client"][0] if scope.get("client") else None,
                request.headers.get("x-forwarded-for"),
                settings.trusted_proxies,
            )
            result = await to_thread.run_sync(self._execute, action, body, credentials, address)
        finally:
            await body.close()
        return json_response(envelope.success(result))

    def _execute(
        self,
        action: Action[Any, Any] | None,
        body: Body,
        credentials: Credentials,
        address: IPAddress | None,
    ) -> Result:
        runtime = self.runtime
        now = runtime.clock.timestamp()
        day = today(runtime.clock, runtime.settings.timezone)
        write = action is not None and action.writes
        with unit_of_work(runtime.sessions, write=write) as session:
            principal = AccountService(AccountRepository(session)).authenticate(
                user_id=credentials.user_id,
                api_key=credentials.api_key,
                category=CATEGORY,
                client_ip=address,
                today=day,
            )
            runtime.key_usage.record(principal.key_id, now)
            if action is None:
                raise UnknownAction(
                    "Unknown or missing action; known actions: "
                    + ", ".join(self.registry.names())
                    + "."
                )
            context = ActionContext(
                principal=principal,
                session=session,
                settings=runtime.settings,
                now=now,
                today=day,
            )
            result: Result = action.run(context, body.fields)
        return result
