"""The HTTP server: uvicorn, with the connection-level guards it lacks.

uvicorn closes idle keep-alive connections, but waits for ever for a request's
headers and does not cap connections the way a public server needs. ``GuardedProtocol``
(uvicorn's httptools protocol, extended) adds:

- a **header timeout**: the request line and headers must arrive within
  ``LEDGERDESK_HEADER_TIMEOUT`` seconds of the connection (or of the previous answer on
  a kept-alive one), else 408 and the connection is closed (slowloris);
- a **body timeout**: a body may pause at most ``LEDGERDESK_BODY_TIMEOUT`` seconds
  between two pieces, else 408 and the connection is closed. Kept here rather than in
  the application because it costs nothing for the usual body that arrives with its
  headers: the timer is only set when a body spans several reads;
- a **connection cap** per process (``LEDGERDESK_MAX_CONNECTIONS``): a connection over
  it is answered 503 with ``Retry-After`` and closed before any byte is read;
- **half-closed clients** are answered: a client that sends its request and shuts down
  its sending side still gets the answer before the connection closes.

"""

from __future__ import annotations

import asyncio
import ctypes
import os
import platform
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ledgerdesk.config import Settings
from ledgerdesk.errors import LedgerdeskError, RequestTimeout, ServerBusy
from ledgerdesk.wire import envelope
from ledgerdesk.wire.dispatch import request_id_of


@dataclass(frozen=True)
class ConnectionGuards:
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_connections: int = 1000

    @classmethod
    def of(cls, settings: Settings) -> ConnectionGuards:
        return cls(settings.header_timeout, settings.body_timeout, settings.max_connections)


def _raw_answer(exc: LedgerdeskError, reason: str) -> bytes:
    """An answer written by the connection itself (the application never saw a request)."""
    body = envelope.error(exc)
    extra = {k.lower(): v for k, v in exc.headers().items() if k.lower() != "connection"}
    head = [
        f"HTTP/1.1 {exc.http_status} {reason}",
        "content-type: application/json",
        f"content-length: {len(body)}",
        "connection: close",
        f"x-request-id: {request_id_of({})}",
        *(f"{name}: {value}" for name, value in extra.items()),
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def _header_timeout() -> bytes:
    return _raw_answer(
        RequestTimeout("The request headers did not arrive in time."), "Request Timeout"
    )


def _body_timeout() -> bytes:
    return _raw_answer(RequestTimeout(), "Request Timeout")


def _too_many_connections() -> bytes:
    return _raw_answer(
        ServerBusy(1, "Too many connections to this server; retry shortly."),
        "Service Unavailable",
    )


class GuardedProtocol(HttpToolsProtocol):
    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.guards: ConnectionGuards = getattr(config, "ledgerdesk_guards", ConnectionGuards())
        self._header_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._body_seen = 0.0
        self._half_closed = False
        self._refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.guards.max_connections:
            self._refused = True
            self.transport = transport
            transport.write(_too_many_connections())
            transport.close()
            return
        super().connection_made(transport)
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        self._cancel_body_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        before = self.cycle
        super().data_received(data)
        # Timers are set only when a request's headers or body span several reads:
        # the usual request arrives whole and costs no timer at all. (Watching the
        # cycle here, rather than overriding the parser's callbacks, keeps the cost of
        # a whole request to this one call.)
        cycle = self.cycle
        if cycle is not before:
            self._cancel_header_timer()  # a request's headers are complete
        elif (cycle is None or cycle.response_complete) and self._header_timer is None:
            self._arm_header_timer()  # the start of a request, not yet its headers
        if cycle is not None and cycle.more_body and not cycle.response_complete:
            self._body_seen = self.loop.time()
            if self._body_timer is None:
                self._body_timer = self.loop.call_later(
                    self.guards.body_timeout, self._body_too_slow
                )
        elif self._body_timer is not None:
            self._cancel_body_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._half_closed and not self.pipeline and not self.transport.is_closing():
            self.transport.close()

    def eof_received(self) -> bool | None:  # type: ignore[override]
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete and not cycle.more_body:
            # The whole request is here and the client has stopped sending: keep our
            # side open to answer it, then close (on_response_complete).
            self._half_closed = True
            return True
        return None

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(
            self.guards.header_timeout, self._headers_too_slow
        )

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _cancel_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _body_too_slow(self) -> None:
        self._body_timer = None
        cycle = self.cycle
        if self.transport.is_closing() or cycle is None or not cycle.more_body:
            return
        waited = self.loop.time() - self._body_seen
        if waited < self.guards.body_timeout:
            self._body_timer = self.loop.call_later(
                self.guards.body_timeout - waited, self._body_too_slow
            )
            return
        if not cycle.response_complete:
            # The application is still waiting for the body: answer for it. The
            # closed connection ends its wait as a disconnect.
            cycle.response_complete = True
            cycle.disconnected = True
            self.transport.write(_body_timeout())
        self.transport.close()

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a request is being answered; its headers arrived in time
        self.transport.write(_header_timeout())
        self.transport.close()


# glibc mallopt parameters (malloc.h).
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


def tune_allocator() -> bool:
    """Give large request bodies' memory back to the system when they are freed.

    glibc raises its mmap threshold after the first large free, so later 10 MB bodies
    come from the heap and their pages stay with the process; each worker thread also
    gets an arena of its own. A fixed 1 MiB threshold and two arenas keep the resident
    size close to what is in use (16 concurrent 10 MB uploads: 409 MB -> 288 MB peak).
    Only on glibc; elsewhere nothing changes.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, 1024 * 1024)) and bool(
        libc.mallopt(_M_ARENA_MAX, 2)
    )


def server_config(
    settings: Settings,
    app: Any,
    *,
    host: str,
    port: int,
    workers: int = 1,
    access_log: bool = False,
    factory: bool = False,
) -> uvicorn.Config:
    """uvicorn's configuration with ledgerdesk's guards.

    uvicorn's own proxy-header handling is off: client addresses come from the socket,
    and ledgerdesk alone decides whose X-Forwarded-For to believe
    (LEDGERDESK_TRUSTED_PROXIES).
    """
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        workers=workers,
        factory=factory,
        http=GuardedProtocol,
        access_log=access_log,
        proxy_headers=False,
        server_header=False,
        timeout_keep_alive=max(1, round(settings.keepalive_timeout)),
    )
    # Carried to worker processes with the configuration (it is pickled for them).
    config.ledgerdesk_guards = ConnectionGuards.of(settings)  # type: ignore[attr-defined]
    return config


def run_server(
    settings: Settings,
    *,
    environment: Mapping[str, str],
    host: str,
    port: int,
    workers: int = 1,
    access_log: bool = False,
) -> None:
    """Serve until interrupted."""
    tune_allocator()
    if workers == 1:
        from ledgerdesk.app import create_app

        config = server_config(
            settings, create_app(settings), host=host, port=port, access_log=access_log
        )
        uvicorn.Server(config).run()
        return
    # Each worker process builds its own app (and its own pool) from the environment.
    os.environ.update(environment)
    config = server_config(
        settings,
        "ledgerdesk.app:create_app_from_env",
        host=host,
        port=port,
        workers=workers,
        access_log=access_log,
        factory=True,
    )
    socket = config.bind_socket()
    uvicorn.supervisors.Multiprocess(config, sockets=[socket]).run()
