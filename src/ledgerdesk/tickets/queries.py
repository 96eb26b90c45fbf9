"""Reads on the request path for tickets, replies and attachments.

Customer reads put the owner's id in the query: another customer's ticket is simply not
found. Attachments are reached through their ticket, so the same scoping covers them.
The staff side (admin CLI) reads through the same statements with the owner left open.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal, NamedTuple

from sqlalchemy import (
    BigInteger,
    Integer,
    String,
    bindparam,
    case,
    column,
    func,
    literal,
    literal_column,
    or_,
    select,
    table,
    tuple_,
)
from sqlalchemy.orm import aliased
from sqlalchemy.sql import ColumnElement, Select

from ledgerdesk.db.models import (
    Attachment,
    Reply,
    SearchEntry,
    Ticket,
    TicketTag,
    TicketView,
    User,
)
from ledgerdesk.db.prepared import Db, Prepared
from ledgerdesk.db.search import match_for, terms


class TicketRecord(NamedTuple):
    id: int
    code: int
    user_id: int
    title: str
    reference: str
    status: int
    priority: int
    created_at: int
    status_updated_at: int
    last_updated_at: int


class TurnRecord(NamedTuple):
    status: int
    turn: int
    pending_until: int | None


class ReplyRecord(NamedTuple):
    id: int
    author_id: int
    author_name: str
    created_at: int
    title: str
    content: str
    internal: bool


class AttachmentRecord(NamedTuple):
    id: int
    reply_id: int
    name: str
    content_type: str
    size: int
    sha256: str


_TICKET_COLUMNS = [getattr(Ticket, field) for field in TicketRecord._fields]
_ATTACHMENT_COLUMNS = [getattr(Attachment, field) for field in AttachmentRecord._fields]


def _tickets(*, by_owner: bool, by_status: bool) -> Prepared:
    query: Select[*tuple[Any, ...]] = select(*_TICKET_COLUMNS)
    if by_owner:
        query = query.where(Ticket.user_id == bindparam("user_id"))
    if by_status:
        query = query.where(Ticket.status == bindparam("status"))
    return Prepared(query.order_by(Ticket.created_at.desc(), Ticket.id.desc()))


# One prepared statement per filter combination: prepared SQL has no optional clauses.
_OVERVIEW = {
    (by_owner, by_status): _tickets(by_owner=by_owner, by_status=by_status)
    for by_owner in (True, False)
    for by_status in (True, False)
}
_TICKET_OF_OWNER = Prepared(
    select(*_TICKET_COLUMNS).where(
        Ticket.id == bindparam("ticket_id"), Ticket.user_id == bindparam("user_id")
    )
)
_TICKET = Prepared(select(*_TICKET_COLUMNS).where(Ticket.id == bindparam("ticket_id")))
_TURN_OF_OWNER = Prepared(
    select(Ticket.status, Ticket.turn, Ticket.pending_until).where(
        Ticket.id == bindparam("ticket_id"), Ticket.user_id == bindparam("user_id")
    )
)
_REPLY_COLUMNS = (
    Reply.id,
    Reply.author_id,
    User.name,
    Reply.created_at,
    Reply.title,
    Reply.content,
    Reply.internal,
)


def _replies(*, with_internal: bool) -> Prepared:
    query = (
        select(*_REPLY_COLUMNS)
        .join(User, User.id == Reply.author_id)
        .where(Reply.ticket_id == bindparam("ticket_id"))
    )
    if not with_internal:
        query = query.where(Reply.internal.is_(False))
    return Prepared(query.order_by(Reply.id))


def _attachments(*, with_internal: bool) -> Prepared:
    query = select(*_ATTACHMENT_COLUMNS).where(Attachment.ticket_id == bindparam("ticket_id"))
    if not with_internal:
        query = query.join(Reply, Reply.id == Attachment.reply_id).where(Reply.internal.is_(False))
    return Prepared(query.order_by(Attachment.id))


# Internal notes (and their files) are only ever read with_internal for staff.
_REPLIES = {internal: _replies(with_internal=internal) for internal in (True, False)}
_ATTACHMENTS = {internal: _attachments(with_internal=internal) for internal in (True, False)}
_ATTACHMENT_OF_OWNER = Prepared(
    select(*_ATTACHMENT_COLUMNS)
    .join(Ticket, Ticket.id == Attachment.ticket_id)
    .join(Reply, Reply.id == Attachment.reply_id)
    .where(
        Attachment.id == bindparam("attachment_id"),
        Attachment.ticket_id == bindparam("ticket_id"),
        Ticket.user_id == bindparam("user_id"),
        Reply.internal.is_(False),
    )
)
_ATTACHMENT = Prepared(
    select(*_ATTACHMENT_COLUMNS).where(
        Attachment.id == bindparam("attachment_id"),
        Attachment.ticket_id == bindparam("ticket_id"),
    )
)


# -- the staff queue ------------------------------------------------------------------

QueueSort = Literal["waiting", "priority", "due"]
SearchSort = Literal["best", "waiting", "priority", "due"]
NEVER = 2**53  # the due time of a ticket without one, last in the order by due time
Owner = Literal["any", "mine", "unassigned"]
TurnFilter = Literal["any", "ours", "customers"]
# Ticket priorities, highest first (SPEC: 1 Low, 2 Normal, 3 High, 4 Highest).
PRIORITIES = (4, 3, 2, 1)


class QueueRow(NamedTuple):
    id: int
    code: int
    user_id: int
    customer_name: str
    title: str
    status: int
    priority: int
    created_at: int
    last_updated_at: int
    assignee_id: int | None
    assignee_name: str | None
    turn: int
    customer_said_at: int | None
    pending_until: int | None
    seen_at: int | None  # when the staff member reading the queue last opened it
    due_at: int | None  # when the running service-level target falls due

    @property
    def unread(self) -> bool:
        """The customer wrote since the reader last opened it."""
        said = self.customer_said_at
        return said is not None and (self.seen_at is None or said > self.seen_at)

    def ours(self, now: int) -> bool:
        """Whether it is our turn: the customer spoke last, or waiting for them ran out."""
        return self.turn == 1 or (self.pending_until is not None and self.pending_until <= now)


@dataclass(frozen=True)
class QueueFilter:
    """What the queue shows; None leaves a filter open."""

    status: int | None = 1
    priority: int | None = None
    user_id: int | None = None
    sort: QueueSort = "waiting"
    owner: Owner = "any"  # mine: ``staff_id``'s
    staff_id: int | None = None  # who reads the queue: theirs, and what they have not read
    turn: TurnFilter = "any"  # as of ``now``: waiting for the customer may have run out
    now: int = 0
    tag: str | None = None


@dataclass(frozen=True)
class QueueCursor:
    """Where the next page starts: the sort values of the last row shown."""

    priority: int
    last_updated_at: int
    id: int


_ASSIGNEE = aliased(User)


def _filtered(
    query: Select[*tuple[Any, ...]],
    ticket: Any = Ticket,
    *,
    status: bool,
    priority: bool,
    owner: bool,
    assignee: Owner,
    turn: TurnFilter,
    tag: bool,
) -> Select[*tuple[Any, ...]]:
    """The queue's columns' joins and its filters, as bind parameters (``ticket``: the
    tickets table, or an alias of it)."""
    query = query.join(User, User.id == ticket.user_id)
    query = query.outerjoin(_ASSIGNEE, _ASSIGNEE.id == ticket.assignee_id).outerjoin(
        TicketView,
        (TicketView.ticket_id == ticket.id)
        & (TicketView.user_id == bindparam("reader", type_=BigInteger())),
    )
    if assignee == "mine":
        query = query.where(ticket.assignee_id == bindparam("assignee_id"))
    elif assignee == "unassigned":
        query = query.where(ticket.assignee_id.is_(None))
    if tag:
        query = query.where(
            select(literal(1))
            .where(TicketTag.ticket_id == ticket.id, TicketTag.tag == bindparam("tag"))
            .exists()
        )
    if turn == "ours":
        query = query.where(
            or_(ticket.turn == 1, ticket.pending_until <= bindparam("now", type_=BigInteger()))
        )
    elif turn == "customers":
        query = query.where(
            ticket.turn == 2,
            or_(
                ticket.pending_until.is_(None),
                ticket.pending_until > bindparam("now", type_=BigInteger()),
            ),
        )
    if status:
        query = query.where(ticket.status == bindparam("status"))
    if priority:
        query = query.where(ticket.priority == bindparam("priority"))
    if owner:
        query = query.where(ticket.user_id == bindparam("user_id"))
    return query


def _queue_columns(ticket: Any = Ticket) -> tuple[Any, ...]:
    return (
        ticket.id,
        ticket.code,
        ticket.user_id,
        User.name,
        ticket.title,
        ticket.status,
        ticket.priority,
        ticket.created_at,
        ticket.last_updated_at,
        ticket.assignee_id,
        _ASSIGNEE.name,
        ticket.turn,
        ticket.customer_said_at,
        ticket.pending_until,
        TicketView.seen_at,
        ticket.due_at,
    )


@lru_cache(maxsize=256)
def _queue(
    *,
    status: bool,
    priority: bool,
    owner: bool,
    after: bool,
    assignee: Owner = "any",
    turn: TurnFilter = "any",
    tag: bool = False,
    due: Literal["set", "unset"] | None = None,
) -> Prepared:
    """One prepared statement per combination of filters, built on first use; rows in
    waiting order (least recently updated first), which the indexes hold in order, or
    (``due``) the tickets with a due time, soonest first, or those without, by id: the
    (status, due_at, id) index holds each in order (a NULL-last order in one statement
    would be a sort of every open ticket).

    Keyset pagination: the next page continues after the last row's sort values, so a
    page costs the same at the millionth row as at the first, and rows added meanwhile
    neither repeat nor vanish between pages.
    """
    query = _filtered(
        select(*_queue_columns()),
        status=status,
        priority=priority,
        owner=owner,
        assignee=assignee,
        turn=turn,
        tag=tag,
    )
    if due == "unset":
        query = query.where(Ticket.due_at.is_(None))
        if after:
            query = query.where(Ticket.id > bindparam("after_id"))
        return Prepared(query.order_by(Ticket.id).limit(bindparam("limit")))
    if due == "set":
        query = query.where(Ticket.due_at.is_not(None))
    key = Ticket.due_at if due == "set" else Ticket.last_updated_at
    if after:
        query = query.where(
            tuple_(key, Ticket.id) > tuple_(bindparam("after_time"), bindparam("after_id"))
        )
    return Prepared(query.order_by(key, Ticket.id).limit(bindparam("limit")))


# A search considers the newest entries holding its words, this many at most: a word in
# most messages costs a bounded read (results rank within them: the page says so).
CANDIDATES = 2000
# (Constants written into the SQL: prepared statements take named parameters only.)
_TICKET_ENTRY, _MESSAGE_ENTRY = literal_column("2", Integer()), literal_column("1", Integer())
_CODE, _NOT_CODE = literal_column("1", Integer()), literal_column("0", Integer())


def _newest(dialect: str, limit: int) -> Select[*tuple[Any, ...]]:
    """The newest entries that hold every word (an entry's id grows with time), straight
    from the full-text index: id, ticket_id (a ticket's entry), reply_id (a message's)."""
    columns = (SearchEntry.id, SearchEntry.ticket_id, SearchEntry.reply_id)
    if dialect == "sqlite":
        fts = table("search_fts", column("rowid"))
        return (
            select(*columns)
            .select_from(fts)
            .join(SearchEntry, SearchEntry.id == fts.c.rowid)
            .where(literal_column("search_fts").op("MATCH")(bindparam("match", type_=String())))
            .order_by(fts.c.rowid.desc())
            .limit(limit)
        )
    # The planner chooses, from the words' statistics: for words in many entries, the
    # primary key backwards, testing each entry's stored vector, until it has enough
    # (reading the index would gather every match first); for rare words, the index.
    vector: ColumnElement[Any] = literal_column("search_entries.search_vector")  # 0023
    wanted = func.to_tsquery(literal_column("'simple'"), bindparam("match", type_=String()))
    return (
        select(*columns).where(vector.op("@@")(wanted)).order_by(SearchEntry.id.desc()).limit(limit)
    )


def _hits(dialect: str) -> Select[*tuple[Any, ...]]:
    """The tickets whose entries hold every word, each with how it ranks: where the words
    are (the ticket's own entry: its number, reference, customer, title; or only its
    messages), in how many of its entries, and how recent the newest of them is."""
    entries = _newest(dialect, CANDIDATES).subquery()
    ticket_id = func.coalesce(entries.c.ticket_id, Reply.ticket_id)
    kind = case((entries.c.ticket_id.is_not(None), _TICKET_ENTRY), else_=_MESSAGE_ENTRY)
    return (
        select(
            ticket_id.label("ticket_id"),
            func.max(kind).label("kind"),
            func.count().label("found"),
            func.max(entries.c.id).label("newest"),
        )
        .select_from(entries)
        .outerjoin(Reply, Reply.id == entries.c.reply_id)
        .group_by(ticket_id)
    )


_MATCHES = {
    dialect: Prepared(select(func.count()).select_from(_newest(dialect, CANDIDATES + 1).subquery()))
    for dialect in ("sqlite", "postgresql")
}


@lru_cache(maxsize=256)
def _search(
    *,
    dialect: str,
    status: bool,
    priority: bool,
    owner: bool,
    assignee: Owner,
    turn: TurnFilter,
    tag: bool,
    sort: SearchSort,
) -> Prepared:
    """The queue's filters over the tickets a search finds, best match first (an exact
    ticket code first of all) or in one of the queue's orders; pages by offset."""
    hits = _hits(dialect).subquery()
    if dialect == "postgresql":
        # LATERAL ... LIMIT 1 (never pulled up into a join): each hit's ticket by its
        # primary key, a nested loop; estimating a few thousand hits, the planner would
        # otherwise hash every ticket in the database.
        found = (
            select(Ticket).where(Ticket.id == hits.c.ticket_id).limit(literal_column("1")).lateral()
        )
        ticket: Any = aliased(Ticket, found)
        base = select(*_queue_columns(ticket)).select_from(hits).join(found, literal_column("true"))
    else:
        ticket = Ticket
        base = (
            select(*_queue_columns()).select_from(hits).join(Ticket, Ticket.id == hits.c.ticket_id)
        )
    query = _filtered(
        base,
        ticket,
        status=status,
        priority=priority,
        owner=owner,
        assignee=assignee,
        turn=turn,
        tag=tag,
    )
    if sort == "best":  # the ticket whose number it is, then by where, how often, when
        code = case((ticket.code == bindparam("code"), _CODE), else_=_NOT_CODE)
        query = query.order_by(
            code.desc(),
            hits.c.kind.desc(),
            hits.c.found.desc(),
            hits.c.newest.desc(),
        )
    elif sort == "due":
        query = query.order_by(func.coalesce(ticket.due_at, NEVER), ticket.id)
    elif sort == "priority":
        query = query.order_by(ticket.priority.desc(), ticket.last_updated_at, ticket.id)
    else:
        query = query.order_by(ticket.last_updated_at, ticket.id)
    return Prepared(query.limit(bindparam("limit")).offset(bindparam("offset")))


_DUE_COUNTS = Prepared(
    select(
        func.count().filter(Ticket.due_at <= bindparam("now")),
        func.count().filter(Ticket.due_at > bindparam("now"), Ticket.due_at <= bindparam("soon")),
    ).where(Ticket.status == 1, Ticket.due_at.is_not(None))
)
_OPEN_BY_PRIORITY = Prepared(
    select(Ticket.priority, func.count())
    .where(Ticket.status == 1)
    .group_by(Ticket.priority)
    .order_by(Ticket.priority)
)
_OLDEST_WAITING = Prepared(
    select(*_TICKET_COLUMNS)
    .where(Ticket.status == 1)
    .order_by(Ticket.last_updated_at, Ticket.id)
    .limit(1)
)


def _filter_params(which: QueueFilter, priority: int | None) -> dict[str, Any]:
    """The bind parameters of the filters ``_filtered`` applies."""
    params: dict[str, Any] = {"reader": which.staff_id or 0}
    if which.owner == "mine":
        params["assignee_id"] = which.staff_id
    if which.turn != "any":
        params["now"] = which.now
    if which.tag:
        params["tag"] = which.tag
    if which.status is not None:
        params["status"] = which.status
    if priority is not None:
        params["priority"] = priority
    if which.user_id is not None:
        params["user_id"] = which.user_id
    return params


class Present(NamedTuple):
    """A staff member on a ticket's page now."""

    user_id: int
    name: str
    typing: bool


_PRESENT = Prepared(
    select(
        TicketView.user_id,
        User.name,
        TicketView.typing_until > bindparam("now", type_=BigInteger()),
    )
    .join(User, User.id == TicketView.user_id)
    .where(
        TicketView.ticket_id == bindparam("ticket_id"),
        TicketView.here_until > bindparam("now", type_=BigInteger()),
    )
    .order_by(User.name, TicketView.user_id)
)


class TicketQueries:
    def __init__(self, db: Db) -> None:
        self.db = db

    def tickets(self, *, user_id: int | None, status: int | None) -> list[TicketRecord]:
        """Newest first (then highest id); ``user_id`` None means every customer's."""
        query = _OVERVIEW[(user_id is not None, status is not None)]
        params = {"user_id": user_id, "status": status}
        return [
            TicketRecord(*row)
            for row in self.db.rows(query, **{k: v for k, v in params.items() if v is not None})
        ]

    def ticket(self, ticket_id: int, *, user_id: int | None) -> TicketRecord | None:
        row = (
            self.db.first(_TICKET, ticket_id=ticket_id)
            if user_id is None
            else self.db.first(_TICKET_OF_OWNER, ticket_id=ticket_id, user_id=user_id)
        )
        return None if row is None else TicketRecord(*row)

    def turn(self, ticket_id: int, *, user_id: int) -> TurnRecord | None:
        """A customer's ticket's status, turn and waiting (getTicket with details)."""
        row = self.db.first(_TURN_OF_OWNER, ticket_id=ticket_id, user_id=user_id)
        return None if row is None else TurnRecord(*row)

    def replies(self, ticket_id: int, *, with_internal: bool) -> list[ReplyRecord]:
        """In the order they were stored, each with its author's name."""
        rows = self.db.rows(_REPLIES[with_internal], ticket_id=ticket_id)
        return [ReplyRecord(*row) for row in rows]

    def attachments(self, ticket_id: int, *, with_internal: bool) -> list[AttachmentRecord]:
        """Every attachment of a ticket in one query (the caller groups them by reply)."""
        rows = self.db.rows(_ATTACHMENTS[with_internal], ticket_id=ticket_id)
        return [AttachmentRecord(*row) for row in rows]

    def attachment(
        self, ticket_id: int, attachment_id: int, *, user_id: int | None
    ) -> AttachmentRecord | None:
        """One attachment of a customer's ticket (never of an internal note), or, with
        ``user_id`` None, any attachment of the ticket (staff)."""
        row = (
            self.db.first(_ATTACHMENT, ticket_id=ticket_id, attachment_id=attachment_id)
            if user_id is None
            else self.db.first(
                _ATTACHMENT_OF_OWNER,
                ticket_id=ticket_id,
                attachment_id=attachment_id,
                user_id=user_id,
            )
        )
        return None if row is None else AttachmentRecord(*row)

    # -- staff ------------------------------------------------------------------------

    def queue(self, which: QueueFilter, *, after: QueueCursor | None, limit: int) -> list[QueueRow]:
        """A page of the staff queue; ``after`` is the previous page's last row.

        By priority, the page is read one priority at a time, highest first, each in
        waiting order straight from the (status, priority, last update) index, rather
        than sorting every matching row on two keys in opposite directions.
        """
        rows: list[QueueRow] = []
        if which.sort == "due":  # those with a due time first, then those without
            if after is None or after.last_updated_at < NEVER:
                rows = self._queue_page(which, which.priority, after, limit, due="set")
            if len(rows) < limit:
                since = after if after is not None and after.last_updated_at >= NEVER else None
                rows += self._queue_page(
                    which, which.priority, since, limit - len(rows), due="unset"
                )
            return rows
        if which.sort != "priority" or which.priority is not None:
            return self._queue_page(which, which.priority, after, limit)
        for priority in PRIORITIES:
            if after is not None and priority > after.priority:
                continue
            since = after if after is not None and priority == after.priority else None
            rows += self._queue_page(which, priority, since, limit - len(rows))
            if len(rows) >= limit:
                break
        return rows

    def _queue_page(
        self,
        which: QueueFilter,
        priority: int | None,
        after: QueueCursor | None,
        limit: int,
        *,
        due: Literal["set", "unset"] | None = None,
    ) -> list[QueueRow]:
        statement = _queue(
            status=which.status is not None,
            priority=priority is not None,
            owner=which.user_id is not None,
            after=after is not None,
            assignee=which.owner,
            turn=which.turn,
            tag=bool(which.tag),
            due=due,
        )
        params = _filter_params(which, priority)
        params["limit"] = limit
        if after is not None:
            params["after_id"] = after.id
            if due != "unset":
                params["after_time"] = after.last_updated_at
        return [QueueRow(*row) for row in self.db.rows(statement, **params)]

    def search(
        self, which: QueueFilter, text: str, *, sort: SearchSort, offset: int, limit: int
    ) -> list[QueueRow]:
        """The tickets whose number, reference, customer (name, email), title or one of
        whose messages (internal notes too: staff read them) hold every word of ``text``
        (as the start of a word, whatever the case and accents), through the queue's
        filters; nothing when ``text`` has no words."""
        found = terms(text)
        if not found:
            return []
        dialect = self.db.dialect.name
        statement = _search(
            dialect=dialect,
            status=which.status is not None,
            priority=which.priority is not None,
            owner=which.user_id is not None,
            assignee=which.owner,
            turn=which.turn,
            tag=bool(which.tag),
            sort=sort,
        )
        params = _filter_params(which, which.priority)
        params.update(
            match=match_for(dialect, found),
            limit=limit,
            offset=offset,
        )
        if sort == "best":
            code = text.strip().lstrip("#")
            params["code"] = int(code) if code.isdigit() and len(code) < 12 else -1
        return [QueueRow(*row) for row in self.db.rows(statement, **params)]

    def matches(self, text: str) -> int:
        """How many entries hold every word of ``text``, counted up to one more than a
        search considers (``CANDIDATES``)."""
        found = terms(text)
        if not found:
            return 0
        dialect = self.db.dialect.name
        match = match_for(dialect, found)
        row = self.db.first(_MATCHES[dialect], match=match)
        return int(row[0]) if row else 0

    def present(self, ticket_id: int, now: int, *, but: int | None = None) -> list[Present]:
        """Who is on the ticket's page now (but ``but``, who asks), and whether they
        are writing a reply."""
        rows = self.db.rows(_PRESENT, ticket_id=ticket_id, now=now)
        return [
            Present(user_id, name, bool(typing)) for user_id, name, typing in rows if user_id != but
        ]

    def due_counts(self, now: int, *, soon: int = 3600) -> tuple[int, int]:
        """Open tickets whose service-level target has passed, and those due within
        ``soon`` seconds."""
        row = self.db.first(_DUE_COUNTS, now=now, soon=now + soon)
        return (int(row[0] or 0), int(row[1] or 0)) if row is not None else (0, 0)

    def open_by_priority(self) -> dict[int, int]:
        return dict(self.db.rows(_OPEN_BY_PRIORITY))

    def oldest_waiting(self) -> TicketRecord | None:
        """The open ticket that has gone longest without a reply or a change."""
        row = self.db.first(_OLDEST_WAITING)
        return None if row is None else TicketRecord(*row)
