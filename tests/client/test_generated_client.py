"""A client generated from the served /openapi.json (openapi-python-client) calls every action.

The document is the contract other languages' clients are built from: if a generator
loses a field or cannot call an action, this fails.
"""

from __future__ import annotations

import base64
import importlib
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.client.conftest import Server

pytestmark = pytest.mark.slow  # cross-language: left out of scripts/test's fast run


@pytest.fixture(scope="module")
def generated(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    folder = tmp_path_factory.mktemp("generated")
    document = folder / "openapi.json"
    document.write_text(json.dumps(httpx.get(f"{server.url}/openapi.json").json()))
    package = folder / "ledgerdesk_client"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(document),
            "--meta",
            "none",
            "--output-path",
            str(package),
        ],
        check=True,
        capture_output=True,
    )
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module("ledgerdesk_client")
    finally:
        sys.path.remove(str(folder))
        for name in [m for m in sys.modules if m.startswith("ledgerdesk_client")]:
            del sys.modules[name]


def api(name: str) -> Any:
    return importlib.import_module(f"ledgerdesk_client.api.administration.{name}")


def model(name: str) -> Any:
    return getattr(importlib.import_module("ledgerdesk_client.models"), name)


@pytest.fixture
def client(generated: ModuleType, server: Server) -> Iterator[Any]:
    with generated.Client(base_url=server.url, raise_on_unexpected_status=True) as client:
        yield client


def test_every_action_is_callable_through_the_generated_client(client: Any, server: Server) -> None:
    who = {"user_id": server.caller.user_id, "api_key": server.caller.api_key}

    ids = api("get_invoice_ids").sync(client=client, body=model("GetInvoiceIdsRequest")(**who))
    assert ids.data.invoice_ids == list(server.invoice_ids)
    details = api("get_invoice_details").sync(
        client=client,
        body=model("GetInvoiceDetailsRequest")(invoice_id=ids.data.invoice_ids[0], **who),
    )
    assert details.data.invoices[0].number.startswith("F")

    created = api("create_ticket").sync(
        client=client,
        body=model("CreateTicketRequest")(
            title="Generated", content="From a generated client", priority_id=3, **who
        ),
        idempotency_key="generated-1",
    )
    ticket_id = created.data.ticket_id
    types = importlib.import_module("ledgerdesk_client.types")
    replied = api("reply_ticket").sync(
        client=client,
        body=model("ReplyTicketFilesBody")(
            ticket_id=ticket_id,
            content="With a file, as multipart",
            attachments=[
                types.File(
                    payload=io.BytesIO(b"log line\n"), file_name="log.txt", mime_type="text/plain"
                )
            ],
            **who,
        ),
    )
    assert replied.data.ticket_id == ticket_id
    api("reply_ticket").sync(
        client=client,
        body=model("ReplyTicketRequest")(
            ticket_id=ticket_id,
            content="With a base64 file",
            attachments=[
                model("AttachmentIn")(
                    name="b.txt",
                    content=base64.b64encode(b"b").decode(),
                    content_type="text/plain",
                    size=1,
                )
            ],
            **who,
        ),
    )
    overview = api("get_ticket_overview").sync(
        client=client, body=model("GetTicketOverviewRequest")(status=1, **who)
    )
    assert ticket_id in [t.ticket_id for t in overview.data.tickets]
    thread = api("get_ticket").sync(
        client=client, body=model("GetTicketRequest")(ticket_id=ticket_id, **who)
    )
    attachments = [a for r in thread.data.replies for a in r.attachments]
    assert [a.name for a in attachments] == ["log.txt", "b.txt"]
    encoding = model("GetTicketAttachmentRequestEncodingType0")
    raw = api("get_ticket_attachment").sync(
        client=client,
        body=model("GetTicketAttachmentRequest")(
            ticket_id=ticket_id, attachment_id=attachments[0].attachment_id, **who
        ),
    )
    assert raw.payload.read() == b"log line\n"
    envelope = api("get_ticket_attachment").sync(
        client=client,
        body=model("GetTicketAttachmentRequest")(
            ticket_id=ticket_id,
            attachment_id=attachments[0].attachment_id,
            encoding=encoding("base64"),
            **who,
        ),
    )
    answer = json.loads(envelope.payload.read())
    assert base64.b64decode(answer["data"]["tickets"]["content"]) == b"log line\n"
    closed = api("close_ticket").sync(
        client=client, body=model("CloseTicketRequest")(ticket_id=ticket_id, **who)
    )
    assert closed.data.ticket == f"Ticket thread {ticket_id} has been closed"
    reopened = api("reopen_ticket").sync(
        client=client, body=model("ReopenTicketRequest")(ticket_id=ticket_id, **who)
    )
    assert "reopened" in reopened.data.ticket
    missing = api("get_ticket").sync(
        client=client, body=model("GetTicketRequest")(ticket_id=999999, **who)
    )
    assert missing.data.error_code == 3001
