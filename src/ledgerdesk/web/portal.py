"""The customer portal (``/account``): a customer's invoices, tickets and own API keys.

Every read goes through the same tenant-scoped queries as the API, with the signed-in
customer's id in the statement: another customer's ticket or invoice is a 404.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ledgerdesk.accounts.billing import BILLING_FIELDS
from ledgerdesk.accounts.service import AccountService
from ledgerdesk.db.models import Ticket
from ledgerdesk.errors import LedgerdeskError
from ledgerdesk.invoices.queries import InvoiceQueries
from ledgerdesk.invoices.service import InvoiceReader
from ledgerdesk.tickets.queries import TicketQueries
from ledgerdesk.tickets.service import TicketReader
from ledgerdesk.web import security
from ledgerdesk.web.addresses import AddressPages
from ledgerdesk.web.core import (
    Redirect,
    Refused,
    Visit,
    Web,
    field_errors,
    path_id,
    text_field,
)
from ledgerdesk.web.documents import document_response
from ledgerdesk.web.keys import create_key, key_errors, key_values, keys_of, revoke_key
from ledgerdesk.web.pages import (
    BillingPage,
    Page,
    PortalHomePage,
    PortalInvoicePage,
    PortalKeysPage,
)
from ledgerdesk.web.tickets import TicketPages
from ledgerdesk.web.webhooks import WebhookPages

RECENT_INVOICES = 100
# The portal's views of a customer's tickets; "answered": open, staff spoke last.
TICKET_VIEWS = ("all", "answered", "open", "closed")


def answered_tickets(session: Session, customer_id: int) -> frozenset[int]:
    """The customer's open tickets whose last word is staff's: theirs to read."""
    return frozenset(
        session.scalars(
            select(Ticket.id).where(
                Ticket.user_id == customer_id, Ticket.status == 1, Ticket.turn == 2
            )
        )
    )


def routes(web: Web) -> list[BaseRoute]:
    portal = Portal(web)
    return [
        Route("/", portal.home, methods=["GET"]),
        Route("/invoices/{invoice_id:int}", portal.invoice, methods=["GET"]),
        Route("/invoices/{invoice_id:int}/documents/{format}", portal.document, methods=["GET"]),
        Route("/billing", portal.billing, methods=["GET", "POST"]),
        *AddressPages(web).portal_routes(),
        *TicketPages(web, "customer").routes(),
        *WebhookPages(web, "customer").routes(),
        Route("/keys", portal.keys, methods=["GET", "POST"]),
        Route("/keys/{key_id:int}/revoke", portal.revoke, methods=["POST"]),
        *security.routes(web, "customer"),
    ]


class Portal:
    def __init__(self, web: Web) -> None:
        self.web = web

    async def home(self, request: Request) -> Response:
        show = request.query_params.get("tickets", "all")
        if show not in TICKET_VIEWS:
            show = "all"

        def work(visit: Visit) -> Page:
            me = visit.person.user_id
            tickets = TicketReader(TicketQueries(visit.db)).overview(user_id=me, status=None)
            answered = answered_tickets(visit.session, me)
            shown = [
                t
                for t in tickets
                if show == "all"
                or (show == "answered" and t.id in answered)
                or (show == "open" and t.status == 1)
                or (show == "closed" and t.status != 1)
            ]
            return Page(
                PortalHomePage(
                    tickets=shown,
                    answered=answered,
                    show=show,
                    invoices=InvoiceReader(InvoiceQueries(visit.db)).latest(
                        me, limit=RECENT_INVOICES
                    ),
                    today=visit.today,
                )
            )

        return await self.web.visit(request, "customer", work)

    async def invoice(self, request: Request) -> Response:
        invoice_id = path_id(request, "invoice_id")

        def work(visit: Visit) -> Page:
            reader = InvoiceReader(InvoiceQueries(visit.db))
            me = visit.person.user_id
            details = reader.with_lines(reader.details_for_customer(me, invoice_id))
            view = details.view
            corrects = (
                reader.details_for_customer(me, view.corrects_id) if view.corrects_id else None
            )
            return Page(
                PortalInvoicePage(
                    invoice=view,
                    lines=details.lines,
                    corrects_number=None if corrects is None else corrects.number,
                    credit_notes=[
                        reader.details_for_customer(me, i) for i in details.credit_note_ids
                    ],
                    today=visit.today,
                )
            )

        return await self.web.visit(request, "customer", work)

    async def document(self, request: Request) -> Response:
        invoice_id = path_id(request, "invoice_id")
        kind = request.path_params["format"]
        return await self.web.visit(
            request,
            "customer",
            lambda visit: document_response(visit, invoice_id, kind, owner=visit.person.user_id),
        )

    def _billing_page(
        self,
        visit: Visit,
        *,
        errors: dict[str, str] | None = None,
        values: dict[str, str] | None = None,
    ) -> Page:
        user = visit.user()
        current = {field: getattr(user, field) or "" for field in BILLING_FIELDS}
        return Page(
            BillingPage(values=values or current, errors=errors or {}), 400 if errors else 200
        )

    async def billing(self, request: Request) -> Response:
        """The customer's own billing details."""
        if request.method == "GET":
            return await self.web.visit(request, "customer", lambda v: self._billing_page(v))
        form = await self.web.form(request, "customer")
        values = {field: text_field(form, field).strip() for field in BILLING_FIELDS}

        def work(visit: Visit) -> Redirect:
            try:
                AccountService(visit.work).update_user(visit.person.user_id, billing=values)
            except LedgerdeskError as exc:
                problems = field_errors(exc)
                raise Refused(
                    lambda again: self._billing_page(again, errors=problems, values=values)
                ) from None
            return Redirect("/account/billing", flash="Billing details saved.")

        return await self.web.visit(request, "customer", work, form=form, write=True)

    def _keys_page(
        self,
        visit: Visit,
        *,
        errors: dict[str, str] | None = None,
        values: dict[str, str] | None = None,
    ) -> Page:
        return Page(
            PortalKeysPage(
                keys=keys_of(visit, visit.person.user_id),
                new_key=visit.once.get("api_key"),
                now=visit.now,
                values=values or {},
                errors=errors or {},
            ),
            400 if errors else 200,
        )

    async def keys(self, request: Request) -> Response:
        web = self.web
        await web.fresh_key_usage(request, "customer")
        if request.method == "GET":
            return await web.visit(request, "customer", lambda visit: self._keys_page(visit))
        form = await web.form(request, "customer")

        def work(visit: Visit) -> Redirect:
            try:
                new = create_key(visit, visit.person.user_id, form)
            except LedgerdeskError as exc:
                problems = key_errors(field_errors(exc))
                typed = key_values(form)
                raise Refused(
                    lambda again: self._keys_page(again, errors=problems, values=typed)
                ) from None
            return Redirect(
                "/account/keys",
                flash=f"API key #{new.key.id} created; it is shown below this once.",
                once={"api_key": new.secret},
            )

        return await web.visit(request, "customer", work, form=form, write=True)

    async def revoke(self, request: Request) -> Response:
        key_id = path_id(request, "key_id")
        form = await self.web.form(request, "customer")

        def work(visit: Visit) -> Redirect:
            revoke_key(visit, key_id, owner=visit.person.user_id)
            return Redirect("/account/keys", flash=f"Key {key_id} revoked.")

        return await self.web.visit(request, "customer", work, form=form, write=True)
