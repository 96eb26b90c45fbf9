"""``ledgerdesk admin ticket``: the staff side of support tickets."""

from __future__ import annotations

import mimetypes
from datetime import UTC, datetime
from pathlib import Path

import click

from ledgerdesk.accounts.service import AccountReader
from ledgerdesk.attachments.incoming import IncomingFile, IncomingWriter
from ledgerdesk.cli.support import CliState, ReportingGroup, emit, json_option, pass_state
from ledgerdesk.errors import invalid
from ledgerdesk.events.work import Actor
from ledgerdesk.runtime import Runtime
from ledgerdesk.tickets.actions import reply_out, summary
from ledgerdesk.tickets.queries import TicketQueries, TicketRecord
from ledgerdesk.tickets.service import TicketReader, TicketService, TicketStatus

READ_CHUNK = 1024 * 1024


@click.group(cls=ReportingGroup)
def ticket() -> None:
    """Read, answer and force-close support tickets."""


@ticket.command("list")
@click.option("--status", type=click.IntRange(-1, 2), default=-1, help="0, 1, 2 or -1 for all.")
@click.option("--user", "user_id", type=int, default=None, help="Only this customer's tickets.")
@json_option
@pass_state
def ticket_list(state: CliState, status: int, user_id: int | None, as_json: bool) -> None:
    """List tickets, newest first."""
    with state.reading() as db:
        tickets = TicketReader(TicketQueries(db)).overview(
            user_id=user_id, status=None if status == -1 else status
        )
        emit(
            as_json,
            {"tickets": [summary(t) for t in tickets]},
            "\n".join(_line(t) for t in tickets) or "No tickets.",
        )


@ticket.command("show")
@click.argument("ticket_id", type=int)
@json_option
@pass_state
def ticket_show(state: CliState, ticket_id: int, as_json: bool) -> None:
    """Show a ticket with all its replies."""
    with state.reading() as db:
        thread = TicketReader(TicketQueries(db)).thread(ticket_id, user_id=None)
        replies = [reply_out(view) for view in thread.replies]
        prose = [_line(thread.ticket), ""]
        for view in thread.replies:
            prose.append(
                f"--- {view.reply.author_name} (user {view.reply.author_id}), "
                f"{_when(view.reply.created_at)}"
            )
            prose.append(view.reply.content)
            prose.extend(
                f"    [attachment {a.id}] {a.name} ({a.content_type}, {a.size} bytes)"
                for a in view.attachments
            )
            prose.append("")
        emit(
            as_json,
            {"thread": summary(thread.ticket), "replies": replies},
            "\n".join(prose).rstrip(),
        )


@ticket.command("reply")
@click.argument("ticket_id", type=int)
@click.option(
    "--staff-user", "staff_id", type=int, required=True, help="The staff member answering."
)
@click.option("--content", required=True, help="The reply text.")
@click.option(
    "--attach",
    "attach",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path),
    help="A file to attach (repeat for more, up to 10).",
)
@json_option
@pass_state
def ticket_reply(
    state: CliState,
    ticket_id: int,
    staff_id: int,
    content: str,
    attach: tuple[Path, ...],
    as_json: bool,
) -> None:
    """Answer a ticket as a staff member; the customer sees the reply in getTicket."""
    runtime = state.runtime()
    state.require_current_schema()
    files = [_incoming(runtime, path) for path in attach]
    try:
        with state.work() as work:
            staff = AccountReader(work.session).require_user(staff_id)
            if not staff.is_staff:
                raise invalid("staff-user", f"user {staff_id} is not a staff member")
            work.actor = Actor.staff(staff.id)
            answered = TicketService(work).reply(
                ticket_id, author=staff, content=content, files=files
            )
            emit(
                as_json,
                {"ticketId": answered.id},
                f"Replied to ticket {answered.id} as {staff.name}"
                + (f" with {len(files)} attachment(s)." if files else "."),
            )
    finally:
        for incoming in files:
            incoming.discard()


@ticket.command("force-close")
@click.argument("ticket_id", type=int)
@json_option
@pass_state
def ticket_force_close(state: CliState, ticket_id: int, as_json: bool) -> None:
    """Close a ticket for good: the customer can no longer reply or reopen it."""
    with state.work() as work:
        closed = TicketService(work).force_close(ticket_id)
        emit(
            as_json,
            {"ticketId": closed.id, "status": closed.status},
            f"Ticket {closed.id} is forcibly closed.",
        )


def _incoming(runtime: Runtime, path: Path) -> IncomingFile:
    limit = runtime.settings.max_attachment_bytes
    if path.stat().st_size > limit:
        raise click.ClickException(f"{path} is larger than the attachment limit of {limit} bytes")
    writer = IncomingWriter(runtime.incoming_dir, limit, path.name)
    try:
        with path.open("rb") as source:
            while chunk := source.read(READ_CHUNK):
                writer.write(chunk)
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return writer.finish(path.name, content_type)
    except BaseException:
        writer.discard()
        raise


def _when(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def _line(ticket: TicketRecord) -> str:
    return (
        f"{ticket.id:>6}  #{ticket.code}  user {ticket.user_id}  "
        f"{TicketStatus(ticket.status).label:<15}  prio {ticket.priority}  "
        f"updated {_when(ticket.last_updated_at)}  {ticket.title}"
    )
