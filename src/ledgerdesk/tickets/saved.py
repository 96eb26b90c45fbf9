"""Saved replies: answers staff write once and insert into a reply.

Their text may hold placeholders, filled in when a reply is inserted: ``{customer_name}``,
``{ticket_code}``, ``{ticket_title}`` and ``{agent_name}`` (the staff member inserting
it). Anything else in braces stays as written. Each change is an event
(``saved_reply.created``, ``.updated``, ``.deleted``), staff's own (no customer's).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from sqlalchemy import func, select

from ledgerdesk.db.models import SavedReply
from ledgerdesk.errors import NotFound, ParamError, problems_error
from ledgerdesk.events.types import EventType
from ledgerdesk.events.work import Work
from ledgerdesk.tickets.service import MAX_CONTENT

MAX_TITLE = 100
MAX_SAVED = 500
PLACEHOLDERS = ("customer_name", "ticket_code", "ticket_title", "agent_name")
_PLACEHOLDER = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")


def filled(content: str, values: Mapping[str, str]) -> str:
    """The text with its placeholders filled in (``values`` by placeholder name)."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), content)


class SavedReplies:
    def __init__(self, work: Work) -> None:
        self.work = work
        self.session = work.session

    def all(self) -> Sequence[SavedReply]:
        return self.session.scalars(
            select(SavedReply).order_by(func.lower(SavedReply.title), SavedReply.id)
        ).all()

    def get(self, saved_id: int) -> SavedReply:
        row = self.session.get(SavedReply, saved_id)
        if row is None:
            raise NotFound(f"Saved reply {saved_id} not found.")
        return row

    def save(self, saved_id: int | None, *, title: str, content: str) -> SavedReply:
        """A new saved reply (``saved_id`` None), or a change to one."""
        title = " ".join(title.split())
        problems = []
        if not 1 <= len(title) <= MAX_TITLE:
            problems.append(ParamError("title", f"must be 1 to {MAX_TITLE} characters"))
        if not content.strip() or len(content) > MAX_CONTENT or "\x00" in content:
            problems.append(ParamError("content", f"must be 1 to {MAX_CONTENT} characters"))
        same = self.session.scalar(
            select(SavedReply.id).where(func.lower(SavedReply.title) == title.lower())
        )
        if same is not None and same != saved_id:
            problems.append(ParamError("title", "is the title of another saved reply"))
        if saved_id is None and self._count() >= MAX_SAVED:
            problems.append(ParamError("title", f"there are {MAX_SAVED} saved replies at most"))
        if problems:
            raise problems_error(problems)
        if saved_id is None:
            row = SavedReply(title=title, content=content, updated_at=self.work.now)
            self.session.add(row)
            kind = EventType.SAVED_REPLY_CREATED
        else:
            row = self.get(saved_id)
            if (row.title, row.content) == (title, content):
                return row
            row.title, row.content, row.updated_at = title, content, self.work.now
            kind = EventType.SAVED_REPLY_UPDATED
        self.session.flush()
        self.work.record(
            kind,
            subject_id=row.id,
            customer_id=None,
            payload={"savedReplyId": row.id, "title": title},
        )
        return row

    def delete(self, saved_id: int) -> None:
        row = self.get(saved_id)
        self.session.delete(row)
        self.session.flush()
        self.work.record(
            EventType.SAVED_REPLY_DELETED,
            subject_id=saved_id,
            customer_id=None,
            payload={"savedReplyId": saved_id, "title": row.title},
        )

    def _count(self) -> int:
        return int(self.session.scalar(select(func.count()).select_from(SavedReply)) or 0)
