"""The staff console (``/console``): dashboard, ticket queue, customers, invoices, keys."""

from __future__ import annotations

from datetime import date
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ledgerdesk.accounts.people import PeopleService
from ledgerdesk.accounts.service import AccountReader, AccountService
from ledgerdesk.db.models import User
from ledgerdesk.errors import LedgerdeskError, NotFound, invalid
from ledgerdesk.events.log import EventLog
from ledgerdesk.invoices.money import parse_amount, parse_percentage
from ledgerdesk.invoices.queries import InvoiceQueries
from ledgerdesk.invoices.service import InvoiceReader, InvoiceService, StaffInvoiceReader
from ledgerdesk.tickets.queries import QueueCursor, QueueFilter, TicketQueries
from ledgerdesk.web import display, security
from ledgerdesk.web.core import (
    Page,
    Redirect,
    Refused,
    Visit,
    Web,
    field_errors,
    path_id,
    text_field,
)
from ledgerdesk.web.history import history
from ledgerdesk.web.keys import create_key, key_errors, key_values, keys_of, revoke_key
from ledgerdesk.web.tickets import TicketPages

PAGE_SIZE = 50
STATUS_FILTERS = {"open": 1, "closed": 0, "forced": 2, "all": None}


def routes(web: Web) -> list[BaseRoute]:
    console = Console(web)
    return [
        Route("/", console.dashboard, methods=["GET"]),
        Route("/tickets", console.queue, methods=["GET"]),
        *TicketPages(web, "staff").routes(),
        Route("/customers", console.customers, methods=["GET", "POST"]),
        Route("/customers/{user_id:int}", console.customer, methods=["GET"]),
        Route("/customers/{user_id:int}/access", console.access, methods=["POST"]),
        Route("/customers/{user_id:int}/details", console.details, methods=["POST"]),
        Route("/customers/{user_id:int}/keys", console.new_key, methods=["POST"]),
        Route("/keys/{key_id:int}/revoke", console.revoke, methods=["POST"]),
        Route("/invoices", console.invoices, methods=["GET", "POST"]),
        Route("/invoices/{invoice_id:int}/paid", console.mark_paid, methods=["GET", "POST"]),
        *security.routes(web, "staff"),
    ]


class Console:
    def __init__(self, web: Web) -> None:
        self.web = web

    # -- dashboard and queue ------------------------------------------------------------

    async def dashboard(self, request: Request) -> Response:
        def work(visit: Visit) -> Page:
            tickets = TicketQueries(visit.db)
            return Page(
                "console/dashboard.html",
                {
                    "open_by_priority": tickets.open_by_priority(),
                    "oldest": tickets.oldest_waiting(),
                    "receivables": StaffInvoiceReader(InvoiceQueries(visit.db)).receivables(
                        visit.today
                    ),
                    "now": visit.now,
                },
            )

        return await self.web.visit(request, "staff", work)

    async def queue(self, request: Request) -> Response:
        params = request.query_params
        errors: dict[str, str] = {}
        status_name = params.get("status", "open")
        if status_name not in STATUS_FILTERS:
            errors["status"] = "must be open, closed, forced or all"
            status_name = "open"
        priority = _int_param(params.get("priority"), 1, 4, "priority", errors)
        customer = _int_param(params.get("customer"), 1, 2**63 - 1, "customer", errors)
        text = (params.get("q") or "").strip()[:200] or None
        sort = params.get("sort", "waiting")
        if sort not in ("waiting", "priority"):
            errors["sort"] = "must be waiting or priority"
            sort = "waiting"
        after = _cursor(params.get("after"), errors)
        which = QueueFilter(
            status=STATUS_FILTERS[status_name],
            priority=priority,
            user_id=customer,
            text=text,
            sort="priority" if sort == "priority" else "waiting",
        )

        def work(visit: Visit) -> Page:
            queries = TicketQueries(visit.db)
            rows = queries.queue(which, after=after, limit=PAGE_SIZE + 1)
            more = len(rows) > PAGE_SIZE
            rows = rows[:PAGE_SIZE]
            last = rows[-1] if rows and more else None
            next_after = f"{last.priority}.{last.last_updated_at}.{last.id}" if last else None
            return Page(
                "console/queue.html",
                {
                    "rows": rows,
                    "open_by_priority": queries.open_by_priority(),
                    "filters": {
                        "status": status_name,
                        "priority": priority or "",
                        "customer": customer or "",
                        "q": text or "",
                        "sort": sort,
                    },
                    "next_after": next_after,
                    "paged": after is not None,
                    "errors": errors,
                    "now": visit.now,
                },
                400 if errors else 200,
            )

        return await self.web.visit(request, "staff", work)

    # -- customers ----------------------------------------------------------------------

    async def customers(self, request: Request) -> Response:
        text = (request.query_params.get("q") or "").strip()[:200] or None
        errors: dict[str, str] = {}
        after = _int_param(request.query_params.get("after"), 1, 2**63 - 1, "after", errors)

        def listing(visit: Visit, form_errors: dict[str, str], values: dict[str, str]) -> Page:
            found = AccountReader(visit.session).customers(
                text=text, after_id=after, limit=PAGE_SIZE + 1
            )
            return Page(
                "console/customers.html",
                {
                    "customers": found[:PAGE_SIZE],
                    "next_after": found[PAGE_SIZE - 1].id if len(found) > PAGE_SIZE else None,
                    "q": text or "",
                    "errors": {**errors, **form_errors},
                    "values": values,
                },
                400 if errors or form_errors else 200,
            )

        if request.method == "GET":
            return await self.web.visit(request, "staff", lambda v: listing(v, {}, {}))
        form = await self.web.form(request, "staff")
        values = {"name": text_field(form, "name"), "email": text_field(form, "email").strip()}

        def create(visit: Visit) -> Redirect:
            try:
                user = AccountService(visit.work).create_user(
                    name=values["name"], email=values["email"] or None, staff=False
                )
            except LedgerdeskError as exc:
                problems = field_errors(exc)
                raise Refused(lambda again: listing(again, problems, values)) from None
            return Redirect(f"/console/customers/{user.id}", flash=f"Created {user.name}.")

        return await self.web.visit(request, "staff", create, form=form, write=True)

    def _customer_page(
        self,
        visit: Visit,
        user_id: int,
        *,
        errors: dict[str, str] | None = None,
        values: dict[str, str] | None = None,
        details_errors: dict[str, str] | None = None,
        details: dict[str, str] | None = None,
    ) -> Page:
        user = visit.session.get(User, user_id)
        if user is None or user.is_staff:
            raise NotFound(f"Customer {user_id} not found.")
        tickets = TicketQueries(visit.db).queue(
            QueueFilter(status=None, user_id=user_id), after=None, limit=PAGE_SIZE
        )
        return Page(
            "console/customer.html",
            {
                "customer": user,
                "tickets": tickets,
                "invoices": InvoiceReader(InvoiceQueries(visit.db)).latest(user_id),
                "keys": keys_of(visit, user_id),
                "errors": errors or {},
                "values": values or {},
                "new_key": visit.once.get("api_key"),
                "link": visit.once.get("link"),
                "now": visit.now,
                "today": visit.today,
                "history": history(
                    visit.session, EventLog(visit.session).of_customer(user_id, limit=50)
                ),
                "details": details or {"name": user.name, "email": user.email or ""},
                "details_errors": details_errors or {},
            },
            400 if errors or details_errors else 200,
        )

    async def details(self, request: Request) -> Response:
        """Change a customer's name or email address."""
        user_id = path_id(request, "user_id")
        form = await self.web.form(request, "staff")
        values = {"name": text_field(form, "name"), "email": text_field(form, "email").strip()}

        def work(visit: Visit) -> Redirect:
            self._customer_page(visit, user_id)  # a customer, or 404
            try:
                AccountService(visit.work).update_user(
                    user_id, name=values["name"], email=values["email"]
                )
            except LedgerdeskError as exc:
                problems = field_errors(exc)
                raise Refused(
                    lambda again: self._customer_page(
                        again, user_id, details_errors=problems, details=values
                    )
                ) from None
            return Redirect(f"/console/customers/{user_id}", flash="Details saved.")

        return await self.web.visit(request, "staff", work, form=form, write=True)

    async def customer(self, request: Request) -> Response:
        user_id = path_id(request, "user_id")
        await self.web.fresh_key_usage(request, "staff")
        return await self.web.visit(
            request, "staff", lambda visit: self._customer_page(visit, user_id)
        )

    async def access(self, request: Request) -> Response:
        """Disable or enable a customer, or make a one-time link to set their password."""
        user_id = path_id(request, "user_id")
        form = await self.web.form(request, "staff")
        action = text_field(form, "action")
        # Never from the request's Host header: a link made from it would send the
        # password reset to whoever the header named (links are mailed).
        site = self.web.runtime.settings.public_url

        def work(visit: Visit) -> Page | Redirect:
            self._customer_page(visit, user_id)  # a customer, or 404
            people = PeopleService.of(visit.work)
            if action in ("disable", "enable"):
                people.set_disabled(user_id, action == "disable", now=visit.now)
                return Redirect(f"/console/customers/{user_id}", flash=f"Customer {action}d.")
            if action in ("invite", "reset"):
                try:
                    secret = people.issue_link(
                        user_id, "invite" if action == "invite" else "reset", now=visit.now
                    )
                except LedgerdeskError as exc:
                    problems = field_errors(exc)
                    raise Refused(
                        lambda again: self._customer_page(again, user_id, errors=problems)
                    ) from None
                made = "Invitation" if action == "invite" else "Password reset"
                return Redirect(
                    f"/console/customers/{user_id}",
                    flash=f"{made} link made; it is shown below this once.",
                    once={"link": f"{site}/password/{secret}"},
                )
            raise invalid("action", "must be disable, enable, invite or reset")

        return await self.web.visit(request, "staff", work, form=form, write=True)

    async def new_key(self, request: Request) -> Response:
        user_id = path_id(request, "user_id")
        form = await self.web.form(request, "staff")

        def work(visit: Visit) -> Redirect:
            self._customer_page(visit, user_id)  # a customer, or 404
            try:
                new = create_key(visit, user_id, form)
            except LedgerdeskError as exc:
                problems = key_errors(field_errors(exc))
                typed = key_values(form)
                raise Refused(
                    lambda again: self._customer_page(again, user_id, errors=problems, values=typed)
                ) from None
            return Redirect(
                f"/console/customers/{user_id}",
                flash=f"API key #{new.key.id} created; it is shown below this once.",
                once={"api_key": new.secret},
            )

        return await self.web.visit(request, "staff", work, form=form, write=True)

    async def revoke(self, request: Request) -> Response:
        key_id = path_id(request, "key_id")
        form = await self.web.form(request, "staff")

        def work(visit: Visit) -> Redirect:
            key = revoke_key(visit, key_id, owner=None)
            return Redirect(f"/console/customers/{key.user_id}", flash=f"Key {key.id} revoked.")

        return await self.web.visit(request, "staff", work, form=form, write=True)

    # -- invoices -----------------------------------------------------------------------

    def _invoices_page(
        self,
        visit: Visit,
        show: str,
        *,
        errors: dict[str, str] | None = None,
        values: dict[str, str] | None = None,
    ) -> Page:
        reader = StaffInvoiceReader(InvoiceQueries(visit.db))
        return Page(
            "console/invoices.html",
            {
                "show": show,
                "invoices": reader.unpaid(overdue_on=visit.today if show == "overdue" else None),
                "receivables": reader.receivables(visit.today),
                "errors": errors or {},
                "values": values or {"pay_within_days": "30", "vat_perc": "21"},
                "today": visit.today,
            },
            400 if errors else 200,
        )

    async def invoices(self, request: Request) -> Response:
        show = "overdue" if request.query_params.get("show") == "overdue" else "unpaid"
        if request.method == "GET":
            return await self.web.visit(
                request, "staff", lambda visit: self._invoices_page(visit, show)
            )
        form = await self.web.form(request, "staff")
        names = ("customer", "title", "description", "amount", "vat_perc", "date")
        values = {name: text_field(form, name).strip() for name in (*names, "pay_within_days")}

        def work(visit: Visit) -> Redirect:
            try:
                view = self._issue(visit, values)
            except LedgerdeskError as exc:
                problems = _invoice_errors(field_errors(exc))
                raise Refused(
                    lambda again: self._invoices_page(again, show, errors=problems, values=values)
                ) from None
            return Redirect(
                f"/console/customers/{view.user_id}",
                flash=f"Invoice {view.number} issued: "
                f"{display.money(view.amount_net, visit.settings.currency)} incl. VAT.",
            )

        return await self.web.visit(request, "staff", work, form=form, write=True)

    def _issue(self, visit: Visit, values: dict[str, str]) -> Any:
        """The same rules as ``ledgerdesk admin invoice create``, from the form's text."""
        customer_id = _parsed(values["customer"], "customer", int)
        amount = _parsed(values["amount"], "amount", parse_amount)
        vat = _parsed(values["vat_perc"], "vat_perc", parse_percentage)
        created_on = (
            _parsed(values["date"], "date", date.fromisoformat) if values["date"] else visit.today
        )
        days = _parsed(values["pay_within_days"] or "30", "pay_within_days", int)
        customer = visit.session.get(User, customer_id) if 0 < customer_id < 2**63 else None
        if customer is None:
            raise invalid("customer", f"no customer has id {customer_id}")
        return InvoiceService(visit.work).create(
            customer=customer,
            title=values["title"],
            description=values["description"],
            amount_excl_vat_cents=amount,
            vat_perc_hundredths=vat,
            created_on=created_on,
            pay_within_days=days,
        )

    async def mark_paid(self, request: Request) -> Response:
        invoice_id = path_id(request, "invoice_id")
        if request.method == "GET":  # asked on a page of its own, then posted from it
            back = request.query_params.get("back")

            def confirm(visit: Visit) -> Page:
                view = StaffInvoiceReader(InvoiceQueries(visit.db)).details(invoice_id)
                return Page(
                    "confirm.html",
                    {
                        "title": f"Mark invoice {view.number} paid?",
                        "subject": view.title,
                        "text": f"{display.money(view.amount_net, visit.settings.currency)}"
                        f" incl. VAT, due {view.pay_before}. It is paid as of today, "
                        f"{visit.today}; this cannot be undone here.",
                        "action": f"/console/invoices/{invoice_id}/paid",
                        "fields": {"back": "overdue"} if back == "overdue" else {},
                        "button": "Mark paid",
                        "back": "/console/invoices"
                        + ("?show=overdue" if back == "overdue" else ""),
                    },
                )

            return await self.web.visit(request, "staff", confirm)
        form = await self.web.form(request, "staff")
        back = "/console/invoices?show=overdue" if form.get("back") == "overdue" else None

        def work(visit: Visit) -> Redirect:
            view = InvoiceService(visit.work).mark_paid(invoice_id, paid_on=visit.today)
            return Redirect(
                back or f"/console/customers/{view.user_id}",
                flash=f"Invoice {view.number} marked paid.",
            )

        return await self.web.visit(request, "staff", work, form=form, write=True)


# The invoice service's names for what it refuses, as this form names its fields.
_INVOICE_FIELDS = {"amount_excl_vat": "amount", "paid_on": "date"}


def _invoice_errors(errors: dict[str, str]) -> dict[str, str]:
    return {_INVOICE_FIELDS.get(name, name): message for name, message in errors.items()}


def _parsed(raw: str, name: str, parse: Any) -> Any:
    try:
        return parse(raw)
    except ValueError as exc:
        message = str(exc) if parse in (parse_amount, parse_percentage) else "is not valid"
        raise invalid(name, message or "is not valid") from None


def _int_param(
    raw: str | None, low: int, high: int, name: str, errors: dict[str, str]
) -> int | None:
    if not raw:
        return None
    if raw.isdigit() and low <= int(raw) <= high:
        return int(raw)
    errors[name] = f"must be a whole number from {low} to {high}"
    return None


def _cursor(raw: str | None, errors: dict[str, str]) -> QueueCursor | None:
    if not raw:
        return None
    parts = raw.split(".")
    if len(parts) == 3 and all(p.isdigit() and len(p) < 19 for p in parts):
        priority, updated, ticket_id = (int(p) for p in parts)
        return QueueCursor(priority=priority, last_updated_at=updated, id=ticket_id)
    errors["after"] = "is not a position in this list"
    return None
