"""Mail fetched from a real IMAP server (Dovecot, Debian's; its own instance): taken,
then deleted; a poller that dies between taking and deleting leaves one ticket, not two;
a mailbox that cannot be fetched is on record until it works again; of two servers'
pollers one fetches, the other takes over when it stops or its lease runs out.

Needs Dovecot and root (``.ci/run`` installs it); skipped otherwise.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import aioimaplib
import anyio
import pytest
from sqlalchemy import func, select

from ledgerdesk.accounts.service import AccountService
from ledgerdesk.config import Settings
from ledgerdesk.db.models import MailFetcher, MailMessage, Ticket
from ledgerdesk.mail.imap import ImapPoller
from ledgerdesk.mail.service import Taken
from ledgerdesk.runtime import Runtime
from tests.factories import make_user, system_work
from tests.servers import free_port

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("dovecot") is None or os.geteuid() != 0,
        reason="needs Dovecot and root (.ci/run installs it)",
    ),
]

SUPPORT = "support@hosting.example"
PASSWORD = "secret"


class Killed(BaseException):
    """The poller's death, between taking a message and flagging it (nothing the poller
    catches, as a kill)."""


def mail(n: int) -> bytes:
    return (
        f"From: Ann <ann@example.com>\r\nTo: {SUPPORT}\r\nSubject: Problem {n}\r\n"
        f"Message-ID: <imap{n}@example.com>\r\n\r\nSomething broke ({n}).\r\n"
    ).encode()


@pytest.fixture
def dovecot() -> Iterator[int]:
    directory = Path(tempfile.mkdtemp(prefix="ledgerdesk-dovecot-"))
    directory.chmod(0o755)
    for name in ("mail", "run", "state"):
        (directory / name).mkdir()
    shutil.chown(directory / "mail", "dovecot", "dovecot")
    port = free_port()
    config = directory / "dovecot.conf"
    config.write_text(
        f"""protocols = imap
listen = 127.0.0.1
base_dir = {directory}/run
state_dir = {directory}/state
log_path = {directory}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{directory}/mail/%u
default_internal_user = dovecot
default_internal_group = dovecot
default_login_user = dovenull
mail_uid = dovecot
mail_gid = dovecot
first_valid_uid = 0
passdb {{
  driver = static
  args = password={PASSWORD}
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={directory}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
  chroot =
}}
service anvil {{
  chroot =
}}
"""
    )
    subprocess.run(  # it goes to the background: nothing of it is waited for
        ["dovecot", "-c", str(config)],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield port
    finally:
        pid = (directory / "run" / "master.pid").read_text().strip()
        os.kill(int(pid), signal.SIGTERM)
        shutil.rmtree(directory, ignore_errors=True)


async def deliver(port: int, *raws: bytes) -> None:
    client = aioimaplib.IMAP4("127.0.0.1", port, timeout=10)
    await client.wait_hello_from_server()
    await client.login("support", PASSWORD)
    for raw in raws:
        assert (await client.append(raw, mailbox="INBOX")).result == "OK"
    await client.logout()
    client.protocol.transport.close()


async def left(port: int) -> int:
    client = aioimaplib.IMAP4("127.0.0.1", port, timeout=10)
    await client.wait_hello_from_server()
    await client.login("support", PASSWORD)
    await client.select("INBOX")
    found = await client.uid_search("UNDELETED")
    await client.logout()
    client.protocol.transport.close()
    return len(found.lines[0].split()) if found.lines and found.lines[0].strip() else 0


@pytest.fixture
def fetching(settings: Settings, dovecot: int) -> Iterator[Runtime]:
    runtime = Runtime.build(
        settings.with_overrides(
            mail_from=f"Support <{SUPPORT}>",
            imap_url=f"imap://support:{PASSWORD}@127.0.0.1:{dovecot}/INBOX",
        )
    )
    customer = make_user(runtime, name="Ann")
    with system_work(runtime) as work:
        AccountService(work).update_user(customer, email="ann@example.com")
    yield runtime
    runtime.engine.dispose()


@asynccontextmanager
async def polling(poller: ImapPoller) -> AsyncIterator[ImapPoller]:
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(poller.run)
        yield poller
        tasks.cancel_scope.cancel()


def count(runtime: Runtime, model: type) -> int:
    with runtime.transaction(write=False) as (session, _):
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def failing(runtime: Runtime) -> bool:
    with runtime.transaction(write=False) as (session, _):
        return session.scalar(select(MailFetcher.failing_since)) is not None


async def until(condition: object, timeout: float = 20) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.05)


async def test_mail_is_taken_then_deleted_and_new_mail_is_heard_at_once(
    fetching: Runtime, dovecot: int
) -> None:
    await deliver(dovecot, mail(1), mail(2))
    async with polling(ImapPoller(fetching, poll=600)) as poller:
        await until(lambda: poller.taken == 2)
        await deliver(dovecot, mail(3))  # IDLE tells the poller; no 10-minute wait
        await until(lambda: poller.taken == 3)
    assert count(fetching, Ticket) == 3
    assert await left(dovecot) == 0
    with fetching.transaction(write=False) as (session, _):
        assert set(session.scalars(select(MailMessage.via))) == {"imap"}
        [fetcher] = session.scalars(select(MailFetcher)).all()
        assert fetcher.failing_since is None
        assert "secret" not in fetcher.name


async def test_a_poller_that_dies_after_taking_leaves_one_ticket(
    fetching: Runtime, dovecot: int
) -> None:
    await deliver(dovecot, mail(1))

    def die(taken: Taken) -> None:
        raise Killed  # as a kill: the next step, flagging the message, never comes

    with pytest.raises(Killed):
        await ImapPoller(fetching, after_take=die).run()
    assert (count(fetching, Ticket), await left(dovecot)) == (1, 1)
    async with polling(ImapPoller(fetching)) as poller:
        await until(lambda: poller.taken == 1)
    assert (count(fetching, Ticket), await left(dovecot)) == (1, 0)


async def test_a_mailbox_that_refuses_is_on_record_until_it_works(
    fetching: Runtime, dovecot: int
) -> None:
    wrong = Runtime.build(
        fetching.settings.with_overrides(imap_url=f"imap://support:wrong@127.0.0.1:{dovecot}/INBOX")
    )
    try:
        async with polling(ImapPoller(wrong)):
            await until(lambda: failing(wrong))
        with wrong.transaction(write=False) as (session, _):
            [fetcher] = session.scalars(select(MailFetcher)).all()
        assert fetcher.failing_since is not None
        assert fetcher.last_error is not None
        assert fetcher.last_error.startswith("FetchFailed: login: NO")
    finally:
        wrong.engine.dispose()


async def test_one_poller_fetches_a_mailbox_and_another_takes_over_when_it_stops(
    fetching: Runtime, dovecot: int
) -> None:
    await deliver(dovecot, *(mail(n) for n in range(1, 4)))
    first = ImapPoller(fetching, lease=3)
    second = ImapPoller(fetching, lease=3)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(first.run)
        await until(lambda: first.taken == 3)
        tasks.start_soon(second.run)
        await deliver(dovecot, mail(4))
        await until(lambda: first.taken == 4)
        await anyio.sleep(2)  # the second looked at least once meanwhile
        assert second.taken == 0
        with fetching.transaction(write=False) as (session, _):
            [fetcher] = session.scalars(select(MailFetcher)).all()
        assert fetcher.holder == first.holder
        tasks.cancel_scope.cancel()
    async with polling(second):  # the first let go when it stopped
        await deliver(dovecot, mail(5))
        await until(lambda: second.taken == 1)
    assert count(fetching, Ticket) == 5


async def test_a_killed_pollers_lease_runs_out_and_another_fetches(
    fetching: Runtime, dovecot: int
) -> None:
    with fetching.transaction(write=True) as (session, _):  # a server killed while fetching
        session.add(
            MailFetcher(
                name=ImapPoller(fetching).name,
                holder="gone:1:x",
                lease_until=int(time.time() * 1000) + 2_000,
            )
        )
    await deliver(dovecot, mail(1))
    poller = ImapPoller(fetching, lease=1.5)
    async with polling(poller):
        await anyio.sleep(1)
        assert poller.taken == 0  # the lease still holds
        await until(lambda: poller.taken == 1)
    assert count(fetching, Ticket) == 1
