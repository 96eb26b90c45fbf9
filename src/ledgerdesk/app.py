"""The ASGI application: routes, middleware and error handlers; no import-time side effects."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from functools import partial
from pathlib import Path

import anyio
from anyio import to_thread
from pydantic_core import to_json
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledgerdesk import logs, metrics
from ledgerdesk.accounts.known_keys import REFRESH_SECONDS as KNOWN_KEYS_REFRESH
from ledgerdesk.clock import Clock
from ledgerdesk.config import Settings
from ledgerdesk.db.outage import RETRY_AFTER_SECONDS, OutageLog, is_outage, unavailable
from ledgerdesk.errors import LedgerdeskError, MethodNotAllowed, UnknownCategory
from ledgerdesk.execution import Execution
from ledgerdesk.health import readiness
from ledgerdesk.http.client_address import client_address
from ledgerdesk.http.request_log import RequestLog
from ledgerdesk.http.responses import Answered, json_response, request_headers, request_id_of
from ledgerdesk.invoices import actions as invoice_actions
from ledgerdesk.mail.imap import ImapPoller
from ledgerdesk.mail.lmtp import listen as listen_lmtp
from ledgerdesk.mail.relay import MailRelay
from ledgerdesk.mail.relay import wanted as mail_wanted
from ledgerdesk.monitoring import Monitoring
from ledgerdesk.process import drain_on_signals, freeze_startup, stopping, tune_allocator
from ledgerdesk.retention import PRUNE_SECONDS, prune
from ledgerdesk.runtime import Runtime
from ledgerdesk.tickets import actions as ticket_actions
from ledgerdesk.tickets.service import (
    due_times_current,
    recompute_due_batch,
    store_due_fingerprint,
)
from ledgerdesk.web import build_routes
from ledgerdesk.web.core import BadForm, Forbidden, NotSignedIn
from ledgerdesk.webhooks.relay import Relay
from ledgerdesk.wire import envelope
from ledgerdesk.wire.dispatch import API_PREFIX, ActionEndpoint
from ledgerdesk.wire.openapi import build_openapi
from ledgerdesk.wire.perform import CATEGORY
from ledgerdesk.wire.reference import reference_page
from ledgerdesk.wire.registry import ActionRegistry

log = logging.getLogger("ledgerdesk")

# Every key in use is one row to update: with 50,000 customers polling, 10 s meant
# 2,700 row updates a second on the database server; once a minute costs a third.
KEY_USAGE_FLUSH_SECONDS = 60.0
AUDIT_FLUSH_SECONDS = 1.0
WEB_PREFIXES = ("/console", "/account", "/signin", "/signout", "/password")
# /readyz waits this long for its checks before it says this process is not ready.
HEALTH_SECONDS = 3.0
# API requests are counted in plain numbers and handed to the metrics this often.
METER_FLUSH_SECONDS = 1.0
# With several workers, each writes its pools' use to its metrics file this often.
POOL_SAMPLE_SECONDS = 5.0
# Requests outside the API are counted by the door they came through (metrics).
DOORS = (
    ("/console", "console"),
    ("/account", "portal"),
    ("/signin", "portal"),
    ("/signout", "portal"),
    ("/password", "portal"),
    ("/static", "static"),
    ("/docs", "docs"),
    ("/openapi.json", "docs"),
    ("/healthz", "health"),
    ("/readyz", "health"),
    ("/metrics", "metrics"),
)


def build_registry() -> ActionRegistry:
    return ActionRegistry([*invoice_actions.ACTIONS, *ticket_actions.ACTIONS])


class RequestIdMiddleware:
    """Every response of the routes outside the protocol carries ``X-Request-Id`` too."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = (b"x-request-id", request_id_of(request_headers(scope)).encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        await self.app(scope, receive, send_with_id)


class OutageMiddleware:
    """Pages and documents whose database fails (down, hung, out of disk) are answered
    503 with a sentence, logged once a second; anything else goes on up as an error."""

    def __init__(self, app: ASGIApp, outages: OutageLog, page: Callable[[Request], Response]):
        self.app = app
        self.outages = outages
        self.page = page

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as exc:
            if started or not is_outage(exc):
                raise
            self.outages.failed(exc, request_id_of(request_headers(scope)))
            await self.page(Request(scope))(scope, receive, send)


class LedgerdeskApp:
    """The ASGI application: the protocol endpoint first, everything else through Starlette.

    API calls go straight to ``ActionEndpoint``, skipping the framework's routing and
    middleware layers; documentation, health and lifespan are Starlette's.
    """

    def __init__(self, api: ActionEndpoint, site: Starlette, runtime: Runtime) -> None:
        self.api = api
        self.site = site
        self.runtime = runtime
        self.state = site.state
        # A line a request when asked for (LEDGERDESK_ACCESS_LOG, `serve --access-log`).
        self._entry: ASGIApp = (
            RequestLog(self._route) if runtime.settings.access_log else self._route
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._entry(scope, receive, send)

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.site(scope, receive, send)
        elif scope["path"].startswith(API_PREFIX):
            await self.api(scope, receive, send)
        else:
            await _counted(self.site, scope, receive, send)


async def _counted(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    """A request outside the API, counted by door and status, and timed (metrics)."""
    began = time.perf_counter()
    path = scope["path"]
    door = next((name for prefix, name in DOORS if path.startswith(prefix)), "other")
    answered = Answered(send)
    try:
        await app(scope, receive, answered)
    finally:
        metrics.pages.labels(door, str(answered.status or "none")).inc()
        metrics.page_seconds.labels(door).observe(time.perf_counter() - began)


# The reference page has no script and only its own inline style.
_DOCS_HEADERS = {
    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
}


def create_app(settings: Settings, *, clock: Clock | None = None) -> LedgerdeskApp:
    """The application for these settings; one engine and pool for its whole life."""
    runtime = Runtime.build(settings, clock)
    registry = build_registry()
    execution = Execution.of(runtime)
    endpoint = ActionEndpoint(runtime, registry, execution)
    document = build_openapi(registry, CATEGORY)
    openapi_body = to_json(document)
    reference_html = reference_page(document)

    async def openapi(_: Request) -> Response:
        return json_response(openapi_body)

    async def docs(_: Request) -> Response:
        return HTMLResponse(reference_html, headers=_DOCS_HEADERS)

    async def healthz(_: Request) -> Response:
        """The process answers (whatever its database does: that is /readyz)."""
        return json_response(b'{"status":"ok"}')

    async def readyz(_: Request) -> Response:
        """Whether to send this process requests: every check of ``health.readiness``,
        within HEALTH_SECONDS in all (a database that hangs is one that fails)."""
        try:
            with anyio.fail_after(HEALTH_SECONDS):
                found = await to_thread.run_sync(readiness, runtime, abandon_on_cancel=True)
        except TimeoutError:
            body = {
                "status": "unready",
                "checks": {"process": "stopping" if stopping() else "serving"},
                "problem": f"the checks took longer than {HEALTH_SECONDS:g} s",
            }
            return json_response(to_json(body), 503, {"Retry-After": "5"})
        if not found.ready:
            return json_response(to_json(found.body()), 503, {"Retry-After": "5"})
        return json_response(to_json(found.body()))

    monitoring = Monitoring(runtime, execution.pools)

    async def metrics_page(request: Request) -> Response:
        """Prometheus's text; only to addresses in LEDGERDESK_METRICS_ALLOW (behind a
        trusted proxy, the address it forwards for), and not at all when the metrics
        have a port of their own. The database's figures are read in a thread."""
        peer = request.client.host if request.client else None
        address = client_address(
            peer, request.headers.get("x-forwarded-for"), settings.trusted_proxies
        )
        if not monitoring.allowed(address):
            return Response("Not found.\n", 404, media_type="text/plain")
        endpoint.meter.flush()
        body = await to_thread.run_sync(monitoring.exposition)
        return Response(body, headers={"content-type": metrics.CONTENT_TYPE})

    web, web_routes = build_routes(runtime, execution)
    # The webhook and mail relays run beside the requests unless `ledgerdesk worker`
    # runs them (mail only when SMTP and the support address are set).
    relay = Relay(runtime) if settings.webhook_relay else None
    mail_relay = MailRelay(runtime) if mail_wanted(settings) else None

    async def not_found(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith(("/console", "/account")):
            status = exc.status_code if isinstance(exc, HTTPException) else 404
            return web.message(request, "Not found", "There is no such page.", status)
        error: LedgerdeskError = UnknownCategory(
            "No such endpoint; use POST /api/rest/v2/administration."
        )
        if isinstance(exc, HTTPException) and exc.status_code == 405:
            error = MethodNotAllowed()
        # The original service's clients read the envelope whatever the path: in i3d
        # mode every envelope is a 200, as on the protocol's own paths.
        status = 200 if settings.i3d_compatible else error.http_status
        return json_response(envelope.error(error), status, error.headers())

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        # Told to stop, the server first says it is not ready and keeps serving for
        # LEDGERDESK_SHUTDOWN_DRAIN seconds (a load balancer sends no more meanwhile).
        undrain = drain_on_signals(settings.shutdown_drain) if settings.shutdown_drain else None
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(_clean_storage, runtime)
            tasks.start_soon(to_thread.run_sync, _due_times, runtime)
            tasks.start_soon(_key_usage, KEY_USAGE_FLUSH_SECONDS, execution)
            freeze_startup()
            tasks.start_soon(_every, AUDIT_FLUSH_SECONDS, runtime.flush_audit, "audit events")
            tasks.start_soon(_every, PRUNE_SECONDS, partial(prune, runtime), "expired rows")
            tasks.start_soon(_known_keys, endpoint)
            tasks.start_soon(web.live.run)
            monitoring.listen()
            tasks.start_soon(_flush_meter, endpoint.meter)
            if metrics.multiprocess():
                tasks.start_soon(_sample_pools, monitoring)
            if relay is not None:
                tasks.start_soon(relay.run)
            if mail_relay is not None:
                tasks.start_soon(mail_relay.run)
            if (
                settings.imap_url is not None
                and settings.support_address is not None
                and settings.mail_relay
            ):
                tasks.start_soon(ImapPoller(runtime).run)
            lmtp = settings.lmtp_address
            lmtp_server = (
                await listen_lmtp(runtime, *lmtp)
                if lmtp is not None and settings.support_address is not None
                else None
            )
            try:
                yield
            finally:
                if lmtp_server is not None:
                    lmtp_server.close()
                tasks.cancel_scope.cancel()
        if undrain is not None:
            undrain()
        monitoring.close()
        await endpoint.limits.aclose()
        await endpoint.aclose()
        await web.throttle.aclose()
        try:
            # The last key usage and audit events; a database that hangs does not hold
            # the shutdown for ever.
            with anyio.fail_after(execution.database_wait):
                await to_thread.run_sync(runtime.close, abandon_on_cancel=True)
        except Exception as exc:
            _could_not("key usage and audit events at shutdown", exc)

    app = Starlette(
        routes=[
            Route("/openapi.json", openapi, methods=["GET"]),
            Route("/docs", docs, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics_page, methods=["GET"]),
            *web_routes,
        ],
        exception_handlers={
            404: not_found,
            405: not_found,
            BadForm: web.refused,
            Forbidden: web.refused,
            NotSignedIn: web.refused,
        },
        lifespan=lifespan,
    )

    def outage_page(request: Request) -> Response:
        if request.url.path.startswith(WEB_PREFIXES):
            response = web.message(
                request,
                "Try again shortly",
                "The database is not answering. Nothing was changed; try again in a moment.",
                503,
            )
        else:
            error = unavailable()
            response = json_response(envelope.error(error), error.http_status, error.headers())
        response.headers["retry-after"] = str(RETRY_AFTER_SECONDS)
        return response

    app.add_middleware(OutageMiddleware, outages=OutageLog(log), page=outage_page)
    app.add_middleware(RequestIdMiddleware)
    app.state.runtime = runtime
    app.state.relay = relay
    return LedgerdeskApp(endpoint, app, runtime)


async def _flush_meter(meter: metrics.RequestMeter) -> None:
    """The requests counted since the last flush, to the metrics (on the event loop,
    where they are counted)."""
    while True:
        await anyio.sleep(METER_FLUSH_SECONDS)
        meter.flush()


async def _sample_pools(monitoring: Monitoring) -> None:
    while True:
        monitoring.pools.sample()
        await anyio.sleep(POOL_SAMPLE_SECONDS)


async def _every(seconds: float, flush: Callable[[], object], what: str) -> None:
    while True:
        await anyio.sleep(seconds)
        try:
            await to_thread.run_sync(flush)
        except Exception as exc:
            _could_not(what, exc)


async def _key_usage(seconds: float, execution: Execution) -> None:
    while True:
        await anyio.sleep(seconds)
        try:
            await execution.flush_key_usage()
        except Exception as exc:
            _could_not("key usage", exc)


async def _known_keys(endpoint: ActionEndpoint) -> None:
    """The fingerprints of the keys that exist: at start-up, then every so often."""
    while True:
        try:
            await endpoint.load_known_keys()
        except Exception as exc:
            _could_not("(read) the known API keys", exc)
        await anyio.sleep(KNOWN_KEYS_REFRESH)


def _could_not(what: str, exc: Exception) -> None:
    """A background write failed: one line for an outage (it is retried), a traceback
    for anything else."""
    if is_outage(exc):
        log.warning("could not write %s (%s); will retry", what, type(exc).__name__)
    else:
        log.exception("could not write %s; will retry", what)


def _due_times(runtime: Runtime) -> None:
    """Every open ticket's service-level due time again when the settings changed (or
    tickets are from before service levels): in the background, a batch a transaction,
    so start-up and writes do not wait; several servers doing it at once agree."""
    levels = runtime.service_levels
    try:
        with runtime.transaction(write=False) as (session, _):
            if due_times_current(session, levels):
                return
        after: int | None = 0
        while after is not None:
            with runtime.transaction(write=True) as (session, _):
                after = recompute_due_batch(session, levels, after)
        with runtime.transaction(write=True) as (session, _):
            store_due_fingerprint(session, levels)
        log.info("service levels changed: due times computed again")
    except Exception:
        log.exception("could not compute the tickets' due times again")


async def _clean_storage(runtime: Runtime) -> None:
    """Leftovers of earlier runs: dead processes' uploads and orphaned bytes.

    In the background, so a large store does not delay start-up; safe beside live
    requests and other workers (see attachments.maintenance).
    """
    try:
        leftovers, orphans = await to_thread.run_sync(runtime.maintenance.clean)
    except Exception:
        log.exception("could not clean attachment storage at start-up")
        return
    if leftovers or orphans:
        log.warning(
            "removed %d upload leftovers and %d orphaned attachment files of earlier runs",
            len(leftovers),
            len(orphans),
        )


def create_app_from_env() -> LedgerdeskApp:
    """Factory for ``uvicorn --factory`` (used by ``ledgerdesk serve --workers N``)."""
    tune_allocator()  # each worker process tunes its own, and logs as asked
    settings = Settings.from_env()
    logs.configure(settings.log_format, requests=settings.access_log)
    directory = os.environ.get(metrics.MULTIPROCESS_VARIABLE)
    if directory:
        # The counts of workers that died before this one started are kept, folded.
        folded = metrics.compact(Path(directory), alive=[os.getppid()])
        if folded:
            log.info("metrics: folded %d files of workers that are gone", folded)
    return create_app(settings)
