"""The one way a request travels: body -> credentials -> action -> service -> envelope.

``ActionEndpoint`` serves ``/api/rest/v2/{category}`` and every alias
``/api/rest/v2/{category}/{action}``. The protocol work (reading the body, choosing the
action) happens on the event loop; authentication and the action itself run together
in one worker thread and one database transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from anyio import to_thread
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from ledgerdesk.accounts.queries import AccountQueries
from ledgerdesk.accounts.service import Authenticator, IPAddress
from ledgerdesk.attachments.incoming import RequestFiles
from ledgerdesk.clock import today
from ledgerdesk.db.prepared import Db, read_transaction
from ledgerdesk.errors import (
    InternalError,
    LedgerdeskError,
    MethodNotAllowed,
    UnknownAction,
    UnknownCategory,
    UnsupportedMediaType,
)
from ledgerdesk.idempotency.repository import IdempotencyRepository
from ledgerdesk.idempotency.service import IdempotencyService, check_key, fingerprint
from ledgerdesk.runtime import Runtime
from ledgerdesk.wire import envelope
from ledgerdesk.wire.body import MULTIPART, Body, check_declared_length, limited_receive, read_body
from ledgerdesk.wire.client_address import client_address
from ledgerdesk.wire.content_disposition import attachment_disposition
from ledgerdesk.wire.credentials import Credentials, credentials_from
from ledgerdesk.wire.registry import (
    Action,
    ActionContext,
    ActionRegistry,
    FileDownload,
    WriteScope,
)

log = logging.getLogger("ledgerdesk.wire")

CATEGORY = "administration"
MAX_ATTACHMENTS = 10
JSON_MEDIA_TYPE = "application/json"


def json_response(
    body: bytes, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(body, status_code=status, media_type=JSON_MEDIA_TYPE, headers=headers)


def file_response(download: FileDownload) -> Response:
    return StreamingResponse(
        download.content.chunks(),
        media_type=download.content_type,
        headers={
            "Content-Length": str(download.content.size),
            "Content-Disposition": attachment_disposition(download.name),
            "X-Content-Type-Options": "nosniff",
        },
    )


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
        self.inline_reads = runtime.settings.is_sqlite
        self.unknown_action_message = (
            f"Unknown or missing action; known actions: {', '.join(registry.names())}."
        )

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
            upload_dir=self.runtime.incoming_dir,
            max_files=MAX_ATTACHMENTS,
            max_file_bytes=settings.max_attachment_bytes,
        )
        files = RequestFiles(
            directory=self.runtime.incoming_dir,
            limit=settings.max_attachment_bytes,
            uploaded=body.uploads,
        )
        try:
            name = path_params.get("action") or body.fields.get("action")
            action = self.registry.get(name)
            if body.media_type == MULTIPART and action is not None and not action.accepts_files:
                raise UnsupportedMediaType(
                    f"{action.name} takes application/json or form data, not multipart."
                )
            idempotency_key = request.headers.get("idempotency-key")
            request_ = _Request(
                action=action,
                body=body,
                files=files,
                credentials=credentials_from(body.fields, request.headers.get("authorization")),
                address=client_address(
                    scope["client"][0] if scope.get("client") else None,
                    request.headers.get("x-forwarded-for"),
                    settings.trusted_proxies,
                ),
                idempotency_key=(
                    check_key(idempotency_key)
                    if idempotency_key is not None and action is not None and action.idempotent
                    else None
                ),
            )
            if action is not None and action.writes:
                answer = await to_thread.run_sync(self._write, request_)
            elif self.inline_reads and not (action is not None and action.offload):
                # SQLite reads take microseconds and never wait for writers (WAL):
                # a hop to a worker thread would cost more than the query itself.
                answer = self._read(request_)
            else:
                answer = await to_thread.run_sync(self._read, request_)
        except BaseException:
            files.discard()
            raise
        if isinstance(answer, FileDownload):
            # The temporary files are not needed to send a stored file.
            files.discard()
            return file_response(answer)
        files.discard()
        return json_response(answer)

    def _read(self, request: _Request) -> bytes | FileDownload:
        with read_transaction(self.runtime.engine) as db:
            return self._perform(request, db, None)

    def _write(self, request: _Request) -> bytes | FileDownload:
        try:
            return self._write_once(request)
        except IntegrityError:
            if request.idempotency_key is None:
                raise
            # A concurrent request with the same Idempotency-Key committed first; this
            # attempt was rolled back whole. Run again: it now finds the first answer.
            return self._write_once(request)

    def _write_once(self, request: _Request) -> bytes | FileDownload:
        with self.runtime.transaction(write=True) as (session, blobs):
            connection = session.connection()
            db = Db(connection.connection.driver_connection, connection.dialect)
            return self._perform(request, db, WriteScope(session, blobs))

    def _perform(self, request: _Request, db: Db, write: WriteScope | None) -> bytes | FileDownload:
        """Authenticate, then run the action, inside the caller's transaction."""
        runtime = self.runtime
        action = request.action
        now = runtime.clock.timestamp()
        day = today(runtime.clock, runtime.settings.timezone)
        principal = Authenticator(AccountQueries(db)).authenticate(
            user_id=request.credentials.user_id,
            api_key=request.credentials.api_key,
            category=CATEGORY,
            client_ip=request.address,
            today=day,
        )
        runtime.key_usage.record(principal.key_id, now)
        if action is None:
            raise UnknownAction(self.unknown_action_message)
        remembered = (
            _Remembered.of(write.session, principal.user_id, action, request, now)
            if write is not None
            else None
        )
        if remembered is not None and remembered.first_answer is not None:
            return remembered.first_answer
        context = ActionContext(
            principal=principal,
            db=db,
            settings=runtime.settings,
            now=now,
            today=day,
            files=request.files,
            blob_store=runtime.blobs,
            write=write,
        )
        result = action.run(context, request.body.fields)
        if isinstance(result, FileDownload):
            return result
        answer = envelope.success(result)
        if remembered is not None:
            remembered.remember(answer)
        return answer


@dataclass(frozen=True)
class _Remembered:
    """An Idempotency-Key's record for this request: the first answer, if there was one."""

    service: IdempotencyService
    user_id: int
    key: str
    digest: str
    now: int
    first_answer: bytes | None

    @classmethod
    def of(
        cls, session: Session, user_id: int, action: Action[Any, Any], request: _Request, now: int
    ) -> _Remembered | None:
        if request.idempotency_key is None:
            return None
        service = IdempotencyService(IdempotencyRepository(session))
        digest = fingerprint(action.name, request.body.fields, request.body.uploads)
        first = service.replay(user_id, request.idempotency_key, digest, now=now)
        return cls(service, user_id, request.idempotency_key, digest, now, first)

    def remember(self, answer: bytes) -> None:
        self.service.remember(self.user_id, self.key, self.digest, answer, now=self.now)


@dataclass(frozen=True)
class _Request:
    """What the worker thread needs of a request whose body has been read."""

    action: Action[Any, Any] | None
    body: Body
    files: RequestFiles
    credentials: Credentials
    address: IPAddress | None
    idempotency_key: str | None
