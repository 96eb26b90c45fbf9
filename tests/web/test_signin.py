"""Signing in: passwords through one-time links, sessions, throttling, CSRF, TOTP."""

from __future__ import annotations

import re

import pyotp
import pytest
from sqlalchemy import func, select

from ledgerdesk.accounts.people import PeopleService
from ledgerdesk.app import create_app
from ledgerdesk.config import Settings, parse_networks
from ledgerdesk.db.engine import unit_of_work
from ledgerdesk.db.models import AuditEvent, User, WebSession
from ledgerdesk.runtime import Runtime
from tests.conftest import make_client
from tests.factories import system_work
from tests.support import FrozenClock
from tests.web.conftest import PASSWORD, WebClient, csrf_of, make_person

pytestmark = pytest.mark.anyio


def _link(runtime: Runtime, user_id: int, purpose: str = "invite") -> str:
    with system_work(runtime) as work:
        secret = PeopleService.of(work).issue_link(
            user_id,
            "invite" if purpose == "invite" else "reset",
            now=runtime.clock.timestamp(),
        )
    return f"/password/{secret}"


def _new_user(runtime: Runtime, email: str, *, staff: bool = False) -> int:
    from ledgerdesk.accounts.service import AccountService

    with system_work(runtime) as work:
        return AccountService(work).create_user(name="Ann", email=email, staff=staff).id


async def test_an_invitation_sets_the_password_once_and_then_signs_in(
    runtime: Runtime, web: WebClient
) -> None:
    user_id = _new_user(runtime, "ann@example.com")
    link = _link(runtime, user_id)
    page = await web.get(link)
    assert page.status_code == 200
    assert "ann@example.com" in page.text
    done = await web.submit(
        link, link, {"password": "long enough pass", "password_again": "long enough pass"}
    )
    assert done.status_code == 303
    assert done.headers["location"].startswith("/signin")
    assert (await web.get(link)).status_code == 404  # used up
    signed = await web.sign_in("ANN@example.com ", "long enough pass")
    assert signed.status_code == 303
    assert signed.headers["location"] == "/account"
    home = await web.get("/account/")
    assert home.status_code == 200
    assert "Hello, <bdi>Ann</bdi>" in home.text


async def test_a_password_link_refuses_short_or_mismatched_passwords(
    runtime: Runtime, web: WebClient
) -> None:
    link = _link(runtime, _new_user(runtime, "ann@example.com"))
    short = await web.submit(link, link, {"password": "short", "password_again": "short"})
    assert short.status_code == 400
    assert "at least 10 characters" in short.text
    assert 'aria-invalid="true"' in short.text
    apart = await web.submit(
        link, link, {"password": "long enough pass", "password_again": "long enough pasS"}
    )
    assert apart.status_code == 400
    assert "does not match" in apart.text
    assert (await web.get(link)).status_code == 200  # still usable after refusals


async def test_an_expired_link_is_refused(
    runtime: Runtime, clock: FrozenClock, web: WebClient
) -> None:
    link = _link(runtime, _new_user(runtime, "ann@example.com"), "reset")
    clock.advance(2 * 3600 + 1)
    assert (await web.get(link)).status_code == 404


async def test_wrong_passwords_and_unknown_emails_get_the_same_answer(
    runtime: Runtime, web: WebClient
) -> None:
    make_person(runtime, "Ann", "ann@example.com")
    wrong = await web.sign_in("ann@example.com", "not the password")
    unknown = await web.sign_in("nobody@example.com", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong email or password." in wrong.text
    assert "Wrong email or password." in unknown.text
    with unit_of_work(runtime.sessions, write=False) as session:
        failures = session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "signin")
        )
    assert failures == 0  # failed sign-ins are batched ...
    runtime.flush_audit()
    with unit_of_work(runtime.sessions, write=False) as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.action == "signin")).all()
    assert [(e.outcome, e.client_address) for e in events] == [("error", "203.0.113.7")] * 2


async def test_wrong_passwords_slow_their_address_down_but_never_lock_the_owner_out(
    runtime: Runtime, web: WebClient, other_web: WebClient
) -> None:
    make_person(runtime, "Ann", "ann@example.com")
    for _ in range(runtime.settings.signin_failure_limit):
        assert (await web.sign_in("ann@example.com", "guess guess guess")).status_code == 401
    # That address must now wait before its next try at this account, right or wrong ...
    blocked = await web.sign_in("ann@example.com")
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) >= 1
    assert "Too many tries from your address" in blocked.text
    # ... while the owner, from anywhere else, signs in as usual.
    assert (await other_web.sign_in("ann@example.com")).status_code == 303


async def test_sign_in_is_throttled_per_address(runtime: Runtime, web: WebClient) -> None:
    make_person(runtime, "Ann", "ann@example.com")
    limit = runtime.settings.signin_failure_limit * 4
    for number in range(limit):
        await web.sign_in(f"nobody{number}@example.com", "guess guess guess")
    assert (await web.sign_in("ann@example.com")).status_code == 429


async def test_a_form_without_its_csrf_token_is_refused(runtime: Runtime, web: WebClient) -> None:
    make_person(runtime, "Ann", "ann@example.com")
    await web.get("/signin")  # the anonymous token cookie is set ...
    bare = await web.http.post("/signin", data={"email": "ann@example.com", "password": PASSWORD})
    assert bare.status_code == 403  # ... but the form does not repeat it
    assert "ledgerdesk_session" not in bare.cookies


async def test_session_cookie_is_httponly_and_lax_and_secure_behind_a_tls_proxy(
    runtime: Runtime, web: WebClient
) -> None:
    make_person(runtime, "Ann", "ann@example.com")
    signed = await web.sign_in("ann@example.com")
    cookie = signed.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Secure" not in cookie
    assert signed.headers["content-security-policy"].startswith("default-src 'self'")


async def test_signing_out_ends_the_session_for_good(runtime: Runtime, web: WebClient) -> None:
    make_person(runtime, "Ann", "ann@example.com")
    await web.sign_in("ann@example.com")
    stolen = web.http.cookies["ledgerdesk_session"]
    out = await web.submit("/account/", "/signout", {})
    assert out.status_code == 303
    web.http.cookies.set("ledgerdesk_session", stolen)  # replaying the old cookie
    again = await web.get("/account/")
    assert again.status_code == 303
    assert again.headers["location"].startswith("/signin")


async def test_disabling_a_user_ends_their_sessions(runtime: Runtime, web: WebClient) -> None:
    user_id = make_person(runtime, "Ann", "ann@example.com")
    await web.sign_in("ann@example.com")
    assert (await web.get("/account/")).status_code == 200
    with system_work(runtime) as work:
        PeopleService.of(work).set_disabled(user_id, True, now=runtime.clock.timestamp())
    assert (await web.get("/account/")).status_code == 303
    assert (await web.sign_in("ann@example.com")).status_code == 401


async def test_changing_the_password_ends_every_session(
    runtime: Runtime, web: WebClient, other_web: WebClient
) -> None:
    make_person(runtime, "Ann", "ann@example.com")
    await web.sign_in("ann@example.com")
    await other_web.sign_in("ann@example.com")
    changed = await web.submit(
        "/account/security",
        "/account/security",
        {
            "action": "password",
            "current_password": PASSWORD,
            "new_password": "a new long password",
            "new_password_again": "a new long password",
        },
    )
    assert changed.status_code == 303
    assert (await other_web.get("/account/")).status_code == 303
    assert (await web.sign_in("ann@example.com")).status_code == 401
    assert (await web.sign_in("ann@example.com", "a new long password")).status_code == 303


async def test_a_wrong_current_password_changes_nothing(runtime: Runtime, web: WebClient) -> None:
    make_person(runtime, "Ann", "ann@example.com")
    await web.sign_in("ann@example.com")
    refused = await web.submit(
        "/account/security",
        "/account/security",
        {
            "action": "password",
            "current_password": "not it at all",
            "new_password": "a new long password",
            "new_password_again": "a new long password",
        },
    )
    assert refused.status_code == 400
    assert "is not your current password" in refused.text
    assert (await web.get("/account/")).status_code == 200


async def test_idle_sessions_end(runtime: Runtime, clock: FrozenClock, web: WebClient) -> None:
    make_person(runtime, "Ann", "ann@example.com")
    await web.sign_in("ann@example.com")
    clock.advance(11 * 3600)
    assert (await web.get("/account/")).status_code == 200  # and the visit is recorded
    clock.advance(11 * 3600)
    assert (await web.get("/account/")).status_code == 200
    clock.advance(12 * 3600 + 1)
    assert (await web.get("/account/")).status_code == 303


async def test_people_only_reach_their_own_side(runtime: Runtime, web: WebClient) -> None:
    make_person(runtime, "Ann", "ann@example.com")
    make_person(runtime, "Sam", "sam@example.com", staff=True)
    await web.sign_in("ann@example.com")
    assert (await web.get("/console/")).headers["location"] == "/account"
    staff = WebClient(web.http)
    await staff.submit("/account/", "/signout", {})
    signed = await staff.sign_in("sam@example.com")
    assert signed.headers["location"] == "/console"
    assert (await staff.get("/account/")).headers["location"] == "/console"


async def test_unsigned_visitors_go_to_sign_in_and_come_back(
    runtime: Runtime, web: WebClient
) -> None:
    make_person(runtime, "Sam", "sam@example.com", staff=True)
    first = await web.get("/console/tickets?status=all")
    assert first.status_code == 303
    assert first.headers["location"] == "/signin?next=%2Fconsole%2Ftickets%3Fstatus%3Dall"
    token = await web.token(first.headers["location"])
    signed = await web.http.post(
        first.headers["location"],
        data={"csrf": token, "email": "sam@example.com", "password": PASSWORD},
    )
    assert signed.headers["location"] == "/console/tickets?status=all"


async def test_sign_in_never_redirects_off_site(runtime: Runtime, web: WebClient) -> None:
    make_person(runtime, "Sam", "sam@example.com", staff=True)
    token = await web.token("/signin")
    signed = await web.http.post(
        "/signin?next=//evil.example/console",
        data={"csrf": token, "email": "sam@example.com", "password": PASSWORD},
    )
    assert signed.headers["location"] == "/console"


async def test_staff_second_factor_with_totp_and_recovery_codes(
    runtime: Runtime, clock: FrozenClock, web: WebClient, other_web: WebClient
) -> None:
    make_person(runtime, "Sam", "sam@example.com", staff=True)
    await web.sign_in("sam@example.com")
    page = await web.get("/console/security")
    assert "data:image/svg+xml" in page.text  # the QR code
    secret = re.search(r'name="secret" value="([A-Z2-7]{32})"', page.text)
    assert secret
    totp = pyotp.TOTP(secret.group(1))
    wrong = await web.http.post(
        "/console/security",
        data={
            "csrf": csrf_of(page.text),
            "action": "totp-enable",
            "secret": secret.group(1),
            "code": "000000" if totp.at(clock.now) != "000000" else "111111",
        },
    )
    assert wrong.status_code == 400
    assert "does not match" in wrong.text
    confirm = {
        "csrf": csrf_of(page.text),
        "action": "totp-enable",
        "secret": secret.group(1),
        "code": totp.at(clock.now),
    }
    enabled = await web.follow(await web.http.post("/console/security", data=confirm))
    codes = re.findall(r"<li><code>([0-9a-f]{5}-[0-9a-f]{5})</code></li>", enabled.text)
    assert len(codes) == 10
    # Sent again (a reload of the old page's form): refused, the codes stay the ones shown.
    again = await web.http.post("/console/security", data=confirm)
    assert again.status_code == 400
    assert "already on" in again.text
    assert not re.findall(r"<li><code>([0-9a-f]{5}-[0-9a-f]{5})</code></li>", again.text)

    # A new sign-in now needs the second factor before any page.
    signed = await other_web.sign_in("sam@example.com")
    assert signed.headers["location"] == "/signin/verify"
    assert (await other_web.get("/console/")).status_code == 303
    replay = await other_web.submit(
        "/signin/verify", "/signin/verify", {"code": totp.at(clock.now)}
    )
    assert replay.status_code == 401  # the code that enabled TOTP is spent
    clock.advance(30)
    good = await other_web.submit("/signin/verify", "/signin/verify", {"code": totp.at(clock.now)})
    assert good.status_code == 303
    assert good.headers["location"] == "/console"
    assert (await other_web.get("/console/")).status_code == 200

    # A recovery code works once.
    third = WebClient(other_web.http)
    await third.submit("/console/", "/signout", {})
    await third.sign_in("sam@example.com")
    used = await third.submit("/signin/verify", "/signin/verify", {"code": codes[0].upper()})
    assert used.status_code == 303
    await third.submit("/console/", "/signout", {})
    await third.sign_in("sam@example.com")
    again = await third.submit("/signin/verify", "/signin/verify", {"code": codes[0]})
    assert again.status_code == 401
    with unit_of_work(runtime.sessions, write=False) as session:
        user = session.scalars(select(User).where(User.email == "sam@example.com")).one()
        assert user.recovery_codes is not None
        assert len(user.recovery_codes) == 9


async def test_wrong_second_factor_codes_are_throttled_per_account_and_address(
    runtime: Runtime, clock: FrozenClock, web: WebClient, other_web: WebClient
) -> None:
    user_id = make_person(runtime, "Sam", "sam@example.com", staff=True)
    with system_work(runtime) as work:
        secret = pyotp.random_base32()
        PeopleService.of(work).confirm_totp(
            user_id, secret, pyotp.TOTP(secret).at(clock.now), now=clock.now
        )
    await web.sign_in("sam@example.com")
    for _ in range(runtime.settings.signin_failure_limit):
        await web.submit("/signin/verify", "/signin/verify", {"code": "12345x"})
    right = {"code": pyotp.TOTP(secret).at(clock.now + 30)}
    blocked = await web.submit("/signin/verify", "/signin/verify", right)
    assert blocked.status_code == 429
    # Signing in again gives no fresh budget: the count is the account's and address's.
    await web.sign_in("sam@example.com")
    again = await web.submit("/signin/verify", "/signin/verify", right)
    assert again.status_code == 429
    with unit_of_work(runtime.sessions, write=False) as session:
        assert not any(session.scalars(select(WebSession.verified)).all())
    # The same person from another address is not held up.
    await other_web.sign_in("sam@example.com")
    assert (await other_web.submit("/signin/verify", "/signin/verify", right)).status_code == 303


def test_passwords_are_hashed_with_argon2id_at_rfc_9106_strength(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from argon2 import Type

    from ledgerdesk.accounts import people

    monkeypatch.undo()  # the hasher the server runs with, not the tests' cheap one
    hasher = people.PASSWORDS.hasher
    assert hasher.type is Type.ID
    assert (hasher.memory_cost, hasher.time_cost, hasher.parallelism) == (65536, 3, 4)


async def test_a_weaker_stored_hash_is_upgraded_at_sign_in(
    runtime: Runtime, web: WebClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from argon2 import PasswordHasher

    from ledgerdesk.accounts import people

    monkeypatch.setattr(
        people, "PASSWORDS", people.Passwords(PasswordHasher(time_cost=1, memory_cost=512))
    )
    make_person(runtime, "Ann", "ann@example.com")
    stronger = people.Passwords(PasswordHasher(time_cost=2, memory_cost=2048))
    monkeypatch.setattr(people, "PASSWORDS", stronger)
    assert (await web.sign_in("ann@example.com")).status_code == 303
    with unit_of_work(runtime.sessions, write=False) as session:
        stored = session.scalars(select(User.password_hash)).one()
    assert stored is not None
    assert stored.startswith("$argon2id$v=19$m=2048,t=2,")


async def test_the_session_cookie_is_secure_behind_a_trusted_tls_proxy(
    settings: Settings, clock: FrozenClock
) -> None:
    proxies = parse_networks("10.0.0.0/8", "proxies")
    app = create_app(settings.with_overrides(trusted_proxies=proxies), clock=clock)
    try:
        make_person(app.state.runtime, "Ann", "ann@example.com")

        async def sign_in_from(address: str) -> str:
            """Sign in as a browser behind the proxy would: the proxy speaks plain HTTP
            to us and says the browser used TLS. (Secure cookies are sent back by hand:
            the test client itself speaks plain HTTP.)"""
            http = make_client(app, address)
            http.headers["x-forwarded-proto"] = "https"
            page = await http.get("/signin")
            anonymous = page.headers["set-cookie"]
            assert anonymous.startswith("ledgerdesk_csrf=")
            signed = await http.post(
                "/signin",
                data={"csrf": csrf_of(page.text), "email": "ann@example.com", "password": PASSWORD},
                headers={"cookie": anonymous.split(";", 1)[0]},
            )
            assert signed.status_code == 303
            return signed.headers["set-cookie"]

        assert "Secure" in await sign_in_from("10.1.2.3")
        # The same header from an address that is not a trusted proxy proves nothing.
        assert "Secure" not in await sign_in_from("203.0.113.9")
    finally:
        app.state.runtime.engine.dispose()


async def test_a_customer_turns_on_the_second_factor_in_the_portal(
    runtime: Runtime, clock: FrozenClock, web: WebClient, other_web: WebClient
) -> None:
    make_person(runtime, "Ann", "ann@example.com")
    await web.sign_in("ann@example.com")
    page = await web.get("/account/security")
    secret = re.search(r'name="secret" value="([A-Z2-7]{32})"', page.text)
    assert secret
    totp = pyotp.TOTP(secret.group(1))
    enabled = await web.http.post(
        "/account/security",
        data={
            "csrf": csrf_of(page.text),
            "action": "totp-enable",
            "secret": secret.group(1),
            "code": totp.at(clock.now),
        },
    )
    assert enabled.status_code == 303
    assert enabled.headers["location"].startswith("/account/security")
    codes = re.findall(
        r"<li><code>([0-9a-f]{5}-[0-9a-f]{5})</code></li>", (await web.follow(enabled)).text
    )
    assert len(codes) == 10
    assert "Mail me about new tickets" not in page.text  # staff's choice only
    signed = await other_web.sign_in("ann@example.com")
    assert signed.headers["location"] == "/signin/verify"
    assert (await other_web.get("/account/")).status_code == 303
    clock.advance(30)
    good = await other_web.submit("/signin/verify", "/signin/verify", {"code": totp.at(clock.now)})
    assert good.headers["location"] == "/account"
