"""Sign-in under attack (issue: what people trip over): concurrent guesses, hashing that
held transactions and memory, one-time codes and links used twice at once."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio
import pyotp
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from ledgerdesk.accounts import people
from ledgerdesk.accounts.people import PeopleService
from ledgerdesk.db.engine import unit_of_work
from ledgerdesk.db.models import User, WebSession
from ledgerdesk.errors import LedgerdeskError
from ledgerdesk.http.counters import Counters
from ledgerdesk.runtime import Runtime
from ledgerdesk.web.core import HASH_SLOTS
from ledgerdesk.web.throttle import Throttle, Throttled
from tests.factories import system_work
from tests.support import FrozenClock
from tests.web.conftest import PASSWORD, WebClient, make_person

pytestmark = pytest.mark.anyio


class WatchedHasher(PasswordHasher):
    """A cheap hasher that records how many verifications ran, how many at once, and
    how many database connections were checked out meanwhile."""

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.runtime = runtime
        self.lock = threading.Lock()
        self.running = 0
        self.most_at_once = 0
        self.verified = 0
        self.connections_during: list[int] = []

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        with self.lock:
            self.running += 1
            self.verified += 1
            self.most_at_once = max(self.most_at_once, self.running)
            self.connections_during.append(self.runtime.engine.pool.checkedout())
        try:
            time.sleep(0.02)
            return super().verify(hash, password)
        finally:
            with self.lock:
                self.running -= 1


@pytest.fixture
def watched(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> WatchedHasher:
    hasher = WatchedHasher(runtime)
    monkeypatch.setattr(people, "PASSWORDS", people.Passwords(hasher))
    return hasher


async def sign_in_many(web: WebClient, attempts: list[tuple[str, str]]) -> list[int]:
    token = await web.token("/signin")
    statuses: list[int] = []

    async def one(email: str, password: str) -> None:
        answer = await web.http.post(
            "/signin", data={"csrf": token, "email": email, "password": password}
        )
        statuses.append(answer.status_code)

    async with anyio.create_task_group() as tasks:
        for email, password in attempts:
            tasks.start_soon(one, email, password)
    return statuses


async def test_concurrent_guesses_cannot_pass_the_sign_in_limit(
    runtime: Runtime, web: WebClient, watched: WatchedHasher
) -> None:
    """Forty wrong passwords at once: only the allowance is tried (40 of 40 were)."""
    make_person(runtime, "Ann", "ann@example.com")
    limit = runtime.settings.signin_failure_limit
    statuses = await sign_in_many(
        web, [("ann@example.com", f"guess number {n}") for n in range(40)]
    )
    assert statuses.count(401) == limit
    assert statuses.count(429) == 40 - limit
    assert watched.verified == limit


async def test_passwords_are_hashed_outside_any_transaction_a_few_at_a_time(
    runtime: Runtime, web: WebClient, other_web: WebClient, watched: WatchedHasher
) -> None:
    """Each hash costs 64 MiB and 0.1 s: it held SQLite's write lock (or a PostgreSQL
    connection) and forty at once took 750 MB."""
    for n in range(12):
        make_person(runtime, f"Person {n}", f"p{n}@example.com")
    baseline = runtime.engine.pool.checkedout()
    # One at a time: no database connection is held while a password is verified.
    assert (await web.sign_in("p0@example.com", "wrong guess!")).status_code == 401
    assert (await other_web.sign_in("p1@example.com")).status_code == 303
    assert watched.connections_during == [baseline, baseline]
    # All at once: no more hashes run together than the slots allow.
    statuses = await sign_in_many(
        web, [(f"p{n}@example.com", PASSWORD if n % 2 else "wrong guess!") for n in range(12)]
    )
    assert sorted(set(statuses)) == [303, 401]
    assert watched.verified == 14
    assert watched.most_at_once <= HASH_SLOTS


def concurrently(count: int, work: Any) -> list[object]:
    """Run ``work(n)`` in ``count`` threads at once; each result, or the error raised."""
    barrier = threading.Barrier(count)

    def run(n: int) -> object:
        barrier.wait()
        try:
            return work(n)
        except LedgerdeskError as exc:
            return exc

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def pending_sessions(runtime: Runtime, user_id: int, count: int) -> list[str]:
    with system_work(runtime) as work:
        service = PeopleService.of(work)
        stored = service.stored_password(user_id)
        return [
            service.begin_session(stored, now=runtime.clock.timestamp()).secret
            for _ in range(count)
        ]


def with_totp(runtime: Runtime, clock: FrozenClock) -> tuple[int, str, list[str]]:
    user_id = make_person(runtime, "Sam", "sam@example.com", staff=True)
    secret = pyotp.random_base32()
    with system_work(runtime) as work:
        codes = PeopleService.of(work).confirm_totp(
            user_id, secret, pyotp.TOTP(secret).at(clock.now), now=clock.now
        )
    return user_id, secret, codes


def verified_sessions(runtime: Runtime) -> int:
    with unit_of_work(runtime.sessions, write=False) as session:
        return sum(session.scalars(select(WebSession.verified)).all())


def second_factor(runtime: Runtime, secret: str, code: str) -> None:
    with system_work(runtime) as work:
        PeopleService.of(work).second_factor(secret, code, now=runtime.clock.timestamp())


@pytest.mark.parametrize("which", ["totp", "recovery"])
def test_one_code_completes_one_session_even_sent_at_once(
    runtime: Runtime, clock: FrozenClock, which: str
) -> None:
    """One TOTP code verified 3 of 6 concurrent sessions on PostgreSQL, one recovery
    code 6 of 6: the user's row is now locked while a code is checked."""
    user_id, secret, codes = with_totp(runtime, clock)
    clock.advance(30)
    code = pyotp.TOTP(secret).at(clock.now) if which == "totp" else codes[0]
    sessions = pending_sessions(runtime, user_id, 6)
    results = concurrently(6, lambda n: second_factor(runtime, sessions[n], code))
    assert sum(result is None for result in results) == 1
    assert verified_sessions(runtime) == 1


def test_a_password_link_sets_a_password_once_even_sent_at_once(runtime: Runtime) -> None:
    """One link set the password 4 of 4 times at once on PostgreSQL."""
    user_id = make_person(runtime, "Ann", "ann@example.com")
    with system_work(runtime) as work:
        secret = PeopleService.of(work).issue_link(user_id, "reset", now=runtime.clock.timestamp())
    hashes = [people.hash_password(f"new password {n}") for n in range(4)]

    def take(n: int) -> str:
        with system_work(runtime) as work:
            PeopleService.of(work).take_link(secret, hashes[n], now=runtime.clock.timestamp())
        return hashes[n]

    results = concurrently(4, take)
    taken = [r for r in results if isinstance(r, str)]
    assert len(taken) == 1
    with unit_of_work(runtime.sessions, write=False) as session:
        assert session.get(User, user_id).password_hash == taken[0]  # type: ignore[union-attr]


def test_turning_on_a_second_factor_twice_is_refused(runtime: Runtime, clock: FrozenClock) -> None:
    user_id, _, _ = with_totp(runtime, clock)
    other = pyotp.random_base32()
    with (
        pytest.raises(LedgerdeskError, match="already on"),
        system_work(runtime) as work,
    ):
        PeopleService.of(work).confirm_totp(
            user_id, other, pyotp.TOTP(other).at(clock.now), now=clock.now
        )


# -- the throttle's growing delays ------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_after_the_allowance_each_try_waits_twice_as_long() -> None:
    clock = Clock()
    throttle = Throttle(Counters(window=900, clock=clock), free=3, per_address=100)
    for _ in range(3):
        await throttle.attempt("signin", "ann@example.com", "192.0.2.1")
    waits = []
    for _ in range(4):
        with pytest.raises(Throttled) as refused:
            await throttle.attempt("signin", "ann@example.com", "192.0.2.1")
        waits.append(refused.value.retry_after)
        clock.now += refused.value.retry_after
        await throttle.attempt("signin", "ann@example.com", "192.0.2.1")
    assert waits == [1, 2, 4, 8]
    # Another address, and the same address at another account, are not held up.
    await throttle.attempt("signin", "ann@example.com", "192.0.2.2")
    await throttle.attempt("signin", "bob@example.com", "192.0.2.1")


async def test_a_success_starts_the_account_afresh_from_that_address() -> None:
    clock = Clock()
    throttle = Throttle(Counters(window=900, clock=clock), free=2, per_address=100)
    await throttle.attempt("signin", "ann@example.com", "192.0.2.1")
    right = await throttle.attempt("signin", "ann@example.com", "192.0.2.1")
    await throttle.succeeded(right)
    for _ in range(2):
        await throttle.attempt("signin", "ann@example.com", "192.0.2.1")
