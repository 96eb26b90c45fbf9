"""Mail handed over by LMTP: only the support address (and its plus-addresses) is a
mailbox, one recipient a transaction, 250 once taken, 451 when it cannot be now; and
``serve`` listens when LEDGERDESK_LMTP_LISTEN is set."""

from __future__ import annotations

import smtplib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from ledgerdesk.accounts.service import AccountService
from ledgerdesk.config import Settings
from ledgerdesk.db.models import MailMessage, Ticket
from ledgerdesk.mail.lmtp import listen
from ledgerdesk.runtime import Runtime
from tests.factories import make_user, system_work
from tests.servers import free_port, running

pytestmark = pytest.mark.anyio

SUPPORT = "support@hosting.example"
MAIL = (
    b"From: Ann <ann@example.com>\r\nTo: support@hosting.example\r\nSubject: Disk full\r\n"
    b"Message-ID: <l1@example.com>\r\n\r\nweb01 is full.\r\n"
)


@pytest.fixture
def receiving(settings: Settings) -> Iterator[Runtime]:
    runtime = Runtime.build(settings.with_overrides(mail_from=f"Support <{SUPPORT}>"))
    customer = make_user(runtime, name="Ann")
    with system_work(runtime) as work:
        AccountService(work).update_user(customer, email="ann@example.com")
    yield runtime
    runtime.engine.dispose()


@asynccontextmanager
async def lmtp(runtime: Runtime) -> AsyncIterator[int]:
    port = free_port()
    server = await listen(runtime, "127.0.0.1", port)
    try:
        yield port
    finally:
        server.close()


def count(runtime: Runtime, model: type) -> int:
    with runtime.transaction(write=False) as (session, _):
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def hand_over(port: int, recipients: list[str], data: bytes = MAIL) -> dict[str, tuple[int, bytes]]:
    with smtplib.LMTP("127.0.0.1", port) as client:
        return client.sendmail("ann@example.com", recipients, data)  # type: ignore[return-value]


async def test_a_mail_handed_over_is_taken(receiving: Runtime) -> None:
    async with lmtp(receiving) as port:
        refused = await anyio.to_thread.run_sync(hand_over, port, [SUPPORT])
    assert refused == {}
    assert (count(receiving, MailMessage), count(receiving, Ticket)) == (1, 1)


async def test_only_the_support_address_is_a_mailbox(receiving: Runtime) -> None:
    async with lmtp(receiving) as port:

        def other() -> None:
            hand_over(port, ["postmaster@hosting.example"])

        with pytest.raises(smtplib.SMTPRecipientsRefused):
            await anyio.to_thread.run_sync(other)
        plus = await anyio.to_thread.run_sync(hand_over, port, ["support+42.abc@hosting.example"])
    assert plus == {}


async def test_a_database_that_is_down_asks_the_mta_to_try_again(
    receiving: Runtime, tmp_path: Path
) -> None:
    down = Runtime.build(
        Settings(
            database_url="postgresql+psycopg://nobody@127.0.0.1:1/none",
            data_dir=tmp_path,
            mail_from=f"Support <{SUPPORT}>",
            db_connect_timeout=1,
        )
    )
    deferred = REGISTRY.get_sample_value("ledgerdesk_inbound_mail_total", {"outcome": "deferred"})
    try:
        async with lmtp(down) as port:

            def send() -> None:
                hand_over(port, [SUPPORT])

            with pytest.raises(smtplib.SMTPDataError) as caught:
                await anyio.to_thread.run_sync(send)
        assert caught.value.smtp_code == 451
        # /metrics: put off, not failed.
        assert (
            REGISTRY.get_sample_value("ledgerdesk_inbound_mail_total", {"outcome": "deferred"})
            == (deferred or 0) + 1
        )
    finally:
        down.engine.dispose()


@pytest.mark.slow
def test_serve_listens_for_lmtp_when_asked(database_url: str, tmp_path: Path) -> None:
    runtime = Runtime.build(Settings(database_url=database_url, data_dir=tmp_path))
    customer = make_user(runtime, name="Ann")
    with system_work(runtime) as work:
        AccountService(work).update_user(customer, email="ann@example.com")
    port, lmtp_port = free_port(), free_port()
    env = {
        "LEDGERDESK_DATABASE_URL": database_url,
        "LEDGERDESK_DATA_DIR": str(tmp_path),
        "LEDGERDESK_MAIL_FROM": f"Support <{SUPPORT}>",
        "LEDGERDESK_LMTP_LISTEN": f"127.0.0.1:{lmtp_port}",
    }
    try:
        with running(["serve", "--port", str(port)], port, env):
            assert hand_over(lmtp_port, [SUPPORT]) == {}
        assert count(runtime, Ticket) == 1
    finally:
        runtime.engine.dispose()
