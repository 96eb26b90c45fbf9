"""A ticket's page, its reply form, status buttons and downloads: one implementation for
staff (``/console``, every ticket, internal notes) and customers (``/account``, their own
tickets only, through the same tenant-scoped queries as the API)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from ledgerdesk.attachments.incoming import IncomingFile
from ledgerdesk.attachments.storage import streamed
from ledgerdesk.clock import moment_of
from ledgerdesk.db.models import MailMessage, Ticket, User
from ledgerdesk.errors import LedgerdeskError, NotFound, invalid
from ledgerdesk.events.log import EventLog
from ledgerdesk.http.content_disposition import attachment_disposition
from ledgerdesk.tickets.queries import TicketQueries, TicketRecord
from ledgerdesk.tickets.repository import mark_seen
from ledgerdesk.tickets.saved import SavedReplies, filled
from ledgerdesk.tickets.service import TicketReader, TicketService, Turn, tags_of
from ledgerdesk.web.core import (
    SECURITY_HEADERS,
    Redirect,
    Refused,
    Role,
    Visit,
    Web,
    customer_named,
    field_errors,
    own_only,
    path_id,
    staff_members,
    text_field,
)
from ledgerdesk.web.display import PREVIEWABLE
from ledgerdesk.web.history import history
from ledgerdesk.web.pages import (
    BLANK_FORM,
    ConfirmPage,
    MessageForm,
    NewTicketPage,
    Page,
    TicketPage,
    TicketWorkflow,
)

WORKFLOW_ACTIONS = ("assign", "take", "priority", "wait", "tags")
THEN = ("open", "close", "wait")  # what a staff reply does to the ticket besides
STATUS_ACTIONS = {
    "staff": ("close", "force-close", "reopen"),
    "customer": ("close", "reopen"),
}


class TicketPages:
    def __init__(self, web: Web, role: Role) -> None:
        self.web = web
        self.role: Role = role
        self.base = "/console" if role == "staff" else "/account"

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/tickets/new", self.new_ticket, methods=["GET", "POST"]),
            Route("/tickets/{ticket_id:int}", self.view, methods=["GET"]),
            Route("/tickets/{ticket_id:int}/reply", self.reply, methods=["POST"]),
            *(
                [
                    Route("/tickets/{ticket_id:int}/note", self.note, methods=["POST"]),
                    Route("/tickets/{ticket_id:int}/workflow", self.workflow, methods=["POST"]),
                    Route("/tickets/{ticket_id:int}/merge", self.merge, methods=["POST"]),
                    Route(
                        "/tickets/{ticket_id:int}/force-close",
                        self.confirm_force_close,
                        methods=["GET"],
                    ),
                ]
                if self.role == "staff"
                else []
            ),
            Route("/tickets/{ticket_id:int}/status", self.status, methods=["POST"]),
            Route(
                "/tickets/{ticket_id:int}/attachments/{attachment_id:int}",
                self.download,
                methods=["GET"],
            ),
        ]

    def _new_ticket_page(
        self, visit: Visit, errors: dict[str, str], values: dict[str, str]
    ) -> Page:
        return Page(
            NewTicketPage(values=values, errors=errors, staff=self.role == "staff"),
            400 if errors else 200,
        )

    async def new_ticket(self, request: Request) -> Response:
        """A new ticket: a customer's own, or one staff open on a customer's behalf
        (staff write its first message; then it is the customer's turn)."""
        web = self.web
        blank = {"title": "", "content": "", "reference": "", "priority": "2", "customer": ""}
        if request.method == "GET":
            blank["customer"] = request.query_params.get("customer", "")[:20]
            return await web.visit(
                request, self.role, lambda visit: self._new_ticket_page(visit, {}, blank)
            )
        form = await web.upload_form(request, self.role)
        values = {name: text_field(form.fields, name) for name in blank}

        def work(visit: Visit, files: list[IncomingFile]) -> Redirect:
            try:
                if values["priority"] not in ("1", "2", "3", "4"):
                    raise invalid("priority", "must be 1, 2, 3 or 4")
                if len(values["reference"]) > 64:
                    raise invalid("reference", "must be at most 64 characters")
                customer_id = visit.person.user_id
                if self.role == "staff":
                    customer_id = customer_named(visit, values["customer"].strip())
                ticket = TicketService(visit.work).create(
                    customer_id=customer_id,
                    title=values["title"].strip(),
                    content=values["content"],
                    reference=values["reference"].strip(),
                    priority=int(values["priority"]),
                    files=files,
                    author=visit.user(),
                )
            except LedgerdeskError as exc:
                problems = field_errors(exc)
                raise Refused(
                    lambda again: self._new_ticket_page(again, problems, values)
                ) from None
            return Redirect(f"{self.base}/tickets/{ticket.id}", flash="Ticket created.")

        return await web.visit_with_files(
            request,
            self.role,
            form,
            work,
            lambda visit, problems: self._new_ticket_page(visit, problems, values),
        )

    def _scope(self, visit: Visit) -> int | None:
        return own_only(self.role, visit)

    def page(
        self,
        visit: Visit,
        ticket_id: int,
        *,
        errors: dict[str, str],
        content: str = "",
        form: str = "reply",
    ) -> Page:
        """The ticket's page; ``form`` is the form (``reply``, ``note`` or ``workflow``)
        that ``errors`` and ``content`` belong to, shown again with them."""
        thread = TicketReader(TicketQueries(visit.db)).thread(ticket_id, user_id=self._scope(visit))
        customer = visit.session.get(User, thread.ticket.user_id)
        typed = MessageForm(errors, content)
        return Page(
            TicketPage(
                thread=thread,
                customer=customer,
                staff=self.role == "staff",
                base=self.base,
                reply=typed if form == "reply" else BLANK_FORM,
                workflow=(
                    _workflow(visit, ticket_id, errors if form == "workflow" else {})
                    if self.role == "staff"
                    else None
                ),
                note=typed if form == "note" else BLANK_FORM,
                now=visit.now,
                history=(
                    history(
                        visit.session,
                        EventLog(visit.session).history(
                            subject="ticket",
                            subject_id=ticket_id,
                            also=visit.session.scalars(
                                select(Ticket.id).where(Ticket.merged_into_id == ticket_id)
                            ).all(),
                        ),
                    )
                    if self.role == "staff"
                    else []
                ),
                mail_of=_mail_of(visit, ticket_id) if self.role == "staff" else {},
            ),
            400 if errors else 200,
        )

    async def view(self, request: Request) -> Response:
        ticket_id = path_id(request, "ticket_id")
        insert = request.query_params.get("insert", "")

        seen: list[int] = []

        def work(visit: Visit) -> Page:
            content = ""
            if self.role == "staff" and insert.isdigit():  # a saved reply into the form
                content = _saved_reply(visit, ticket_id, int(insert))
            page = self.page(visit, ticket_id, errors={}, content=content)
            if self.role == "staff":
                seen.append(visit.person.user_id)
            return page

        response = await self.web.visit(request, self.role, work)
        if seen and response.status_code == 200:  # read by this staff member now
            await self.web.execution.blocking(self._seen, seen[0], ticket_id)
        return response

    def _seen(self, user_id: int, ticket_id: int) -> None:
        runtime = self.web.runtime
        with runtime.transaction(write=True) as (session, _):
            mark_seen(session, user_id, ticket_id, runtime.clock.timestamp())

    async def reply(self, request: Request) -> Response:
        return await self._write(request, internal=False)

    async def note(self, request: Request) -> Response:
        """An internal note: a form and a route of its own, never a box ticked on the
        reply form (a page shown again with an error could not untick it into a reply)."""
        return await self._write(request, internal=True)

    async def _write(self, request: Request, *, internal: bool) -> Response:
        web = self.web
        ticket_id = path_id(request, "ticket_id")
        form = await web.upload_form(request, self.role)
        content = text_field(form.fields, "content")
        then = text_field(form.fields, "then") or "open"
        until = text_field(form.fields, "until").strip()

        def work(visit: Visit, files: list[IncomingFile]) -> Redirect:
            service = TicketService(visit.work)
            try:
                if not internal and "internal" in form.fields:
                    # A form of an older page: a note must never go out as a reply.
                    raise invalid("internal", "notes are written in the internal note form")
                if then not in THEN or (then != "open" and (internal or self.role != "staff")):
                    raise invalid("then", f"must be one of {', '.join(THEN)}")
                waits = _moment(visit, until) if then == "wait" else None
                write = service.note if internal else service.reply
                ticket = write(ticket_id, author=visit.user(), content=content, files=files)
                if then == "close":
                    service.close(ticket_id, user_id=None, after_reply=True)
                elif waits is not None:
                    service.wait_for_customer(ticket_id, waits)
            except LedgerdeskError as exc:
                if isinstance(exc, NotFound):
                    raise
                errors = field_errors(exc)
                raise Refused(lambda again: again_page(again, errors)) from None
            said = "Internal note added" if internal else "Reply sent"
            if files:
                said += f" with {len(files)} attachment(s)"
            if then == "close":
                said += "; the ticket is closed"
            elif then == "wait":
                said += "; it waits for the customer"
            return Redirect(f"{self.base}/tickets/{ticket.id}", flash=said + ".")

        def again_page(visit: Visit, errors: dict[str, str]) -> Page:
            return self.page(
                visit,
                ticket_id,
                errors=errors,
                content=content,
                form="note" if internal else "reply",
            )

        return await web.visit_with_files(request, self.role, form, work, again_page)

    async def status(self, request: Request) -> Response:
        web = self.web
        ticket_id = path_id(request, "ticket_id")
        form = await web.form(request, self.role)
        action = text_field(form, "action")

        def work(visit: Visit) -> Redirect:
            if action not in STATUS_ACTIONS[self.role]:
                raise invalid("action", f"must be one of {', '.join(STATUS_ACTIONS[self.role])}")
            service = TicketService(visit.work)
            scope = self._scope(visit)
            changes: dict[str, Callable[[], TicketRecord]] = {
                "close": lambda: service.close(ticket_id, user_id=scope),
                "reopen": lambda: service.reopen(ticket_id, user_id=scope),
                "force-close": lambda: service.force_close(ticket_id),
            }
            changes[action]()
            done = {"close": "closed", "reopen": "reopened", "force-close": "forcibly closed"}
            return Redirect(f"{self.base}/tickets/{ticket_id}", flash=f"Ticket {done[action]}.")

        return await web.visit(request, self.role, work, form=form, write=True)

    async def workflow(self, request: Request) -> Response:
        """Staff's changes to who has the ticket, its priority, and waiting for the customer."""
        ticket_id = path_id(request, "ticket_id")
        form = await self.web.form(request, "staff")
        action = text_field(form, "action")

        def work(visit: Visit) -> Redirect:
            service = TicketService(visit.work)
            try:
                if action not in WORKFLOW_ACTIONS:
                    raise invalid("action", f"must be one of {', '.join(WORKFLOW_ACTIONS)}")
                if action == "take":
                    service.assign(ticket_id, visit.person.user_id)
                    said = "The ticket is yours."
                elif action == "assign":
                    chosen = text_field(form, "assignee").strip()
                    if chosen and not chosen.isdigit():
                        raise invalid("assignee", "must be a staff member")
                    service.assign(ticket_id, int(chosen) if chosen else None)
                    said = "Assigned." if chosen else "The ticket is nobody's now."
                elif action == "priority":
                    chosen = text_field(form, "priority").strip()
                    if not chosen.isdigit():
                        raise invalid("priority", "must be 1, 2, 3 or 4")
                    service.set_priority(ticket_id, int(chosen))
                    said = "Priority changed."
                elif action == "tags":
                    service.set_tags(ticket_id, text_field(form, "tags").split(","))
                    said = "Tags saved."
                else:
                    service.wait_for_customer(ticket_id, _moment(visit, text_field(form, "until")))
                    said = "The ticket waits for the customer."
            except LedgerdeskError as exc:
                if isinstance(exc, NotFound):
                    raise
                errors = field_errors(exc)
                raise Refused(
                    lambda again: self.page(again, ticket_id, errors=errors, form="workflow")
                ) from None
            return Redirect(f"{self.base}/tickets/{ticket_id}", flash=said)

        return await self.web.visit(request, "staff", work, form=form, write=True)

    async def merge(self, request: Request) -> Response:
        """Merge this ticket into another of the customer's (by its code)."""
        ticket_id = path_id(request, "ticket_id")
        form = await self.web.form(request, "staff")
        code = text_field(form, "into").strip().removeprefix("#")
        confirmed = text_field(form, "confirm") == "yes"

        def work(visit: Visit) -> Redirect:
            try:
                if not confirmed:
                    raise invalid("confirm", "tick the box: merging cannot be undone")
                into = (
                    visit.session.scalar(select(Ticket.id).where(Ticket.code == int(code)))
                    if code.isdigit()
                    else None
                )
                if into is None:
                    raise invalid("into", "no ticket has this code")
                target = TicketService(visit.work).merge(ticket_id, into, author=visit.user())
            except LedgerdeskError as exc:
                if isinstance(exc, NotFound):
                    raise
                errors = field_errors(exc)
                raise Refused(
                    lambda again: self.page(again, ticket_id, errors=errors, form="workflow")
                ) from None
            return Redirect(
                f"{self.base}/tickets/{target.id}",
                flash="Merged: the other ticket's messages are here now.",
            )

        return await self.web.visit(request, "staff", work, form=form, write=True)

    async def confirm_force_close(self, request: Request) -> Response:
        """Forcibly closing is final for the customer: it is asked for on a page of its
        own, never done by a button that a stray Enter on the ticket's page reaches."""
        ticket_id = path_id(request, "ticket_id")

        def work(visit: Visit) -> Page:
            thread = TicketReader(TicketQueries(visit.db)).thread(ticket_id, user_id=None)
            return Page(
                ConfirmPage(
                    title=f"Force-close ticket #{thread.ticket.code}?",
                    subject=thread.ticket.title,
                    text="The customer can then neither reply to it nor reopen it; staff "
                    "can still reopen it.",
                    action=f"{self.base}/tickets/{ticket_id}/status",
                    fields={"action": "force-close"},
                    button="Force-close",
                    back=f"{self.base}/tickets/{ticket_id}",
                )
            )

        return await self.web.visit(request, self.role, work)

    async def download(self, request: Request) -> Response:
        web = self.web
        ticket_id = path_id(request, "ticket_id")
        attachment_id = path_id(request, "attachment_id")
        inline = request.query_params.get("inline") == "1"

        def work(visit: Visit) -> Response:
            attachment, content = TicketReader(TicketQueries(visit.db)).attachment(
                ticket_id, attachment_id, user_id=self._scope(visit), store=web.runtime.blobs
            )
            disposition = attachment_disposition(attachment.name)
            if inline and attachment.content_type in PREVIEWABLE:
                disposition = "inline" + disposition.removeprefix("attachment")
            return StreamingResponse(
                streamed(content),
                media_type=None,
                headers={
                    **SECURITY_HEADERS,
                    "content-type": attachment.content_type,
                    "content-length": str(content.size),
                    "content-disposition": disposition,
                    "content-security-policy": "sandbox",
                },
            )

        return await web.visit(request, self.role, work)


def _saved_reply(visit: Visit, ticket_id: int, saved_id: int) -> str:
    """A saved reply's text for this ticket, its placeholders filled in."""
    ticket = visit.session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound(f"Ticket {ticket_id} not found.")
    customer = visit.session.get(User, ticket.user_id)
    return filled(
        SavedReplies(visit.work).get(saved_id).content,
        {
            "customer_name": customer.name if customer is not None else "",
            "ticket_code": str(ticket.code),
            "ticket_title": ticket.title,
            "agent_name": visit.user().name,
        },
    )


def _moment(visit: Visit, typed: str) -> int:
    """A moment typed in a form (a date, or a date and time, in the server's time zone)."""
    if not typed.strip():
        raise invalid("until", "is needed: until when the ticket waits for the customer")
    try:
        return moment_of(typed, visit.settings.timezone)
    except ValueError as exc:
        raise invalid("until", str(exc)) from None


def _workflow(visit: Visit, ticket_id: int, errors: dict[str, str]) -> TicketWorkflow:
    ticket = visit.session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound(f"Ticket {ticket_id} not found.")
    staff = staff_members(visit.session)
    names = dict(staff)
    assignee = None
    if ticket.assignee_id is not None:
        assignee = names.get(ticket.assignee_id) or visit.session.scalar(
            select(User.name).where(User.id == ticket.assignee_id)
        )
    waiting_ran_out = ticket.pending_until is not None and ticket.pending_until <= visit.now
    return TicketWorkflow(
        ticket=ticket,
        assignee=assignee,
        staff=staff,
        ours=ticket.turn == Turn.OURS or waiting_ran_out,
        tags=tags_of(visit.session, [ticket_id]).get(ticket_id, []),
        saved=[(row.id, row.title) for row in SavedReplies(visit.work).all()],
        present=TicketQueries(visit.db).present(ticket_id, visit.now, but=visit.person.user_id),
        since=EventLog(visit.session).last_id(),
        errors=errors,
    )


def _mail_of(visit: Visit, ticket_id: int) -> dict[int, int]:
    """The received mail each of the ticket's replies came in as (reply id -> mail id)."""
    rows = visit.session.execute(
        select(MailMessage.reply_id, MailMessage.id).where(
            MailMessage.ticket_id == ticket_id, MailMessage.reply_id.is_not(None)
        )
    )
    return {int(row.reply_id): row.id for row in rows}
