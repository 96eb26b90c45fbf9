"""Cheap attacks that starved or broke the server, each kept as a test (issue: what people
trip over). The ones that need real sockets live in tests/test_attacks_live.py."""

from __future__ import annotations

import json
from typing import Any
from unittest.mock import patch

import anyio
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic_core import from_json

from ledgerdesk.errors import InvalidBody
from ledgerdesk.runtime import Runtime
from ledgerdesk.wire import body as wire_body
from tests.factories import make_customer
from tests.support import (
    ENDPOINT,
    Caller,
    assert_error,
    assert_success,
    call,
    error_properties,
    json_attachment,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def caller(runtime: Runtime) -> Caller:
    return make_customer(runtime)


# -- credentials of the wrong type ------------------------------------------------------


@pytest.mark.parametrize("api_key", [{"a": 1}, ["x"], 12345678901234567890, 1.5, True])
async def test_an_api_key_of_the_wrong_type_is_1003(
    client: httpx.AsyncClient, caller: Caller, api_key: Any
) -> None:
    body = {"userId": caller.user_id, "apiKey": api_key, "action": "getTicketOverview"}
    response = await client.post(ENDPOINT, json=body)
    assert_error(response, 1003, 400)
    assert error_properties(response) == ["apiKey"]


@pytest.mark.parametrize("user_id", [{"a": 1}, [1], 4.5, False])
async def test_a_user_id_of_the_wrong_type_is_1003(
    client: httpx.AsyncClient, caller: Caller, user_id: Any
) -> None:
    body = {"userId": user_id, "apiKey": caller.api_key, "action": "getTicketOverview"}
    response = await client.post(ENDPOINT, json=body)
    assert_error(response, 1003, 400)
    assert error_properties(response) == ["userId"]


async def test_wrongly_typed_credentials_are_counted_as_failed_authentications(
    client: httpx.AsyncClient, caller: Caller, runtime: Runtime
) -> None:
    body = {"userId": [1], "apiKey": {"k": "v"}, "action": "getTicketOverview"}
    limit = runtime.settings.auth_failure_limit
    for _ in range(limit):
        assert_error(await client.post(ENDPOINT, json=body), 1003, 400)
    assert_error(await client.post(ENDPOINT, json=body), 4002, 429)
    # The address is blocked for the window, right credentials or not.
    assert_error(await call(client, caller, "getTicketOverview"), 4002, 429)


async def test_right_credentials_still_work_beside_wrong_types(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    assert_success(await call(client, caller, "getTicketOverview"))


# -- concurrent guesses ---------------------------------------------------------------


async def test_concurrent_wrong_keys_cannot_pass_the_failure_limit(
    client: httpx.AsyncClient, caller: Caller, runtime: Runtime
) -> None:
    """Forty guesses sent at once: no more than the limit are checked (on PostgreSQL the
    check used to come before the count, and 37 of 40 passed a limit of 10)."""
    limit = runtime.settings.auth_failure_limit
    wrong = Caller(caller.user_id, "A" * 20)
    answers: list[httpx.Response] = []

    async def guess() -> None:
        answers.append(await call(client, wrong, "getTicketOverview"))

    async with anyio.create_task_group() as tasks:
        for _ in range(40):
            tasks.start_soon(guess)
    codes = sorted(a.json()["data"]["errorCode"] for a in answers)
    assert codes.count(2001) == limit
    assert codes.count(4002) == 40 - limit


async def test_a_right_key_is_not_counted_as_a_failure(
    client: httpx.AsyncClient, caller: Caller, runtime: Runtime
) -> None:
    """Counted first, given back when right: many concurrent right requests, then wrong
    ones still have the whole failure budget."""

    async def right() -> None:
        assert_success(await call(client, caller, "getTicketOverview"))

    async with anyio.create_task_group() as tasks:
        for _ in range(30):
            tasks.start_soon(right)
    wrong = await call(client, Caller(caller.user_id, "A" * 20), "getTicketOverview")
    assert_error(wrong, 2001, 401)
    remaining = int(wrong.headers["ratelimit-remaining"])
    assert remaining == runtime.settings.auth_failure_limit - 1


# -- large bodies parsed without holding the GIL for long -------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(value=st.dictionaries(st.text(), json_values, max_size=5), cut=st.integers(0, 400))
def test_a_large_body_is_judged_exactly_as_the_parser_judges_it(
    value: dict[str, Any], cut: int
) -> None:
    """Long strings are cut out before parsing (here: any over 3 bytes); valid or not,
    the answer is what the JSON parser alone gives."""
    text = json.dumps(value, ensure_ascii=False).encode()
    for body in (text, text[:cut], text.replace(b"\\", b"\x01", 1)):
        try:
            expected: object = from_json(body, allow_inf_nan=False)
        except ValueError:
            expected = InvalidBody
        try:
            with patch.object(wire_body, "LONG_STRING", 3):
                got: object = wire_body._large_json_object(bytearray(body))
        except InvalidBody:
            got = InvalidBody
        if expected is not InvalidBody and not isinstance(expected, dict):
            assert got is InvalidBody
        else:
            assert got == expected


async def test_refusals_are_said_in_the_apis_own_words(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    """Not the validation library's ("List should have at most 10 items after
    validation, not 11")."""
    eleven = [json_attachment(f"f{n}.txt", b"x") for n in range(11)]
    answer = await call(
        client, caller, "createTicket", title="t" * 256, content="c", attachments=eleven
    )
    errors = {
        e["property"]: e["message"] for e in assert_error(answer, 1003, 400)["data"]["errors"]
    }
    assert errors["title"] == "must be at most 255 characters"
    assert errors["attachments"] == "must hold at most 10 items"
    wrong = await call(client, caller, "getTicket", ticketId="twelve")
    assert assert_error(wrong, 1003, 400)["data"]["errors"][0]["message"] == "must be an integer"
    for body in (answer.text, wrong.text):
        assert "after validation" not in body
        assert "Input should" not in body


async def test_many_right_keys_from_one_address_at_once_are_all_answered(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    """A panel serving many customers from one address: forty first requests of forty
    keys at once must not look like forty guesses (counting every unproven key as a
    failure before its check refused them on PostgreSQL)."""
    callers = [make_customer(runtime, f"Customer {n}") for n in range(40)]
    answers: list[httpx.Response] = []

    async def ask(caller: Caller) -> None:
        answers.append(await call(client, caller, "getTicketOverview"))

    async with anyio.create_task_group() as tasks:
        for caller in callers:
            tasks.start_soon(ask, caller)
    assert [a.status_code for a in answers] == [200] * 40
