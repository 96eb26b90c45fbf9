"""The wire protocol of SPEC section 1, through HTTP into the ASGI app."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from ledgerdesk.runtime import Runtime
from tests.factories import make_customer
from tests.support import (
    ENDPOINT,
    Caller,
    assert_error,
    assert_success,
    call,
    error_properties,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def caller(runtime: Runtime) -> Caller:
    return make_customer(runtime)


async def test_category_endpoint_answers_success_envelope(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    response = await call(client, caller, "getInvoiceIds")
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"status": "Success", "msg": "OK", "data": {"invoiceIds": []}}


async def test_alias_route_takes_the_body_without_action(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    response = await client.post(
        f"{ENDPOINT}/getInvoiceIds", json={"userId": caller.user_id, "apiKey": caller.api_key}
    )
    assert assert_success(response) == {"invoiceIds": []}


async def test_alias_route_wins_over_an_action_in_the_body(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    response = await client.post(f"{ENDPOINT}/getInvoiceIds", json=caller.body("nonsense"))
    assert assert_success(response) == {"invoiceIds": []}


async def test_form_urlencoded_body_is_accepted(client: httpx.AsyncClient, caller: Caller) -> None:
    response = await client.post(
        ENDPOINT,
        data={
            "userId": str(caller.user_id),
            "apiKey": caller.api_key,
            "action": "getInvoiceIds",
            "status": "-1",
        },
    )
    assert assert_success(response) == {"invoiceIds": []}


async def test_unknown_parameters_are_ignored(client: httpx.AsyncClient, caller: Caller) -> None:
    response = await call(client, caller, "getInvoiceIds", somethingElse={"a": [1]}, foo=None)
    assert assert_success(response) == {"invoiceIds": []}


@pytest.mark.parametrize("user_id_form", ["plain", "string", "k-prefixed"])
async def test_user_id_accepts_int_numeric_string_and_k_prefix(
    client: httpx.AsyncClient, caller: Caller, user_id_form: str
) -> None:
    user_id: Any = {
        "plain": caller.user_id,
        "string": str(caller.user_id),
        "k-prefixed": f"K{caller.user_id}",
    }[user_id_form]
    response = await client.post(
        ENDPOINT, json={"userId": user_id, "apiKey": caller.api_key, "action": "getInvoiceIds"}
    )
    assert_success(response)


async def test_http_basic_credentials_are_accepted(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    response = await client.post(
        ENDPOINT,
        json={"action": "getInvoiceIds"},
        auth=(str(caller.user_id), caller.api_key),
    )
    assert_success(response)


async def test_broken_basic_credentials_are_2001(client: httpx.AsyncClient) -> None:
    response = await client.post(
        ENDPOINT,
        json={"action": "getInvoiceIds"},
        headers={"Authorization": "Basic %%%not-base64"},
    )
    assert_error(response, 2001, 401)


async def test_missing_credentials_are_2001(client: httpx.AsyncClient) -> None:
    response = await client.post(ENDPOINT, json={"action": "getInvoiceIds"})
    assert_error(response, 2001, 401)


async def test_request_id_is_echoed_when_well_formed(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    response = await client.post(
        ENDPOINT, json=caller.body("getInvoiceIds"), headers={"X-Request-Id": "abc-123.x"}
    )
    assert response.headers["x-request-id"] == "abc-123.x"


async def test_request_id_is_replaced_when_malformed(client: httpx.AsyncClient) -> None:
    response = await client.post(
        ENDPOINT, json={}, headers={"X-Request-Id": "bad id with spaces <script>"}
    )
    request_id = response.headers["x-request-id"]
    assert request_id != "bad id with spaces <script>"
    assert len(request_id) == 32


async def test_every_response_gets_a_fresh_request_id(client: httpx.AsyncClient) -> None:
    first = await client.get("/healthz")
    second = await client.post(
        ENDPOINT, content=b"[]", headers={"Content-Type": "application/json"}
    )
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


# -- the error table --------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b"[1, 2]", b'"a string"', b"42", b"", b'{"a": NaN}', b"\xff\xfe{}"],
    ids=["broken", "array", "string", "number", "empty", "nan", "not-utf8"],
)
async def test_body_that_is_not_a_json_object_is_1001(
    client: httpx.AsyncClient, raw: bytes
) -> None:
    response = await client.post(
        ENDPOINT, content=raw, headers={"Content-Type": "application/json"}
    )
    assert_error(response, 1001, 400)


async def test_form_body_that_is_not_utf8_is_1001(client: httpx.AsyncClient) -> None:
    response = await client.post(
        ENDPOINT,
        content=b"userId=1&apiKey=%ff%fe",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_error(response, 1001, 400)


async def test_malformed_multipart_is_1001(client: httpx.AsyncClient) -> None:
    response = await client.post(
        ENDPOINT,
        content=b"--xyz\r\nContent-Disposition: form-data\r\n\r\nbroken",
        headers={"Content-Type": "multipart/form-data"},
    )
    assert_error(response, 1001, 400)


@pytest.mark.parametrize("body", [{}, {"action": ""}, {"action": "dropTables"}, {"action": 3}])
async def test_unknown_or_missing_action_is_1002(
    client: httpx.AsyncClient, caller: Caller, body: dict[str, Any]
) -> None:
    response = await client.post(
        ENDPOINT, json={"userId": caller.user_id, "apiKey": caller.api_key, **body}
    )
    assert_error(response, 1002, 400)


async def test_unknown_action_on_alias_route_is_1002(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    response = await client.post(
        f"{ENDPOINT}/dropTables", json={"userId": caller.user_id, "apiKey": caller.api_key}
    )
    assert_error(response, 1002, 400)


async def test_unknown_action_needs_credentials_first(client: httpx.AsyncClient) -> None:
    response = await client.post(ENDPOINT, json={"action": "dropTables"})
    assert_error(response, 2001, 401)


async def test_wrong_parameter_type_is_1003_naming_every_parameter(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    response = await call(client, caller, "getInvoiceIds", status="abc", dateEnd=12)
    assert_error(response, 1003, 400)
    assert sorted(error_properties(response)) == ["dateEnd", "status"]


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/xml", "application/octet-stream"]
)
async def test_unsupported_content_type_is_1004(
    client: httpx.AsyncClient, content_type: str
) -> None:
    response = await client.post(ENDPOINT, content=b"{}", headers={"Content-Type": content_type})
    assert_error(response, 1004, 415)


async def test_missing_content_type_is_1004(client: httpx.AsyncClient) -> None:
    response = await client.post(ENDPOINT, content=b"{}")
    assert_error(response, 1004, 415)


async def test_multipart_for_an_action_without_files_is_1004(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    response = await client.post(
        ENDPOINT,
        data={"userId": str(caller.user_id), "apiKey": caller.api_key, "action": "getInvoiceIds"},
        files={"attachment": ("a.txt", b"hello", "text/plain")},
    )
    assert_error(response, 1004, 415)


@pytest.mark.parametrize("category", ["dedicated", "gameserver", "Administration", "x"])
async def test_unknown_category_is_1005(client: httpx.AsyncClient, category: str) -> None:
    response = await client.post(f"/api/rest/v2/{category}", json={})
    assert_error(response, 1005, 404)


async def test_unknown_path_is_a_404_envelope(client: httpx.AsyncClient) -> None:
    response = await client.get("/wp-login.php")
    assert_error(response, 1005, 404)


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
async def test_methods_other_than_post_are_1006(client: httpx.AsyncClient, method: str) -> None:
    response = await client.request(method, ENDPOINT)
    assert_error(response, 1006, 405)
    alias = await client.request(method, f"{ENDPOINT}/getInvoiceIds")
    assert_error(alias, 1006, 405)


async def test_declared_body_over_the_limit_is_4001(client: httpx.AsyncClient) -> None:
    response = await client.post(
        ENDPOINT,
        content=b"{}",
        headers={"Content-Type": "application/json", "Content-Length": str(10**12)},
    )
    assert_error(response, 4001, 413)


async def test_streamed_body_over_the_limit_is_cut_off_with_4001(
    client: httpx.AsyncClient, settings: Any
) -> None:
    chunk = b" " * 65536
    chunks = settings.max_body_bytes // len(chunk) + 2

    async def body() -> Any:
        yield b'{"a": "'
        for _ in range(chunks):
            yield chunk

    response = await client.post(
        ENDPOINT, content=body(), headers={"Content-Type": "application/json"}
    )
    assert_error(response, 4001, 413)


async def test_internal_error_is_5000_without_details(
    client: httpx.AsyncClient, caller: Caller, runtime: Runtime
) -> None:
    with runtime.engine.begin() as connection:
        connection.execute(text("ALTER TABLE invoices RENAME TO invoices_elsewhere"))
    try:
        response = await call(client, caller, "getInvoiceIds")
    finally:
        with runtime.engine.begin() as connection:
            connection.execute(text("ALTER TABLE invoices_elsewhere RENAME TO invoices"))
    body = assert_error(response, 5000, 500)
    raw = response.text.lower()
    for leak in ("select", "invoices", "traceback", "sqlalchemy", ".py", "/"):
        assert leak not in raw, f"{leak!r} leaked into {body}"


# -- hostile input never breaks the server ----------------------------------------------


HOSTILE_VALUES = [
    "abc",
    4.5,
    True,
    None,
    {"$gt": 0},
    [1],
    2**70,
    -(2**70),
    "1e3",
    "",
    "9" * 400,
    "\u0000",
]


@pytest.mark.parametrize("value", HOSTILE_VALUES, ids=repr)
@pytest.mark.parametrize(
    ("action", "parameter"),
    [
        ("getInvoiceIds", "status"),
        ("getInvoiceIds", "dateStart"),
        ("getInvoiceIds", "dateEnd"),
        ("getInvoiceDetails", "invoiceId"),
    ],
)
async def test_hostile_parameter_values_are_1003(
    client: httpx.AsyncClient, caller: Caller, action: str, parameter: str, value: Any
) -> None:
    response = await client.post(
        ENDPOINT,
        content=json.dumps(caller.body(action, **{parameter: value})),
        headers={"Content-Type": "application/json"},
    )
    if parameter.startswith("date") and value is None:
        # An explicit null is the same as leaving an optional date out.
        assert_success(response)
        return
    assert_error(response, 1003, 400)
    assert error_properties(response) == [parameter]


async def test_deeply_nested_body_is_a_clean_4xx(client: httpx.AsyncClient) -> None:
    raw = b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = await client.post(
        ENDPOINT, content=raw, headers={"Content-Type": "application/json"}
    )
    assert 400 <= response.status_code < 500
    assert response.json()["status"] == "Error"


async def test_basic_auth_with_non_utf8_is_2001(client: httpx.AsyncClient) -> None:
    token = base64.b64encode(b"\xff\xfe:abc").decode()
    response = await client.post(
        ENDPOINT, json={"action": "getInvoiceIds"}, headers={"Authorization": f"Basic {token}"}
    )
    assert_error(response, 2001, 401)


async def test_paths_below_an_alias_are_unknown(client: httpx.AsyncClient, caller: Caller) -> None:
    response = await client.post(f"{ENDPOINT}/getInvoiceIds/more", json=caller.body("x"))
    assert_error(response, 1005, 404)


async def test_trailing_slash_is_the_category_endpoint(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    response = await client.post(f"{ENDPOINT}/", json=caller.body("getInvoiceIds"))
    assert assert_success(response) == {"invoiceIds": []}


async def test_api_errors_carry_the_request_id_too(client: httpx.AsyncClient) -> None:
    response = await client.post(
        ENDPOINT,
        content=b"[]",
        headers={"Content-Type": "application/json", "X-Request-Id": "trace-7"},
    )
    assert response.headers["x-request-id"] == "trace-7"
