"""The protocol endpoint: parse, admit, authenticate, idempotency, envelope.

``ActionEndpoint`` serves ``/api/rest/v2/{category}`` and every alias
``/api/rest/v2/{category}/{action}``. The protocol work (reading the body, choosing the
action, the rate limits) happens on the event loop; authentication and the action
itself run together in one database transaction, where the process's ``Execution``
runs it (reads on the event loop, writes in a worker thread: see ``execution``).
"""

from __future__ import annotations

import logging
import time
from functools import partial
from typing import Any

from anyio import CapacityLimiter, to_thread
from sqlalchemy.exc import IntegrityError
from starlette.types import Receive, Scope, Send

from ledgerdesk import metrics
from ledgerdesk.accounts.known_keys import KnownKeys
from ledgerdesk.attachments.incoming import RequestFiles
from ledgerdesk.attachments.rules import MAX_ATTACHMENTS
from ledgerdesk.db.outage import OutageLog, is_outage, unavailable
from ledgerdesk.errors import (
    InternalError,
    LedgerdeskError,
    MethodNotAllowed,
    UnknownCategory,
    UnsupportedMediaType,
)
from ledgerdesk.execution import Execution
from ledgerdesk.http.client_address import client_address, limit_key
from ledgerdesk.http.memory_budget import MemoryBudget, Reservation
from ledgerdesk.http.responses import encoded, request_headers, request_id_of, send_json
from ledgerdesk.idempotency.service import check_key
from ledgerdesk.runtime import Runtime
from ledgerdesk.wire import envelope
from ledgerdesk.wire.body import MULTIPART, Body, ClientDisconnected, read_body
from ledgerdesk.wire.credentials import credentials_from
from ledgerdesk.wire.downloads import send_file
from ledgerdesk.wire.perform import CATEGORY, Perform
from ledgerdesk.wire.rate_limit import Admission, Quota, RateLimitExceeded, RateLimits
from ledgerdesk.wire.registry import Action, ActionRegistry, FileDownload
from ledgerdesk.wire.request import Exchange, Request
from ledgerdesk.wire.writes import PreparedWrite

log = logging.getLogger("ledgerdesk.wire")

API_PREFIX = "/api/rest/v2/"
# Threads decoding and fsyncing uploaded attachments at once (they hold no connection).
FILE_THREADS = 32


class ActionEndpoint:
    """ASGI app for everything under ``/api/rest/v2/``: the category endpoint and aliases.

    It speaks ASGI directly rather than through a framework's request and response
    objects: this is the path every API call takes, and it is held to a throughput
    budget against a bare ASGI app (see bench/).
    """

    def __init__(self, runtime: Runtime, registry: ActionRegistry, execution: Execution) -> None:
        self.runtime = runtime
        self.registry = registry
        self.execution = execution
        settings = runtime.settings
        self.outages = OutageLog(log)
        self.file_threads = CapacityLimiter(FILE_THREADS)
        self.limits = RateLimits(
            per_key=settings.rate_limit,
            auth_failures=settings.auth_failure_limit,
            per_customer=settings.customer_limit,
            redis_url=settings.redis_url,
            window=settings.rate_limit_window,
        )
        self.memory = MemoryBudget(settings.body_memory_bytes)
        self.known_keys = KnownKeys()
        self.perform = Perform(runtime, registry)
        self.meter = metrics.RequestMeter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        began = time.perf_counter()
        headers = request_headers(scope)
        request_id = request_id_of(headers)
        client = scope.get("client")
        address = client_address(
            client[0] if client else None,
            headers.get("x-forwarded-for"),
            self.runtime.settings.trusted_proxies,
        )
        exchange = Exchange(request_id, address, Reservation(self.memory, limit_key(address)))
        said: dict[str, object] | None = scope.get("ledgerdesk")  # the request log's
        error: LedgerdeskError | None = None
        outcome = metrics.OK
        try:
            try:
                answer = await self._handle(scope, receive, headers, exchange)
            except ClientDisconnected:
                outcome = metrics.DISCONNECTED
                return
            except LedgerdeskError as exc:
                error = exc
            except Exception as exc:
                if is_outage(exc):
                    self.outages.failed(exc, request_id)
                    error = unavailable()
                else:
                    # Details go to the log, tagged with the request id; never to the client.
                    log.exception("unhandled error in request %s", request_id)
                    error = InternalError()
            finally:
                exchange.memory.release()
                if said is not None:
                    said["action"], said["user_id"] = exchange.action, exchange.user_id
            if error is not None:
                outcome = str(error.error_code)
                if said is not None:
                    said["error_code"] = error.error_code
                await self._send_error(send, error, exchange)
                return
            if isinstance(answer, FileDownload):
                await send_file(send, answer, await self._common_headers(exchange))
                return
            # The usual answer already knows its quota: no coroutine for its headers.
            quota = exchange.quota
            common = (
                self._headers(request_id, quota)
                if quota is not None
                else await self._common_headers(exchange)
            )
            await send_json(send, 200, answer, common)
        finally:
            self.meter.done(exchange.action, outcome, time.perf_counter() - began)

    async def _send_error(self, send: Send, exc: LedgerdeskError, exchange: Exchange) -> None:
        if isinstance(exc, RateLimitExceeded):
            exchange.quota = exc.quota
            metrics.rate_limited.labels(exc.limit).inc()
        headers = [*await self._common_headers(exchange), *encoded(exc.headers())]
        # Clients of the original service read the envelope whatever the status, and
        # some HTTP stacks drop the body of a 4xx: in i3d mode every envelope is a 200.
        status = 200 if self.runtime.settings.i3d_compatible else exc.http_status
        await send_json(send, status, envelope.error(exc), headers)

    async def _common_headers(self, exchange: Exchange) -> list[tuple[bytes, bytes]]:
        """X-Request-Id and RateLimit-* (of the limit that applied, else the address's)."""
        quota = exchange.quota
        if quota is None:
            quota = await self.limits.peek_address(exchange.limit_key)
        return self._headers(exchange.request_id, quota)

    def _headers(self, request_id: str, quota: Quota) -> list[tuple[bytes, bytes]]:
        return [
            (b"x-request-id", request_id.encode("latin-1")),
            *quota.headers(self.limits.clock()),
        ]

    async def _handle(
        self, scope: Scope, receive: Receive, headers: dict[str, str], exchange: Exchange
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
            memory=exchange.memory,
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
            exchange.action = action.name if action is not None else None
            if body.media_type == MULTIPART and action is not None and not action.accepts_files:
                raise UnsupportedMediaType(
                    f"{action.name} takes application/json or form data, not multipart."
                )
            return await self._admitted(action, body, files, headers, exchange)
        finally:
            # Stored bytes were linked or copied; a file to send is read from the store.
            files.discard()

    async def _admitted(
        self,
        action: Action[Any, Any] | None,
        body: Body,
        files: RequestFiles,
        headers: dict[str, str],
        exchange: Exchange,
    ) -> bytes | FileDownload:
        """The request through the rate limits, then authenticated and answered."""
        credentials = credentials_from(body.fields, headers.get("authorization"))
        bucket = RateLimits.key_bucket(credentials.user_id, credentials.api_key)
        real = bucket is not None and self.known_keys.knows(
            credentials.user_id, credentials.api_key
        )
        admitted: Admission | None = None
        try:
            async with self.limits.admission(
                exchange.limit_key, bucket, credentials.user_id, real=real
            ) as admitted:
                if credentials.malformed is not None:
                    # Counted like a wrong key: a client probing types is guessing too.
                    admitted.failed = True
                    admitted.quota = await self.limits.failed_authentication(exchange.limit_key)
                    raise credentials.malformed
                idempotency_key = headers.get("idempotency-key")
                request = Request(
                    action=action,
                    body=body,
                    files=files,
                    credentials=credentials,
                    address=exchange.address,
                    request_id=exchange.request_id,
                    idempotency_key=(
                        check_key(idempotency_key)
                        if idempotency_key is not None and action is not None and action.idempotent
                        else None
                    ),
                )
                try:
                    return await self._run(request)
                finally:
                    admitted.proven = request.authenticated
                    if request.authenticated:
                        exchange.user_id = credentials.user_id
        finally:
            if admitted is not None:  # the quota of the limit that applied
                exchange.quota = admitted.quota

    async def _run(self, request: Request) -> bytes | FileDownload:
        """Authenticate and answer where the action runs (see ``execution``)."""
        action = request.action
        if action is None or not action.writes:
            offload = action is not None and action.offload
            return await self.execution.read(partial(self.perform.read, request), offload=offload)
        # Parameters checked and attachments decoded, hashed and fsynced before the write
        # transaction, which then holds the write lock for the rows and the commit only.
        # Files are prepared by threads of their own: their fsyncs overlap.
        settings = self.runtime.settings
        if action.accepts_files and (
            request.body.uploads or request.body.fields.get("attachments")
        ):
            prepared = await to_thread.run_sync(
                PreparedWrite.of, request, settings, limiter=self.file_threads
            )
        else:
            prepared = PreparedWrite.of(request, settings)
        write = partial(self.perform.write, request, prepared)
        try:
            return await self.execution.write(write)
        except IntegrityError:
            if request.idempotency_key is None:
                raise
            # A concurrent request with the same Idempotency-Key committed first; this
            # attempt was rolled back whole. Run again: it now finds the first answer.
            return await self.execution.write(write)

    async def load_known_keys(self) -> int:
        """Reload the fingerprints of the keys that exist."""
        return await self.execution.read(lambda db, _cache: self.known_keys.load(db), offload=True)

    async def aclose(self) -> None:
        """Close what the endpoint holds on the event loop."""
        await self.execution.aclose()
