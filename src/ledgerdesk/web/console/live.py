"""The console's live pages: the queue and a ticket's page hear of changes as the event
log moves (server-sent events), and a ticket's page of who else is on it or writing a
reply there (the collision warning). Every page is whole without this: the stream only
tells the page's script to fetch the page again, or shows who is there.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import anyio
import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ledgerdesk.db.models import Ticket
from ledgerdesk.errors import NotFound
from ledgerdesk.live import Change
from ledgerdesk.tickets.queries import Present, TicketQueries
from ledgerdesk.tickets.repository import mark_present
from ledgerdesk.web.core import SECURITY_HEADERS, Visit, Web, path_id, text_field

# A stream ends after this long and the browser opens it again (with the last event's
# id): the session is checked again, and a server that stops waits for no page longer.
STREAM_SECONDS = 50.0
PRESENCE_EVERY = 3.0  # how often a ticket's page is told who else is there
KEEPALIVE_SECONDS = 15.0  # a comment line, so proxies keep an idle stream open
RETRY_MS = 2000  # how soon the browser opens a stream again


class LivePages:
    def __init__(self, web: Web) -> None:
        self.web = web

    async def stream(self, request: Request) -> Response:
        """``/console/live``: the changes to tickets (``?ticket=ID``: to that ticket, and
        who else is on its page) after the page's place in the log (``since``, or the
        browser's ``Last-Event-ID`` when it opens the stream again)."""
        params = request.query_params
        ticket_id = _whole(params.get("ticket"))
        since = _whole(request.headers.get("last-event-id") or params.get("since"))
        if ("ticket" in params and ticket_id is None) or ("since" in params and since is None):
            return Response("ticket and since must be whole numbers", 400)
        who: list[int] = []

        def work(visit: Visit) -> Response:
            if ticket_id is not None and visit.session.get(Ticket, ticket_id) is None:
                raise NotFound(f"Ticket {ticket_id} not found.")
            who.append(visit.person.user_id)
            return Response(status_code=200)

        checked = await self.web.visit(request, "staff", work)
        if checked.status_code != 200 or not who:
            return checked
        return StreamingResponse(
            self._events(who[0], ticket_id, since),
            media_type="text/event-stream",
            headers={**SECURITY_HEADERS, "x-accel-buffering": "no"},
        )

    async def presence(self, request: Request) -> Response:
        """The ticket's page is open (``typing=1``: a reply is being written there):
        bookkeeping, no event; 204."""
        ticket_id = path_id(request, "ticket_id")
        form = await self.web.form(request, "staff")
        typing = text_field(form, "typing") == "1"

        def work(visit: Visit) -> Response:
            if not mark_present(
                visit.session, visit.person.user_id, ticket_id, visit.now, typing=typing
            ):
                raise NotFound(f"Ticket {ticket_id} not found.")
            return Response(status_code=204)

        return await self.web.visit(request, "staff", work, form=form, write=True)

    async def _events(
        self, user_id: int, ticket_id: int | None, since: int | None
    ) -> AsyncIterator[bytes]:
        feed = self.web.live
        yield f"retry: {RETRY_MS}\n\n".encode()
        with feed.subscribe() as (changes, position):
            if since is not None:
                missed = await self.web.execution.blocking(feed.missed, since, position)
                for earlier in missed:
                    if ticket_id is None or earlier.ticket_id == ticket_id:
                        yield _changed(earlier)
            ends = time.monotonic() + STREAM_SECONDS
            shown: list[Present] | None = None
            while (left := ends - time.monotonic()) > 0:
                if ticket_id is not None:
                    here = await self._present(ticket_id, user_id)
                    if here != shown:
                        shown = here
                        yield _frame("presence", [p._asdict() for p in here])
                wait = min(left, PRESENCE_EVERY if ticket_id is not None else KEEPALIVE_SECONDS)
                try:
                    with anyio.fail_after(wait):
                        change = await changes.get()
                except TimeoutError:
                    if ticket_id is None:
                        yield b": still here\n\n"
                    continue
                if change is None:  # fell too far behind: the page is fetched whole
                    yield _frame("reload", {})
                    return
                if ticket_id is None or change.ticket_id == ticket_id:
                    yield _changed(change)

    async def _present(self, ticket_id: int, user_id: int) -> list[Present]:
        now = self.web.runtime.clock.timestamp()
        return await self.web.execution.read(
            lambda db, _: TicketQueries(db).present(ticket_id, now, but=user_id)
        )


def _whole(raw: str | None) -> int | None:
    return int(raw) if raw is not None and raw.isdigit() and len(raw) < 19 else None


def _frame(event: str, data: object, event_id: int | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: ".encode() + orjson.dumps(data) + b"\n\n"


def _changed(change: Change) -> bytes:
    return _frame("changed", {"ticket": change.ticket_id, "type": change.type}, change.id)
