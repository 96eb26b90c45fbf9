"""The console's received mail: what came in and where it went, newest first (held and
unreadable mail first of all, with why), each mail as received to download, and the
addresses our mail is refused at."""

from __future__ import annotations

from typing import Literal

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from ledgerdesk.db.models import MailAddress, MailMessage
from ledgerdesk.errors import NotFound
from ledgerdesk.http.content_disposition import attachment_disposition
from ledgerdesk.web.core import SECURITY_HEADERS, Visit, Web, path_id
from ledgerdesk.web.pages import MailPage, Page

WAITING = ("held", "unreadable", "failed")
SHOWN = 200


class MailPages:
    def __init__(self, web: Web) -> None:
        self.web = web

    async def mail(self, request: Request) -> Response:
        show: Literal["waiting", "all"] = (
            "all" if request.query_params.get("show") == "all" else "waiting"
        )

        def work(visit: Visit) -> Page:
            statement = select(MailMessage).order_by(MailMessage.id.desc()).limit(SHOWN)
            if show == "waiting":
                statement = statement.where(MailMessage.state.in_(WAITING))
            failing = select(MailAddress).where(MailAddress.failing_since.is_not(None))
            return Page(
                MailPage(
                    show=show,
                    messages=visit.session.scalars(statement).all(),
                    failing=visit.session.scalars(
                        failing.order_by(MailAddress.failing_since.desc())
                    ).all(),
                )
            )

        return await self.web.visit(request, "staff", work)

    async def raw(self, request: Request) -> Response:
        mail_id = path_id(request, "mail_id")

        def work(visit: Visit) -> Response:
            row = visit.session.get(MailMessage, mail_id)
            content = None if row is None else self.web.runtime.blobs.open(visit.db, row.raw_sha256)
            if row is None or content is None:
                raise NotFound("There is no such mail.")
            return Response(
                b"".join(content.chunks()),
                headers={
                    **SECURITY_HEADERS,
                    "content-type": "message/rfc822",
                    "content-disposition": attachment_disposition(f"mail-{row.id}.eml"),
                    "content-security-policy": "sandbox",
                },
            )

        return await self.web.visit(request, "staff", work)
