"""A write holds its transaction only for the rows: attachments are ready before it."""

from __future__ import annotations

import base64

import httpx
import pytest

from ledgerdesk.attachments.incoming import IncomingFile, RequestFiles
from ledgerdesk.runtime import Runtime
from tests.factories import make_customer
from tests.support import assert_error, call

pytestmark = pytest.mark.anyio


async def test_attachments_are_decoded_and_fsynced_before_the_transaction(
    client: httpx.AsyncClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    caller = make_customer(runtime)
    connections_in_use: list[int] = []
    decode = RequestFiles.from_base64

    def watched(files: RequestFiles, name: str, content_type: str, content: str) -> IncomingFile:
        connections_in_use.append(runtime.engine.pool.checkedout())  # type: ignore[attr-defined]
        return decode(files, name, content_type, content)

    monkeypatch.setattr(RequestFiles, "from_base64", watched)
    content = base64.b64encode(b"x" * 100_000).decode()
    answer = await call(
        client,
        caller,
        "createTicket",
        title="Disk full",
        content="See the log.",
        attachments=[
            {
                "name": f"log{i}.txt",
                "contentType": "text/plain",
                "content": content,
                "size": 100_000,
            }
            for i in range(2)
        ],
    )
    assert answer.json()["status"] == "Success", answer.text
    assert connections_in_use == [0, 0]  # no transaction (no connection) open yet


async def test_refused_parameters_of_a_write_still_come_after_authentication(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    caller = make_customer(runtime)
    bad_key = caller.body("createTicket", title="", content="")
    bad_key["apiKey"] = "A" * 20
    assert_error(await client.post("/api/rest/v2/administration", json=bad_key), 2001, 401)
    assert_error(await call(client, caller, "createTicket", title="", content=""), 1003, 400)
