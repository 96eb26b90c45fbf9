"""``ledgerdesk invoices`` and ``ledgerdesk tickets``: the customer's side, on the SDK.

Credentials come from ``--url``, ``--user-id`` and ``--api-key`` or from
``LEDGERDESK_URL``, ``LEDGERDESK_USER_ID`` and ``LEDGERDESK_API_KEY``; the key is never
printed. Tables for people, ``--json`` for scripts. Exit codes tell failures apart:

    0 done · 1 refused (invalid request, conflict) · 2 usage · 3 authentication or
    permission · 4 not found · 5 server, network or rate limit
"""

from __future__ import annotations

import enum
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, is_dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import click

from ledgerdesk.client import (
    APIError,
    Attachment,
    AuthenticationError,
    Client,
    ConfigurationError,
    DocumentType,
    InvoiceStatus,
    LedgerdeskError,
    NotFoundError,
    PermissionDeniedError,
    Priority,
    RateLimitError,
    ServerError,
    TicketStatus,
    TransportError,
)

PROGRESS_FROM = 4 * 1024 * 1024
EXIT_REFUSED, EXIT_AUTH, EXIT_NOT_FOUND, EXIT_SERVER = 1, 3, 4, 5


class CustomerGroup(click.Group):
    """Turns SDK errors into one line on stderr and an exit code by kind."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LedgerdeskError as error:
            click.echo(f"Error: {_describe(error)}", err=True)
            ctx.exit(_exit_code(error))


def _describe(error: LedgerdeskError) -> str:
    if isinstance(error, APIError):
        details = "; ".join(f"{e.property}: {e.message}" for e in error.errors)
        return f"{error}" + (f" [{details}]" if details else "")
    return f"no answer from the server: {error}"


def _exit_code(error: LedgerdeskError) -> int:
    if isinstance(error, AuthenticationError | PermissionDeniedError):
        return EXIT_AUTH
    if isinstance(error, NotFoundError):
        return EXIT_NOT_FOUND
    if isinstance(error, ServerError | TransportError | RateLimitError):
        return EXIT_SERVER
    return EXIT_REFUSED


def _credential_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        [
            click.option("--url", envvar="LEDGERDESK_URL", help="Server URL [LEDGERDESK_URL]."),
            click.option(
                "--user-id", type=int, envvar="LEDGERDESK_USER_ID", help="[LEDGERDESK_USER_ID]"
            ),
            click.option(
                "--api-key",
                envvar="LEDGERDESK_API_KEY",
                help="[LEDGERDESK_API_KEY]; prefer the variable: flags show in `ps`.",
            ),
        ]
    ):
        command = option(command)
    return click.pass_context(command)


def _given_here(name: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def store(ctx: click.Context, _: click.Parameter, value: Any) -> None:
        connection = ctx.find_object(_Connection)
        if value is not None and connection is not None:
            setattr(connection, name, value)

    return store


def _credentials_here(command: Callable[..., Any]) -> Callable[..., Any]:
    """The credential options after the command's name too (``tickets list --url X``),
    where they win over those given before it and over the variables."""
    for flag, name, kind in reversed(
        [("--url", "url", str), ("--user-id", "user_id", int), ("--api-key", "api_key", str)]
    ):
        command = click.option(
            flag,
            type=kind,
            expose_value=False,
            callback=_given_here(name),
            help=f"As before the command's name ({flag}).",
        )(command)
    return command


@dataclass
class _Connection:
    """The group's credentials; the client is made when a command first needs it, so
    that `--help` works without any."""

    url: str | None
    user_id: int | None
    api_key: str | None
    client: Client | None = None


def _connect(ctx: click.Context, url: str | None, user_id: int | None, api_key: str | None) -> None:
    ctx.obj = _Connection(url, user_id, api_key)


def _client() -> Client:
    ctx = click.get_current_context()
    connection = ctx.find_object(_Connection)
    assert connection is not None, "customer commands run inside invoices/tickets"
    if connection.client is None:
        try:
            client = Client(connection.url, user_id=connection.user_id, api_key=connection.api_key)
        except ConfigurationError as error:
            if error.missing:
                flags = {"base_url": "--url", "user_id": "--user-id", "api_key": "--api-key"}
                named = ", ".join(f"{flags[arg]} (or {var})" for arg, var in error.missing)
                raise click.UsageError(f"missing credentials: give {named}") from None
            raise click.UsageError(str(error).replace("base_url=", "--url")) from None
        connection.client = ctx.with_resource(client)
    return connection.client


json_flag = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


# -- output --------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.name.lower()
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _print_json(value: Any) -> None:
    click.echo(json.dumps(_plain(value), ensure_ascii=False))


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], empty: str) -> None:
    if not rows:
        click.echo(empty)
        return
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    click.echo("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


# -- invoices -------------------------------------------------------------------------------


@click.group(cls=CustomerGroup)
@_credential_options
def invoices(ctx: click.Context, url: str | None, user_id: int | None, api_key: str | None) -> None:
    """Your invoices (through the API, with your key).

    \b
    Credentials: --url, --user-id and --api-key (before or after the command's name),
    or LEDGERDESK_URL, LEDGERDESK_USER_ID and LEDGERDESK_API_KEY.
    Example:
      export LEDGERDESK_URL=https://api.example LEDGERDESK_USER_ID=12345
      export LEDGERDESK_API_KEY=...   # 20 characters
      ledgerdesk invoices list --status unpaid
    """
    _connect(ctx, url, user_id, api_key)


@invoices.command("list")
@_credentials_here
@click.option(
    "--status", type=click.Choice(["paid", "unpaid", "all"]), default="all", show_default=True
)
@click.option(
    "--since", type=click.DateTime(["%Y-%m-%d"]), help="First day (default: 30 days ago)."
)
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), help="Last day (default: today).")
@click.option(
    "--type",
    "kind",
    type=click.Choice(["invoice", "credit-note", "all"]),
    default="invoice",
    show_default=True,
    help="Invoices, credit notes, or both.",
)
@json_flag
def invoices_list(
    status: str, since: datetime | None, until: datetime | None, kind: str, as_json: bool
) -> None:
    """Invoices (and credit notes) created in a period, oldest first.

    \b
    Examples:
      ledgerdesk invoices list --status unpaid
      ledgerdesk invoices list --since 2026-01-01 --until 2026-06-30 --json
      ledgerdesk invoices list --type credit-note
    """
    client = _client()
    wanted = None if status == "all" else InvoiceStatus(status)
    document_type = {"invoice": DocumentType.INVOICE, "credit-note": DocumentType.CREDIT_NOTE}
    ids = client.invoice_ids(
        wanted,
        since=since.date() if since else None,
        until=until.date() if until else None,
        document_type=document_type.get(kind),
    )
    found = [client.invoice(i) for i in ids]
    if as_json:
        _print_json({"invoices": found})
        return
    _table(
        ["ID", "NUMBER", "DATE", "PAY BEFORE", "AMOUNT", "STATUS", "TITLE"],
        [
            (i.id, i.number, i.created_on, i.pay_before, i.amount_net, i.status.value, i.title)
            for i in found
        ],
        "No invoices in this period.",
    )


@invoices.command("show")
@_credentials_here
@click.argument("invoice_id", type=int)
@json_flag
def invoices_show(invoice_id: int, as_json: bool) -> None:
    """One invoice in full.

    \b
    Example:
      ledgerdesk invoices show 42
    """
    invoice = _client().invoice(invoice_id)
    if as_json:
        _print_json(invoice)
        return
    kind = "Credit note" if invoice.document_type is DocumentType.CREDIT_NOTE else "Invoice"
    currency = f" {invoice.currency}" if invoice.currency else ""
    click.echo(f"{kind} {invoice.number} ({invoice.status.value})  id {invoice.id}")
    click.echo(f"Title:       {invoice.title}")
    click.echo(f"Created on:  {invoice.created_on}    Pay before: {invoice.pay_before}")
    click.echo(
        f"Amount:      {invoice.amount_net}{currency} incl. {invoice.vat} VAT "
        f"({invoice.vat_percentage}%)"
    )
    if invoice.amount_due is not None and invoice.document_type is DocumentType.INVOICE:
        click.echo(f"Still due:   {invoice.amount_due}{currency}")
    if invoice.corrects_invoice_id is not None:
        click.echo(f"Corrects:    invoice {invoice.corrects_invoice_id}")
    if invoice.lines:
        click.echo("")
        _table(
            ["QUANTITY", "UNIT PRICE", "VAT", "AMOUNT", "DESCRIPTION"],
            [
                (
                    line.quantity,
                    line.unit_price,
                    f"{line.vat_percentage}%" if line.vat_category == "S" else line.vat_category,
                    line.amount_excl_vat,
                    line.description,
                )
                for line in invoice.lines
            ],
            "",
        )
    if invoice.description:
        click.echo("")
        click.echo(invoice.description)


@invoices.command("download")
@_credentials_here
@click.argument("invoice_id", type=int)
@click.option(
    "--format",
    "kind",
    type=click.Choice(["pdf", "ubl", "cii"]),
    default="pdf",
    show_default=True,
    help="pdf: PDF/A-3 with its e-invoice embedded (Factur-X); ubl, cii: EN 16931 XML.",
)
@click.option(
    "-o",
    "--output",
    "given",
    type=click.Path(dir_okay=True),
    help="File or folder to write to (default: the document's name, here).",
)
@json_flag
def invoices_download(invoice_id: int, kind: str, given: str | None, as_json: bool) -> None:
    """Download an invoice or a credit note as a PDF or an e-invoice.

    \b
    Examples:
      ledgerdesk invoices download 42                  # F26-0000042.pdf, here
      ledgerdesk invoices download 42 --format ubl -o invoices/
    """
    client = _client()
    suffix = {"pdf": ".pdf", "ubl": "-ubl.xml", "cii": "-cii.xml"}[kind]
    output = _target(given, lambda: f"{Path(client.invoice(invoice_id).number).name}{suffix}")
    written = client.download_invoice(invoice_id, kind, output)
    if as_json:
        _print_json({"path": str(output), "name": written.name, "size": written.size})
    else:
        click.echo(f"Wrote {written.size} bytes to {output}.")


# -- tickets --------------------------------------------------------------------------------


@click.group(cls=CustomerGroup)
@_credential_options
def tickets(ctx: click.Context, url: str | None, user_id: int | None, api_key: str | None) -> None:
    """Your support tickets (through the API, with your key).

    \b
    Credentials: --url, --user-id and --api-key (before or after the command's name),
    or LEDGERDESK_URL, LEDGERDESK_USER_ID and LEDGERDESK_API_KEY.
    Example:
      ledgerdesk tickets create --title "Server down" --content "No ping since 02:00"
    """
    _connect(ctx, url, user_id, api_key)


_STATUSES = {"open": TicketStatus.OPEN, "closed": TicketStatus.CLOSED, "all": None}
_PRIORITIES = {p.name.lower(): p for p in Priority}


@tickets.command("list")
@_credentials_here
@click.option("--status", type=click.Choice(list(_STATUSES)), default="all", show_default=True)
@json_flag
def tickets_list(status: str, as_json: bool) -> None:
    """Tickets, newest first.

    \b
    Examples:
      ledgerdesk tickets list --status open
      ledgerdesk tickets list --json
    """
    found = _client().tickets(_STATUSES[status])
    if as_json:
        _print_json({"tickets": found})
        return
    _table(
        ["ID", "STATUS", "PRIORITY", "UPDATED", "TITLE"],
        [
            (t.id, t.status.name.lower(), t.priority.name.lower(), _when(t.last_updated), t.title)
            for t in found
        ],
        "No tickets.",
    )


@tickets.command("show")
@_credentials_here
@click.argument("ticket_id", type=int)
@json_flag
def tickets_show(ticket_id: int, as_json: bool) -> None:
    """A ticket's whole thread, with its attachments.

    \b
    Example:
      ledgerdesk tickets show 7
    """
    thread = _client().ticket(ticket_id)
    if as_json:
        _print_json(thread)
        return
    ticket = thread.ticket
    click.echo(f"#{ticket.id} {ticket.title}")
    click.echo(
        f"{ticket.status.name.lower()} · priority {ticket.priority.name.lower()}"
        + (f" · reference {ticket.reference}" if ticket.reference else "")
    )
    for reply in thread.replies:
        click.echo("")
        click.echo(f"— {reply.author}, {_when(reply.created)}")
        click.echo(reply.content)
        for a in reply.attachments:
            click.echo(f"  [attachment {a.id}] {a.name} ({a.content_type}, {a.size} bytes)")


def _content(content: str | None, content_file: str | None) -> str:
    if (content is None) == (content_file is None):
        raise click.UsageError("give exactly one of --content and --content-file")
    if content_file == "-":
        return sys.stdin.read()
    if content_file is not None:
        try:
            return Path(content_file).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise click.BadParameter(
                f"{content_file} is not UTF-8 text", param_hint="--content-file"
            ) from None
    assert content is not None
    return content


_content_options = [
    click.option("--content", help="The message."),
    click.option(
        "--content-file",
        type=click.Path(exists=True, dir_okay=False, allow_dash=True),
        help="Read the message from a file, or from standard input with '-'.",
    ),
    click.option(
        "--attach",
        "attach",
        multiple=True,
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="A file to attach (repeat for more, up to 10).",
    ),
]


def _with_content_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_content_options):
        command = option(command)
    return command


@contextmanager
def _uploads(paths: Sequence[Path]) -> Iterator[list[Attachment]]:
    """The files to attach, with a progress bar when they are large."""
    total = sum(p.stat().st_size for p in paths)
    if total < PROGRESS_FROM:
        yield [Attachment.from_path(p) for p in paths]
        return
    with click.progressbar(length=total, label="Uploading", file=sys.stderr) as bar:
        handles = [p.open("rb") for p in paths]
        try:
            yield [
                Attachment.from_file(
                    p.name, _Counting(h, bar.update), Attachment.from_path(p).content_type
                )
                for p, h in zip(paths, handles, strict=True)
            ]
        finally:
            for handle in handles:
                handle.close()


class _Counting:
    """A binary file that reports how much of it was read (for the upload bar)."""

    def __init__(self, inner: IO[bytes], report: Callable[[int], None]) -> None:
        self.inner = inner
        self.report = report

    def read(self, size: int = -1, /) -> bytes:
        data = self.inner.read(size)
        self.report(len(data))
        return data

    def seekable(self) -> bool:
        return self.inner.seekable()

    def seek(self, offset: int, whence: int = 0, /) -> int:
        return self.inner.seek(offset, whence)

    def tell(self) -> int:
        return self.inner.tell()


@tickets.command("create")
@_credentials_here
@click.option("--title", required=True)
@_with_content_options
@click.option("--priority", type=click.Choice(list(_PRIORITIES)), default="normal")
@click.option("--reference", default="", help="Your own reference, up to 64 characters.")
@json_flag
def tickets_create(
    title: str,
    content: str | None,
    content_file: str | None,
    attach: tuple[Path, ...],
    priority: str,
    reference: str,
    as_json: bool,
) -> None:
    """Open a ticket.

    \b
    Examples:
      ledgerdesk tickets create --title "Server down" --content "No ping since 02:00"
      dmesg | ledgerdesk tickets create --title "Kernel errors" --content-file -
      ledgerdesk tickets create --title "Logs" --content "Attached" --attach syslog.txt
    """
    text = _content(content, content_file)
    with _uploads(attach) as files:
        ticket_id = _client().create_ticket(
            title, text, reference=reference, priority=_PRIORITIES[priority], attachments=files
        )
    if as_json:
        _print_json({"ticketId": ticket_id})
    else:
        click.echo(f"Opened ticket {ticket_id}.")


@tickets.command("reply")
@_credentials_here
@click.argument("ticket_id", type=int)
@_with_content_options
@json_flag
def tickets_reply(
    ticket_id: int,
    content: str | None,
    content_file: str | None,
    attach: tuple[Path, ...],
    as_json: bool,
) -> None:
    """Reply to a ticket (a closed one is reopened).

    \b
    Examples:
      ledgerdesk tickets reply 7 --content "It works again, thanks."
      ledgerdesk tickets reply 7 --content-file answer.txt --attach trace.log
    """
    text = _content(content, content_file)
    with _uploads(attach) as files:
        _client().reply(ticket_id, text, attachments=files)
    if as_json:
        _print_json({"ticketId": ticket_id})
    else:
        click.echo(f"Replied to ticket {ticket_id}.")


@tickets.command("close")
@_credentials_here
@click.argument("ticket_id", type=int)
@json_flag
def tickets_close(ticket_id: int, as_json: bool) -> None:
    """Close a ticket.

    \b
    Example:
      ledgerdesk tickets close 7
    """
    _client().close_ticket(ticket_id)
    if as_json:
        _print_json({"ticketId": ticket_id, "status": "closed"})
    else:
        click.echo(f"Closed ticket {ticket_id}.")


@tickets.command("reopen")
@_credentials_here
@click.argument("ticket_id", type=int)
@json_flag
def tickets_reopen(ticket_id: int, as_json: bool) -> None:
    """Reopen a closed ticket.

    \b
    Example:
      ledgerdesk tickets reopen 7
    """
    _client().reopen_ticket(ticket_id)
    if as_json:
        _print_json({"ticketId": ticket_id, "status": "open"})
    else:
        click.echo(f"Reopened ticket {ticket_id}.")


@tickets.command("download")
@_credentials_here
@click.argument("ticket_id", type=int)
@click.argument("attachment_id", type=int)
@click.option(
    "-o",
    "--output",
    "given",
    type=click.Path(dir_okay=True),
    help="File or folder to write to (default: the attachment's name, here); a name "
    "ending in / is a folder, made if missing.",
)
@json_flag
def tickets_download(ticket_id: int, attachment_id: int, given: str | None, as_json: bool) -> None:
    """Download an attachment, streamed to disk.

    \b
    Examples:
      ledgerdesk tickets download 7 12                # as its own name, here
      ledgerdesk tickets download 7 12 -o logs/       # into logs/ (made if missing)
      ledgerdesk tickets download 7 12 -o trace.txt
    """
    client = _client()

    def own_name() -> str:
        info = next(
            (
                a
                for r in client.ticket(ticket_id).replies
                for a in r.attachments
                if a.id == attachment_id
            ),
            None,
        )
        name = Path(info.name).name if info is not None else ""
        return name or f"attachment-{attachment_id}"

    output = _target(given, own_name)
    bar: Any = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None and total >= PROGRESS_FROM:
            bar = click.progressbar(length=total, label="Downloading", file=sys.stderr)
            bar.__enter__()
        if bar is not None:
            bar.update(done - bar.pos)

    try:
        written = client.download_attachment(ticket_id, attachment_id, output, progress=progress)
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    if as_json:
        _print_json({"path": str(output), "name": written.name, "size": written.size})
    else:
        click.echo(f"Wrote {written.size} bytes to {output}.")


def _target(given: str | None, own_name: Callable[[], str]) -> Path:
    """Where a download goes: the file given, or its own name (asked only then) in the
    folder given (a name ending in / is a folder, made if missing) or here."""
    output = Path(given) if given is not None else None
    if output is not None and given is not None and given.endswith(("/", os.sep)):
        output.mkdir(parents=True, exist_ok=True)
    if output is None or output.is_dir():
        return (output or Path(".")) / own_name()
    return output
