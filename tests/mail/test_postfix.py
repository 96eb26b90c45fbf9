"""The whole round trip through a real MTA: Postfix (Debian's) takes a customer's mail
and hands it to ``ledgerdesk serve`` by LMTP; staff answer; the notification arrives at
an SMTP server with the right headers; the customer's answer to it (the notification
quoted under it) goes back through Postfix into the same ticket, without the quote; a
stranger copying the ticket's code into a subject lands in a ticket of his own. And
through Postfix's pipe to ``ledgerdesk mail receive``: a mail it cannot store now
(exit 75) stays in Postfix's queue and is taken when Postfix tries again.

Needs Postfix installed and root (``.ci/run`` installs it); skipped otherwise.
"""

from __future__ import annotations

import os
import shutil
import smtplib
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import select

import ledgerdesk
from ledgerdesk.accounts.service import AccountService
from ledgerdesk.config import Settings
from ledgerdesk.db.migrate import upgrade
from ledgerdesk.db.models import MailMessage, Ticket, User
from ledgerdesk.events.work import Actor, Origin
from ledgerdesk.runtime import Runtime
from ledgerdesk.tickets.queries import TicketQueries
from ledgerdesk.tickets.service import TicketReader, TicketService
from tests.factories import system_work
from tests.servers import Sink, free_port, running

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("postfix") is None or os.geteuid() != 0,
        reason="needs Postfix and root (.ci/run installs it)",
    ),
]

SUPPORT = "support@hosting.example"


def postconf(
    directory: Path, smtp_port: int, lmtp_port: int, pipe: list[str] | None = None
) -> None:
    """Postfix in ``directory``: mail for hosting.example goes by LMTP to ``lmtp_port``,
    or, given ``pipe`` (the command's words), to that command as the user nobody."""
    (directory / "main.cf").write_text(
        f"""compatibility_level = 3.6
queue_directory = {directory}/queue
data_directory = {directory}/data
mail_owner = postfix
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mx.test.example
mydestination =
mynetworks = 127.0.0.0/8
relay_domains = hosting.example
transport_maps = texthash:{directory}/transport
lmtp_destination_recipient_limit = 1
ledgerdesk_destination_recipient_limit = 1
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
maillog_file = {directory}/maillog
maillog_file_prefixes = {directory}
minimal_backoff_time = 2s
maximal_backoff_time = 4s
queue_run_delay = 2s
"""
    )
    transport = "ledgerdesk:" if pipe else f"lmtp:inet:127.0.0.1:{lmtp_port}"
    (directory / "transport").write_text(f"hosting.example {transport}\n")
    master = Path("/etc/postfix/master.cf").read_text().splitlines()
    lines = [
        f"127.0.0.1:{smtp_port} inet n - n - - smtpd"
        if line.startswith("smtp ") and "smtpd" in line
        else line
        for line in master
    ]
    if pipe:
        lines += [
            "ledgerdesk unix - n n - - pipe",
            "  flags=Rq user=nobody argv=" + " ".join(pipe),
        ]
    (directory / "master.cf").write_text("\n".join(lines) + "\n")


@contextmanager
def postfix_running(pipe: list[str] | None = None) -> Iterator[tuple[int, int, Path]]:
    # Outside pytest's private temporary folders: Postfix's own user must reach it.
    directory = Path(tempfile.mkdtemp(prefix="ledgerdesk-postfix-"))
    directory.chmod(0o755)
    (directory / "queue").mkdir(parents=True)
    (directory / "data").mkdir()
    shutil.chown(directory / "data", "postfix")
    smtp_port, lmtp_port = free_port(), free_port()
    postconf(directory, smtp_port, lmtp_port, pipe)
    control = ["postfix", "-c", str(directory)]
    subprocess.run([*control, "start"], check=True, capture_output=True)
    try:
        yield smtp_port, lmtp_port, directory
    finally:
        subprocess.run([*control, "stop"], check=False, capture_output=True)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def postfix() -> Iterator[tuple[int, int, Path]]:
    with postfix_running() as running_postfix:
        yield running_postfix


def send(smtp_port: int, message: EmailMessage) -> None:
    with smtplib.SMTP("127.0.0.1", smtp_port) as client:
        client.send_message(message)


def wait(what: str, check: object, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            tail = log.read_text()[-3000:] if log.exists() else "(no log)"
            raise AssertionError(f"timed out waiting for {what}; Postfix said:\n{tail}")
        time.sleep(0.2)


def test_a_customer_and_staff_talk_by_mail_through_postfix(
    database_url: str, tmp_path: Path, postfix: tuple[int, int, Path], sink: Sink
) -> None:
    smtp_port, lmtp_port, directory = postfix
    data = tmp_path / "data"
    runtime = Runtime.build(Settings(database_url=database_url, data_dir=data))
    with system_work(runtime) as work:
        accounts = AccountService(work)
        ann = accounts.create_user(name="Ann", email="ann@example.com", staff=False).id
        accounts.create_user(name="Bob", email="bob@example.com", staff=False)
        sam = accounts.create_user(name="Sam", email="sam@hosting.example", staff=True).id
    port = free_port()
    env = {
        "LEDGERDESK_DATABASE_URL": database_url,
        "LEDGERDESK_DATA_DIR": str(data),
        "LEDGERDESK_MAIL_FROM": f"Hosting Support <{SUPPORT}>",
        "LEDGERDESK_LMTP_LISTEN": f"127.0.0.1:{lmtp_port}",
        "LEDGERDESK_SMTP_URL": f"smtp://127.0.0.1:{sink.port}",
    }

    def tickets() -> list[Ticket]:
        with runtime.transaction(write=False) as (session, _):
            return list(session.scalars(select(Ticket).order_by(Ticket.id)))

    def thread(ticket_id: int) -> list[str]:
        from ledgerdesk.db.prepared import session_db

        with runtime.transaction(write=False) as (session, _):
            view = TicketReader(TicketQueries(session_db(session))).thread(ticket_id, user_id=None)
        return [r.reply.content for r in view.replies]

    try:
        with running(["serve", "--port", str(port)], port, env):
            first = EmailMessage()
            first["From"] = "Ann <ann@example.com>"
            first["To"] = SUPPORT
            first["Subject"] = "Server unreachable"
            first["Message-ID"] = "<first@example.com>"
            first.set_content("web01 stopped answering at 07:12.")
            send(smtp_port, first)
            wait("the ticket", lambda: len(tickets()) == 1, directory / "maillog")
            [ticket] = tickets()
            assert (ticket.user_id, ticket.title) == (ann, "Server unreachable")

            with runtime.work(Actor.staff(sam), Origin("console")) as work:
                author = work.session.get(User, sam)
                assert author is not None
                TicketService(work).reply(
                    ticket.id, author=author, content="We replaced the disk.", files=[]
                )
            wait("the notification", lambda: sink.to("ann@example.com"), directory / "maillog")
            [notification] = sink.to("ann@example.com")
            assert notification["In-Reply-To"] == "<first@example.com>"
            assert str(notification["Subject"]) == f"[#{ticket.code}] Server unreachable"

            answer = EmailMessage()
            answer["From"] = "Ann <ann@example.com>"
            answer["To"] = str(notification["Reply-To"])
            answer["Subject"] = f"Re: {notification['Subject']}"
            answer["Message-ID"] = "<answer@example.com>"
            answer["In-Reply-To"] = str(notification["Message-ID"])
            answer["References"] = f"<first@example.com> {notification['Message-ID']}"
            quoted = "\n".join(
                "> " + line
                for line in notification.get_body(("plain",)).get_content().splitlines()  # type: ignore[union-attr]
            )
            answer.set_content(
                "It works again, thanks!\n\n"
                f"On Mon, 30 Nov 2026, Hosting Support <{SUPPORT}> wrote:\n{quoted}\n"
            )
            send(smtp_port, answer)
            wait("the answer", lambda: len(thread(ticket.id)) == 3, directory / "maillog")
            assert thread(ticket.id) == [
                "web01 stopped answering at 07:12.",
                "We replaced the disk.",
                "It works again, thanks!",
            ]

            stranger = EmailMessage()
            stranger["From"] = "Bob <bob@example.com>"
            stranger["To"] = SUPPORT
            stranger["Subject"] = f"Re: [#{ticket.code}] Server unreachable"
            stranger["Message-ID"] = "<bob@example.com>"
            stranger.set_content("Let me in.")
            send(smtp_port, stranger)
            wait("Bob's ticket", lambda: len(tickets()) == 2, directory / "maillog")
        assert len(thread(ticket.id)) == 3  # nothing of Bob's in Ann's ticket
        with runtime.transaction(write=False) as (session, _):
            vias = list(session.scalars(select(MailMessage.via)))
        assert vias == ["lmtp", "lmtp", "lmtp"]
    finally:
        runtime.engine.dispose()


# Postfix runs a pipe as an unprivileged user (never root), who may not reach this
# interpreter where it lives (a pyenv under /root): the command runs on the system's
# Python of the same version, with this environment's packages and ledgerdesk's source.
SYSTEM_PYTHON = "/usr/bin/python3"
SOURCE = Path(ledgerdesk.__file__).resolve().parent.parent


def _system_python_matches() -> bool:
    try:
        said = subprocess.run(
            [SYSTEM_PYTHON, "-c", "import sys; print(sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return False
    return said == str(sys.version_info[:2])


@pytest.mark.skipif(
    not _system_python_matches(), reason="needs /usr/bin/python3 of this Python's version"
)
def test_postfix_pipes_mail_to_the_receive_command_and_keeps_what_it_cannot_take_now(
    database_url: str, backend: str
) -> None:
    # Everything the pipe's user (nobody) writes is outside pytest's private folders.
    home = Path(tempfile.mkdtemp(prefix="ledgerdesk-pipe-"))
    home.chmod(0o755)
    data = home / "data"
    data.mkdir()
    shutil.chown(data, "nobody")
    url = database_url
    if backend == "sqlite":  # a database file nobody may write (and its -wal, -shm)
        (home / "db").mkdir()
        shutil.chown(home / "db", "nobody")
        path = home / "db" / "ledgerdesk.sqlite3"
        url = f"sqlite+pysqlite:///{path}"
        fresh = Runtime.build(Settings(database_url=url, data_dir=data))
        upgrade(fresh.engine)
        fresh.engine.dispose()
        shutil.chown(path, "nobody")
    runtime = Runtime.build(Settings(database_url=url, data_dir=data))
    pipe = [
        "/usr/bin/env",
        f"LEDGERDESK_DATABASE_URL={url}",
        f"LEDGERDESK_DATA_DIR={data}",
        f"LEDGERDESK_MAIL_FROM={SUPPORT}",
        f"PYTHONPATH={SOURCE}:{sysconfig.get_paths()['purelib']}",
        SYSTEM_PYTHON,
        "-m",
        "ledgerdesk",
        "mail",
        "receive",
    ]
    try:
        with system_work(runtime) as work:
            ann = AccountService(work).create_user(name="Ann", email="ann@example.com", staff=False)

        def tickets() -> list[Ticket]:
            with runtime.transaction(write=False) as (session, _):
                return list(session.scalars(select(Ticket).order_by(Ticket.id)))

        with postfix_running(pipe) as (smtp_port, _, directory):
            data.chmod(0o000)  # the command cannot store it now: 75, Postfix keeps it
            mail = EmailMessage()
            mail["From"] = "Ann <ann@example.com>"
            mail["To"] = SUPPORT
            mail["Subject"] = "Backups failing"
            mail["Message-ID"] = "<piped@example.com>"
            mail.set_content("Since Monday.")
            send(smtp_port, mail)
            log = directory / "maillog"
            wait("the deferral", lambda: log.exists() and "status=deferred" in log.read_text(), log)
            assert tickets() == []
            data.chmod(0o755)
            wait("the ticket", lambda: len(tickets()) == 1, log)
        [ticket] = tickets()
        assert (ticket.user_id, ticket.title) == (ann.id, "Backups failing")
        with runtime.transaction(write=False) as (session, _):
            assert list(session.scalars(select(MailMessage.via))) == ["pipe"]
    finally:
        runtime.engine.dispose()
        shutil.rmtree(home, ignore_errors=True)
