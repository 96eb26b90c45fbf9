"""From the event log to the outbox, and from an outbox row to the mail it sends.

``enqueue`` turns an event into outbox rows (one per notice of ``mail.notifications``),
skipping recipients without an address, addresses that fail, and an address that had
``LEDGERDESK_MAIL_HOURLY_CAP`` automatic mails in the last hour (the last guard against
a loop). ``outgoing`` builds, when the row is sent, the ``Outgoing`` its template needs
from what is stored then: the ticket and the reply (its files up to
``LEDGERDESK_MAIL_ATTACH_BYTES``, the rest named), the invoice with its PDF, the refused
mail; and the Message-IDs of the thread it answers.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from email.utils import parseaddr
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ledgerdesk.attachments.storage import BlobStore
from ledgerdesk.config import Settings
from ledgerdesk.db.models import (
    Attachment,
    DomainEvent,
    MailAddress,
    MailMessage,
    MailOutbox,
    Reply,
    Ticket,
    User,
)
from ledgerdesk.db.prepared import session_db
from ledgerdesk.errors import LedgerdeskError
from ledgerdesk.events.log import EventRecord
from ledgerdesk.invoices.documents import render
from ledgerdesk.invoices.stored import stored_invoice
from ledgerdesk.mail.addresses import CONFIRM_DAYS
from ledgerdesk.mail.key import mail_key
from ledgerdesk.mail.notifications import CHOICES, Choice, Notice, notices_of
from ledgerdesk.mail.outbound import File, Outgoing
from ledgerdesk.mail.resets import VALID_SECONDS as RESET_VALID_SECONDS
from ledgerdesk.mail.tags import Tags

HOUR_MS = 3_600_000
THREAD_IDS = 10  # Message-IDs a notification names in References


class StaffDirectory:
    """Staff's choices and whom they helped, in the database."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def choices(self) -> list[tuple[int, Choice]]:
        rows = self.session.execute(
            select(User.id, User.mail_notify)
            .where(User.is_staff.is_(True), User.disabled_at.is_(None), User.email.is_not(None))
            .order_by(User.id)
        )
        found: list[tuple[int, Choice]] = []
        for row in rows:
            choice: Choice = "all"
            for known in CHOICES:
                if row.mail_notify == known:
                    choice = known
            found.append((row.id, choice))
        return found

    def helped(self, staff_id: int, customer_id: int) -> bool:
        found = self.session.scalar(
            select(Reply.id)
            .join(Ticket, Ticket.id == Reply.ticket_id)
            .where(Reply.author_id == staff_id, Ticket.user_id == customer_id)
            .limit(1)
        )
        return found is not None


def address_of(user: User, kind: str) -> str | None:
    """Where a user's mail of ``kind`` goes: invoices to the billing address if given."""
    chosen = user.billing_email if kind == "invoice_issued" and user.billing_email else user.email
    return None if not chosen else chosen.strip().lower()


def enqueue(session: Session, event: EventRecord, now_ms: int, *, hourly_cap: int) -> int:
    """The outbox rows of one event; how many."""
    made = 0
    for notice in notices_of(event, StaffDirectory(session)):
        if _queue(session, notice, event, now_ms, hourly_cap=hourly_cap):
            made += 1
    return made


def queue_refusal(session: Session, mail: MailMessage, now_ms: int, *, hourly_cap: int) -> bool:
    """A refusal to the sender of ``mail`` (never to automatic mail: the intake only
    refuses people): one an hour to an address at most, within the hourly cap."""
    if (
        _over_cap(session, mail.sender, now_ms, hourly_cap)
        or _over_cap(session, mail.sender, now_ms, 1, kind="refusal")
        or _failing(session, mail.sender)
    ):
        return False
    session.add(_row(kind="refusal", address=mail.sender, now_ms=now_ms, mail_id=mail.id))
    session.flush()  # counted by the next look at the cap (the session does not autoflush)
    return True


def _queue(
    session: Session, notice: Notice, event: EventRecord, now_ms: int, *, hourly_cap: int
) -> bool:
    user = session.get(User, notice.recipient_id)
    if user is None or user.disabled_at is not None:
        return False
    address = (
        str(event.payload.get("address", "")).lower() or None
        if notice.kind == "address_confirm"
        else address_of(user, notice.kind)
    )
    if address is None or _failing(session, address):
        return False
    if _over_cap(session, address, now_ms, hourly_cap):
        return False
    ticket_id = event.subject_id if event.type.startswith("ticket.") else None
    session.add(
        _row(
            kind=notice.kind,
            address=address,
            now_ms=now_ms,
            event_id=event.id,
            recipient_id=user.id,
            ticket_id=ticket_id,
        )
    )
    session.flush()  # counted by the next look at the cap (the session does not autoflush)
    return True


def _row(*, kind: str, address: str, now_ms: int, **ids: Any) -> MailOutbox:
    return MailOutbox(
        kind=kind,
        address=address,
        state="pending",
        attempts=0,
        next_at=now_ms,
        created_at=now_ms,
        **ids,
    )


def _failing(session: Session, address: str) -> bool:
    row = session.get(MailAddress, address)
    return row is not None and row.failing_since is not None


def _over_cap(
    session: Session, address: str, now_ms: int, cap: int, *, kind: str | None = None
) -> bool:
    """Whether ``cap`` mails (of ``kind``) went to the address in the last hour."""
    statement = (
        select(func.count())
        .select_from(MailOutbox)
        .where(MailOutbox.address == address, MailOutbox.created_at > now_ms - HOUR_MS)
    )
    if kind is not None:
        statement = statement.where(MailOutbox.kind == kind)
    return (session.scalar(statement) or 0) >= cap


# -- what a row sends ---------------------------------------------------------------------


def outgoing(
    session: Session, row: MailOutbox, settings: Settings, blobs: BlobStore
) -> Outgoing | None:
    """The mail an outbox row sends, built from what is stored now (None: nothing left
    to say, e.g. its ticket is gone)."""
    link = settings.public_url
    if row.kind == "refusal":
        mail = None if row.mail_id is None else session.get(MailMessage, row.mail_id)
        if mail is None:
            return None
        return Outgoing(
            kind="refusal",
            to=row.address,
            to_name="",
            context={"subject": mail.subject or "(no subject)", "link": link},
            in_reply_to=mail.message_id,
            references=(),
        )
    event_row = None if row.event_id is None else session.get(DomainEvent, row.event_id)
    user = None if row.recipient_id is None else session.get(User, row.recipient_id)
    if event_row is None or user is None:
        return None
    event = EventRecord.of(event_row)
    data = event.payload
    if row.kind == "invoice_issued":
        return _invoice(session, row, user, event, link)
    if row.kind == "address_confirm":
        return _address_confirm(session, row, user, link)
    if row.kind == "password_reset":
        return _password_reset(session, row, user, event, link)
    ticket = None if row.ticket_id is None else session.get(Ticket, row.ticket_id)
    if ticket is None:
        return None
    customer = session.get(User, ticket.user_id)
    customer_name = customer.name if customer is not None else ""
    context: dict[str, Any] = {
        "ticket": {"code": ticket.code, "title": ticket.title},
        "customer_name": customer_name,
        "content": str(data.get("content", "")),
    }
    files: list[File] = []
    if row.kind == "mention":  # staff only: the note's words, read from the note itself
        note = session.get(Reply, int(data.get("replyId", 0)))
        author = session.get(User, int(data.get("authorId", 0)))
        if note is None or not user.is_staff:
            return None
        context |= {"content": note.content, "author_name": author.name if author else ""}
    if row.kind == "staff_reply":
        author = session.get(User, int(data.get("authorId", 0)))
        files, left_out = _files(session, data, settings.mail_attach_bytes, blobs)
        context |= {"author_name": author.name if author else "", "left_out": left_out}
    if row.kind in ("staff_reply", "ticket_closed"):
        context["link"] = f"{link}/account/tickets/{ticket.id}"
    else:
        context["link"] = f"{link}/console/tickets/{ticket.id}"
    thread = _thread(session, ticket.id, row)
    return Outgoing(
        kind=row.kind,
        to=row.address,
        to_name=user.name,
        context=context,
        ticket_id=ticket.id,
        recipient_id=user.id,
        in_reply_to=thread[-1] if thread else None,
        references=thread[:-1],
        files=files,
    )


def _invoice(
    session: Session, row: MailOutbox, user: User, event: EventRecord, link: str
) -> Outgoing:
    data = event.payload
    credit = data.get("documentType") == "creditNote"
    files = []
    try:
        document = render(stored_invoice(session, int(data["invoiceId"])), "pdf")
        files.append(File(f"{data['number']}.pdf", "application/pdf", document.content))
    except (LedgerdeskError, KeyError, ValueError):
        pass  # an invoice from before parties were kept has no document: the link says it
    return Outgoing(
        kind="invoice_issued",
        to=row.address,
        to_name=user.name,
        context={
            "customer_name": user.name,
            "link": f"{link}/account/invoices/{data.get('invoiceId')}",
            "invoice": {
                "credit_note": credit,
                "number": data.get("number", ""),
                "total": data.get("amountNet", ""),
                "currency": data.get("currency", ""),
                "pay_before": data.get("payBefore", ""),
            },
        },
        files=files,
    )


def _address_confirm(session: Session, row: MailOutbox, user: User, link: str) -> Outgoing | None:
    """The link that confirms an added address, while it waits for it (an address
    confirmed, removed or added again since has nothing left to confirm by this mail)."""
    added = session.get(MailAddress, row.address)
    if (
        added is None
        or added.user_id != user.id
        or added.confirmed_at is not None
        or added.added_at is None
        or added.added_at > row.created_at
    ):
        return None
    token = Tags(mail_key(session), "").confirm_token(user.id, added.added_at, added.address)
    return Outgoing(
        kind="address_confirm",
        to=row.address,
        to_name=user.name,
        context={
            "customer_name": user.name,
            "address": added.address,
            "link": f"{link}/mail-address/{token}",
            "days": CONFIRM_DAYS,
        },
    )


def _password_reset(
    session: Session, row: MailOutbox, user: User, event: EventRecord, link: str
) -> Outgoing | None:
    """The link that sets a forgotten password, while it can still work."""
    if user.disabled_at is not None or event.created_at + RESET_VALID_SECONDS <= time.time():
        return None  # it could not work any more
    token = Tags(mail_key(session), "").reset_token(
        user.id, event.created_at, user.password_hash or ""
    )
    return Outgoing(
        kind="password_reset",
        to=row.address,
        to_name=user.name,
        context={
            "name": user.name,
            "link": f"{link}/password/reset/{token}",
            "minutes": RESET_VALID_SECONDS // 60,
        },
    )


def _files(
    session: Session, data: dict[str, Any], limit: int, blobs: BlobStore
) -> tuple[list[File], list[str]]:
    described: Sequence[dict[str, Any]] = data.get("attachments") or []
    files: list[File] = []
    left_out: list[str] = []
    room = limit
    db = session_db(session)
    for item in described:
        attachment = session.get(Attachment, int(item.get("attachmentId", 0)))
        if attachment is None:
            continue
        content = blobs.open(db, attachment.sha256) if attachment.size <= room else None
        if content is None:
            left_out.append(attachment.name)
            continue
        files.append(File(attachment.name, attachment.content_type, b"".join(content.chunks())))
        room -= attachment.size
    return files, left_out


def _thread(session: Session, ticket_id: int, row: MailOutbox) -> list[str]:
    """The Message-IDs of the ticket's mail, oldest first: the customer's received ones
    and what was sent to this recipient."""
    received = session.execute(
        select(MailMessage.received_at, MailMessage.message_id).where(
            MailMessage.ticket_id == ticket_id, MailMessage.message_id.is_not(None)
        )
    ).all()
    sent = session.execute(
        select(MailOutbox.sent_at, MailOutbox.message_id).where(
            MailOutbox.ticket_id == ticket_id,
            MailOutbox.recipient_id == row.recipient_id,
            MailOutbox.message_id.is_not(None),
            MailOutbox.sent_at.is_not(None),
            MailOutbox.id != row.id,
        )
    ).all()
    ordered = sorted(
        [(r.received_at * 1000, str(r.message_id)) for r in received]
        + [(int(s.sent_at or 0), str(s.message_id)) for s in sent]
    )
    ids = [message_id for _, message_id in ordered]
    return ids[-THREAD_IDS:]


def sender_of(settings: Settings) -> tuple[str, str]:
    """The name and address notifications come from."""
    assert settings.mail_from is not None
    name, address = parseaddr(settings.mail_from)
    return name, address
