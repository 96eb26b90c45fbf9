"""@name in an internal note tells that staff member by mail (the note's words, to them
alone); who a name means; the customer hears nothing of a note."""

from __future__ import annotations

import asyncio

import anyio
import pytest

from ledgerdesk.accounts.people import PeopleService
from ledgerdesk.mail.relay import MailRelay
from ledgerdesk.runtime import Runtime
from ledgerdesk.tickets.service import mentioned
from tests.factories import make_ticket, system_work
from tests.servers import Sink
from tests.web.conftest import WebClient, clock_now, mailing_settings, make_person

pytestmark = pytest.mark.anyio


settings = pytest.fixture(mailing_settings, name="settings")


clock = pytest.fixture(clock_now, name="clock")


def test_who_a_name_means(runtime: Runtime) -> None:
    tess = make_person(runtime, "Tess Tech", "tess@example.com", staff=True)
    tom = make_person(runtime, "Tom Tech", "t.tech@example.com", staff=True)
    tim = make_person(runtime, "Tim Ops", "tim@example.com", staff=True)
    other_tim = make_person(runtime, "Tim Night", "night@example.com", staff=True)
    gone = make_person(runtime, "Gus Gone", "gus@example.com", staff=True)
    make_person(runtime, "Ann", "ann@example.com")
    with system_work(runtime) as work:
        PeopleService.of(work).set_disabled(gone, True, now=work.now)
    with system_work(runtime) as work:
        found = mentioned(
            work.session,
            "@tess and @T.Tech, @timops, @tim (two of them), @gus, @ann, mail@tess, @TESS again",
        )
    assert found == [tess, tom, tim]
    assert other_tim not in found


async def test_a_mention_in_a_note_mails_the_colleague_the_note(
    runtime: Runtime, staff: WebClient, ann: tuple[int, WebClient], smtp: Sink
) -> None:
    ann_id, _ = ann
    make_person(runtime, "Tess Tech", "tess@example.com", staff=True)
    ticket_id = make_ticket(runtime, ann_id, title="Disk full")
    page = f"/console/tickets/{ticket_id}"
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(MailRelay(runtime).run)
        await asyncio.sleep(0.1)
        noted = await staff.submit(
            page, f"{page}/note", {"content": "@tess can you check the RAID? @sam too"}
        )
        assert noted.status_code == 303
        async with asyncio.timeout(10):
            while not smtp.to("tess@example.com"):
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)  # time for anything else that would go out
        tasks.cancel_scope.cancel()
    [mail] = [m for m in smtp.messages if "mentioned you" in str(m["Subject"])]
    assert "tess@example.com" in str(mail["To"])
    assert str(mail["Subject"]).endswith("Sam Support mentioned you: Disk full")
    body = mail.get_body(("plain",))
    assert body is not None
    assert "@tess can you check the RAID?" in body.get_content()
    assert f"https://desk.hosting.example/console/tickets/{ticket_id}" in body.get_content()
    # Not to the author who named himself, never to the customer.
    assert not smtp.to("sam@example.com")
    assert not smtp.to("ann@example.com")
