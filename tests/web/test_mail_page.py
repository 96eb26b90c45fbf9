"""The console's received mail: what waits, where each mail went, each one as received,
and the addresses our mail fails at; staff only."""

from __future__ import annotations

import pytest

from ledgerdesk.accounts.service import AccountService
from ledgerdesk.attachments.incoming import IncomingWriter
from ledgerdesk.db.models import MailAddress, MailMessage
from ledgerdesk.events.work import Actor, Origin
from ledgerdesk.mail.service import MailIntake
from ledgerdesk.mail.threading import Policy
from ledgerdesk.runtime import Runtime
from tests.factories import system_work
from tests.web.conftest import WebClient

pytestmark = pytest.mark.anyio

STRANGER = (
    b"From: eve@stranger.example\nTo: support@hosting.example\nSubject: Hello there\n"
    b"Message-ID: <w1@stranger.example>\n\nAnyone?\n"
)


def take(runtime: Runtime, raw: bytes) -> int:
    writer = IncomingWriter(runtime.incoming_dir, 10_000_000, "mail")
    writer.write(raw)
    with runtime.work(Actor.VISITOR, Origin("mail")) as work:
        return (
            MailIntake(
                work,
                support_address="support@hosting.example",
                domain="hosting.example",
                policy=Policy(strangers="hold"),
                store_file=lambda found: None,
            )
            .take(writer.finish("mail.eml", "message/rfc822"), raw, via="pipe")
            .mail_id
        )


async def test_held_mail_waits_with_why_and_can_be_read_as_received(
    runtime: Runtime, staff: WebClient, ann: tuple[int, WebClient]
) -> None:
    mail_id = take(runtime, STRANGER)
    with runtime.transaction(write=True) as (session, _):
        session.add(
            MailAddress(
                address="gone@example.com",
                failing_since=1_796_000_000,
                failing_reason="refused: 550 No such user",
            )
        )
    page = await staff.get("/console/mail")
    assert "eve@stranger.example" in page.text
    assert "an unknown sender" in page.text
    assert "<strong>held</strong>" in page.text
    assert "gone@example.com" in page.text
    raw = await staff.get(f"/console/mail/{mail_id}/raw")
    assert raw.status_code == 200
    assert raw.content == STRANGER
    assert raw.headers["content-type"] == "message/rfc822"
    assert (await staff.get("/console/mail/999999/raw")).status_code == 404
    _, customer = ann
    assert (await customer.get("/console/mail")).status_code == 303  # to their own side
    assert (await customer.get(f"/console/mail/{mail_id}/raw")).status_code == 303


async def test_a_reply_that_came_by_mail_links_the_original_for_staff_only(
    runtime: Runtime, staff: WebClient, ann: tuple[int, WebClient]
) -> None:
    ann_id, customer = ann
    with system_work(runtime) as work:
        AccountService(work).update_user(ann_id, email="ann@example.com")
    mail_id = take(
        runtime,
        b"From: ann@example.com\nTo: support@hosting.example\nSubject: Disk full\n"
        b"Message-ID: <o1@example.com>\n\nweb01 is full.\n",
    )
    with runtime.transaction(write=False) as (session, _):
        row = session.get(MailMessage, mail_id)
        assert row is not None
        ticket_id = row.ticket_id
    page = await staff.get(f"/console/tickets/{ticket_id}")
    assert f'href="/console/mail/{mail_id}/raw">by mail: the original</a>' in page.text
    portal = await customer.get(f"/account/tickets/{ticket_id}")
    assert portal.status_code == 200
    assert "by mail: the original" not in portal.text
