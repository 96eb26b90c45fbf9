"""Pages that could be made to say or do what their person did not mean (issue: what
people trip over): text put in a link, forms repeated by a reload, links built from the
Host header."""

from __future__ import annotations

import re

import pytest

from ledgerdesk.runtime import Runtime
from tests.support import FrozenClock
from tests.web.conftest import PASSWORD, WebClient, make_person
from tests.web.test_signin import _new_user

pytestmark = pytest.mark.anyio

EVIL = "Your account is locked. Call +1 555 0100 now"


async def test_a_link_cannot_make_a_page_say_anything(runtime: Runtime, web: WebClient) -> None:
    make_person(runtime, "Ann", "ann@example.com")
    for query in (f"?flash={EVIL}", f"?note={EVIL}", "?note=nonsense"):
        page = await web.get(f"/signin{query}")
        assert EVIL not in page.text
        assert 'class="flash"' not in page.text
    signed = await web.http.post(
        f"/signin?next=/account/%3Fflash%3D{EVIL.replace(' ', '%20')}",
        data={"csrf": await web.token("/signin"), "email": "ann@example.com", "password": PASSWORD},
    )
    landed = await web.get(signed.headers["location"])
    assert EVIL not in landed.text
    # The server's own words still show.
    assert "You are signed out." in (await web.get("/signin?note=signed-out")).text


async def test_a_notice_is_shown_once_and_only_to_its_own_session(
    runtime: Runtime, web: WebClient, other_web: WebClient
) -> None:
    make_person(runtime, "Ann", "ann@example.com")
    await web.sign_in("ann@example.com")
    made = await web.submit("/account/keys", "/account/keys", {"note": "backup box"})
    location = made.headers["location"]
    make_person(runtime, "Bob", "bob@example.com")
    await other_web.sign_in("bob@example.com")
    stolen = await other_web.get(location.replace("/account/keys", "/account/keys"))
    assert 'id="new-key"' not in stolen.text  # another session's notice is nothing
    shown = await web.get(location)
    assert 'id="new-key"' in shown.text
    assert 'id="new-key"' not in (await web.get(location)).text


async def test_a_notice_not_shown_in_time_expires(
    runtime: Runtime, clock: FrozenClock, web: WebClient
) -> None:
    make_person(runtime, "Ann", "ann@example.com")
    await web.sign_in("ann@example.com")
    made = await web.submit("/account/keys", "/account/keys", {"note": "backup box"})
    clock.advance(601)
    assert 'id="new-key"' not in (await web.get(made.headers["location"])).text


async def test_password_links_come_from_the_public_url_never_the_host_header(
    runtime: Runtime, web: WebClient
) -> None:
    make_person(runtime, "Sam", "sam@example.com", staff=True)
    await web.sign_in("sam@example.com")
    customer = _new_user(runtime, "ann@example.com")
    page = f"/console/customers/{customer}"
    token = await web.token(page)
    made = await web.http.post(
        f"{page}/access",
        data={"csrf": token, "action": "invite"},
        headers={"Host": "evil.example"},
    )
    shown = await web.follow(made)
    link = re.search(r'<code id="link">([^<]+)</code>', shown.text)
    assert link
    assert link.group(1).startswith(f"{runtime.settings.public_url}/password/")
    assert "evil.example" not in shown.text
