"""A customer's other mail addresses: added in the portal and confirmed by the link
mailed to the address (through the real relay and an SMTP server), added by staff
confirmed at once, removed; only a confirmed one makes its mail the customer's; every
refusal with its reason."""

from __future__ import annotations

import asyncio
import re
from email.message import EmailMessage

import anyio
import pytest
from sqlalchemy import select

from ledgerdesk.accounts.service import AccountService
from ledgerdesk.attachments.incoming import IncomingWriter
from ledgerdesk.db.models import MailAddress, User
from ledgerdesk.errors import InvalidParameters
from ledgerdesk.mail import receiving
from ledgerdesk.mail.addresses import MAX_ADDRESSES, MailAddresses
from ledgerdesk.mail.relay import MailRelay
from ledgerdesk.runtime import Runtime
from tests.factories import system_work
from tests.servers import Sink
from tests.support import FrozenClock
from tests.web.conftest import WebClient, clock_now, mailing_settings, make_person

pytestmark = pytest.mark.anyio

SUPPORT = "support@hosting.example"
COLLEAGUE = "bob@ann-corp.example"
_LINK = re.compile(r"https://desk\.hosting\.example(/mail-address/[0-9a-z.]+)")


settings = pytest.fixture(mailing_settings, name="settings")


def sender_of(runtime: Runtime, sender: str, message_id: str) -> tuple[str, int | None]:
    """Where a new mail from ``sender`` goes: its state and the customer it is from."""
    raw = f"From: {sender}\nTo: {SUPPORT}\nSubject: Hi\nMessage-ID: <{message_id}>\n\nHi\n"
    writer = IncomingWriter(runtime.incoming_dir, 10_000_000, "mail")
    writer.write(raw.encode())
    taken = receiving.take(runtime, writer.finish("m.eml", "message/rfc822"), via="pipe")
    from ledgerdesk.db.models import MailMessage

    with runtime.transaction(write=False) as (session, _):
        row = session.get(MailMessage, taken.mail_id)
        assert row is not None
        return taken.state, row.customer_id


def confirmations(smtp: Sink) -> list[EmailMessage]:
    return [
        m for m in smtp.to(COLLEAGUE) if m["Subject"] == "Confirm your address for support mail"
    ]


clock = pytest.fixture(clock_now, name="clock")


async def test_a_customer_adds_an_address_and_confirms_it_by_the_mailed_link(
    runtime: Runtime, ann: tuple[int, WebClient], smtp: Sink, web: WebClient
) -> None:
    ann_id, customer = ann
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(MailRelay(runtime).run)
        await asyncio.sleep(0.1)  # at the log's end
        added = await customer.submit(
            "/account/addresses", "/account/addresses", {"action": "add", "address": COLLEAGUE}
        )
        page = await customer.follow(added)
        assert "open the link mailed to it" in page.text
        assert "waiting for confirmation" in page.text
        assert sender_of(runtime, COLLEAGUE, "m1@x")[0] == "refused"  # not theirs yet
        async with asyncio.timeout(10):
            while not confirmations(smtp):
                await asyncio.sleep(0.02)
        tasks.cancel_scope.cancel()
    [message] = confirmations(smtp)
    assert message["Auto-Submitted"] == "auto-generated"
    body = message.get_body(("plain",))
    assert body is not None
    found = _LINK.search(body.get_content())
    assert found
    link = found.group(1)
    # Opening the link (a mail scanner does) confirms nothing; its button does.
    shown = await web.get(link)
    assert shown.status_code == 200
    assert f"Confirm {COLLEAGUE}" in shown.text
    assert sender_of(runtime, COLLEAGUE, "m2@x")[0] == "refused"
    confirmed = await web.submit(link, link, {})
    assert confirmed.status_code == 303
    assert "note=address-confirmed" in confirmed.headers["location"]
    assert sender_of(runtime, COLLEAGUE, "m3@x") == ("opened", ann_id)
    again = await web.get(link)
    assert again.status_code == 409
    assert "confirmed already" in again.text
    page = await customer.get("/account/addresses")
    assert "confirmed" in page.text
    forged = link[:-3] + ("aaa" if not link.endswith("aaa") else "bbb")
    assert (await web.get(forged)).status_code == 404


async def test_a_link_runs_out_and_adding_again_replaces_it(
    runtime: Runtime, ann: tuple[int, WebClient], clock: FrozenClock, web: WebClient
) -> None:
    from ledgerdesk.mail.key import mail_key
    from ledgerdesk.mail.tags import Tags

    ann_id, _ = ann

    def token() -> str:
        with system_work(runtime) as work:
            added = MailAddresses(work).add(ann_id, COLLEAGUE, confirmed=False)
            tags = Tags(mail_key(work.session), "")
            return tags.confirm_token(ann_id, added.added_at, added.address)

    first = token()
    clock.advance(1)
    second = token()  # added again: a new link, the first one is dead
    assert (await web.get(f"/mail-address/{first}")).status_code == 404
    assert (await web.get(f"/mail-address/{second}")).status_code == 200
    clock.advance(8 * 86_400)
    ran_out = await web.get(f"/mail-address/{second}")
    assert ran_out.status_code == 409
    assert "ran out after 7 days" in ran_out.text


async def test_what_cannot_be_added_is_refused_with_why(
    runtime: Runtime, ann: tuple[int, WebClient]
) -> None:
    ann_id, customer = ann
    other = make_person(runtime, "Cleo", "cleo@example.com")
    with system_work(runtime) as work:
        MailAddresses(work).add(other, "shared@example.com", confirmed=True)
    for address, why in (
        ("ann@example.com", "is the account&#39;s own address already"),
        ("CLEO@example.com", "is already the address of another user"),
        ("shared@example.com", "is already the address of another user"),
        ("not an address", "is not an email address"),
    ):
        refused = await customer.submit(
            "/account/addresses", "/account/addresses", {"action": "add", "address": address}
        )
        assert refused.status_code == 400, address
        assert why in refused.text, address
    with system_work(runtime) as work:
        addresses = MailAddresses(work)
        for n in range(MAX_ADDRESSES):
            addresses.add(ann_id, f"a{n}@ann-corp.example", confirmed=False)
    full = await customer.submit(
        "/account/addresses", "/account/addresses", {"action": "add", "address": COLLEAGUE}
    )
    assert full.status_code == 400
    assert f"{MAX_ADDRESSES} added addresses at most" in full.text
    # Nor can a customer take another's added address as their account's email.
    with system_work(runtime) as work, pytest.raises(InvalidParameters):
        AccountService(work).update_user(ann_id, email="shared@example.com")


async def test_staff_add_an_address_confirmed_and_remove_it(
    runtime: Runtime, staff: WebClient, ann: tuple[int, WebClient]
) -> None:
    ann_id, customer = ann
    page = f"/console/customers/{ann_id}"
    action = f"{page}/addresses"
    added = await staff.submit(page, action, {"action": "add", "address": COLLEAGUE})
    assert "bob@ann-corp.example added." in (await staff.follow(added)).text
    assert sender_of(runtime, COLLEAGUE, "s1@x") == ("opened", ann_id)
    with runtime.transaction(write=True) as (session, _):  # our mail to it bounced meanwhile
        row = session.get(MailAddress, COLLEAGUE)
        assert row is not None
        row.failing_since, row.failing_reason = 1_796_000_000, "bounced"
    shown = await customer.get("/account/addresses")
    assert "our mail to it fails" in shown.text
    removed = await customer.submit(
        "/account/addresses", "/account/addresses", {"action": "remove", "address": COLLEAGUE}
    )
    assert removed.status_code == 303
    assert sender_of(runtime, COLLEAGUE, "s2@x")[0] == "refused"
    with runtime.transaction(write=False) as (session, _):
        row = session.get(MailAddress, COLLEAGUE)
        assert row is not None  # what is known of its failing stays
        assert (row.user_id, row.failing_since) == (None, 1_796_000_000)
    gone = await staff.submit(page, action, {"action": "remove", "address": COLLEAGUE})
    assert gone.status_code == 400
    assert "The customer has no such address." in gone.text
    with runtime.transaction(write=False) as (session, _):
        staff_id = session.scalar(select(User.id).where(User.is_staff.is_(True)))
    assert staff_id is not None
    refused = await staff.submit(
        page, f"/console/customers/{staff_id}/addresses", {"action": "add", "address": COLLEAGUE}
    )
    assert refused.status_code == 404
