"""A customer's other mail addresses on the web (``mail.addresses``): the portal's page
(``/account/addresses``: add one, and a mail with a confirmation link goes to it;
remove one), the console's part of a customer's page (staff add confirmed ones), and
the link that confirms one (``/mail-address/<token>``: no sign-in needed, following the
link from that mailbox is the proof; a page with a button, so that a mail scanner
opening the link confirms nothing)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ledgerdesk.errors import InvalidState, LedgerdeskError, NotFound, invalid
from ledgerdesk.events.work import Actor, Origin, Work
from ledgerdesk.mail.addresses import MailAddresses
from ledgerdesk.mail.key import mail_key
from ledgerdesk.mail.tags import Tags
from ledgerdesk.web.core import Redirect, Refused, Visit, Web, field_errors, text_field
from ledgerdesk.web.pages import AddressesPage, ConfirmAddressPage, Page


def change(work: Work, user_id: int, form: Mapping[str, Any], *, confirmed: bool) -> str:
    """Add or remove (``action``) the ``address`` of the form; what to tell the person."""
    action = text_field(form, "action")
    address = text_field(form, "address").strip()
    addresses = MailAddresses(work)
    if action == "add":
        added = addresses.add(user_id, address, confirmed=confirmed)
        if confirmed:
            return f"{added.address} added."
        return f"{added.address} added: open the link mailed to it to confirm it."
    if action == "remove":
        addresses.remove(user_id, address)
        return f"{address.lower()} removed."
    raise invalid("action", "must be add or remove")


class AddressPages:
    def __init__(self, web: Web) -> None:
        self.web = web

    def portal_routes(self) -> list[BaseRoute]:
        return [Route("/addresses", self.portal, methods=["GET", "POST"])]

    def confirm_routes(self) -> list[BaseRoute]:
        return [Route("/mail-address/{token}", self.confirm, methods=["GET", "POST"])]

    def _page(self, visit: Visit, errors: dict[str, str] | None = None, value: str = "") -> Page:
        user = visit.user()
        return Page(
            AddressesPage(
                account_email=user.email or "",
                addresses=MailAddresses(visit.work).of(user.id),
                errors=errors or {},
                value=value,
            ),
            400 if errors else 200,
        )

    async def portal(self, request: Request) -> Response:
        """The customer's own addresses."""
        if request.method == "GET":
            return await self.web.visit(request, "customer", self._page)
        form = await self.web.form(request, "customer")

        def work(visit: Visit) -> Redirect:
            try:
                said = change(visit.work, visit.person.user_id, form, confirmed=False)
            except LedgerdeskError as exc:
                problems = field_errors(exc)
                typed = text_field(form, "address")
                raise Refused(lambda again: self._page(again, problems, typed)) from None
            return Redirect("/account/addresses", flash=said)

        return await self.web.visit(request, "customer", work, form=form, write=True)

    async def confirm(self, request: Request) -> Response:
        web = self.web
        runtime = web.runtime
        token = request.path_params["token"]
        origin = Origin("web", web.address(request))
        write = request.method == "POST"
        if write:
            web.check_anonymous_csrf(request, await web.form(request))

        def run() -> str:
            with runtime.work(Actor.VISITOR, origin, write=write) as work:
                addresses = MailAddresses(work)
                tags = Tags(mail_key(work.session), "")
                if write:
                    return addresses.confirm(tags, token).address
                return addresses.to_confirm(tags, token).address

        try:
            address = await web.execution.blocking(run)
        except (NotFound, InvalidState) as exc:
            return web.message(request, "Link not valid", exc.message, exc.http_status)
        if write:
            return web.redirect(request, Redirect("/signin", note="address-confirmed"))
        return web.render(request, Page(ConfirmAddressPage(address=address)))
