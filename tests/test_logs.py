"""Logs: plain or one JSON object a line, and a line a request that names its action,
user, status and error, and never its body, key, password or token."""

from __future__ import annotations

import json
import logging
import signal

import httpx
import pytest

from ledgerdesk.app import create_app
from ledgerdesk.config import Settings
from ledgerdesk.http.request_log import loggable_path
from ledgerdesk.logs import JsonFormatter
from ledgerdesk.runtime import Runtime
from tests.conftest import make_client
from tests.factories import make_customer
from tests.servers import free_port, start, stop
from tests.support import Caller

pytestmark = pytest.mark.anyio
ENDPOINT = "/api/rest/v2/administration"


def test_a_json_line_has_the_time_level_message_and_the_request() -> None:
    record = logging.LogRecord("ledgerdesk.request", logging.INFO, "x", 1, "POST %s", ("/a",), None)
    record.request_id = "abc"
    record.status = 200
    record.duration_ms = 1.5
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "info"
    assert line["logger"] == "ledgerdesk.request"
    assert line["message"] == "POST /a"
    assert (line["request_id"], line["status"], line["duration_ms"]) == ("abc", 200, 1.5)
    assert line["time"].endswith("+00:00")
    assert "action" not in line  # what the record does not have is left out


def test_secret_looking_path_segments_are_not_logged() -> None:
    assert loggable_path("/password/reset/Zr9xQ0aLk3mN8pT2vW6yB1cD") == "/password/reset/…"
    assert loggable_path("/console/tickets/42") == "/console/tickets/42"


async def test_a_line_a_request_with_its_action_user_and_error(
    settings: Settings, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    caller = make_customer(runtime, "Ann")
    app = create_app(settings.with_overrides(access_log=True))
    try:
        client = make_client(app, "127.0.0.1")
        with caplog.at_level(logging.INFO, logger="ledgerdesk.request"):
            await client.post(ENDPOINT, json=caller.body("getTicketOverview"))
            await client.post(ENDPOINT, json=Caller(caller.user_id, "x" * 20).body("getTicket"))
            await client.get("/password/reset/Zr9xQ0aLk3mN8pT2vW6yB1cD")
    finally:
        app.state.runtime.engine.dispose()
    lines = [r for r in caplog.records if r.name == "ledgerdesk.request"]
    assert len(lines) == 3
    ok, refused, page = lines
    assert (ok.action, ok.user_id, ok.status, ok.error_code) == (  # type: ignore[attr-defined]
        "getTicketOverview",
        caller.user_id,
        200,
        None,
    )
    assert len(ok.request_id) == 32  # type: ignore[attr-defined]
    assert ok.duration_ms >= 0  # type: ignore[attr-defined]
    # A key that is wrong: the user it claimed is not taken as who asked.
    assert (refused.action, refused.user_id, refused.error_code) == ("getTicket", None, 2001)  # type: ignore[attr-defined]
    assert page.path == "/password/reset/…"  # type: ignore[attr-defined]
    logged = caplog.text
    assert caller.api_key not in logged
    assert "Zr9xQ0aLk3mN8pT2vW6yB1cD" not in logged


async def test_no_request_log_unless_asked(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="ledgerdesk.request"):
        await client.get("/healthz")
    assert [r for r in caplog.records if r.name == "ledgerdesk.request"] == []


@pytest.mark.slow
def test_a_server_logs_json_lines(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    data = tmp_path_factory.mktemp("json-logs")
    runtime = Runtime.build(Settings(database_url=database_url, data_dir=data))
    try:
        caller = make_customer(runtime, "Ann")
    finally:
        runtime.close()
    port = free_port()
    process = start(
        ["serve", "--port", str(port), "--access-log"],
        port,
        {
            "LEDGERDESK_DATABASE_URL": database_url,
            "LEDGERDESK_DATA_DIR": str(data),
            "LEDGERDESK_LOG_FORMAT": "json",
        },
    )
    try:
        answer = httpx.post(
            f"http://127.0.0.1:{port}{ENDPOINT}", json=caller.body("getTicketOverview")
        )
        assert answer.status_code == 200
        process.send_signal(signal.SIGTERM)  # (Ctrl-C would add click's "Aborted!")
        process.wait(timeout=20)
    finally:
        output = stop(process)
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert any(line["logger"].startswith("uvicorn") for line in lines)  # uvicorn's too
    (request,) = [line for line in lines if line.get("action") == "getTicketOverview"]
    assert request["status"] == 200
    assert request["user_id"] == caller.user_id
    assert request["request_id"] == answer.headers["x-request-id"]
    assert caller.api_key not in output
    # Every line but the command's own first words is a JSON object.
    assert [line for line in output.splitlines() if line and not line.startswith("{")] == [
        line for line in output.splitlines() if line.startswith("Database at revision")
    ]
