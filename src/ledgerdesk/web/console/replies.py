"""The console's saved replies: the list, writing a new one, changing or deleting one
(``tickets.saved``); a ticket's reply form inserts them (``web.tickets``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ledgerdesk.errors import LedgerdeskError, NotFound
from ledgerdesk.tickets.saved import PLACEHOLDERS, SavedReplies
from ledgerdesk.web.core import Redirect, Refused, Visit, Web, field_errors, path_id, text_field
from ledgerdesk.web.pages import Page, SavedRepliesPage

FIELDS = ("title", "content")


class ReplyPages:
    def __init__(self, web: Web) -> None:
        self.web = web

    def _page(
        self,
        visit: Visit,
        *,
        editing: int | None = None,
        errors: dict[str, str] | None = None,
        values: dict[str, str] | None = None,
    ) -> Page:
        saved = SavedReplies(visit.work)
        if values is None:
            if editing is None:
                values = {"title": "", "content": ""}
            else:
                row = saved.get(editing)
                values = {"title": row.title, "content": row.content}
        return Page(
            SavedRepliesPage(
                replies=saved.all(),
                editing=editing,
                placeholders=PLACEHOLDERS,
                values=values,
                errors=errors or {},
            ),
            400 if errors else 200,
        )

    async def replies(self, request: Request) -> Response:
        """The list and a new one."""
        if request.method == "GET":
            return await self.web.visit(request, "staff", self._page)
        return await self._save(request, None)

    async def reply(self, request: Request) -> Response:
        """One to change."""
        saved_id = path_id(request, "saved_id")
        if request.method == "GET":
            return await self.web.visit(
                request, "staff", lambda visit: self._page(visit, editing=saved_id)
            )
        return await self._save(request, saved_id)

    async def _save(self, request: Request, saved_id: int | None) -> Response:
        form = await self.web.form(request, "staff")
        values = {name: text_field(form, name) for name in FIELDS}

        def work(visit: Visit) -> Redirect:
            try:
                row = SavedReplies(visit.work).save(
                    saved_id, title=values["title"], content=values["content"]
                )
            except NotFound:
                raise
            except LedgerdeskError as exc:
                problems = field_errors(exc)
                raise Refused(
                    lambda again: self._page(
                        again, editing=saved_id, errors=problems, values=values
                    )
                ) from None
            return Redirect("/console/replies", flash=f"Saved “{row.title}”.")

        return await self.web.visit(request, "staff", work, form=form, write=True)

    async def delete(self, request: Request) -> Response:
        saved_id = path_id(request, "saved_id")
        form = await self.web.form(request, "staff")

        def work(visit: Visit) -> Redirect:
            SavedReplies(visit.work).delete(saved_id)
            return Redirect("/console/replies", flash="Saved reply deleted.")

        return await self.web.visit(request, "staff", work, form=form, write=True)
