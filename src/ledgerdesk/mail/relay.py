"""The mail relay: notifications out, at least once, through SMTP.

A consumer of the event log like the webhook relay (``consumers.Consumer``), in its
own short transactions: **fan out** events after its place (``mail_cursor``) into
outbox rows (``mail.notify.enqueue``; an event older than a day is not announced, so a
relay started after a long pause does not send yesterday's news), **claim** due rows
with a lease (PostgreSQL ``FOR UPDATE SKIP LOCKED``) and compose each from what is
stored now, **send** through ``LEDGERDESK_SMTP_URL`` (aiosmtplib; STARTTLS for
``smtp://``, TLS for ``smtps://``), **record**: sent, retried on a temporary failure (a
4xx answer, no connection) after 1 min, 5 min, 30 min, 2 h, 6 h and 12 h, or failed; a
permanent refusal (5xx) marks the address failing instead of trying for ever.
"""

from __future__ import annotations

import logging
import secrets as token
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.message import EmailMessage

import aiosmtplib
import anyio
import anyio.abc
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from ledgerdesk import metrics
from ledgerdesk.attachments.storage import BlobStore
from ledgerdesk.config import Settings
from ledgerdesk.consumers import Consumer, now_ms
from ledgerdesk.db.models import DomainEvent, MailAddress, MailCursor, MailOutbox
from ledgerdesk.events.log import EventLog, EventRecord
from ledgerdesk.mail.key import mail_key
from ledgerdesk.mail.notify import enqueue, outgoing, sender_of
from ledgerdesk.mail.outbound import Templates, compose
from ledgerdesk.mail.tags import Tags
from ledgerdesk.runtime import Runtime

log = logging.getLogger("ledgerdesk.mail")

RETRIES = (60, 300, 1800, 7200, 21600, 43200)  # seconds before each retry
FAN_OUT_EVENTS = 1000
STALE_SECONDS = 86_400
SMTP_TIMEOUT = 30.0
LEASE_MS = int(SMTP_TIMEOUT * 1000) + 10_000
CONCURRENCY = 8
MAX_ERROR = 500


class SendFailed(Exception):
    def __init__(self, text: str, *, permanent: bool) -> None:
        super().__init__(text)
        self.permanent = permanent


Sender = Callable[[EmailMessage], Awaitable[None]]


def smtp_sender(settings: Settings) -> Sender:
    """Sends through LEDGERDESK_SMTP_URL; ``SendFailed`` says whether to try again."""
    assert settings.smtp_url is not None
    url = make_url(settings.smtp_url)
    implicit = url.drivername == "smtps"
    port = url.port or (465 if implicit else 587)

    async def send(message: EmailMessage) -> None:
        try:
            await aiosmtplib.send(
                message,
                hostname=url.host,
                port=port,
                username=url.username,
                password=url.password,
                use_tls=implicit,
                start_tls=None if not implicit else False,
                timeout=SMTP_TIMEOUT,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            text = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
            raise SendFailed(text, permanent=all(500 <= c < 600 for c in codes)) from None
        except aiosmtplib.SMTPResponseException as exc:
            raise SendFailed(f"{exc.code} {exc.message}", permanent=500 <= exc.code < 600) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise SendFailed(f"{type(exc).__name__}: {exc}", permanent=False) from None

    return send


@dataclass(frozen=True)
class Claimed:
    row_id: int
    message: EmailMessage | None  # None: nothing left to send (its ticket is gone)
    message_id: str | None
    address: str
    attempts: int


# -- the transactions -------------------------------------------------------------------


def fan_out(session: Session, now: int, *, hourly_cap: int) -> int:
    """Outbox rows for the next events; how many events were read."""
    cursor = session.scalars(
        select(MailCursor).where(MailCursor.id == 1).with_for_update(skip_locked=True)
    ).first()
    if cursor is None:
        if session.get(MailCursor, 1) is not None:
            return 0  # another relay is at it
        session.add(MailCursor(id=1, last_event_id=EventLog(session).last_id()))
        return 0  # a database emptied by hand: start at its end
    events = session.scalars(
        select(DomainEvent)
        .where(DomainEvent.id > cursor.last_event_id)
        .order_by(DomainEvent.id)
        .limit(FAN_OUT_EVENTS)
    ).all()
    for row in events:
        if row.created_at * 1000 >= now - STALE_SECONDS * 1000:
            enqueue(session, EventRecord.of(row), now, hourly_cap=hourly_cap)
    if events:
        cursor.last_event_id = events[-1].id
    return len(events)


def claim(
    session: Session,
    now: int,
    *,
    holder: str,
    limit: int,
    settings: Settings,
    templates: Templates,
    blobs: BlobStore,
) -> list[Claimed]:
    rows = session.scalars(
        select(MailOutbox)
        .where(
            MailOutbox.state == "pending",
            MailOutbox.next_at <= now,
            (MailOutbox.lease_until.is_(None)) | (MailOutbox.lease_until <= now),
        )
        .order_by(MailOutbox.next_at, MailOutbox.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if not rows:
        return []
    name, address = sender_of(settings)
    tags = Tags(mail_key(session), address.partition("@")[2])
    claimed = []
    for row in rows:
        row.lease_until = now + LEASE_MS
        row.holder = holder
        try:
            made = outgoing(session, row, settings, blobs)
            message = (
                None
                if made is None
                else compose(made, sender=address, sender_name=name, tags=tags, templates=templates)
            )
        except Exception as exc:  # a template the provider broke: said, not retried
            row.state = "failed"
            row.last_error = f"could not compose: {type(exc).__name__}: {exc}"[:MAX_ERROR]
            log.exception("could not compose mail %d", row.id)
            continue
        message_id = None if message is None else str(message["Message-ID"]).strip("<>")
        claimed.append(Claimed(row.id, message, message_id, row.address, row.attempts))
    return claimed


def record(
    session: Session, claimed: Claimed, error: SendFailed | None, now: int, *, holder: str
) -> str | None:
    """Write what became of a mail: sent, skipped, retrying or failed (given up); None
    when this relay no longer held it."""
    row = session.get(MailOutbox, claimed.row_id, with_for_update=True)
    if row is None or row.holder != holder:
        return None  # its lease ran out and another relay has it now
    row.lease_until = None
    row.holder = None
    row.attempts = claimed.attempts + 1
    if claimed.message is None:
        row.state = "skipped"
        return "skipped"
    if error is None:
        row.state = "sent"
        row.sent_at = now
        row.message_id = claimed.message_id
        row.last_error = None
        return "sent"
    row.last_error = str(error)[:MAX_ERROR]
    retry = claimed.attempts
    if error.permanent or retry >= len(RETRIES):
        row.state = "failed"
        if error.permanent:
            failing = session.get(MailAddress, claimed.address)
            if failing is None:
                failing = MailAddress(address=claimed.address, user_id=None)
                session.add(failing)
            if failing.failing_since is None:
                failing.failing_since = now // 1000
            failing.failing_reason = f"refused: {error}"[:MAX_ERROR]
        return "failed"
    row.next_at = now + RETRIES[retry] * 1000
    return "retrying"


def next_due(session: Session, now: int) -> int | None:
    return session.scalar(
        select(MailOutbox.next_at)
        .where(MailOutbox.state == "pending", MailOutbox.next_at > now)
        .order_by(MailOutbox.next_at)
        .limit(1)
    )


# -- the loop ---------------------------------------------------------------------------


class MailRelay(Consumer):
    """Sends notifications: in ``serve`` and ``worker`` when LEDGERDESK_SMTP_URL and
    LEDGERDESK_MAIL_FROM are set (unless LEDGERDESK_MAIL_RELAY=false)."""

    name = "mail relay"

    def __init__(
        self,
        runtime: Runtime,
        *,
        send: Sender | None = None,
        clock_ms: Callable[[], int] = now_ms,
        poll: float | None = None,
    ) -> None:
        super().__init__(runtime, poll)
        self.send = send or smtp_sender(runtime.settings)
        self.clock_ms = clock_ms
        self.templates = Templates(runtime.settings.data_dir)
        self.holder = token.token_hex(8)
        self.sent = 0
        self._in_flight = 0

    async def round(self, tasks: anyio.abc.TaskGroup) -> float:
        while await self.in_thread(self._fan_out) == FAN_OUT_EVENTS:
            pass
        room = CONCURRENCY - self._in_flight
        claimed: list[Claimed] = await self.in_thread(self._claim, room) if room > 0 else []
        for one in claimed:
            self._in_flight += 1
            tasks.start_soon(self._send_one, one)
        if len(claimed) >= room > 0:
            return 0
        due: int | None = await self.in_thread(self._next_due)
        if due is None:
            return self.poll
        return max(0.0, min(self.poll, (due - self.clock_ms()) / 1000))

    async def _send_one(self, claimed: Claimed) -> None:
        error: SendFailed | None = None
        try:
            if claimed.message is not None:
                try:
                    await self.send(claimed.message)
                except SendFailed as exc:
                    error = exc
            await self.in_thread(self._record, claimed, error)
            if claimed.message is not None and error is None:
                self.sent += 1
        except Exception:
            log.exception("mail relay: could not record mail %d", claimed.row_id)
        finally:
            self._in_flight -= 1
            self.poke()

    def _fan_out(self) -> int:
        with self.runtime.transaction(write=True) as (session, _):
            return fan_out(session, self.clock_ms(), hourly_cap=self.settings.mail_hourly_cap)

    def _claim(self, room: int) -> list[Claimed]:
        with self.runtime.transaction(write=True) as (session, _):
            return claim(
                session,
                self.clock_ms(),
                holder=self.holder,
                limit=room,
                settings=self.settings,
                templates=self.templates,
                blobs=self.runtime.blobs,
            )

    def _record(self, claimed: Claimed, error: SendFailed | None) -> None:
        with self.runtime.transaction(write=True) as (session, _):
            became = record(session, claimed, error, self.clock_ms(), holder=self.holder)
        if became is not None:  # counted once committed
            metrics.mail_attempts.labels(became).inc()

    def _next_due(self) -> int | None:
        with self.runtime.transaction(write=False) as (session, _):
            return next_due(session, self.clock_ms())


def wanted(settings: Settings) -> bool:
    """Whether this process sends mail."""
    return (
        settings.smtp_url is not None and settings.mail_from is not None and (settings.mail_relay)
    )
