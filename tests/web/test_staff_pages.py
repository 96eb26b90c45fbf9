"""The console's Staff and Audit pages: admins invite a colleague (the link shown once),
disable and enable one, give and take the admin role; other staff see who works here
and nothing more; the last admin keeps the role; the audit trail, for admins only."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from ledgerdesk.db.models import User
from ledgerdesk.runtime import Runtime
from tests.conftest import make_client
from tests.factories import make_ticket
from tests.support import FrozenClock
from tests.web.conftest import WebClient, make_person

pytestmark = pytest.mark.anyio


def user(runtime: Runtime, email: str) -> User:
    with runtime.transaction(write=False) as (session, _):
        found = session.scalars(select(User).where(User.email == email)).one()
        session.expunge(found)
        return found


@pytest.fixture
async def admin(runtime: Runtime, web: WebClient) -> WebClient:
    make_person(runtime, "Ada Admin", "ada@example.com", staff=True, admin=True)
    assert (await web.sign_in("ada@example.com")).status_code == 303
    return web


async def test_an_admin_invites_a_colleague_who_signs_in_with_the_link(
    runtime: Runtime, admin: WebClient, app: object
) -> None:
    invited = await admin.submit(
        "/console/staff", "/console/staff", {"name": "Tess Tech", "email": "tess@example.com"}
    )
    page = await admin.follow(invited)
    link = re.search(r'<code id="staff-link">http://[^/]+(/password/[^<]+)</code>', page.text)
    assert link
    assert "Tess Tech" in page.text
    again = await admin.get("/console/staff")
    assert 'id="staff-link"' not in again.text  # shown once
    tess = user(runtime, "tess@example.com")
    assert (tess.is_staff, tess.is_admin, tess.password_hash) == (True, False, None)
    newcomer = WebClient(make_client(app, "198.51.100.40"))  # type: ignore[arg-type]
    fields = {"password": "a long new password", "password_again": "a long new password"}
    assert (await newcomer.submit(link.group(1), link.group(1), fields)).status_code == 303
    assert (
        await newcomer.sign_in("tess@example.com", password=fields["password"])
    ).status_code == 303
    # Tess is no admin: she sees who works here, not the forms; posting them is refused.
    seen = await newcomer.get("/console/staff")
    assert "Ada Admin" in seen.text
    assert "Invite a colleague" not in seen.text
    ada = user(runtime, "ada@example.com")
    refused = await newcomer.submit(
        "/console/staff", f"/console/staff/{ada.id}/access", {"action": "disable"}
    )
    assert refused.status_code == 403
    assert user(runtime, "ada@example.com").disabled_at is None
    assert (await newcomer.get("/console/audit")).status_code == 403


async def test_admins_disable_enable_and_hand_over_the_role(
    runtime: Runtime, admin: WebClient
) -> None:
    ada = user(runtime, "ada@example.com")
    tess_id = make_person(runtime, "Tess Tech", "tess@example.com", staff=True)
    action = f"/console/staff/{ada.id}/access"
    last = await admin.submit("/console/staff", action, {"action": "not-admin"})
    assert last.status_code == 400
    assert "last enabled admin" in last.text
    itself = await admin.submit("/console/staff", action, {"action": "disable"})
    assert itself.status_code == 400
    tess_action = f"/console/staff/{tess_id}/access"
    for step in ("disable", "enable", "admin"):
        done = await admin.submit("/console/staff", tess_action, {"action": step})
        assert done.status_code == 303, step
    assert user(runtime, "tess@example.com").is_admin
    handed = await admin.submit("/console/staff", action, {"action": "not-admin"})
    assert handed.status_code == 303
    assert not user(runtime, "ada@example.com").is_admin
    customer = make_person(runtime, "Ann", "ann@example.com")
    assert (
        await admin.submit("/console/staff", f"/console/staff/{customer}/access", {"action": "x"})
    ).status_code in (403, 404)


async def test_the_audit_trail_shows_changes_and_failures_newest_first(
    runtime: Runtime, admin: WebClient, app: object, clock: FrozenClock
) -> None:
    ann = make_person(runtime, "Ann", "ann@example.com")
    make_ticket(runtime, ann, title="Disk full")
    clock.advance(5)
    stranger = WebClient(make_client(app, "203.0.113.9"))  # type: ignore[arg-type]
    await stranger.sign_in("ann@example.com", password="wrong password!")
    page = await admin.get("/console/audit")
    assert page.status_code == 200
    assert "<code>ticket.created</code>" in page.text
    assert "203.0.113.9" in page.text  # the failed sign-in, with its address
    assert page.text.index("203.0.113.9") < page.text.index("<code>ticket.created</code>")
    mine = await admin.get(f"/console/audit?user={ann}")
    assert "<code>ticket.created</code>" in mine.text
    assert "<code>staff.created</code>" not in mine.text
    wrong = await admin.get("/console/audit?since=yesterday")
    assert wrong.status_code == 400
