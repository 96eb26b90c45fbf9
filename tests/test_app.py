"""Health, the OpenAPI document and its UI."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from ledgerdesk.app import build_registry, create_app
from ledgerdesk.config import Settings
from ledgerdesk.db.migrate import head_revision
from tests.conftest import make_client
from tests.db.test_migrations import migrate_to, old_database

pytestmark = pytest.mark.anyio


async def test_healthz_says_the_process_answers(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_checks_the_database_its_schema_and_the_attachment_store(
    client: httpx.AsyncClient, backend: str
) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {
            "process": "serving",
            "database": "ok",
            "migration": head_revision(),
            "redis": "not used",
            # PostgreSQL keeps them in the database by default (servers share it).
            "attachments": "writable" if backend == "sqlite" else "in the database",
        },
    }


async def test_a_process_whose_database_is_gone_is_alive_but_not_ready(
    settings: Settings,
) -> None:
    broken = settings.with_overrides(database_url="postgresql+psycopg://nobody@127.0.0.1:1/none")
    app = create_app(broken)
    try:
        client = make_client(app, "127.0.0.1")
        alive = await client.get("/healthz")
        ready = await client.get("/readyz")
    finally:
        app.state.runtime.engine.dispose()
    assert alive.status_code == 200
    assert ready.status_code == 503
    assert ready.headers["retry-after"] == "5"
    assert ready.json()["checks"]["database"] == "unavailable (OperationalError)"
    assert "nobody" not in ready.text


async def test_not_ready_behind_the_schema_with_redis_down_or_files_unwritable(
    settings: Settings, migrated_database: str, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "attachments").write_text("a file where the store's folder should be")
    with old_database(migrated_database, tmp_path) as old:
        migrate_to(old, "0022")
        app = create_app(
            settings.with_overrides(
                database_url=old.settings.database_url,
                data_dir=data,
                redis_url="redis://127.0.0.1:1/0",
                attachment_store="local",
            )
        )
        try:
            answer = await make_client(app, "127.0.0.1").get("/readyz")
        finally:
            app.state.runtime.engine.dispose()
    assert answer.status_code == 503
    checks = answer.json()["checks"]
    assert checks["migration"] == f"at 0022, this version needs {head_revision()}"
    assert checks["redis"] == "unavailable (ConnectionError)"
    assert checks["attachments"] == "not writable (FileExistsError)"


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
    ready = document["paths"]["/readyz"]["get"]["responses"]
    assert ready["503"]["content"]["application/json"]["schema"]["required"] == [
        "status",
        "checks",
    ]
