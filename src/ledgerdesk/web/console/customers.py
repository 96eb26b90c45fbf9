"""The console's customers: the list, a customer's page (tickets, invoices, keys,
history, details), access (disable, enable, password links) and keys."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ledgerdesk.accounts.billing import BILLING_FIELDS
from ledgerdesk.accounts.people import PeopleService
from ledgerdesk.accounts.service import AccountReader, AccountService
from ledgerdesk.db.models import User
from ledgerdesk.errors import LedgerdeskError, NotFound, invalid
from ledgerdesk.events.log import EventLog
from ledgerdesk.invoices.queries import InvoiceQueries
from ledgerdesk.invoices.service import InvoiceReader
from ledgerdesk.mail.addresses import MailAddresses
from ledgerdesk.tickets.queries import QueueFilter, TicketQueries
from ledgerdesk.web.addresses import change
from ledgerdesk.web.console.queue import PAGE_SIZE, int_param
from ledgerdesk.web.core import (
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
from ledgerdesk.web.pages import CustomerPage, CustomersPage, Page


class CustomerPages:
    def __init__(self, web: Web) -> None:
        self.web = web

    async def customers(self, request: Request) -> Response:
        text = (request.query_params.get("q") or "").strip()[:200] or None
        errors: dict[str, str] = {}
        after = int_param(request.query_params.get("after"), 1, 2**63 - 1, "after", errors)

        def listing(visit: Visit, form_errors: dict[str, str], values: dict[str, str]) -> Page:
            found = AccountReader(visit.session).customers(
                text=text, after_id=after, limit=PAGE_SIZE + 1
            )
            return Page(
                CustomersPage(
                    customers=found[:PAGE_SIZE],
                    next_after=found[PAGE_SIZE - 1].id if len(found) > PAGE_SIZE else None,
                    q=text or "",
                    values=values,
                    errors={**errors, **form_errors},
                ),
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
        address_errors: dict[str, str] | None = None,
        address_value: str = "",
    ) -> Page:
        user = visit.session.get(User, user_id)
        if user is None or user.is_staff:
            raise NotFound(f"Customer {user_id} not found.")
        tickets = TicketQueries(visit.db).queue(
            QueueFilter(status=None, user_id=user_id), after=None, limit=PAGE_SIZE
        )
        return Page(
            CustomerPage(
                customer=user,
                tickets=tickets,
                invoices=InvoiceReader(InvoiceQueries(visit.db)).latest(user_id),
                keys=keys_of(visit, user_id),
                history=history(
                    visit.session, EventLog(visit.session).of_customer(user_id, limit=50)
                ),
                new_key=visit.once.get("api_key"),
                link=visit.once.get("link"),
                now=visit.now,
                today=visit.today,
                values=values or {},
                errors=errors or {},
                details=details or details_of(user),
                details_errors=details_errors or {},
                addresses=MailAddresses(visit.work).of(user_id),
                address_errors=address_errors or {},
                address_value=address_value,
            ),
            400 if errors or details_errors or address_errors else 200,
        )

    async def addresses(self, request: Request) -> Response:
        """Add (confirmed: staff vouch for it) or remove one of a customer's addresses."""
        user_id = path_id(request, "user_id")
        form = await self.web.form(request, "staff")

        def work(visit: Visit) -> Redirect:
            self._customer_page(visit, user_id)  # a customer, or 404
            try:
                said = change(visit.work, user_id, form, confirmed=True)
            except LedgerdeskError as exc:
                problems = field_errors(exc)
                typed = text_field(form, "address")
                raise Refused(
                    lambda again: self._customer_page(
                        again, user_id, address_errors=problems, address_value=typed
                    )
                ) from None
            return Redirect(f"/console/customers/{user_id}", flash=said)

        return await self.web.visit(request, "staff", work, form=form, write=True)

    async def details(self, request: Request) -> Response:
        """Change a customer's name, email address or billing details."""
        user_id = path_id(request, "user_id")
        form = await self.web.form(request, "staff")
        values = {"name": text_field(form, "name"), "email": text_field(form, "email").strip()}
        billing = {field: text_field(form, field).strip() for field in BILLING_FIELDS}
        values.update(billing)

        def work(visit: Visit) -> Redirect:
            self._customer_page(visit, user_id)  # a customer, or 404
            try:
                AccountService(visit.work).update_user(
                    user_id, name=values["name"], email=values["email"], billing=billing
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


def details_of(user: User) -> dict[str, str]:
    """A customer's details as the details form shows them."""
    return {
        "name": user.name,
        "email": user.email or "",
        **{field: getattr(user, field) or "" for field in BILLING_FIELDS},
    }
