"""The console's report of response times: per week and agent, the responses, how many
were first responses, the median and slowest in business minutes, and how many met the
service-level target (``tickets.report``, from the event log)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from ledgerdesk.db.models import User
from ledgerdesk.events.log import EventLog
from ledgerdesk.tickets.report import TYPES, response_times, weeks_back
from ledgerdesk.web.console.queue import int_param
from ledgerdesk.web.core import Visit, Web
from ledgerdesk.web.pages import Page, ResponseTimesPage

LOOK_BACK = 30 * 86400  # a customer's message this long before the first week counts


class ReportPages:
    def __init__(self, web: Web) -> None:
        self.web = web

    async def response_times(self, request: Request) -> Response:
        errors: dict[str, str] = {}
        weeks = int_param(request.query_params.get("weeks"), 1, 52, "weeks", errors) or 8
        levels = self.web.runtime.service_levels

        def work(visit: Visit) -> Page:
            rows = []
            names: dict[int, str] = {}
            if levels is not None:
                start = weeks_back(visit.now, weeks, levels)
                events = EventLog(visit.session).of_types_since(TYPES, start - LOOK_BACK)
                rows = [r for r in response_times(events, levels) if r.week >= _day(start, visit)]
                agents = {r.agent_id for r in rows}
                if agents:
                    found = visit.session.execute(
                        select(User.id, User.name).where(User.id.in_(agents))
                    )
                    names = {row.id: row.name for row in found}
            return Page(
                ResponseTimesPage(
                    rows=rows,
                    names=names,
                    weeks=weeks,
                    enabled=levels is not None,
                    errors=errors,
                ),
                400 if errors else 200,
            )

        return await self.web.visit(request, "staff", work)


def _day(moment: int, visit: Visit) -> date:
    return datetime.fromtimestamp(moment, visit.settings.timezone).date()
