"""Staff choose which mail they get in the console's Security page; the dashboard says
when mail cannot be fetched."""

from __future__ import annotations

import pytest

from ledgerdesk.db.models import User
from ledgerdesk.runtime import Runtime
from tests.web.conftest import WebClient

pytestmark = pytest.mark.anyio


async def test_staff_choose_in_the_console(runtime: Runtime, staff: WebClient) -> None:
    page = await staff.get("/console/security")
    assert 'id="f-mail-all" name="mail_notify" value="all" checked' in page.text
    saved = await staff.submit(
        "/console/security", "/console/security", {"action": "mail-notify", "mail_notify": "none"}
    )
    assert "Your mail settings are saved." in (await staff.follow(saved)).text
    with runtime.transaction(write=False) as (session, _):
        chosen = {u.mail_notify for u in session.query(User).filter(User.is_staff.is_(True))}
    assert chosen == {"none"}
    refused = await staff.submit(
        "/console/security", "/console/security", {"action": "mail-notify", "mail_notify": "x"}
    )
    assert refused.status_code == 400
    assert "must be one of all, own, none" in refused.text


async def test_the_dashboard_says_when_a_mailbox_cannot_be_fetched(
    runtime: Runtime, staff: WebClient
) -> None:
    from ledgerdesk.db.models import MailFetcher

    with runtime.transaction(write=True) as (session, _):
        session.add(
            MailFetcher(
                name="imaps://support@imap.example.com/INBOX",
                failing_since=1_796_000_000,
                last_error="FetchFailed: login: NO [AUTHENTICATIONFAILED]",
            )
        )
    page = await staff.get("/console/")
    assert "Mail cannot be fetched" in page.text
    assert "imaps://support@imap.example.com/INBOX" in page.text
    assert "AUTHENTICATIONFAILED" in page.text
