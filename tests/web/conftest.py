"""Fixtures for the web console and portal: people with passwords, and a browser-like
client that keeps cookies and sends each form with its CSRF token."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher

from ledgerdesk.accounts import people
from ledgerdesk.accounts.people import PeopleService
from ledgerdesk.accounts.service import AccountService
from ledgerdesk.app import LedgerdeskApp
from ledgerdesk.config import Settings
from ledgerdesk.runtime import Runtime
from tests.conftest import CLIENT_ADDRESS, make_client
from tests.factories import system_work
from tests.servers import Sink, smtp_sink
from tests.support import FrozenClock

PASSWORD = "correct horse battery"
# Hashing with production parameters costs 0.2 s here; the web tests sign in hundreds
# of times. They hash cheaply; test_signin checks the production parameters.
CHEAP = people.Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def make_person(
    runtime: Runtime,
    name: str,
    email: str,
    *,
    staff: bool = False,
    admin: bool = False,
    password: str = PASSWORD,
) -> int:
    """A user who can sign in: created, invited, and the invitation taken."""
    with system_work(runtime) as work:
        now = work.now
        user = AccountService(work).create_user(name=name, email=email, staff=staff, admin=admin)
        people = PeopleService.of(work)
        secret = people.issue_link(user.id, "invite", now=now)
        people.set_password_with_link(secret, password, now=now)
        return user.id


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


class WebClient:
    """What a browser does: cookies kept, forms sent with the token of the page."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.http = client

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.http.get(path, **kwargs)

    async def token(self, page: str) -> str:
        response = await self.http.get(page)
        assert response.status_code == 200, response.text
        return csrf_of(response.text)

    async def submit(
        self,
        page: str,
        action: str,
        data: Mapping[str, str | list[str]],
        files: list[tuple[str, tuple[str, bytes, str]]] | None = None,
    ) -> httpx.Response:
        """Open ``page``, then post ``data`` to ``action`` with the page's CSRF token."""
        token = await self.token(page)
        return await self.http.post(action, data={"csrf": token, **data}, files=files)

    async def follow(self, response: httpx.Response) -> httpx.Response:
        """The page a form's redirect leads to (where what it made is shown, once)."""
        assert response.status_code == 303, response.text
        return await self.http.get(response.headers["location"])

    async def sign_in(self, email: str, password: str = PASSWORD) -> httpx.Response:
        return await self.submit("/signin", "/signin", {"email": email, "password": password})


@pytest.fixture(autouse=True)
def cheap_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(people, "PASSWORDS", CHEAP)


@pytest.fixture
def web(app: LedgerdeskApp) -> WebClient:
    return WebClient(make_client(app, CLIENT_ADDRESS))


@pytest.fixture
def other_web(app: LedgerdeskApp) -> WebClient:
    """A second browser, from another address."""
    return WebClient(make_client(app, "198.51.100.20"))


@pytest.fixture
async def staff(runtime: Runtime, web: WebClient) -> WebClient:
    """Sam, staff, signed in (in ``web``)."""
    make_person(runtime, "Sam Support", "sam@example.com", staff=True)
    signed = await web.sign_in("sam@example.com")
    assert signed.headers["location"] == "/console"
    return web


@pytest.fixture
async def ann(runtime: Runtime, other_web: WebClient) -> tuple[int, WebClient]:
    """Ann, a customer, signed in in a second browser (``other_web``)."""
    user_id = make_person(runtime, "Ann", "ann@example.com")
    assert (await other_web.sign_in("ann@example.com")).status_code == 303
    return user_id, other_web


# -- pages whose mail goes out: an SMTP server, and the relay run by the test ------------


@pytest.fixture
def smtp() -> Iterator[Sink]:
    with smtp_sink() as found:
        yield found


def mailing_settings(database_url: str, tmp_path: Path, smtp: Sink) -> Settings:
    """Settings with mail set up, sent to ``smtp``; the test runs the relay. A module
    takes them as its ``settings``: ``settings = pytest.fixture(mailing_settings,
    name="settings")``."""
    return Settings(
        database_url=database_url,
        data_dir=tmp_path / "data",
        mail_from="Support <support@hosting.example>",
        smtp_url=f"smtp://127.0.0.1:{smtp.port}",
        public_url="https://desk.hosting.example",
        mail_relay=False,
    )


def clock_now() -> FrozenClock:
    """A clock at the real now (the relay mails nothing about events older than a
    day): ``clock = pytest.fixture(clock_now, name="clock")``."""
    return FrozenClock(int(time.time()))
