"""One unit of work: the transaction, who acts, through which door, and when.

Every door (the protocol, the console, the portal, the admin CLI, and later mail and
webhook replays) builds one ``Work`` per unit of work and hands it to the domain's
services. The services say what happened with ``Work.record``; the events are written
into the ``events`` table just before the transaction commits (a SQLAlchemy
``before_commit`` hook), so they are committed with the change or rolled back with it.
Adapters never record events.

Event ids only grow, and they are committed in the order of their ids: a reader that
remembers the last id it saw never skips an event. SQLite has one writer at a time; on
PostgreSQL, where a sequence hands out ids in the order they are asked for, not the
order their transactions commit, the insert first takes a transaction-level advisory
lock that only event writers take (``EVENTS_LOCK``; reads never wait for it), held
from the insert to the commit, a moment at the very end of each write. Lock and insert
are one statement, so an event costs one round trip.

Whoever consumes the log is told when events commit: in this process by the callbacks
given to ``on_commit`` (the webhook relay's wake-up), on PostgreSQL also across
processes and machines by a ``NOTIFY`` on ``EVENTS_CHANNEL`` in the same statement (sent
when the transaction commits, not before).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, ClassVar

from sqlalchemy import bindparam, event, func, insert, select
from sqlalchemy.orm import Session

from ledgerdesk.attachments.storage import BlobBatch
from ledgerdesk.db.models import DomainEvent, User
from ledgerdesk.db.prepared import Prepared, PreparedInsert, session_db
from ledgerdesk.events.types import ActorKind, Door, EventType
from ledgerdesk.service_levels import ServiceLevels

_INSERT = PreparedInsert(DomainEvent)
# PostgreSQL: the transaction-level advisory lock that event writers take in turn (a
# constant of ledgerdesk's own: the first eight bytes of "ldevents").
EVENTS_LOCK = int.from_bytes(b"ldevents", "big", signed=True)
# PostgreSQL: the channel that hears of every commit that recorded events.
EVENTS_CHANNEL = "ledgerdesk_events"
_COLUMNS = [column for column in DomainEvent.__table__.columns if column.key != "id"]
# One statement, one round trip: the lock is the one-time filter of the row's SELECT,
# taken before the row (and with it the sequence's next id) is made.
_LOCKED_INSERT = Prepared(
    insert(DomainEvent)
    .from_select(
        [column.key for column in _COLUMNS],
        select(*(bindparam(column.key, type_=column.type) for column in _COLUMNS)).where(
            func.pg_advisory_xact_lock(EVENTS_LOCK).is_not(None),
            func.pg_notify(EVENTS_CHANNEL, "").is_not(None),
        ),
    )
    .returning(DomainEvent.id)
)
_WORK = "ledgerdesk.work"
_RECORDED = "ledgerdesk.recorded"
# Called (from whichever thread committed) after a transaction that recorded events.
_COMMIT_LISTENERS: list[Callable[[], None]] = []
MAX_ADDRESS = 45


@dataclass(frozen=True)
class Actor:
    """Who acts: a customer (through one of their keys, or signed in), a staff member,
    or the system itself (start-up tasks, the admin CLI run without a staff member)."""

    kind: ActorKind
    user_id: int | None = None
    key_id: int | None = None

    SYSTEM: ClassVar[Actor]
    VISITOR: ClassVar[Actor]

    @classmethod
    def customer(cls, user_id: int, key_id: int | None = None) -> Actor:
        return cls("customer", user_id, key_id)

    @classmethod
    def staff(cls, user_id: int) -> Actor:
        return cls("staff", user_id)

    @classmethod
    def of(cls, user: User) -> Actor:
        return cls.staff(user.id) if user.is_staff else cls.customer(user.id)


Actor.SYSTEM = Actor("system")
Actor.VISITOR = Actor("visitor")


@dataclass(frozen=True)
class Origin:
    """How the work came in: the door, the caller's address, the request's id."""

    door: Door
    address: str | None = None
    request_id: str | None = None


@dataclass
class Work:
    """A unit of work as the domain sees it. Build it once the actor is known, inside
    the transaction (``session``); ``blobs`` is the transaction's attachment batch."""

    session: Session
    actor: Actor
    origin: Origin
    now: int
    today: date
    blobs: BlobBatch | None = None
    # The provider's service levels: when the answers its writes make the customer wait
    # for fall due (None: no targets).
    service_levels: ServiceLevels | None = None
    _pending: list[dict[str, Any]] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        # One Work per transaction: its events are written by the commit hook below.
        existing = self.session.info.get(_WORK)
        if existing is not None and existing is not self:
            raise RuntimeError("this transaction already has its unit of work")
        self.session.info[_WORK] = self

    def record(
        self,
        kind: EventType,
        *,
        subject_id: int | None,
        customer_id: int | None,
        payload: Mapping[str, Any] | None = None,
        actor: Actor | None = None,
    ) -> None:
        """What happened, to be committed with the change: ``subject_id`` names what it
        happened to, ``customer_id`` the customer it concerns (None: staff's own), the
        payload what a consumer needs (never a secret, a key, or a file's bytes).
        ``actor`` stands in for the work's own when the write itself establishes who
        acts (signing in, setting a password through a link)."""
        who = actor or self.actor
        door = self.origin.door
        if door == "web":
            door = "console" if who.kind == "staff" else "portal"
        address = self.origin.address
        self._pending.append(
            {
                "type": kind.value,
                "created_at": self.now,
                "door": door,
                "actor_kind": who.kind,
                "actor_id": who.user_id,
                "key_id": who.key_id,
                "customer_id": customer_id,
                "subject_id": subject_id,
                "payload": dict(payload or {}),
                "client_address": None if address is None else address[:MAX_ADDRESS],
                "request_id": self.origin.request_id,
            }
        )

    def record_about(
        self,
        user: User,
        kind: EventType,
        payload: Mapping[str, Any] | None = None,
        *,
        actor: Actor | None = None,
    ) -> None:
        """An event whose subject is a user: a customer's concerns that customer, a
        staff member's concerns no customer."""
        self.record(
            kind,
            subject_id=user.id,
            customer_id=None if user.is_staff else user.id,
            payload=payload,
            actor=actor,
        )

    @property
    def recorded(self) -> list[str]:
        """The types of the events recorded so far (not yet committed)."""
        return [str(row["type"]) for row in self._pending]

    def flush(self) -> None:
        """Write the recorded events into this transaction (the commit does it)."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        session = self.session
        session.info[_RECORDED] = True
        session.flush()  # the change's own rows first: the lock is held only from here
        db = session_db(session)
        if db.dialect.name == "postgresql":
            for row in pending:
                db.first(_LOCKED_INSERT, **row)
            return
        for row in pending:
            _INSERT.insert(db, row)


def work_of(session: Session) -> Work | None:
    """The unit of work a session's transaction belongs to, if one was built."""
    found = session.info.get(_WORK)
    return found if isinstance(found, Work) else None


@event.listens_for(Session, "before_commit")
def _write_events(session: Session) -> None:
    if session.in_nested_transaction():  # a savepoint's end: the events wait for the real one
        return
    work = session.info.pop(_WORK, None)
    if isinstance(work, Work):
        work.flush()


@event.listens_for(Session, "after_commit")
def _announce_events(session: Session) -> None:
    if session.info.pop(_RECORDED, False):
        for listener in tuple(_COMMIT_LISTENERS):
            listener()


@event.listens_for(Session, "after_rollback")
def _forget_events(session: Session) -> None:
    if session.in_nested_transaction():  # a savepoint rolled back: the unit of work goes on
        return
    session.info.pop(_WORK, None)
    session.info.pop(_RECORDED, None)


def on_commit(listener: Callable[[], None]) -> Callable[[], None]:
    """Call ``listener`` after each commit that recorded events (in the committing
    thread: it must be quick and thread-safe); returns what stops it."""
    _COMMIT_LISTENERS.append(listener)

    def stop() -> None:
        if listener in _COMMIT_LISTENERS:
            _COMMIT_LISTENERS.remove(listener)

    return stop
