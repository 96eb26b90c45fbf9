"""Health, the OpenAPI document and its UI."""

from __future__ import annotations

import json

import httpx
import pytest

from ledgerdesk.app import build_registry, create_app
from ledgerdesk.config import Settings
from tests.conftest import make_client

pytestmark = pytest.mark.anyio


async def test_healthz_answers_when_the_database_does(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


async def test_healthz_is_503_when_the_database_is_gone(settings: Settings) -> None:
    broken = settings.with_overrides(database_url="postgresql+psycopg://nobody@127.0.0.1:1/none")
    app = create_app(broken)
    try:
        response = await make_client(app, "127.0.0.1").get("/healthz")
    finally:
        app.state.runtime.engine.dispose()
    assert response.status_code == 503
    assert "nobody" not in response.text


async def test_openapi_documents_every_action_alias(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    assert document["openapi"].startswith("3.")
    for action in build_registry():
        operation = document["paths"][f"/api/rest/v2/administration/{action.name}"]["post"]
        assert operation["operationId"] == action.name
        request = operation["requestBody"]["content"]["application/json"]["schema"]
        flat = document["components"]["schemas"][request["$ref"].rsplit("/", 1)[1]]
        assert {"userId", "apiKey"} <= set(flat["properties"])  # one flat object, no allOf
        assert set(action.params.model_fields) <= set(flat["properties"])
        if action.returns_file:
            assert "application/octet-stream" in operation["responses"]["200"]["content"]
        else:
            success = operation["responses"]["200"]["content"]["application/json"]["schema"]
            assert success["properties"]["data"]["$ref"].endswith(action.result.__name__)
        assert {"X-Request-Id", "RateLimit-Remaining"} <= set(
            operation["responses"]["200"]["headers"]
        )
        assert "401" in operation["responses"]
        assert "400" in operation["responses"]
        assert "Retry-After" in operation["responses"]["429"]["headers"]
        if action.idempotent:
            assert operation["parameters"][0]["name"] == "Idempotency-Key"
            assert "3003" in operation["responses"]["409"]["description"]
        multipart = operation["requestBody"]["content"].get("multipart/form-data")
        if multipart is not None:
            assert {"userId", "apiKey", "attachments[]"} <= set(multipart["schema"]["properties"])
    text = json.dumps(document)
    # JSON Schema says minimum/maximum; generators ignore pydantic's ge/le.
    assert '"ge"' not in text
    assert '"le"' not in text
    schemas = document["components"]["schemas"]
    assert schemas["GetInvoiceIdsParams"]["properties"]["dateStart"]
    assert schemas["InvoiceDetails"]["properties"]["amountNet"]["type"] == "number"


async def test_openapi_lists_the_declared_errors_of_an_action(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    details = document["paths"]["/api/rest/v2/administration/getInvoiceDetails"]["post"]
    assert "3001" in details["responses"]["404"]["description"]


async def test_openapi_describes_file_uploads_and_downloads(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    reply = paths["/api/rest/v2/administration/replyTicket"]["post"]
    assert "multipart/form-data" in reply["requestBody"]["content"]
    assert "409" in reply["responses"]
    download = paths["/api/rest/v2/administration/getTicketAttachment"]["post"]
    assert "application/octet-stream" in download["responses"]["200"]["content"]
    overview = paths["/api/rest/v2/administration/getTicketOverview"]["post"]
    assert "multipart/form-data" not in overview["requestBody"]["content"]


async def test_the_reference_page_is_served_whole_from_the_package(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200
    assert "<script" not in page.text
    assert "https://" not in page.text  # no CDN, nothing fetched from elsewhere
    for action in build_registry():
        assert f'id="{action.name}"' in page.text
    document = (await client.get("/openapi.json")).json()
    attachment = document["paths"]["/api/rest/v2/administration/getTicketAttachment"]["post"]
    assert set(attachment["responses"]["200"]["content"]) == {
        "application/octet-stream",
        "application/json",
    }
    health = document["paths"]["/healthz"]["get"]["responses"]
    assert health["503"]["content"]["application/json"]["schema"]["required"] == [
        "status",
        "database",
    ]
