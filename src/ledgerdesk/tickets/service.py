"""Ticket rules: the status machine, replies with attachments, and who may see what.

Status machine (SPEC 3.6, 3.8, 3.9):

    open (1) --close--> closed (0) --reopen / customer reply--> open (1)
    any ------staff force-close------> forcibly closed (2): final for the customer

Closing a closed ticket, reopening an open one and closing a forcibly closed one
succeed and change nothing. Staff may reopen a forcibly closed ticket; customers may
not. Every real status change sets ``status_updated_at``; every reply sets
``last_updated_at``. Staff replies never change the status. Internal notes (staff only)
change neither the status nor ``last_updated_at``, and customers never read them.

The support day (staff's, never in the protocol's answers): a ticket has an assignee
(a staff member, or none) and a *turn*: ours when the customer spoke last (the queue's
clock counts from ``customer_said_at``), the customer's when staff did. Staff can make
it wait for the customer until a moment (``pending_until``): it is back in our queue
when that passes or the customer answers, whichever comes first.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ledgerdesk.attachments.incoming import IncomingFile
from ledgerdesk.attachments.rules import MAX_ATTACHMENTS
from ledgerdesk.attachments.storage import BlobContent, BlobStore
from ledgerdesk.db.models import ServiceLevelState, Ticket, TicketTag, User
from ledgerdesk.errors import InternalError, InvalidState, NotFound, invalid
from ledgerdesk.events.types import EventType
from ledgerdesk.events.work import Work
from ledgerdesk.service_levels import ServiceLevels
from ledgerdesk.tickets.queries import (
    AttachmentRecord,
    ReplyRecord,
    TicketQueries,
    TicketRecord,
)
from ledgerdesk.tickets.repository import TicketRepository, record_of

log = logging.getLogger(__name__)


class Turn(IntEnum):
    """Whose move it is on an open ticket."""

    OURS = 1  # the customer spoke last
    CUSTOMERS = 2  # staff spoke last


PRIORITY_NAMES = {1: "Low", 2: "Normal", 3: "High", 4: "Highest"}


class TicketStatus(IntEnum):
    """A ticket's status, as stored and as the protocol numbers it."""

    CLOSED = 0
    OPEN = 1
    FORCE_CLOSED = 2

    @property
    def label(self) -> str:
        return "forcibly closed" if self is TicketStatus.FORCE_CLOSED else self.name.lower()


MAX_TITLE = 255
MAX_CONTENT = 65535
MAX_PENDING_SECONDS = 366 * 86_400
MAX_TAGS = 20
_TAG = re.compile(r"[\w .:-]{1,40}")


def checked_tag(text: str) -> str:
    """A tag as stored: trimmed, lower case, within the rules (``invalid`` otherwise)."""
    tag = " ".join(text.split()).lower()
    if not _TAG.fullmatch(tag):
        raise invalid("tags", "a tag is 1 to 40 letters, digits, spaces or -_.:")
    return tag


_MENTION = re.compile(r"(?<![\w@])@([\w][\w.-]*)")


def mentioned(session: Session, text: str) -> list[int]:
    """The enabled staff members ``text`` names with ``@``: by the part of their email
    address before the ``@``, by their name without spaces, or by their first name when
    no other enabled staff member has it; in order of first mention."""
    names = [m.rstrip(".-").lower() for m in _MENTION.findall(text)]
    if not names:
        return []
    staff = session.execute(
        select(User.id, User.name, User.email).where(
            User.is_staff.is_(True), User.disabled_at.is_(None)
        )
    ).all()
    firsts: dict[str, list[int]] = defaultdict(list)
    handles: dict[str, int] = {}
    for member in staff:
        words = member.name.lower().split()
        if words:
            firsts[words[0]].append(member.id)
        handles["".join(words)] = member.id
        if member.email:
            handles.setdefault(member.email.lower().partition("@")[0], member.id)
    found: list[int] = []
    for name in names:
        match = handles.get(name)
        if match is None and len(firsts.get(name, [])) == 1:
            match = firsts[name][0]
        if match is not None and match not in found:
            found.append(match)
    return found


def due_time(ticket: Ticket, levels: ServiceLevels | None) -> int | None:
    """When the ticket's running service-level target falls due: the customer waits
    since ``waiting_since`` (or will, from the end of waiting for them); none while
    closed or while it is the customer's turn without an end."""
    if levels is None or ticket.status != TicketStatus.OPEN:
        return None
    answered = ticket.answered_at is not None
    if ticket.turn == Turn.OURS and ticket.waiting_since is not None:
        return levels.due(priority=ticket.priority, answered=answered, since=ticket.waiting_since)
    if ticket.pending_until is not None:
        return levels.due(priority=ticket.priority, answered=answered, since=ticket.pending_until)
    return None


def due_times_current(session: Session, levels: ServiceLevels | None) -> bool:
    """Whether the stored due times were computed with ``levels``."""
    state = session.get(ServiceLevelState, 1)
    return state is not None and state.fingerprint == _fingerprint(levels)


def recompute_due_batch(
    session: Session, levels: ServiceLevels | None, after: int, *, batch: int = 500
) -> int | None:
    """The due times of the open tickets after id ``after`` (at most ``batch``) under
    ``levels``; the last id done, or None when none were left. Derived bookkeeping, like
    a read marker: no events."""
    tickets = session.scalars(
        select(Ticket)
        .where(Ticket.status == TicketStatus.OPEN, Ticket.id > after)
        .order_by(Ticket.id)
        .limit(batch)
        .with_for_update()
    ).all()
    for ticket in tickets:
        if ticket.turn == Turn.OURS and ticket.waiting_since is None:
            ticket.waiting_since = ticket.customer_said_at or ticket.created_at
        ticket.due_at = due_time(ticket, levels)
    return tickets[-1].id if tickets else None


def store_due_fingerprint(session: Session, levels: ServiceLevels | None) -> None:
    state = session.get(ServiceLevelState, 1, with_for_update=True)
    if state is None:
        session.add(ServiceLevelState(id=1, fingerprint=_fingerprint(levels)))
    else:
        state.fingerprint = _fingerprint(levels)


def _fingerprint(levels: ServiceLevels | None) -> str:
    return "off" if levels is None else levels.fingerprint()


def tags_of(session: Session, ticket_ids: Sequence[int]) -> dict[int, list[str]]:
    """The tags of each of these tickets, sorted (one query)."""
    found: dict[int, list[str]] = defaultdict(list)
    if ticket_ids:
        rows = session.execute(
            select(TicketTag.ticket_id, TicketTag.tag)
            .where(TicketTag.ticket_id.in_(list(ticket_ids)))
            .order_by(TicketTag.ticket_id, TicketTag.tag)
        )
        for ticket_id, tag in rows:
            found[ticket_id].append(tag)
    return dict(found)


@dataclass(frozen=True)
class ReplyView:
    reply: ReplyRecord
    attachments: Sequence[AttachmentRecord]


@dataclass(frozen=True)
class ThreadView:
    ticket: TicketRecord
    replies: Sequence[ReplyView]


class TicketReader:
    """What may be read of tickets: a customer's own, or (``user_id`` None) all, for staff."""

    def __init__(self, queries: TicketQueries) -> None:
        self.queries = queries

    def overview(self, *, user_id: int | None, status: int | None) -> list[TicketRecord]:
        return self.queries.tickets(user_id=user_id, status=status)

    def thread(self, ticket_id: int, *, user_id: int | None) -> ThreadView:
        """A ticket with its replies and their attachments, in three queries.

        A customer's thread (``user_id`` given) never holds internal notes; staff's does.
        """
        ticket = self.queries.ticket(ticket_id, user_id=user_id)
        if ticket is None:
            raise NotFound(f"Ticket {ticket_id} not found.")
        staff = user_id is None
        by_reply: dict[int, list[AttachmentRecord]] = defaultdict(list)
        for attachment in self.queries.attachments(ticket.id, with_internal=staff):
            by_reply[attachment.reply_id].append(attachment)
        replies = [
            ReplyView(reply, by_reply.get(reply.id, []))
            for reply in self.queries.replies(ticket.id, with_internal=staff)
        ]
        return ThreadView(ticket, replies)

    def attachment(
        self, ticket_id: int, attachment_id: int, *, user_id: int | None, store: BlobStore
    ) -> tuple[AttachmentRecord, BlobContent]:
        """An attachment's bytes: of the customer's own ticket, or any (``user_id`` None)."""
        attachment = self.queries.attachment(ticket_id, attachment_id, user_id=user_id)
        if attachment is None:
            raise NotFound(f"Attachment {attachment_id} of ticket {ticket_id} not found.")
        content = store.open(self.queries.db, attachment.sha256)
        if content is None:
            log.error("bytes of attachment %s (%s) are missing", attachment.id, attachment.sha256)
            raise InternalError()
        return attachment, content


class TicketService:
    """Changes to tickets: creating, replying, and the status machine. Each change that
    happens records its event in the unit of work; one that changes nothing records none."""

    def __init__(self, work: Work) -> None:
        self.work = work
        self.repository = TicketRepository(work.session)

    @property
    def session(self) -> Session:
        return self.repository.session

    # -- writing ----------------------------------------------------------------------

    def create(
        self,
        *,
        customer_id: int,
        title: str,
        content: str,
        reference: str,
        priority: int,
        files: Sequence[IncomingFile],
        author: User | None = None,
    ) -> TicketRecord:
        """A new open ticket whose first reply holds the content and the files, written
        by the customer, or by ``author``, a staff member opening it on their behalf
        (then it is the customer's turn)."""
        _check_text(title=title, content=content, files=files)
        by_staff = author is not None and author.is_staff
        if author is not None and not by_staff and author.id != customer_id:
            raise invalid("author", "a customer opens tickets of their own only")
        if priority not in PRIORITY_NAMES:
            raise invalid("priorityId", "must be 1, 2, 3 or 4")
        now = self.work.now
        ticket = self.repository.insert_ticket(
            {
                "code": self._unused_code(),
                "user_id": customer_id,
                "title": title,
                "reference": reference,
                "status": int(TicketStatus.OPEN),
                "priority": priority,
                "created_at": now,
                "status_updated_at": now,
                "last_updated_at": now,
                "turn": int(Turn.CUSTOMERS if by_staff else Turn.OURS),
                "customer_said_at": None if by_staff else now,
                "waiting_since": None if by_staff else now,
                "answered_at": now if by_staff else None,
                "due_at": None if by_staff else self._due_for(priority, answered=False, since=now),
            }
        )
        writer = author.id if author is not None and by_staff else customer_id
        reply_id, attachments = self._add_reply(ticket, writer, content, files)
        self.work.record(
            EventType.TICKET_CREATED,
            subject_id=ticket.id,
            customer_id=customer_id,
            payload={
                "ticketId": ticket.id,
                "ticketCode": ticket.code,
                "title": title,
                "reference": reference,
                "priorityId": priority,
                "replyId": reply_id,
                "authorId": writer,
                "by": "staff" if by_staff else "customer",
                "content": content,
                "attachments": attachments,
            },
        )
        return ticket

    def reply(
        self, ticket_id: int, *, author: User, content: str, files: Sequence[IncomingFile]
    ) -> TicketRecord:
        """Add a reply. A customer's reply reopens a closed ticket; staff replies anywhere."""
        _check_text(content=content, files=files)
        now = self.work.now
        ticket = self._require(ticket_id, user_id=None if author.is_staff else author.id)
        reopened = False
        if not author.is_staff:
            if ticket.status == TicketStatus.FORCE_CLOSED:
                raise InvalidState(f"Ticket {ticket_id} was closed by staff and takes no replies.")
            if ticket.status == TicketStatus.CLOSED:
                ticket.status = int(TicketStatus.OPEN)
                ticket.status_updated_at = now
                reopened = True
            if ticket.turn != Turn.OURS or ticket.waiting_since is None or reopened:
                ticket.waiting_since = now  # the customer waits from this message on
            ticket.turn, ticket.customer_said_at, ticket.pending_until = int(Turn.OURS), now, None
        else:
            ticket.turn, ticket.waiting_since = int(Turn.CUSTOMERS), None
            ticket.answered_at = ticket.answered_at or now
        ticket.last_updated_at = now
        self._refresh_due(ticket)
        reply_id, attachments = self._add_reply(ticket, author.id, content, files)
        self._record_message(
            EventType.TICKET_REPLIED,
            ticket,
            reply_id,
            author,
            by="staff" if author.is_staff else "customer",
            content=content,
            attachments=attachments,
            reopened=reopened,
        )
        return record_of(ticket)

    def note(
        self, ticket_id: int, *, author: User, content: str, files: Sequence[IncomingFile]
    ) -> TicketRecord:
        """An internal note: staff only, never shown to the customer. It changes neither
        the status nor the time the customer sees as the last update. Its event carries
        no content: consumers that may reach customers never see a note's words. The
        staff members it names with ``@`` (``mentioned``) are in its event (``mentions``):
        the mail relay tells them."""
        if not author.is_staff:
            raise invalid("internal", "only staff write internal notes")
        _check_text(content=content, files=files)
        ticket = self._require(ticket_id, user_id=None)
        reply_id, attachments = self._add_reply(ticket, author.id, content, files, internal=True)
        self._record_message(
            EventType.TICKET_NOTE_ADDED,
            ticket,
            reply_id,
            author,
            attachments=len(attachments),
            mentions=[m for m in mentioned(self.session, content) if m != author.id],
        )
        return record_of(ticket)

    def close(
        self, ticket_id: int, *, user_id: int | None, after_reply: bool = False
    ) -> TicketRecord:
        """Close an open ticket (``after_reply``: with a reply just sent, which told the
        customer already: its event says so, and no mail of its own follows)."""
        ticket = self._require(ticket_id, user_id=user_id)
        if ticket.status == TicketStatus.OPEN:
            self._set_status(ticket, TicketStatus.CLOSED, after_reply=after_reply)
        return record_of(ticket)

    def reopen(self, ticket_id: int, *, user_id: int | None) -> TicketRecord:
        """Open a closed ticket again; only staff (``user_id`` None) reopen a forcibly
        closed one."""
        ticket = self._require(ticket_id, user_id=user_id)
        if ticket.status == TicketStatus.FORCE_CLOSED and user_id is not None:
            raise InvalidState(f"Ticket {ticket_id} was closed by staff and cannot be reopened.")
        if ticket.status != TicketStatus.OPEN:
            self._set_status(ticket, TicketStatus.OPEN)
        return record_of(ticket)

    def force_close(self, ticket_id: int) -> TicketRecord:
        ticket = self._require(ticket_id, user_id=None)
        if ticket.status != TicketStatus.FORCE_CLOSED:
            self._set_status(ticket, TicketStatus.FORCE_CLOSED)
        return record_of(ticket)

    # -- the support day (staff) --------------------------------------------------------

    def assign(self, ticket_id: int, assignee_id: int | None) -> TicketRecord:
        """Give the ticket to a staff member (None: to nobody)."""
        ticket = self._require(ticket_id, user_id=None)
        if assignee_id is not None:
            staff = self.session.get(User, assignee_id)
            if staff is None or not staff.is_staff or staff.disabled_at is not None:
                raise invalid("assignee", "must be an enabled staff member")
        if ticket.assignee_id != assignee_id:
            previous, ticket.assignee_id = ticket.assignee_id, assignee_id
            self._record_change(
                EventType.TICKET_ASSIGNED,
                ticket,
                assigneeId=assignee_id,
                previousAssigneeId=previous,
            )
        return record_of(ticket)

    def set_priority(self, ticket_id: int, priority: int) -> TicketRecord:
        ticket = self._require(ticket_id, user_id=None)
        if priority not in PRIORITY_NAMES:
            raise invalid("priority", "must be 1 (Low), 2 (Normal), 3 (High) or 4 (Highest)")
        if ticket.priority != priority:
            previous, ticket.priority = ticket.priority, priority
            self._refresh_due(ticket)
            self._record_change(
                EventType.TICKET_PRIORITY_CHANGED,
                ticket,
                priorityId=priority,
                previousPriorityId=previous,
            )
        return record_of(ticket)

    def wait_for_customer(self, ticket_id: int, until: int) -> TicketRecord:
        """The customer's turn until ``until`` (a Unix time): out of our queue till then,
        or till the customer answers."""
        ticket = self._require(ticket_id, user_id=None)
        if ticket.status != TicketStatus.OPEN:
            raise InvalidState(f"Ticket {ticket_id} is not open: only an open ticket waits.")
        if until <= self.work.now:
            raise invalid("until", "must be in the future")
        if until > self.work.now + MAX_PENDING_SECONDS:
            raise invalid("until", "must be within a year")
        ticket.turn, ticket.pending_until, ticket.waiting_since = int(Turn.CUSTOMERS), until, None
        self._refresh_due(ticket)  # the next answer's clock starts when waiting runs out
        self._record_change(EventType.TICKET_PENDING, ticket, until=until)
        return record_of(ticket)

    def tags(self, ticket_id: int) -> list[str]:
        return tags_of(self.session, [ticket_id]).get(ticket_id, [])

    def set_tags(self, ticket_id: int, tags: Sequence[str]) -> list[str]:
        """The ticket's tags become ``tags`` (each lower case, 1 to 40 letters, digits,
        spaces or ``-_.:``; at most ``MAX_TAGS``); the ones it has, sorted."""
        ticket = self._require(ticket_id, user_id=None)
        wanted = sorted({checked_tag(tag) for tag in tags if tag.strip()})
        if len(wanted) > MAX_TAGS:
            raise invalid("tags", f"a ticket has {MAX_TAGS} tags at most")
        current = self.tags(ticket_id)
        added = [t for t in wanted if t not in current]
        removed = [t for t in current if t not in wanted]
        if removed:
            self.session.execute(
                delete(TicketTag).where(
                    TicketTag.ticket_id == ticket_id, TicketTag.tag.in_(removed)
                )
            )
        for tag in added:
            self.session.add(TicketTag(ticket_id=ticket_id, tag=tag))
        if added or removed:
            self.session.flush()
            self._record_change(
                EventType.TICKET_TAGGED, ticket, tags=wanted, added=added, removed=removed
            )
        return wanted

    def merge(self, ticket_id: int, into_id: int, *, author: User) -> TicketRecord:
        """Merge a ticket into another of the same customer: its messages, files, tags and
        received mail move there; it stays, closed for good, with a message pointing to
        the other (the customer's old id still answers). The ticket merged into."""
        if ticket_id == into_id:
            raise invalid("into", "is this ticket itself")
        first, second = sorted((ticket_id, into_id))  # locked in one order: no deadlock
        locked = {
            first: self._require(first, user_id=None),
            second: self._require(second, user_id=None),
        }
        source, target = locked[ticket_id], locked[into_id]
        if source.user_id != target.user_id:
            raise invalid("into", "is another customer's ticket: only a customer's own merge")
        if source.merged_into_id is not None:
            raise InvalidState(f"Ticket {ticket_id} was merged already.")
        if target.merged_into_id is not None:
            raise invalid("into", "was merged into another ticket: merge into that one")
        moved = self.repository.move_messages(source.id, target.id)
        self.set_tags(target.id, [*self.tags(target.id), *self.tags(source.id)])
        self.session.execute(delete(TicketTag).where(TicketTag.ticket_id == source.id))
        now = self.work.now
        said = [t for t in (source.customer_said_at, target.customer_said_at) if t is not None]
        target.customer_said_at = max(said) if said else None
        target.turn = int(self.repository.turn_of(target.id))
        if target.turn == Turn.OURS:
            waits = [t for t in (source.waiting_since, target.waiting_since) if t is not None]
            target.waiting_since = min(waits) if waits else now
        else:
            target.waiting_since = None
        answers = [t for t in (source.answered_at, target.answered_at) if t is not None]
        target.answered_at = min(answers) if answers else None
        target.last_updated_at = max(target.last_updated_at, source.last_updated_at, now)
        if target.status != TicketStatus.OPEN and source.status == TicketStatus.OPEN:
            self._set_status(target, TicketStatus.OPEN)
        source.merged_into_id = target.id
        source.assignee_id = source.pending_until = None
        self._add_reply(
            source,
            author.id,
            f"Merged into ticket #{target.code} ({target.title}): its messages are there now.",
            [],
        )
        source.last_updated_at = now
        if source.status != TicketStatus.FORCE_CLOSED:
            self._set_status(source, TicketStatus.FORCE_CLOSED, merged_into=target.id)
        self._refresh_due(target)
        self.session.flush()
        self._record_change(
            EventType.TICKET_MERGED,
            target,
            mergedTicketId=source.id,
            mergedTicketCode=source.code,
            messages=moved,
        )
        return record_of(target)

    # -- helpers ----------------------------------------------------------------------

    def _due_for(self, priority: int, *, answered: bool, since: int) -> int | None:
        levels = self.work.service_levels
        return (
            None
            if levels is None
            else levels.due(priority=priority, answered=answered, since=since)
        )

    def _refresh_due(self, ticket: Ticket) -> None:
        ticket.due_at = due_time(ticket, self.work.service_levels)

    def _record_change(self, kind: EventType, ticket: Ticket, **details: object) -> None:
        self.work.record(
            kind,
            subject_id=ticket.id,
            customer_id=ticket.user_id,
            payload={"ticketId": ticket.id, "ticketCode": ticket.code, **details},
        )

    def _record_message(
        self, kind: EventType, ticket: Ticket, reply_id: int, author: User, **details: object
    ) -> None:
        """A reply's or a note's event: the ticket, the message, its author, and
        ``details`` (what the kind of message may say)."""
        self.work.record(
            kind,
            subject_id=ticket.id,
            customer_id=ticket.user_id,
            payload={
                "ticketId": ticket.id,
                "ticketCode": ticket.code,
                "replyId": reply_id,
                "authorId": author.id,
                **details,
            },
        )

    def _require(self, ticket_id: int, *, user_id: int | None) -> Ticket:
        ticket = self.repository.locked(ticket_id, user_id=user_id)
        if ticket is None:
            raise NotFound(f"Ticket {ticket_id} not found.")
        return ticket

    def _set_status(
        self,
        ticket: Ticket,
        status: TicketStatus,
        *,
        after_reply: bool = False,
        merged_into: int | None = None,
    ) -> None:
        previous = ticket.status
        ticket.status = int(status)
        ticket.status_updated_at = self.work.now
        if status == TicketStatus.OPEN and ticket.turn == Turn.OURS and not ticket.waiting_since:
            ticket.waiting_since = self.work.now
        self._refresh_due(ticket)
        self.work.record(
            EventType.TICKET_REOPENED if status == TicketStatus.OPEN else EventType.TICKET_CLOSED,
            subject_id=ticket.id,
            customer_id=ticket.user_id,
            payload={
                "ticketId": ticket.id,
                "ticketCode": ticket.code,
                "status": int(status),
                "previousStatus": int(previous),
                "forced": status == TicketStatus.FORCE_CLOSED,
                **({"afterReply": True} if after_reply else {}),
                **({"mergedIntoId": merged_into} if merged_into is not None else {}),
            },
        )

    def _unused_code(self) -> int:
        # Random, so that codes say nothing about ids or volumes; the unique constraint
        # backs up the check against a concurrent writer drawing the same number.
        while True:
            code = 10_000_000 + secrets.randbelow(90_000_000)
            if not self.repository.code_in_use(code):
                return code

    def _add_reply(
        self,
        ticket: Ticket | TicketRecord,
        author_id: int,
        content: str,
        files: Sequence[IncomingFile],
        *,
        internal: bool = False,
    ) -> tuple[int, list[dict[str, object]]]:
        """The new reply's id, and its attachments as an event lays them out."""
        blobs = self.work.blobs
        if files and blobs is None:
            raise RuntimeError("attachments need a unit of work with a blob batch")
        reply_id = self.repository.insert_reply(
            {
                "ticket_id": ticket.id,
                "author_id": author_id,
                "created_at": self.work.now,
                "title": ticket.title,
                "content": content,
                "internal": internal,
            }
        )
        described: list[dict[str, object]] = []
        for incoming in files:
            assert blobs is not None
            blobs.add(self.session, incoming)
            attachment = self.repository.insert_attachment(
                {
                    "ticket_id": ticket.id,
                    "reply_id": reply_id,
                    "name": incoming.name,
                    "content_type": incoming.content_type,
                    "size": incoming.size,
                    "sha256": incoming.sha256,
                }
            )
            described.append(
                {
                    "attachmentId": attachment.id,
                    "name": attachment.name,
                    "contentType": attachment.content_type,
                    "size": attachment.size,
                }
            )
        return reply_id, described


def _check_text(*, content: str, files: Sequence[IncomingFile], title: str | None = None) -> None:
    """The rules the wire schemas enforce, enforced again for callers that skip them (CLI)."""
    if title is not None and not (title.strip() and len(title) <= MAX_TITLE):
        raise invalid("title", f"must be 1 to {MAX_TITLE} characters")
    if not content.strip() or len(content) > MAX_CONTENT or "\x00" in content:
        raise invalid("content", f"must be 1 to {MAX_CONTENT} characters")
    if len(files) > MAX_ATTACHMENTS:
        raise invalid("attachments", f"at most {MAX_ATTACHMENTS} files")
