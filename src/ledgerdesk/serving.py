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
- a **body deadline**: the same timer also holds every body to a total: at most
  ``LEDGERDESK_BODY_DEADLINE`` seconds, and after its first ``LEDGERDESK_BODY_TIMEOUT``
  seconds an average of ``LEDGERDESK_BODY_MIN_RATE`` bytes a second. A client that
  sends a byte just often enough to dodge the pause timeout is cut off within seconds
  of the grace period, an honest slow upload is not;
- a **send timeout**: an answer the client stops reading (the socket's buffer full for
  ``LEDGERDESK_SEND_TIMEOUT`` seconds) is dropped and the connection aborted, so a
  reader that never reads holds neither the answer's memory nor the connection;
- a **connection cap** per process (``LEDGERDESK_MAX_CONNECTIONS``) and per client
  address (``LEDGERDESK_MAX_CONNECTIONS_PER_ADDRESS``, an IPv6 /64 counted as one;
  trusted proxies are not capped, they carry everyone's connections): a connection over
  either is answered 503 with ``Retry-After`` and closed before any byte is read;
- **half-closed clients** are answered: a client that sends its request and shuts down
  its sending side still gets the answer before the connection closes.

"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ledgerdesk import logs, metrics
from ledgerdesk.app import create_app
from ledgerdesk.config import IPNetwork, Settings
from ledgerdesk.errors import LedgerdeskError, RequestTimeout, ServerBusy
from ledgerdesk.http.client_address import is_trusted, limit_key, parse_address
from ledgerdesk.http.responses import request_id_of
from ledgerdesk.monitoring import DatabaseCollector, listen_on, stop
from ledgerdesk.process import tune_allocator
from ledgerdesk.runtime import Runtime
from ledgerdesk.wire import envelope


@dataclass(frozen=True)
class ConnectionGuards:
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_connections: int = 1000
    body_deadline: float = 600.0
    body_min_rate: int = 16384
    send_timeout: float = 30.0
    max_connections_per_address: int = 100
    trusted_proxies: tuple[IPNetwork, ...] = ()

    @classmethod
    def of(cls, settings: Settings) -> ConnectionGuards:
        return cls(
            header_timeout=settings.header_timeout,
            body_timeout=settings.body_timeout,
            max_connections=settings.max_connections,
            body_deadline=settings.body_deadline,
            body_min_rate=settings.body_min_rate,
            send_timeout=settings.send_timeout,
            max_connections_per_address=settings.max_connections_per_address,
            trusted_proxies=settings.trusted_proxies,
        )

    def body_due(self, started: float, last_seen: float, received: int) -> float:
        """When a body that began at ``started`` and has brought ``received`` bytes so
        far (the last at ``last_seen``) is too slow, by the loop's clock."""
        due = min(last_seen + self.body_timeout, started + self.body_deadline)
        if self.body_min_rate:
            due = min(due, started + self.body_timeout + received / self.body_min_rate)
        return due


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


def _too_many_from_address() -> bytes:
    return _raw_answer(
        ServerBusy(1, "Too many connections from your address; retry shortly."),
        "Service Unavailable",
    )


class AddressCounts:
    """Open connections by client address, one table per server (all its protocols)."""

    def __init__(self) -> None:
        self.open: dict[str, int] = {}

    @staticmethod
    def of(server_state: Any) -> AddressCounts:
        counts = getattr(server_state, "ledgerdesk_addresses", None)
        if counts is None:
            counts = AddressCounts()
            server_state.ledgerdesk_addresses = counts
        return counts

    def add(self, key: str, cap: int) -> bool:
        count = self.open.get(key, 0)
        if count >= cap:
            return False
        self.open[key] = count + 1
        return True

    def remove(self, key: str) -> None:
        count = self.open.get(key, 0) - 1
        if count > 0:
            self.open[key] = count
        else:
            self.open.pop(key, None)


# Answers that only tell a page that something happened (the console's server-sent
# events): a server that stops closes them at once rather than waiting for them to end;
# the browser opens them again, on whichever server answers.
NOTIFYING_PATHS = ("/console/live",)


class GuardedProtocol(HttpToolsProtocol):
    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.guards: ConnectionGuards = getattr(config, "ledgerdesk_guards", ConnectionGuards())
        self._header_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._send_timer: asyncio.TimerHandle | None = None
        self._body_cycle: object = None
        self._body_started = 0.0
        self._body_seen = 0.0
        self._body_bytes = 0
        self._half_closed = False
        self._refused = False
        self._addresses = AddressCounts.of(self.server_state)
        self._address_key: str | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        refusal = None
        if len(self.connections) >= self.guards.max_connections:
            refusal, cap = _too_many_connections(), "process"
        else:
            key = self._capped_address(transport)
            if key is not None:
                if self._addresses.add(key, self.guards.max_connections_per_address):
                    self._address_key = key
                else:
                    refusal, cap = _too_many_from_address(), "address"
        if refusal is not None:
            metrics.connections_refused.labels(cap).inc()
            self._refused = True
            self.transport = transport
            transport.write(refusal)
            transport.close()
            return
        super().connection_made(transport)
        metrics.connections.inc()
        self._arm_header_timer()

    def _capped_address(self, transport: asyncio.Transport) -> str | None:
        """The name the peer's connections are counted under; None for a trusted proxy
        (or a peer without an IP address, such as a Unix socket)."""
        peer = transport.get_extra_info("peername")
        address = parse_address(peer[0]) if isinstance(peer, tuple) and peer else None
        if address is None or is_trusted(address, self.guards.trusted_proxies):
            return None
        return limit_key(address)

    def shutdown(self) -> None:
        cycle = self.cycle
        if (
            cycle is not None
            and not cycle.response_complete
            and str(cycle.scope.get("path", "")).startswith(NOTIFYING_PATHS)
        ):
            self.transport.close()
            return
        super().shutdown()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._refused:
            metrics.connections.dec()
        self._cancel_header_timer()
        self._cancel_body_timer()
        self._cancel_send_timer()
        if self._address_key is not None:
            self._addresses.remove(self._address_key)
            self._address_key = None
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._send_timer is None:
            self._send_timer = self.loop.call_later(self.guards.send_timeout, self._not_reading)

    def resume_writing(self) -> None:
        self._cancel_send_timer()
        super().resume_writing()

    def _not_reading(self) -> None:
        # The client has read nothing for send_timeout seconds: close() would wait for
        # the buffer to drain (for ever), abort() drops it. The application's next send
        # finds the connection gone.
        self._send_timer = None
        self.transport.abort()

    def _cancel_send_timer(self) -> None:
        if self._send_timer is not None:
            self._send_timer.cancel()
            self._send_timer = None

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
            now = self.loop.time()
            if cycle is not self._body_cycle:
                self._body_cycle = cycle
                self._body_started = now
                self._body_bytes = 0
            self._body_seen = now
            self._body_bytes += len(data)
            if self._body_timer is None:
                due = self.guards.body_due(self._body_started, now, self._body_bytes)
                self._body_timer = self.loop.call_at(due, self._body_too_slow)
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
        due = self.guards.body_due(self._body_started, self._body_seen, self._body_bytes)
        if self.loop.time() < due:
            self._body_timer = self.loop.call_at(due, self._body_too_slow)
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
        # Logging is ledgerdesk's (logs.configure), its request log (http.request_log)
        # in place of uvicorn's access log: it names the action, the user, the error.
        access_log=False,
        log_config=None,
        proxy_headers=False,
        server_header=False,
        timeout_keep_alive=max(1, round(settings.keepalive_timeout)),
        # Stopping, what is in flight gets this long; then it is cancelled.
        timeout_graceful_shutdown=max(1, round(settings.shutdown_timeout)),
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
    if access_log:
        settings = settings.with_overrides(access_log=True)
        environment = {**environment, "LEDGERDESK_ACCESS_LOG": "true"}
    logs.configure(settings.log_format, requests=settings.access_log)
    if workers == 1:
        config = server_config(
            settings, create_app(settings), host=host, port=port, access_log=access_log
        )
        uvicorn.Server(config).run()
        return
    # Each worker process builds its own app (and its own pool) from the environment;
    # their metrics go to files in a directory of this server's own (see metrics).
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
    with metrics.worker_directory(), supervisor_metrics(settings):
        uvicorn.supervisors.Multiprocess(config, sockets=[socket]).run()


@contextlib.contextmanager
def supervisor_metrics(settings: Settings) -> Iterator[None]:
    """With several workers, /metrics on LEDGERDESK_METRICS_LISTEN is served by their
    supervisor: it reads every worker's files (and the database's figures)."""
    address = settings.metrics_address
    if address is None:
        yield
        return
    runtime = Runtime.build(settings)
    collection = metrics.Collection([DatabaseCollector(runtime)])
    server = listen_on(address, collection.registry)
    try:
        yield
    finally:
        stop(server)
        runtime.engine.dispose()
