"""The console's report of response times per week and agent."""

from __future__ import annotations

import pytest

from ledgerdesk.runtime import Runtime
from tests.factories import make_ticket
from tests.support import FrozenClock
from tests.web.conftest import WebClient

pytestmark = pytest.mark.anyio


async def test_the_console_reports_response_times(
    runtime: Runtime, staff: WebClient, ann: tuple[int, WebClient], clock: FrozenClock
) -> None:
    ann_id, customer = ann
    ticket_id = make_ticket(runtime, ann_id, priority=4)  # Saturday noon (UTC)
    clock.advance(2 * 86400 - 3 * 3600 + 20 * 60)  # Monday 09:20
    await staff.sign_in("sam@example.com")
    page = f"/console/tickets/{ticket_id}"
    await staff.submit(page, f"{page}/reply", {"content": "On it."})
    report = (await staff.get("/console/reports/response-times")).text
    assert "Sam Support" in report
    assert "<td>20.0</td>" in report
    assert "<td>1 of 1</td>" in report
    assert (await staff.get("/console/reports/response-times?weeks=99")).status_code == 400
    assert (await customer.get("/console/reports/response-times")).status_code == 303
