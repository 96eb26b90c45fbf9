"""Schemathesis against the server's own OpenAPI document: no 5xx, an envelope every time.

Cases are generated from ``/openapi.json`` (both the category endpoint and every alias)
and sent with a real customer's credentials (HTTP Basic, so a body without them still
reaches the action), for a ticket that exists. Every answer must be a 4xx or a
success, carry a well-formed envelope (or the file, for a download), and leave no
temporary file behind.
"""

from __future__ import annotations

import base64
import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from ledgerdesk.errors import ALL_ERRORS
from tests.wire.conftest import Served

pytestmark = pytest.mark.slow  # fuzz: left out of scripts/test's fast run

EXAMPLES_PER_OPERATION = int(os.environ.get("LEDGERDESK_FUZZ_EXAMPLES", "1500")) // 25
ERROR_CODES = {error.error_code for error in ALL_ERRORS}


def check_answer(served: Served, case: schemathesis.Case) -> None:
    token = base64.b64encode(f"{served.caller.user_id}:{served.caller.api_key}".encode()).decode()
    if isinstance(case.body, dict):
        # Generated credentials are (almost) always wrong; the fuzz test covers those.
        case.body["userId"] = served.caller.user_id
        case.body["apiKey"] = served.caller.api_key
        if isinstance(case.body.get("ticketId"), int):
            case.body["ticketId"] = served.ticket_id  # one that exists, to go deeper
    response = case.call(headers={"Authorization": f"Basic {token}"})
    assert response.status_code < 500, response.text
    assert response.headers.get("x-request-id")
    if not case.path.startswith("/api/"):
        return  # health and documentation: no envelope
    assert response.headers.get("ratelimit-limit")
    content_type = response.headers.get("content-type", [""])
    if isinstance(content_type, list):
        content_type = content_type[0]
    if content_type != "application/json":
        assert response.status_code == 200
        assert "attachment" in str(response.headers.get("content-disposition"))
    else:
        body = response.json()
        assert body["status"] in ("Success", "Error")
        assert isinstance(body["msg"], str)
        if body["status"] == "Error":
            assert body["data"]["errorCode"] in ERROR_CODES
    leftovers = [p for p in served.runtime.incoming_dir.rglob("*") if p.is_file()]
    assert leftovers == []


def test_generated_requests_get_envelopes_and_never_a_5xx(served: Served) -> None:
    api = schemathesis.openapi.from_asgi("/openapi.json", served.app)
    operations = len(list(api.get_all_operations()))
    assert operations >= 10  # the category endpoint and every alias

    @settings(
        max_examples=EXAMPLES_PER_OPERATION * operations,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
    )
    @given(case=api.as_strategy())
    def each(case: schemathesis.Case) -> None:
        check_answer(served, case)

    each()
