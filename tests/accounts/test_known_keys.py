"""Keys known to exist skip the failed-key limit's queue; guesses never do."""

from __future__ import annotations

import anyio
import httpx
import pytest

from ledgerdesk.accounts.service import AccountService
from ledgerdesk.app import LedgerdeskApp
from ledgerdesk.db.prepared import read_transaction
from ledgerdesk.runtime import Runtime
from tests.factories import make_customer, make_key, system_work
from tests.support import Caller, call

pytestmark = pytest.mark.anyio


async def test_only_unrevoked_keys_of_their_own_customer_are_known(
    app: LedgerdeskApp, runtime: Runtime
) -> None:
    caller = make_customer(runtime)
    other = make_customer(runtime, "Other")
    revoked_id, revoked = make_key(runtime, caller.user_id)
    with system_work(runtime) as work:
        AccountService(work).revoke_key(revoked_id)
    known = app.api.known_keys
    assert not known.knows(caller.user_id, caller.api_key)  # nothing loaded yet
    assert await app.api.load_known_keys() == 2
    assert known.knows(caller.user_id, caller.api_key)
    assert not known.knows(other.user_id, caller.api_key)  # another customer's id
    assert not known.knows(caller.user_id, "A" * 20)
    assert not known.knows(caller.user_id, revoked.api_key)
    assert not known.knows(None, caller.api_key)


async def test_guesses_still_wait_their_turn_with_known_keys_loaded(
    app: LedgerdeskApp, client: httpx.AsyncClient, runtime: Runtime
) -> None:
    caller = make_customer(runtime)
    await app.api.load_known_keys()
    wrong = Caller(caller.user_id, "A" * 20)
    codes: list[int] = []

    async def guess() -> None:
        codes.append((await call(client, wrong, "getTicketOverview")).json()["data"]["errorCode"])

    async with anyio.create_task_group() as tasks:
        for _ in range(40):
            tasks.start_soon(guess)
    assert codes.count(2001) == runtime.settings.auth_failure_limit


async def test_known_keys_do_not_queue(
    app: LedgerdeskApp, client: httpx.AsyncClient, runtime: Runtime
) -> None:
    callers = [make_customer(runtime, f"Customer {n}") for n in range(20)]
    await app.api.load_known_keys()
    turns_asked = 0
    limits = app.api.limits
    original = limits._take_turn

    async def watched(address: str, bucket: str | None) -> None:
        nonlocal turns_asked
        turns_asked += 1
        await original(address, bucket)

    limits._take_turn = watched  # type: ignore[method-assign]

    async def ask(caller: Caller) -> None:
        assert (await call(client, caller, "getTicketOverview")).status_code == 200

    async with anyio.create_task_group() as tasks:
        for caller in callers:
            tasks.start_soon(ask, caller)
    assert turns_asked == 0  # none of them waited for a turn
    with read_transaction(runtime.engine) as db:
        assert app.api.known_keys.load(db) == 20
