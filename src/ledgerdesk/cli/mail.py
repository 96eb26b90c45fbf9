"""``ledgerdesk mail receive``: one received mail from an MTA's pipe (Postfix, Exim).

Exit status, as MTAs read it: 0 when the mail was taken (whatever became of it: a
reply, a ticket, held, refused with a reply, kept as unreadable or failed in the
console's queue),
75 (EX_TEMPFAIL) when it could not be stored now (the database is down, the disk full,
mail is not set up): the MTA keeps the mail and tries again. A mail larger than
``MAX_RECEIVED_BYTES`` is refused with 65 (EX_DATAERR): the MTA bounces it with the
reason.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import click

from ledgerdesk.cli.support import CliState, pass_state
from ledgerdesk.errors import PayloadTooLarge
from ledgerdesk.mail.receiving import MAX_RECEIVED_BYTES, NotSetUp, take, written

EX_DATAERR = 65
EX_TEMPFAIL = 75
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
        if runtime.settings.support_address is None:
            raise NotSetUp("LEDGERDESK_MAIL_FROM is not set: mail is not set up")
        raw = written(runtime, _stdin())
        taken = take(runtime, raw, via=via)
    except PayloadTooLarge:
        click.echo(f"ledgerdesk: the mail is larger than {MAX_RECEIVED_BYTES} bytes", err=True)
        sys.exit(EX_DATAERR)
    except Exception as exc:  # anything now is worth another try later
        click.echo(f"ledgerdesk: cannot take mail now: {_said(exc)}", err=True)
        sys.exit(EX_TEMPFAIL)
    where = f" (ticket {taken.ticket_id})" if taken.ticket_id is not None else ""
    click.echo(f"mail {taken.mail_id}: {taken.state}{where}: {taken.why}", err=True)


def _stdin() -> Iterator[bytes]:
    source = sys.stdin.buffer
    while chunk := source.read(CHUNK):
        yield chunk


def _said(exc: BaseException) -> str:
    if isinstance(exc, click.ClickException | NotSetUp):
        return str(exc) if isinstance(exc, NotSetUp) else exc.message
    first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
