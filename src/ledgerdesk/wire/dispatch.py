"""The one way a request travels: body -> credentials -> action -> service -> envelope.

``ActionEndpoint`` serves ``/api/rest/v2/{category}`` and every alias
``/api/rest/v2/{category}/{action}``. The protocol work (reading the body, choosing the
action) happens on the event loop; authentication and the action itself run together
in one database transaction: in a worker thread, except for SQLite reads, which are
faster run where they are.
"""

from __future__ import annotations

import itertools
import logging
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from anyio import CapacityLimiter, to_thread
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from ledgerdesk.accounts.queries import AccountQueries
from ledgerdesk.accounts.service import Authenticator, IPAddress
from ledgerdesk.attachments.incoming import RequestFiles
from ledgerdesk.db.prepared import Db, PinnedReader, read_transaction, session_db
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
from ledgerdesk.wire.body import MULTIPART, Body, ClientDisconnected, read_body
from ledgerdesk.wire.client_address import client_address
from ledgerdesk.wire.content_disposition import attachment_disposition
from ledgerdesk.wire.credentials import Credentials, credentials_from
from ledgerdesk.wire.read_cache import CachedKeys, ReadCache
from ledgerdesk.wire.registry import (
    Action,
    ActionContext,
    ActionRegistry,
    FileDownload,
    WriteScope,
)

log = logging.getLogger("ledgerdesk.wire")

API_PREFIX = "/api/rest/v2/"
CATEGORY = "administration"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
MAX_ATTACHMENTS = 10
JSON_MEDIA_TYPE = "application/json"


def json_response(
    body: bytes, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A Starlette response with a JSON body (for the routes outside the protocol)."""
    return Response(body, status_code=status, media_type=JSON_MEDIA_TYPE, headers=headers)


def error_response(exc: LedgerdeskError) -> Response:
    """The error envelope as a Starlette response (for the routes outside the protocol)."""
    return json_response(envelope.error(exc), exc.http_status, _error_headers(exc))


def _error_headers(exc: LedgerdeskError) -> dict[str, str] | None:
    retry_after = getattr(exc, "retry_after", None)
    return None if retry_after is None else {"Retry-After": str(retry_after)}


async def send_json(
    send: Send, status: int, body: bytes, request_id: str, headers: dict[str, str] | None = None
) -> None:
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", request_id.encode("latin-1")),
    ]
    if headers:
        raw_headers.extend(
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()
        )
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


def request_headers(scope: Scope) -> dict[str, str]:
    """The request headers by lower-case name (ASGI already lower-cases them)."""
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}


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


class ActionEndpoint:
    """ASGI app for everything under ``/api/rest/v2/``: the category endpoint and aliases.

    It speaks ASGI directly rather than through a framework's request and response
    objects: this is the path every API call takes, and it is held to a throughput
    budget against a bare ASGI app (see bench/).
    """

    def __init__(self, runtime: Runtime, registry: ActionRegistry) -> None:
        self.runtime = runtime
        self.registry = registry
        self.inline_reads = runtime.settings.is_sqlite
        self.loop_reader = PinnedReader(runtime.engine)
        self.read_cache = ReadCache(self.loop_reader.data_version)
        # No more request threads at the database than the pool has connections: a
        # thread beyond that would wait for one, or force an overflow connection that
        # is opened and closed again for a single request.
        self.database_threads = CapacityLimiter(runtime.settings.db_pool_size)
        self.unknown_action_message = (
            f"Unknown or missing action; known actions: {', '.join(registry.names())}."
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = request_headers(scope)
        request_id = request_id_of(headers)
        try:
            answer = await self._handle(scope, receive, headers)
        except ClientDisconnected:
            return
        except LedgerdeskError as exc:
            await send_json(
                send, exc.http_status, envelope.error(exc), request_id, _error_headers(exc)
            )
            return
        except Exception:
            # Details go to the log, tagged with the request id; never to the client.
            log.exception("unhandled error in request %s", request_id)
            error = InternalError()
            await send_json(send, error.http_status, envelope.error(error), request_id)
            return
        if isinstance(answer, FileDownload):
            response = StreamingResponse(
                answer.content.chunks(),
                media_type=answer.content_type,
                headers={
                    "Content-Length": str(answer.content.size),
                    "Content-Disposition": attachment_disposition(answer.name),
                    "X-Content-Type-Options": "nosniff",
                    "X-Request-Id": request_id,
                },
            )
            await response(scope, receive, send)
            return
        await send_json(send, 200, answer, request_id)

    async def _handle(
        self, scope: Scope, receive: Receive, headers: dict[str, str]
    ) -> bytes | FileDownload:
        category, _, action_name = scope["path"][len(API_PREFIX) :].strip("/").partition("/")
        if category != CATEGORY or "/" in action_name:
            raise UnknownCategory(f"Unknown category {category!r}.")
        if scope["method"] != "POST":
            raise MethodNotAllowed()
        settings = self.runtime.settings
        body = await read_body(
            headers,
            receive,
            limit=settings.max_body_bytes,
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
            action = self.registry.get(action_name or body.fields.get("action"))
            if body.media_type == MULTIPART and action is not None and not action.accepts_files:
                raise UnsupportedMediaType(
                    f"{action.name} takes application/json or form data, not multipart."
                )
            idempotency_key = headers.get("idempotency-key")
            client = scope.get("client")
            request = _Request(
                action=action,
                body=body,
                files=files,
                credentials=credentials_from(body.fields, headers.get("authorization")),
                address=client_address(
                    client[0] if client else None,
                    headers.get("x-forwarded-for"),
                    settings.trusted_proxies,
                ),
                idempotency_key=(
                    check_key(idempotency_key)
                    if idempotency_key is not None and action is not None and action.idempotent
                    else None
                ),
            )
            if action is not None and action.writes:
                return await to_thread.run_sync(self._write, request, limiter=self.database_threads)
            if self.inline_reads and not (action is not None and action.offload):
                # SQLite reads take microseconds and never wait for writers (WAL):
                # a hop to a worker thread would cost more than the query itself.
                self.read_cache.refresh()
                with self.loop_reader.transaction() as db:
                    return self._perform(request, db, None, self.read_cache)
            return await to_thread.run_sync(self._read, request, limiter=self.database_threads)
        finally:
            # Stored bytes were linked or copied; a file to send is read from the store.
            files.discard()

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
            return self._perform(request, session_db(session), WriteScope(session, blobs))

    def _perform(
        self,
        request: _Request,
        db: Db,
        write: WriteScope | None,
        cache: ReadCache | None = None,
    ) -> bytes | FileDownload:
        """Authenticate, then run the action, inside the caller's transaction."""
        runtime = self.runtime
        action = request.action
        now = runtime.clock.timestamp()
        day = runtime.day_of(now)
        keys = AccountQueries(db)
        principal = Authenticator(keys if cache is None else CachedKeys(keys, cache)).authenticate(
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
        cache_key = (
            cache.answer_key(principal.user_id, action.name, request.body.fields, day)
            if cache is not None and action.cacheable
            else None
        )
        if cache_key is not None:
            assert cache is not None
            cached = cache.answer(cache_key)
            if cached is not None:
                return cached
        result = action.handler(context, action.parse(request.body.fields, runtime.settings))
        if isinstance(result, FileDownload):
            return result
        answer = envelope.success(result)
        if remembered is not None:
            remembered.remember(answer)
        if cache_key is not None:
            assert cache is not None
            cache.keep_answer(cache_key, answer)
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
