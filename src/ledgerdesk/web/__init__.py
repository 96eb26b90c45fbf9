"""The web console for staff (``/console``) and the portal for customers (``/account``).

Server-rendered HTML from Jinja templates in the same ASGI application as the API,
enhanced by small JavaScript modules (no build step, no CDN: every asset is served from
this package). Pages reuse the domain services and their tenant-scoped queries.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from ledgerdesk.execution import Execution
from ledgerdesk.runtime import Runtime
from ledgerdesk.web import auth, console, portal
from ledgerdesk.web.addresses import AddressPages
from ledgerdesk.web.core import Web

STATIC_PREFIX = "/static/web"


def build_routes(runtime: Runtime, execution: Execution) -> tuple[Web, list[BaseRoute]]:
    """The web's routes, and the ``Web`` they share (closed at shutdown). The app
    answers ``BadForm`` and ``Forbidden`` with ``Web.refused``."""
    web = Web(runtime, execution)

    async def home(_: Request) -> Response:
        return RedirectResponse("/signin", 303)

    return web, [
        Route("/", home, methods=["GET"]),
        *auth.routes(web),
        *AddressPages(web).confirm_routes(),
        Mount("/console", routes=console.routes(web)),
        Mount("/account", routes=portal.routes(web)),
        Mount(STATIC_PREFIX, StaticFiles(directory=web.static_dir), name="web-static"),
    ]
