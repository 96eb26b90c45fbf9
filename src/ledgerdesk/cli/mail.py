"""``ledgerdesk mail receive``: one received mail from an MTA's pipe (Postfix, Exim).

Exit status, as MTAs read it: 0 when the mail was taken (whatever became of it: a
reply, a ticket, held, refused with a reply, kept as unreadable in the console's queue),
75 (EX_TEMPFAIL) when it could not be stored now (the database is down, the disk full,
mail is not set up): the MTA keeps the mail and tries again. A mail larger than
``MAX_PIPED_BYTES`` is refused with 65 (EX_DATAERR): the MTA bounces it with the reason.
"""

from __future__ import annotations

import sys

import click

from ledgerdesk.attachments.incoming import IncomingFile, IncomingWriter
from ledgerdesk.cli.support import CliState, pass_state
from ledgerdesk.errors import PayloadTooLarge
from ledgerdesk.events.work import Actor, Origin
from ledgerdesk.mail.inbound import MAX_MESSAGE_BYTES, InboundFile
from ledgerdesk.mail.service import MailIntake
from ledgerdesk.mail.threading import Policy
from ledgerdesk.runtime import Runtime

EX_DATAERR = 65
EX_TEMPFAIL = 75
MAX_PIPED_BYTES = 2 * MAX_MESSAGE_BYTES  # kept, then refused as unreadable, up to this
CHUNK = 1024 * 1024


@click.group()
def mail() -> None:
    """Mail into ledgerdesk."""


@mail.command("receive")
@click.option(
    "--via",
    type=click.Choice(["pipe", "lmtp", "imap"]),
    default="pipe",
    show_default=True,
    help="How the mail came (shown in the console).",
)
@pass_state
def receive(state: CliState, via: str) -> None:
    """Take one mail (RFC 5322) from standard input: a reply joins its ticket, a
    customer's mail opens one, the rest waits in the console. For an MTA's pipe:

    \b
      # /etc/postfix/master.cf
      ledgerdesk unix - n n - - pipe
        flags=Rq user=ledgerdesk argv=/usr/local/bin/ledgerdesk mail receive
    """
    try:
        runtime = state.runtime()
        state.require_current_schema()
        settings = runtime.settings
        if settings.support_address is None:
            raise click.ClickException("LEDGERDESK_MAIL_FROM is not set: mail is not set up")
        raw = _stdin_to_file(runtime)
    except PayloadTooLarge:
        click.echo(f"ledgerdesk: the mail is larger than {MAX_PIPED_BYTES} bytes", err=True)
        sys.exit(EX_DATAERR)
    except Exception as exc:  # anything now is worth another try later
        click.echo(f"ledgerdesk: cannot take mail now: {_said(exc)}", err=True)
        sys.exit(EX_TEMPFAIL)
    files: list[IncomingFile] = []
    try:
        data = raw.path.read_bytes()
        support = settings.support_address
        with runtime.work(Actor.VISITOR, Origin("mail")) as work:
            taken = MailIntake(
                work,
                support_address=support,
                domain=support.partition("@")[2],
                policy=Policy(strangers=settings.mail_strangers, unproven=settings.mail_unproven),
                store_file=lambda found: _file(runtime, found, files),
                hourly_cap=settings.mail_hourly_cap,
            ).take(raw, data, via=via)
    except Exception as exc:
        click.echo(f"ledgerdesk: cannot take mail now: {_said(exc)}", err=True)
        sys.exit(EX_TEMPFAIL)
    finally:
        raw.discard()
        for file in files:
            file.discard()
    where = f" (ticket {taken.ticket_id})" if taken.ticket_id is not None else ""
    click.echo(f"mail {taken.mail_id}: {taken.state}{where}: {taken.why}", err=True)


def _stdin_to_file(runtime: Runtime) -> IncomingFile:
    writer = IncomingWriter(runtime.incoming_dir, MAX_PIPED_BYTES, "the mail")
    try:
        source = sys.stdin.buffer
        while chunk := source.read(CHUNK):
            writer.write(chunk)
        return writer.finish("mail.eml", "message/rfc822")
    except BaseException:
        writer.discard()
        raise


def _file(runtime: Runtime, found: InboundFile, made: list[IncomingFile]) -> IncomingFile | None:
    """A mail's file as an upload (noted in ``made``, removed when the mail is taken),
    or None when it is larger than attachments may be."""
    writer = IncomingWriter(runtime.incoming_dir, runtime.settings.max_attachment_bytes, found.name)
    try:
        writer.write(found.data)
    except PayloadTooLarge:
        return None
    stored = writer.finish(found.name, found.content_type)
    made.append(stored)
    return stored


def _said(exc: BaseException) -> str:
    if isinstance(exc, click.ClickException):
        return exc.message
    first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
