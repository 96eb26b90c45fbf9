"""The console's dashboard and ticket queue, and changes to a selection of the queue."""

from __future__ import annotations

import threading
from urllib.parse import parse_qsl, urlencode

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from ledgerdesk.db.models import MailFetcher
from ledgerdesk.errors import invalid
from ledgerdesk.events.log import EventLog
from ledgerdesk.invoices.queries import InvoiceQueries
from ledgerdesk.invoices.service import StaffInvoiceReader
from ledgerdesk.tickets.queries import (
    CANDIDATES,
    NEVER,
    QueueCursor,
    QueueFilter,
    TicketQueries,
)
from ledgerdesk.tickets.service import TicketService, checked_tag, tags_of
from ledgerdesk.web.core import Redirect, Visit, Web, staff_members, text_field
from ledgerdesk.web.pages import DashboardPage, Page, QueueFilters, QueuePage
from ledgerdesk.webhooks.service import WebhookReader

PAGE_SIZE = 50
MAX_SEARCH_PAGES = 20  # a search's results, best first, go this deep (by offset)
SORTS = ("waiting", "priority", "due", "best")
STATUS_FILTERS = {"open": 1, "closed": 0, "forced": 2, "all": None}
OWNERS = ("any", "mine", "unassigned")
TURNS = ("any", "ours", "customers")


class OpenCounts:
    """The open tickets by priority, counted again only once the event log has moved
    (every change to a ticket's status or priority is an event): pages of a quiet
    console do not count every open ticket each time. One per process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._at = -1
        self._counts: dict[int, int] = {}

    def of(self, visit: Visit) -> tuple[dict[int, int], int]:
        """The counts, and the log's place they are true at (read first: a change that
        commits meanwhile moves the log past it, so it is counted next time)."""
        at = EventLog(visit.session).last_id()
        with self._lock:
            if self._at == at:
                return self._counts, at
        counts = TicketQueries(visit.db).open_by_priority()
        with self._lock:
            self._at, self._counts = at, counts
        return counts, at


class QueuePages:
    def __init__(self, web: Web) -> None:
        self.web = web
        self.open_counts = OpenCounts()

    async def dashboard(self, request: Request) -> Response:
        def work(visit: Visit) -> Page:
            tickets = TicketQueries(visit.db)
            overdue, due_soon = tickets.due_counts(visit.now)
            return Page(
                DashboardPage(
                    open_by_priority=self.open_counts.of(visit)[0],
                    overdue=overdue,
                    due_soon=due_soon,
                    oldest=tickets.oldest_waiting(),
                    receivables=StaffInvoiceReader(InvoiceQueries(visit.db)).receivables(
                        visit.today
                    ),
                    now=visit.now,
                    stopped_endpoints=WebhookReader(visit.session).disabled_by_failures(),
                    failing_mailboxes=visit.session.scalars(
                        select(MailFetcher).where(MailFetcher.failing_since.is_not(None))
                    ).all(),
                )
            )

        return await self.web.visit(request, "staff", work)

    async def queue(self, request: Request) -> Response:
        params = request.query_params
        errors: dict[str, str] = {}
        status_name = params.get("status", "open")
        if status_name not in STATUS_FILTERS:
            errors["status"] = "must be open, closed, forced or all"
            status_name = "open"
        priority = int_param(params.get("priority"), 1, 4, "priority", errors)
        customer = int_param(params.get("customer"), 1, 2**63 - 1, "customer", errors)
        text = (params.get("q") or "").strip()[:200] or None
        sort = params.get("sort") or ("best" if text else "waiting")
        if sort not in SORTS or (sort == "best" and not text):
            errors["sort"] = "must be waiting, priority or due (or best, with a search)"
            sort = "waiting"
        owner = params.get("owner", "any")
        if owner not in OWNERS:
            errors["owner"] = "must be any, mine or unassigned"
            owner = "any"
        turn = params.get("turn", "any")
        if turn not in TURNS:
            errors["turn"] = "must be any, ours or customers"
            turn = "any"
        tag = (params.get("tag") or "").strip()[:40].lower() or None
        after = cursor(params.get("after"), errors)
        page = int_param(params.get("page"), 1, MAX_SEARCH_PAGES, "page", errors) or 1

        def work(visit: Visit) -> Page:
            open_by_priority, since = self.open_counts.of(visit)
            which = QueueFilter(
                status=STATUS_FILTERS[status_name],
                priority=priority,
                user_id=customer,
                sort="priority" if sort == "priority" else "due" if sort == "due" else "waiting",
                owner="mine"
                if owner == "mine"
                else "unassigned"
                if owner == "unassigned"
                else "any",
                staff_id=visit.person.user_id,
                turn="ours" if turn == "ours" else "customers" if turn == "customers" else "any",
                now=visit.now,
                tag=tag,
            )
            queries = TicketQueries(visit.db)
            if text:
                rows = queries.search(
                    which,
                    text,
                    sort="best"
                    if sort == "best"
                    else "priority"
                    if sort == "priority"
                    else "due"
                    if sort == "due"
                    else "waiting",
                    offset=(page - 1) * PAGE_SIZE,
                    limit=PAGE_SIZE + 1,
                )
            else:
                rows = queries.queue(which, after=after, limit=PAGE_SIZE + 1)
            more = len(rows) > PAGE_SIZE
            rows = rows[:PAGE_SIZE]
            # Whether the words are in more entries than a search ranks (the newest).
            capped = bool(text and rows) and queries.matches(text or "") > CANDIDATES
            last = rows[-1] if rows and more and not text else None
            position = (last.due_at or NEVER) if sort == "due" and last else None
            next_after = (
                f"{last.priority}.{position if position is not None else last.last_updated_at}"
                f".{last.id}"
                if last
                else None
            )
            return Page(
                QueuePage(
                    rows=rows,
                    open_by_priority=open_by_priority,
                    filters=QueueFilters(
                        status_name, priority, customer, text or "", sort, owner, turn, tag or ""
                    ),
                    tags=tags_of(visit.session, [row.id for row in rows]),
                    staff=staff_members(visit.session),
                    next_after=next_after,
                    next_page=page + 1 if text and more and page < MAX_SEARCH_PAGES else None,
                    paged=after is not None or page > 1,
                    searched=bool(text),
                    capped=capped,
                    since=since,
                    now=visit.now,
                    errors=errors,
                ),
                400 if errors else 200,
            )

        return await self.web.visit(request, "staff", work)

    async def bulk(self, request: Request) -> Response:
        """One change to every ticket chosen in the queue, all or none of them."""
        form = await self.web.form(request, "staff")
        chosen = [str(v) for v in form.getlist("ticket")][: PAGE_SIZE + 1]
        action = text_field(form, "action")
        # Back to the same view: its query, rebuilt from its pairs (never a URL as given).
        back = urlencode(parse_qsl(text_field(form, "back")[:2000])[:20])

        def work(visit: Visit) -> Redirect:
            if action not in BULK_ACTIONS:
                raise invalid("action", f"must be one of {', '.join(BULK_ACTIONS)}")
            if not chosen:
                raise invalid("ticket", "choose at least one ticket")
            if len(chosen) > PAGE_SIZE or not all(v.isdigit() for v in chosen):
                raise invalid("ticket", f"choose up to {PAGE_SIZE} tickets of the list")
            service = TicketService(visit.work)
            assignee = text_field(form, "assignee").strip()
            priority = text_field(form, "priority").strip()
            tag = text_field(form, "tag")
            for ticket_id in dict.fromkeys(int(v) for v in chosen):
                if action == "take":
                    service.assign(ticket_id, visit.person.user_id)
                elif action == "assign":
                    if assignee and not assignee.isdigit():
                        raise invalid("assignee", "must be a staff member")
                    service.assign(ticket_id, int(assignee) if assignee else None)
                elif action == "tag":
                    service.set_tags(ticket_id, [*service.tags(ticket_id), checked_tag(tag)])
                elif action == "close":
                    service.close(ticket_id, user_id=None)
                else:
                    if not priority.isdigit():
                        raise invalid("priority", "must be 1, 2, 3 or 4")
                    service.set_priority(ticket_id, int(priority))
            count = len(set(chosen))
            return Redirect(
                f"/console/tickets?{back}",
                flash=f"{count} ticket{'s' if count > 1 else ''}: {BULK_DONE[action]}.",
            )

        return await self.web.visit(request, "staff", work, form=form, write=True)


BULK_DONE = {
    "take": "yours now",
    "assign": "assigned",
    "tag": "tagged",
    "close": "closed",
    "priority": "priority set",
}
BULK_ACTIONS = ("take", "assign", "tag", "close", "priority")


def int_param(
    raw: str | None, low: int, high: int, name: str, errors: dict[str, str]
) -> int | None:
    if not raw:
        return None
    if raw.isdigit() and low <= int(raw) <= high:
        return int(raw)
    errors[name] = f"must be a whole number from {low} to {high}"
    return None


def cursor(raw: str | None, errors: dict[str, str]) -> QueueCursor | None:
    if not raw:
        return None
    parts = raw.split(".")
    if len(parts) == 3 and all(p.isdigit() and len(p) < 19 for p in parts):
        priority, updated, ticket_id = (int(p) for p in parts)
        return QueueCursor(priority=priority, last_updated_at=updated, id=ticket_id)
    errors["after"] = "is not a position in this list"
    return None
