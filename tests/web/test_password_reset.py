"""A forgotten password, reset by a mailed link: through the real relay and an SMTP
server; the page says the same for an unknown address; the link works once, for an
hour, and dies when any password is set; asks are quiet for five minutes."""

from __future__ import annotations

import asyncio
import re
from email.message import EmailMessage

import anyio
import pytest

from ledgerdesk.accounts.people import PeopleService
from ledgerdesk.db.models import User
from ledgerdesk.events.log import EventLog
from ledgerdesk.mail.relay import MailRelay
from ledgerdesk.mail.resets import PasswordResets
from ledgerdesk.runtime import Runtime
from tests.factories import system_work
from tests.servers import Sink
from tests.support import FrozenClock
from tests.web.conftest import PASSWORD, WebClient, clock_now, mailing_settings, make_person

pytestmark = pytest.mark.anyio

_LINK = re.compile(r"https://desk\.hosting\.example(/password/reset/[0-9a-z.]+)")
NEW = "a much better password"


settings = pytest.fixture(mailing_settings, name="settings")


clock = pytest.fixture(clock_now, name="clock")


def resets(runtime: Runtime) -> list[int]:
    with runtime.transaction(write=False) as (session, _):
        events = EventLog(session).after(0, limit=1000)
    return [e.subject_id for e in events if e.type == "password.reset_requested"]  # type: ignore[misc]


def mails(smtp: Sink, address: str) -> list[EmailMessage]:
    return [m for m in smtp.to(address) if m["Subject"] == "Set a new password"]


async def test_a_customer_sets_a_new_password_through_the_mailed_link(
    runtime: Runtime, web: WebClient, smtp: Sink
) -> None:
    ann = make_person(runtime, "Ann", "ann@example.com")
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(MailRelay(runtime).run)
        await asyncio.sleep(0.1)
        asked = await web.submit(
            "/password/forgot", "/password/forgot", {"email": "ANN@example.com"}
        )
        assert asked.status_code == 303
        assert "note=reset-sent" in asked.headers["location"]
        async with asyncio.timeout(10):
            while not mails(smtp, "ann@example.com"):
                await asyncio.sleep(0.02)
        tasks.cancel_scope.cancel()
    [message] = mails(smtp, "ann@example.com")
    body = message.get_body(("plain",))
    assert body is not None
    found = _LINK.search(body.get_content())
    assert found
    link = found.group(1)
    assert resets(runtime) == [ann]
    shown = await web.get(link)
    assert shown.status_code == 200
    assert "Set your password" in shown.text
    short = await web.submit(link, link, {"password": "short", "password_again": "short"})
    assert short.status_code == 400
    done = await web.submit(link, link, {"password": NEW, "password_again": NEW})
    assert done.status_code == 303
    assert (await web.get(link)).status_code == 404  # once
    signed = await web.sign_in("ann@example.com", password=NEW)
    assert signed.headers["location"] == "/account"


async def test_an_unknown_or_disabled_address_gets_the_same_answer_and_no_mail(
    runtime: Runtime, web: WebClient
) -> None:
    bob = make_person(runtime, "Bob", "bob@example.com")
    with system_work(runtime) as work:
        PeopleService.of(work).set_disabled(bob, True, now=work.now)
    unknown = await web.submit("/password/forgot", "/password/forgot", {"email": "eve@x.example"})
    disabled = await web.submit(
        "/password/forgot", "/password/forgot", {"email": "bob@example.com"}
    )
    assert unknown.status_code == disabled.status_code == 303
    assert unknown.headers["location"] == disabled.headers["location"]
    assert resets(runtime) == []
    bad = await web.submit("/password/forgot", "/password/forgot", {"email": "nonsense"})
    assert bad.status_code == 400


async def test_asks_are_quiet_for_five_minutes(
    runtime: Runtime, web: WebClient, clock: FrozenClock
) -> None:
    ann = make_person(runtime, "Ann", "ann@example.com")
    for _ in range(3):
        await web.submit("/password/forgot", "/password/forgot", {"email": "ann@example.com"})
    assert resets(runtime) == [ann]
    clock.advance(301)
    await web.submit("/password/forgot", "/password/forgot", {"email": "ann@example.com"})
    assert resets(runtime) == [ann, ann]


async def test_a_link_ends_after_an_hour_or_when_a_password_is_set(
    runtime: Runtime, web: WebClient, clock: FrozenClock
) -> None:
    ann = make_person(runtime, "Ann", "ann@example.com")

    def link() -> str:
        with system_work(runtime) as work:
            user = work.session.get(User, ann)
            assert user is not None
            return f"/password/reset/{PasswordResets(work).link_token(user, work.now)}"

    expiring = link()
    clock.advance(3601)
    assert (await web.get(expiring)).status_code == 404
    replaced = link()
    assert (await web.get(replaced)).status_code == 200
    page = "/account/security"
    assert (await web.sign_in("ann@example.com")).status_code == 303
    changed = await web.submit(
        page,
        page,
        {
            "action": "password",
            "current_password": PASSWORD,
            "new_password": NEW,
            "new_password_again": NEW,
        },
    )
    assert changed.status_code == 303
    assert (await web.get(replaced)).status_code == 404  # a password was set since
    forged = replaced[:-4] + "abcd"
    assert (await web.get(forged)).status_code == 404
