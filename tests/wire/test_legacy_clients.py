"""Clients written for the original i3D.net API: PHP nested form fields, and i3d mode.

The three public client patterns, as they behave: a PHP class posting
``http_build_query`` form bodies, a Node script on request-promise (which throws on any
non-2xx status before the script can read ``msg``), and a WHMCS module posting JSON.
All read the JSON envelope whatever the status and parse every answer as JSON.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from ledgerdesk.app import LedgerdeskApp, create_app
from ledgerdesk.config import Settings
from ledgerdesk.runtime import Runtime
from tests.client.conftest import Server, serve
from tests.conftest import CLIENT_ADDRESS, make_client
from tests.factories import make_customer
from tests.support import ENDPOINT, Caller, FrozenClock, assert_error, assert_success, call

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

LOG = b"kernel: eth0 link down\n"


def http_build_query(data: dict[str, Any], prefix: str = "") -> str:
    """PHP's http_build_query: nested arrays as percent-encoded bracketed names."""
    parts = []
    for key, value in data.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        if isinstance(value, dict):
            parts.append(http_build_query(value, name))
        elif isinstance(value, list):
            parts.append(http_build_query(dict(enumerate(value)), name))
        else:
            parts.append(f"{quote(name, safe='')}={quote(str(value), safe='')}")
    return "&".join(p for p in parts if p)


def php_attachment(name: str, data: bytes) -> dict[str, Any]:
    return {
        "name": name,
        "content": base64.b64encode(data).decode(),
        "contentType": "text/plain",
        "size": len(data),
    }


@pytest.fixture
def caller(runtime: Runtime) -> Caller:
    return make_customer(runtime)


async def post_form(client: httpx.AsyncClient, body: str) -> httpx.Response:
    return await client.post(
        ENDPOINT, content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )


async def attachments_of(client: httpx.AsyncClient, caller: Caller, ticket_id: int) -> list[Any]:
    thread = assert_success(await call(client, caller, "getTicket", ticketId=ticket_id))
    return [a for reply in thread["replies"] for a in reply["attachments"]]


# -- PHP nested form fields ------------------------------------------------------------------


async def test_a_php_form_attachment_is_stored(client: httpx.AsyncClient, caller: Caller) -> None:
    body = http_build_query(
        caller.body(
            "createTicket",
            title="Link down",
            content="See the log.",
            attachments=[php_attachment("dmesg.log", LOG)],
        )
    )
    assert "attachments%5B0%5D%5Bname%5D=dmesg.log" in body
    ticket_id = assert_success(await post_form(client, body))["ticketId"]
    (stored,) = await attachments_of(client, caller, ticket_id)
    assert (stored["name"], stored["size"]) == ("dmesg.log", len(LOG))
    raw = await call(
        client,
        caller,
        "getTicketAttachment",
        ticketId=ticket_id,
        attachmentId=stored["attachmentId"],
    )
    assert raw.content == LOG


async def test_php_style_fields_work_in_multipart_text_parts_too(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    ticket = assert_success(await call(client, caller, "createTicket", title="T", content="C"))
    fields = {
        **caller.form("replyTicket", ticketId=str(ticket["ticketId"]), content="two files"),
        "attachments[0][name]": "a.txt",
        "attachments[0][content]": base64.b64encode(b"alpha").decode(),
        "attachments[0][contentType]": "text/plain",
        "attachments[0][size]": "5",
    }
    response = await client.post(
        ENDPOINT, data=fields, files={"attachment": ("b.txt", b"beta", "text/plain")}
    )
    assert_success(response)
    names = sorted(a["name"] for a in await attachments_of(client, caller, ticket["ticketId"]))
    assert names == ["a.txt", "b.txt"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("a[b][c][d][e][f]=1", "nests more than"),
        ("a[1000]=1", "indexes go up to"),
        ("a=1&a[0]=2", "both as a value"),
        ("a[0]=2&a=1", "both as a value"),
    ],
)
async def test_impossible_nesting_is_1001(
    client: httpx.AsyncClient, caller: Caller, body: str, needle: str
) -> None:
    response = await post_form(client, f"userId={caller.user_id}&apiKey={caller.api_key}&{body}")
    assert needle in assert_error(response, 1001, 400)["msg"]


# -- nothing that looks like an attachment is ignored -----------------------------------------


@pytest.mark.parametrize(
    ("action", "field", "value"),
    [
        (
            "createTicket",
            "attachment",
            {"name": "a", "content": "aGk=", "contentType": "text/plain", "size": 2},
        ),
        ("createTicket", "files", ["aGk="]),
        ("closeTicket", "attachments", []),
        ("createTicket", "attachments", "not a list"),
    ],
)
async def test_a_field_that_looks_like_an_attachment_is_stored_or_refused(
    client: httpx.AsyncClient, caller: Caller, action: str, field: str, value: object
) -> None:
    ticket = assert_success(await call(client, caller, "createTicket", title="T", content="C"))
    params: dict[str, Any] = {"ticketId": ticket["ticketId"], field: value}
    if action == "createTicket":
        params = {"title": "T", "content": "C", field: value}
    body = assert_error(await call(client, caller, action, **params), 1003, 400)
    assert body["data"]["errors"][0]["property"].startswith(field)


async def test_a_file_part_under_another_name_is_refused(
    client: httpx.AsyncClient, caller: Caller, runtime: Runtime
) -> None:
    response = await client.post(
        ENDPOINT,
        data=caller.form("createTicket", title="T", content="C"),
        files={"upload": ("x.bin", b"data", "application/octet-stream")},
    )
    body = assert_error(response, 1003, 400)
    assert body["data"]["errors"][0]["property"] == "upload"
    assert [p for p in runtime.incoming_dir.rglob("*") if p.is_file()] == []


# -- i3d mode: the three client patterns --------------------------------------------------------


@pytest.fixture
def i3d_app(settings: Settings, clock: FrozenClock) -> Iterator[LedgerdeskApp]:
    app = create_app(settings.with_overrides(compat="i3d"), clock=clock)
    yield app
    app.state.runtime.close()


class RequestPromise:
    """request-promise's default: any status outside 2xx rejects before the script runs."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def post(self, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.client.post(ENDPOINT, json=body)
        if not 200 <= response.status_code < 300:
            raise AssertionError(
                f"request-promise rejected: StatusCodeError {response.status_code}"
            )
        parsed: dict[str, Any] = json.loads(response.text)  # json: true parses every answer
        return parsed


async def test_the_three_client_patterns_work_against_i3d_mode(i3d_app: LedgerdeskApp) -> None:
    runtime: Runtime = i3d_app.state.runtime
    caller = make_customer(runtime)
    async with make_client(i3d_app, CLIENT_ADDRESS) as client:
        # PHP: form bodies by http_build_query; its HTTP stack keeps the body of a 2xx only.
        php_body = http_build_query(
            caller.body(
                "createTicket",
                title="Down",
                content="Help",
                attachments=[php_attachment("dmesg.log", LOG)],
            )
        )
        php = await post_form(client, php_body)
        assert php.status_code == 200
        ticket_id = php.json()["data"]["ticketId"]
        wrong_key = await post_form(
            client,
            http_build_query({"userId": caller.user_id, "apiKey": "x" * 20, "action": "getTicket"}),
        )
        assert wrong_key.status_code == 200
        assert wrong_key.json()["data"]["errorCode"] == 2001

        # Node on request-promise: no rejection, msg readable, for errors too.
        node = RequestPromise(client)
        missing = await node.post(caller.body("getTicket", ticketId=999999))
        assert (missing["status"], missing["data"]["errorCode"]) == ("Error", 3001)
        assert missing["msg"]
        thread = await node.post(caller.body("getTicket", ticketId=ticket_id))
        attachment_id = thread["data"]["replies"][0]["attachments"][0]["attachmentId"]

        # WHMCS: JSON bodies, every answer parsed as JSON, the download included.
        download = await client.post(
            ENDPOINT,
            json=caller.body("getTicketAttachment", ticketId=ticket_id, attachmentId=attachment_id),
        )
        envelope = json.loads(download.text)
        assert envelope["status"] == "Success"
        assert base64.b64decode(envelope["data"]["tickets"]["content"]) == LOG
        bad = await client.post(ENDPOINT, json=caller.body("getInvoiceIds", status=7))
        assert bad.status_code == 200
        assert json.loads(bad.text)["data"]["errorCode"] == 1003

        # Raw bytes still there when asked for.
        raw = await client.post(
            ENDPOINT,
            json=caller.body(
                "getTicketAttachment",
                ticketId=ticket_id,
                attachmentId=attachment_id,
                encoding="raw",
            ),
        )
        assert raw.content == LOG


@pytest.mark.parametrize(
    ("method", "path", "code"),
    [
        ("POST", "/api/rest/v1/administration", 1005),
        ("POST", "/rest/v2/administration", 1005),
        ("GET", "/nothing-here", 1005),
        ("GET", "/openapi.json/x", 1005),
        ("PUT", "/healthz", 1006),
    ],
)
async def test_i3d_mode_answers_every_path_outside_the_protocol_with_a_200_envelope(
    i3d_app: LedgerdeskApp, method: str, path: str, code: int
) -> None:
    async with make_client(i3d_app, CLIENT_ADDRESS) as client:
        answer = await client.request(method, path, json={})
    assert answer.status_code == 200
    assert answer.json()["data"]["errorCode"] == code


async def test_the_default_mode_keeps_http_statuses_and_raw_downloads(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    assert_error(await call(client, caller, "getTicket", ticketId=999999), 3001, 404)
    ticket_id = assert_success(
        await client.post(
            ENDPOINT,
            content=http_build_query(
                caller.body(
                    "createTicket",
                    title="T",
                    content="C",
                    attachments=[php_attachment("l.txt", LOG)],
                )
            ),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    )["ticketId"]
    (stored,) = await attachments_of(client, caller, ticket_id)
    for encoding in (None, "raw"):
        params = {"ticketId": ticket_id, "attachmentId": stored["attachmentId"]}
        if encoding:
            params["encoding"] = encoding
        response = await call(client, caller, "getTicketAttachment", **params)
        assert response.content == LOG


# -- the real thing: PHP and Node clients written the way the public ones are -----------------

LEGACY = Path(__file__).parent / "legacy"
needs_php = pytest.mark.skipif(
    shutil.which("php") is None and not os.environ.get("CI"), reason="php is not installed"
)
needs_node = pytest.mark.skipif(
    (shutil.which("node") is None or shutil.which("npm") is None) and not os.environ.get("CI"),
    reason="Node.js and npm are not installed",
)


@pytest.fixture(scope="module")
def i3d_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from serve(tmp_path_factory.mktemp("i3d"), LEDGERDESK_COMPAT="i3d")


@pytest.fixture(scope="module")
def default_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from serve(tmp_path_factory.mktemp("default"))


def run_client(command: list[str], server: Server, cwd: Path = LEGACY) -> dict[str, Any]:
    result = subprocess.run(
        [*command, f"{server.url}{ENDPOINT}", str(server.caller.user_id), server.caller.api_key],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer


@needs_php
def test_a_php_class_on_http_build_query_works_in_i3d_mode(
    i3d_server: Server, default_server: Server
) -> None:
    answer = run_client(["php", "php_class.php"], i3d_server)
    assert (answer["attachment"], answer["file"]) == ("php.txt", "from php\n")
    assert answer["missing"] == 3001
    # Its HTTP stack drops the body of a 4xx: against the default mode it sees nothing.
    assert run_client(["php", "php_class.php"], default_server)["missing"] is None


@needs_php
def test_a_whmcs_module_posting_json_works_in_i3d_mode(i3d_server: Server) -> None:
    answer = run_client(["php", "whmcs_module.php"], i3d_server)
    assert answer["invoiceIds"] == list(i3d_server.invoice_ids)
    assert (answer["file"], answer["bad"]) == ("whmcs", 1003)


@needs_node
def test_a_node_script_on_request_promise_works_in_i3d_mode(
    i3d_server: Server, tmp_path: Path
) -> None:
    for name in ("package.json", "request_promise.js"):
        shutil.copy(LEGACY / name, tmp_path / name)
    subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    answer = run_client(["node", "request_promise.js"], i3d_server, cwd=tmp_path)
    assert answer["missing"] == ["Error", 3001, True]
    assert answer["denied"] == 2001
    assert answer["reopened"] == f"Ticket thread {answer['ticketId']} has been reopened"
