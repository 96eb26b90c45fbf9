"""The console's received mail: what came in and where it went, newest first (what
waits for staff first of all: held, unreadable and failed mail, with why), each mail on
a page of its own (what it says, its files, where it went) with the decisions on a mail
that waits: accept it into a ticket (trusting its sender from now on, if chosen) or as a
new ticket, try an unreadable or failed one again, dismiss it; each mail as received to
download, and the addresses our mail is refused at."""

from __future__ import annotations

from typing import Literal

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from ledgerdesk.attachments.incoming import IncomingFile
from ledgerdesk.db.models import MailAddress, MailMessage, Ticket, User
from ledgerdesk.errors import InvalidState, LedgerdeskError, NotFound, invalid
from ledgerdesk.http.content_disposition import attachment_disposition
from ledgerdesk.mail.inbound import Inbound, Unreadable, read
from ledgerdesk.mail.receiving import NotSetUp, discard, intake, passing, raw_bytes
from ledgerdesk.mail.service import WAITING, MailIntake, Taken
from ledgerdesk.web.core import (
    SECURITY_HEADERS,
    Redirect,
    Refused,
    Visit,
    Web,
    customer_named,
    field_errors,
    path_id,
    text_field,
)
from ledgerdesk.web.pages import MailMessagePage, MailPage, Page

SHOWN = 200
ACTIONS = ("open", "join", "retry", "dismiss")
FIELDS = ("customer", "ticket")


class MailPages:
    def __init__(self, web: Web) -> None:
        self.web = web

    async def mail(self, request: Request) -> Response:
        show: Literal["waiting", "all"] = (
            "all" if request.query_params.get("show") == "all" else "waiting"
        )

        def work(visit: Visit) -> Page:
            statement = select(MailMessage).order_by(MailMessage.id.desc()).limit(SHOWN)
            if show == "waiting":
                statement = statement.where(MailMessage.state.in_(WAITING))
            failing = select(MailAddress).where(MailAddress.failing_since.is_not(None))
            return Page(
                MailPage(
                    show=show,
                    messages=visit.session.scalars(statement).all(),
                    failing=visit.session.scalars(
                        failing.order_by(MailAddress.failing_since.desc())
                    ).all(),
                )
            )

        return await self.web.visit(request, "staff", work)

    async def raw(self, request: Request) -> Response:
        mail_id = path_id(request, "mail_id")

        def work(visit: Visit) -> Response:
            row = visit.session.get(MailMessage, mail_id)
            content = None if row is None else self.web.runtime.blobs.open(visit.db, row.raw_sha256)
            if row is None or content is None:
                raise NotFound("There is no such mail.")
            return Response(
                b"".join(content.chunks()),
                headers={
                    **SECURITY_HEADERS,
                    "content-type": "message/rfc822",
                    "content-disposition": attachment_disposition(f"mail-{row.id}.eml"),
                    "content-security-policy": "sandbox",
                },
            )

        return await self.web.visit(request, "staff", work)

    def _message_page(
        self,
        visit: Visit,
        mail_id: int,
        *,
        errors: dict[str, str] | None = None,
        values: dict[str, str] | None = None,
    ) -> Page:
        row = visit.session.get(MailMessage, mail_id)
        if row is None:
            raise NotFound("There is no such mail.")
        mail: Inbound | None = None
        problem = None
        try:
            mail = read(raw_bytes(self.web.runtime, visit.work, row.raw_sha256))
        except Unreadable as exc:
            problem = str(exc)
        named = (
            None if row.named_ticket_id is None else visit.session.get(Ticket, row.named_ticket_id)
        )
        customer = None if row.customer_id is None else visit.session.get(User, row.customer_id)
        if values is None:
            values = {
                "customer": "" if customer is None else str(customer.id),
                "ticket": "" if named is None else str(named.code),
            }
        return Page(
            MailMessagePage(
                message=row,
                mail=mail,
                problem=problem,
                waiting=row.state in WAITING,
                named=named,
                customer=customer,
                errors=errors or {},
                values=values,
            ),
            400 if errors else 200,
        )

    async def message(self, request: Request) -> Response:
        mail_id = path_id(request, "mail_id")
        return await self.web.visit(request, "staff", lambda v: self._message_page(v, mail_id))

    async def act(self, request: Request) -> Response:
        """A decision on a mail that waits (``ACTIONS``)."""
        mail_id = path_id(request, "mail_id")
        form = await self.web.form(request, "staff")
        action = text_field(form, "action")
        values = {name: text_field(form, name).strip() for name in FIELDS}
        trust = text_field(form, "trust") == "yes"
        runtime = self.web.runtime
        made: list[IncomingFile] = []

        def work(visit: Visit) -> Redirect:
            if action not in ACTIONS:
                raise invalid("action", f"must be one of {', '.join(ACTIONS)}")
            try:
                mail = intake(runtime, visit.work, made)
            except NotSetUp as exc:
                raise InvalidState(str(exc)) from None
            row = mail.waiting(mail_id)
            try:
                taken = self._decide(visit, mail, row, action, values, trust)
            except NotFound:
                raise
            except LedgerdeskError as exc:
                problems = field_errors(exc)
                raise Refused(
                    lambda again: self._message_page(again, mail_id, errors=problems, values=values)
                ) from None
            if taken.ticket_id is not None and taken.state in ("joined", "opened"):
                verb = "added to" if taken.state == "joined" else "opened as"
                return Redirect(
                    f"/console/tickets/{taken.ticket_id}", flash=f"The mail was {verb} this ticket."
                )
            return Redirect(f"/console/mail/{mail_id}", flash=f"The mail is {taken.state} now.")

        try:
            return await self.web.visit(request, "staff", work, form=form, write=True)
        finally:
            discard(made)

    def _decide(
        self,
        visit: Visit,
        mail: MailIntake,
        row: MailMessage,
        action: str,
        values: dict[str, str],
        trust: bool,
    ) -> Taken:
        by = visit.user().name
        if action == "dismiss":
            return mail.dismiss(row, by=by)
        data = raw_bytes(self.web.runtime, visit.work, row.raw_sha256)
        if action == "retry":
            try:
                return mail.retake(row, data)
            except LedgerdeskError:
                raise
            except Exception as exc:
                if passing(exc):
                    raise
                raise InvalidState(f"Taking it failed again: {type(exc).__name__}: {exc}") from None
        if action == "join":
            ticket = _ticket(visit, values["ticket"])
            return mail.accept(row, data, by=by, ticket_id=ticket.id, trust_sender=trust)
        customer_id = customer_named(visit, values["customer"]) if values["customer"] else None
        return mail.accept(row, data, by=by, customer_id=customer_id)


def _ticket(visit: Visit, typed: str) -> Ticket:
    code = typed.removeprefix("#").strip()
    if not code.isdigit():
        raise invalid("ticket", "must be a ticket's code, e.g. 482913")
    found = visit.session.scalars(select(Ticket).where(Ticket.code == int(code))).first()
    if found is None:
        raise invalid("ticket", "no ticket has this code")
    return found
