"""The one way a request travels: body -> credentials -> action -> service -> envelope.

``ActionEndpoint`` serves ``/api/rest/v2/{category}`` and every alias
``/api/rest/v2/{category}/{action}``. The protocol work (reading the body, choosing the
action) happens on the event loop; authentication and the action itself run together
in one database transaction. Reads stay on the event loop (SQLite on a pinned
connection, PostgreSQL through asyncpg); a write's parameters and attachments are made
ready first, then its transaction runs in a worker thread.
"""

from __future__ import annotations

import base64
import itertools
import logging
import re
import secrets
from collections.abc import Callable, Generator, Hashable, Mapping
from dataclasses import dataclass
from datetime import date
from functools import partial
from typing import Any, TypeVar

from anyio import CapacityLimiter, fail_after, to_thread
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ledgerdesk.accounts.known_keys import KnownKeys
from ledgerdesk.accounts.queries import AccountQueries
from ledgerdesk.accounts.repository import RECORD_USES, key_use_rows
from ledgerdesk.accounts.service import Authenticator, IPAddress, Principal
from ledgerdesk.attachments.incoming import IncomingFile, RequestFiles
from ledgerdesk.attachments.storage import BlobBatch
from ledgerdesk.audit.service import Event, record_now
from ledgerdesk.config import Settings
from ledgerdesk.db.loop_reads import LoopReads
from ledgerdesk.db.outage import OutageLog, is_outage, unavailable
from ledgerdesk.db.prepared import Db, PinnedReader, read_transaction, session_db
from ledgerdesk.errors import (
    InternalError,
    LedgerdeskError,
    MethodNotAllowed,
    UnknownAction,
    UnknownCategory,
    UnsupportedMediaType,
)
from ledgerdesk.events.work import Actor, Origin, Work
from ledgerdesk.http.client_address import client_address, limit_key
from ledgerdesk.http.content_disposition import attachment_disposition
from ledgerdesk.http.memory_budget import MemoryBudget, Reservation
from ledgerdesk.idempotency.repository import IdempotencyRepository
from ledgerdesk.idempotency.service import IdempotencyService, check_key, fingerprint
from ledgerdesk.runtime import Runtime
from ledgerdesk.wire import envelope
from ledgerdesk.wire.body import MULTIPART, Body, ClientDisconnected, read_body
from ledgerdesk.wire.credentials import Credentials, credentials_from
from ledgerdesk.wire.rate_limit import Admission, Quota, RateLimitExceeded, RateLimits
from ledgerdesk.wire.read_cache import CachedKeys, ReadCache
from ledgerdesk.wire.registry import (
    Action,
    ActionContext,
    ActionRegistry,
    FileDownload,
)
from ledgerdesk.wire.types import Params, Result

log = logging.getLogger("ledgerdesk.wire")
T = TypeVar("T")

API_PREFIX = "/api/rest/v2/"
CATEGORY = "administration"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
MAX_ATTACHMENTS = 10
# Threads decoding and fsyncing uploaded attachments at once (they hold no connection).
FILE_THREADS = 32
# Key usage of at most this many keys is written on the event loop (SQLite): a few
# milliseconds at most (see flush_key_usage).
LOOP_FLUSH_MAX_KEYS = 256
JSON_MEDIA_TYPE = "application/json"


def json_response(
    body: bytes, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A Starlette response with a JSON body (for the routes outside the protocol)."""
    return Response(body, status_code=status, media_type=JSON_MEDIA_TYPE, headers=headers)


def error_response(exc: LedgerdeskError) -> Response:
    """The error envelope as a Starlette response (for the routes outside the protocol)."""
    return json_response(envelope.error(exc), exc.http_status, exc.headers())


async def send_json(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *headers,
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


def _encoded(headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


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
        settings = runtime.settings
        self.inline_reads = settings.is_sqlite
        self.loop_reader = PinnedReader(runtime.engine)
        # PostgreSQL reads run on the event loop too, through asyncpg (see db.loop_reads).
        self.loop_reads = (
            None
            if settings.is_sqlite
            else LoopReads(
                settings.database_url,
                settings.db_pool_size,
                timeout=settings.db_timeout,
                connect_timeout=settings.db_connect_timeout,
            )
        )
        # How long a request waits for the database at all: a statement's time plus a
        # connection's; past it the database is hung (its own timeouts never fired).
        self.database_wait = settings.db_timeout + settings.db_connect_timeout + 1
        self.outages = OutageLog(log)
        self.read_cache = ReadCache(self.loop_reader.data_version)
        # No more request threads at the database than the pool has connections: a
        # thread beyond that would wait for one, or force an overflow connection that
        # is opened and closed again for a single request.
        self.database_threads = CapacityLimiter(settings.db_pool_size)
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
        self.unknown_action_message = (
            f"Unknown or missing action; known actions: {', '.join(registry.names())}."
        )

    async def flush_key_usage(self) -> int:
        """Write the key usage gathered since the last flush; how many keys.

        PostgreSQL: through asyncpg on the event loop (its ``executemany`` sends every
        row in one go). SQLite, a few keys (one busy customer): on the event loop's own
        connection, which leaves the read cache alone (``flush_key_usage_here``); many
        keys or a busy write lock: in a worker thread, so that the event loop never
        stalls for a write that grows with the number of keys in use.
        """
        usage = self.runtime.key_usage
        if self.loop_reads is not None:
            uses = usage.take()
            if uses:
                try:
                    await self.loop_reads.execute_many(RECORD_USES, key_use_rows(uses))
                except BaseException:
                    usage.give_back(uses)
                    raise
            return len(uses)
        if usage.pending() <= LOOP_FLUSH_MAX_KEYS:
            written = self.flush_key_usage_here()
            if written or not usage.pending():
                return written
        return await to_thread.run_sync(self.runtime.flush_key_usage)

    def flush_key_usage_here(self) -> int:
        """SQLite: write the gathered key usage on the event loop's own connection.

        Its commit does not change that connection's ``data_version``, so the read cache
        survives it (a flush through the pool empties the cache every few seconds). It
        never waits: when a writer holds the lock, the uses are kept for the next try.
        """
        uses = self.runtime.key_usage.take()
        if not uses:
            return 0
        try:
            written = self.loop_reader.try_write(RECORD_USES, key_use_rows(uses))
        except BaseException:
            self.runtime.key_usage.give_back(uses)
            raise
        if not written:
            self.runtime.key_usage.give_back(uses)
            return 0
        return len(uses)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = request_headers(scope)
        request_id = request_id_of(headers)
        client = scope.get("client")
        address = client_address(
            client[0] if client else None,
            headers.get("x-forwarded-for"),
            self.runtime.settings.trusted_proxies,
        )
        exchange = _Exchange(request_id, address, Reservation(self.memory, limit_key(address)))
        try:
            answer = await self._handle(scope, receive, headers, exchange)
        except ClientDisconnected:
            return
        except LedgerdeskError as exc:
            await self._send_error(send, exc, exchange)
            return
        except Exception as exc:
            if is_outage(exc):
                self.outages.failed(exc, request_id)
                await self._send_error(send, unavailable(), exchange)
                return
            # Details go to the log, tagged with the request id; never to the client.
            log.exception("unhandled error in request %s", request_id)
            await self._send_error(send, InternalError(), exchange)
            return
        finally:
            exchange.memory.release()
        if isinstance(answer, FileDownload):
            await _send_file(send, answer, await self._common_headers(exchange))
            return
        # The usual answer already knows its quota: no coroutine for its headers.
        quota = exchange.quota
        common = (
            self._headers(request_id, quota)
            if quota is not None
            else await self._common_headers(exchange)
        )
        await send_json(send, 200, answer, common)

    async def _send_error(self, send: Send, exc: LedgerdeskError, exchange: _Exchange) -> None:
        if isinstance(exc, RateLimitExceeded):
            exchange.quota = exc.quota
        headers = [*await self._common_headers(exchange), *_encoded(exc.headers())]
        # Clients of the original service read the envelope whatever the status, and
        # some HTTP stacks drop the body of a 4xx: in i3d mode every envelope is a 200.
        status = 200 if self.runtime.settings.i3d_compatible else exc.http_status
        await send_json(send, status, envelope.error(exc), headers)

    async def _common_headers(self, exchange: _Exchange) -> list[tuple[bytes, bytes]]:
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
        self, scope: Scope, receive: Receive, headers: dict[str, str], exchange: _Exchange
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
            if body.media_type == MULTIPART and action is not None and not action.accepts_files:
                raise UnsupportedMediaType(
                    f"{action.name} takes application/json or form data, not multipart."
                )
            idempotency_key = headers.get("idempotency-key")
            credentials = credentials_from(body.fields, headers.get("authorization"))
            bucket = RateLimits.key_bucket(credentials.user_id, credentials.api_key)
            admitted: Admission | None = None
            try:
                real = bucket is not None and self.known_keys.knows(
                    credentials.user_id, credentials.api_key
                )
                async with self.limits.admission(
                    exchange.limit_key, bucket, credentials.user_id, real=real
                ) as admitted:
                    if credentials.malformed is not None:
                        # Counted like a wrong key: a client probing types is guessing too.
                        admitted.failed = True
                        admitted.quota = await self.limits.failed_authentication(exchange.limit_key)
                        raise credentials.malformed
                    request = _Request(
                        action=action,
                        body=body,
                        files=files,
                        credentials=credentials,
                        address=exchange.address,
                        request_id=exchange.request_id,
                        idempotency_key=(
                            check_key(idempotency_key)
                            if idempotency_key is not None
                            and action is not None
                            and action.idempotent
                            else None
                        ),
                    )
                    try:
                        return await self._run(request, body, settings)
                    finally:
                        admitted.proven = request.authenticated
            finally:
                if admitted is not None:  # the quota of the limit that applied
                    exchange.quota = admitted.quota
        finally:
            # Stored bytes were linked or copied; a file to send is read from the store.
            files.discard()

    async def _run(self, request: _Request, body: Body, settings: Settings) -> bytes | FileDownload:
        """Authenticate and answer where the action runs: a write's transaction in a
        worker thread, a read on the event loop (or a thread when it is offloaded)."""
        action = request.action
        if action is not None and action.writes:
            # Parameters checked and attachments decoded, hashed and fsynced before the
            # write transaction, which then holds the write lock for the rows and the
            # commit only. Files are prepared by threads of their own: their fsyncs
            # overlap, whatever the pool's size.
            if action.accepts_files and (body.uploads or body.fields.get("attachments")):
                prepared = await to_thread.run_sync(
                    _PreparedWrite.of, request, settings, limiter=self.file_threads
                )
            else:
                prepared = _PreparedWrite.of(request, settings)
            return await self._in_thread(self._write, request, prepared)
        offload = action is not None and action.offload
        if self.inline_reads and not offload:
            # SQLite reads take microseconds and never wait for writers (WAL): a hop to
            # a worker thread would cost more than the query itself.
            self.read_cache.refresh()
            with self.loop_reader.transaction() as db:
                return self._perform(request, db, None, self.read_cache)
        if self.loop_reads is not None and not offload:
            with fail_after(self.database_wait):
                return await self.loop_reads.run(partial(self._perform, request, write=None))
        return await self._in_thread(self._read, request)

    async def _in_thread(self, work: Callable[..., T], *args: Any) -> T:
        """``work`` in a worker thread holding a database connection. A database that
        hangs does not hang the request: past ``database_wait`` it is answered 503 and
        the thread is left to finish (or fail) on its own."""
        with fail_after(self.database_wait):
            return await to_thread.run_sync(
                work, *args, limiter=self.database_threads, abandon_on_cancel=True
            )

    def load_known_keys(self) -> int:
        """Reload the fingerprints of the keys that exist (a worker thread's work)."""
        with read_transaction(self.runtime.engine) as db:
            return self.known_keys.load(db)

    def _read(self, request: _Request) -> bytes | FileDownload:
        with read_transaction(self.runtime.engine) as db:
            return self._perform(request, db, None)

    async def aclose(self) -> None:
        """Close what the endpoint holds on the event loop (the asyncpg pool)."""
        if self.loop_reads is not None:
            await self.loop_reads.aclose()

    def _write(self, request: _Request, prepared: _PreparedWrite) -> bytes | FileDownload:
        try:
            return self._write_once(request, prepared)
        except IntegrityError:
            if request.idempotency_key is None:
                raise
            # A concurrent request with the same Idempotency-Key committed first; this
            # attempt was rolled back whole. Run again: it now finds the first answer.
            return self._write_once(request, prepared)

    def _write_once(self, request: _Request, prepared: _PreparedWrite) -> bytes | FileDownload:
        with self.runtime.transaction(write=True) as (session, blobs):
            return self._perform(request, session_db(session), (session, blobs), prepared=prepared)

    def _perform(
        self,
        request: _Request,
        db: Db,
        write: tuple[Session, BlobBatch] | None,
        cache: ReadCache | None = None,
        prepared: _PreparedWrite | None = None,
    ) -> bytes | FileDownload:
        """Authenticate, then run the action, inside the caller's transaction."""
        runtime = self.runtime
        action = request.action
        now = runtime.clock.timestamp()
        day = runtime.day_of(now)
        keys = AccountQueries(db)
        try:
            principal = Authenticator(
                keys if cache is None else CachedKeys(keys, cache)
            ).authenticate(
                user_id=request.credentials.user_id,
                api_key=request.credentials.api_key,
                category=CATEGORY,
                client_ip=request.address,
                today=day,
            )
        except LedgerdeskError as exc:
            runtime.audit.record(request.event(now, "error", None, error_code=exc.error_code))
            raise
        request.authenticated = True
        runtime.key_usage.record(principal.key_id, now)
        if action is None:
            raise UnknownAction(self.unknown_action_message)
        if write is None:
            return self._answer_read(request, action, principal, db, now, day, cache)
        assert prepared is not None, "writes are prepared before their transaction"
        try:
            return self._answer_write(request, action, principal, db, write, now, day, prepared)
        except LedgerdeskError as exc:
            runtime.audit.record(request.event(now, "error", principal, error_code=exc.error_code))
            raise

    def _answer_read(
        self,
        request: _Request,
        action: Action[Any, Any],
        principal: Principal,
        db: Db,
        now: int,
        day: date,
        cache: ReadCache | None,
    ) -> bytes | FileDownload:
        cache_key = (
            _answer_key(principal.user_id, action.name, day, request.body.fields)
            if cache is not None and action.cacheable
            else None
        )
        if cache_key is not None:
            assert cache is not None
            cached = cache.answer(cache_key)
            if cached is not None:
                return cached
        params = action.parse(request.body.fields, self.runtime.settings)
        result = action.handler(self._context(request, principal, db, None, now, day), params)
        if isinstance(result, FileDownload):
            return result
        answer = envelope.success(result)
        if cache_key is not None:
            assert cache is not None
            cache.keep_answer(cache_key, answer)
        return answer

    def _answer_write(
        self,
        request: _Request,
        action: Action[Any, Any],
        principal: Principal,
        db: Db,
        write: tuple[Session, BlobBatch],
        now: int,
        day: date,
        prepared: _PreparedWrite,
    ) -> bytes | FileDownload:
        # Refused parameters are answered after authentication, as for reads.
        if prepared.error is not None:
            raise prepared.error
        assert prepared.params is not None
        params, attachments = prepared.params, prepared.attachments
        session, blobs = write
        remembered = _Remembered.of(
            session, principal.user_id, action, request, params, attachments, now
        )
        if remembered is not None and remembered.first_answer is not None:
            record_now(session, request.event(now, "replayed", principal))
            return remembered.first_answer
        work = Work(
            session,
            Actor.customer(principal.user_id, principal.key_id),
            Origin(
                "api", None if request.address is None else str(request.address), request.request_id
            ),
            now,
            day,
            blobs,
        )
        context = self._context(request, principal, db, work, now, day, attachments)
        result = action.handler(context, params)
        if isinstance(result, FileDownload):
            return result
        answer = envelope.success(result)
        if remembered is not None:
            remembered.remember(answer)
        return answer

    def _context(
        self,
        request: _Request,
        principal: Principal,
        db: Db,
        work: Work | None,
        now: int,
        day: date,
        attachments: list[IncomingFile] | None = None,
    ) -> ActionContext:
        return ActionContext(
            principal=principal,
            db=db,
            settings=self.runtime.settings,
            now=now,
            today=day,
            files=request.files,
            blob_store=self.runtime.blobs,
            unit=work,
            attachments=attachments or [],
        )


def _answer_key(user_id: int, action: str, day: date, fields: Mapping[str, Any]) -> Hashable | None:
    """The request exactly as sent, each value with its type.

    A cached answer stands for one exact input that was validated and answered before,
    so a hit needs no validation again. The type is part of the key because Python's
    equality is looser than the protocol's: ``True == 1 == 1.0``, but ``1`` is an id
    and ``true`` and ``1.0`` are 1003s.
    """
    key = (user_id, action, day, tuple(fields.items()), tuple(map(type, fields.values())))
    try:
        hash(key)
    except TypeError:
        return None  # lists or objects among the fields: not worth an entry
    return key


async def _send_file(send: Send, download: FileDownload, common: list[tuple[bytes, bytes]]) -> None:
    """The file itself, with its stored type exactly (no charset added to text/*), and
    a sandbox policy so that HTML or SVG opened from it can run nothing; or its base64
    envelope. Either way in pieces: a client that reads slowly holds one piece of
    memory, and one that stops reading is dropped by the server (``serving``)."""
    content = download.content
    if download.envelope is not None:
        head, tail = _envelope_around_content(download.envelope)
        length = len(head) + 4 * -(-content.size // 3) + len(tail)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(length).encode()),
            *common,
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": head, "more_body": True})
        await _send_pieces(send, _base64_pieces(content.chunks()))
        await send({"type": "http.response.body", "body": tail})
        return
    headers = [
        (b"content-type", download.content_type.encode("latin-1")),
        (b"content-length", str(content.size).encode()),
        (b"content-disposition", attachment_disposition(download.name).encode("latin-1")),
        (b"x-content-type-options", b"nosniff"),
        (b"content-security-policy", b"sandbox"),
        *common,
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    if content.data is not None and len(content.data) <= SEND_PIECE:
        await send({"type": "http.response.body", "body": content.data})
        return
    await _send_pieces(send, _pieces(content.chunks()))
    await send({"type": "http.response.body", "body": b""})


# What one send hands the connection: a slow reader holds at most about this much.
SEND_PIECE = 192 * 1024  # a multiple of 3: its base64 has no padding in the middle


async def _send_pieces(send: Send, pieces: Generator[bytes, None, None]) -> None:
    try:
        while piece := await to_thread.run_sync(next, pieces, b""):
            await send({"type": "http.response.body", "body": piece, "more_body": True})
    finally:
        pieces.close()


def _pieces(chunks: Generator[bytes, None, None]) -> Generator[bytes, None, None]:
    """The stored chunks cut into pieces of at most ``SEND_PIECE`` bytes."""
    try:
        for chunk in chunks:
            view = memoryview(chunk)
            for start in range(0, len(view), SEND_PIECE):
                yield bytes(view[start : start + SEND_PIECE])
    finally:
        chunks.close()


def _base64_pieces(chunks: Generator[bytes, None, None]) -> Generator[bytes, None, None]:
    """Standard padded base64 of the whole content, piece by piece (each encodes a
    multiple of three bytes, so the pieces join into one base64 text)."""
    carry = b""
    for piece in _pieces(chunks):
        data = carry + piece
        whole = len(data) - len(data) % 3
        carry = data[whole:]
        if whole:
            yield base64.b64encode(data[:whole])
    if carry:
        yield base64.b64encode(carry)


_EMPTY_CONTENT = b'"content":""}}}'


def _envelope_around_content(result: Result) -> tuple[bytes, bytes]:
    """The envelope's bytes before and after its (empty, last) ``content`` value."""
    body = envelope.success(result)
    assert body.endswith(_EMPTY_CONTENT), "content is the last value of the envelope"
    cut = len(body) - len(_EMPTY_CONTENT) + len(b'"content":"')
    return body[:cut], body[cut:]


@dataclass(slots=True)
class _Exchange:
    """One HTTP request's bookkeeping: id, caller's address, quota, memory held."""

    request_id: str
    address: IPAddress | None
    memory: Reservation
    quota: Quota | None = None

    @property
    def limit_key(self) -> str:
        return limit_key(self.address)


@dataclass(frozen=True)
class _PreparedWrite:
    """A write's parameters and attachments, or the error that refuses them."""

    params: Params | None
    attachments: list[IncomingFile]
    error: LedgerdeskError | None = None

    @classmethod
    def of(cls, request: _Request, settings: Settings) -> _PreparedWrite:
        action = request.action
        if action is None:
            return cls(None, [])
        try:
            params = action.parse(request.body.fields, settings)
            files = action.files(request.files, params) if action.files is not None else []
        except LedgerdeskError as exc:
            return cls(None, [], exc)
        return cls(params, files)


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
        cls,
        session: Session,
        user_id: int,
        action: Action[Any, Any],
        request: _Request,
        params: Params,
        files: list[IncomingFile],
        now: int,
    ) -> _Remembered | None:
        if request.idempotency_key is None:
            return None
        service = IdempotencyService(IdempotencyRepository(session))
        digest = fingerprint(action.name, params, files)
        first = service.replay(user_id, request.idempotency_key, digest, now=now)
        return cls(service, user_id, request.idempotency_key, digest, now, first)

    def remember(self, answer: bytes) -> None:
        self.service.remember(self.user_id, self.key, self.digest, answer, now=self.now)


@dataclass(slots=True)
class _Request:
    """What the worker thread needs of a request whose body has been read."""

    action: Action[Any, Any] | None
    body: Body
    files: RequestFiles
    credentials: Credentials
    address: IPAddress | None
    request_id: str
    idempotency_key: str | None
    # Set once the credentials proved right (in the transaction's thread or greenlet).
    authenticated: bool = False

    def event(
        self,
        now: int,
        outcome: str,
        principal: Principal | None,
        *,
        error_code: int | None = None,
    ) -> Event:
        """This request's audit event (never its key or its files' bytes)."""
        return Event(
            created_at=now,
            source="api",
            action=self.action.name if self.action is not None else "unknown",
            outcome=outcome,
            user_id=principal.user_id if principal is not None else self.credentials.user_id,
            key_id=principal.key_id if principal is not None else None,
            client_address=None if self.address is None else str(self.address),
            error_code=error_code,
            request_id=self.request_id,
        )
