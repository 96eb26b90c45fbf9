"""Taking in a received mail: kept whole, read, threaded, and turned into what it is (a
reply to a ticket, a new ticket, or a row in the console's queue), in one unit of work.

Every way in (an MTA's pipe, LMTP, IMAP) hands the raw bytes to ``MailIntake.take`` as
an ``IncomingFile`` (already on disk, hashed): its bytes go into the blob store with the
transaction, like an attachment's, and a ``mail_messages`` row says where the mail went
and why. A mail taken before (the same Message-ID from the same sender: an IMAP fetch
repeated after a crash, an MTA's retry) is not taken twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ledgerdesk.accounts.service import AccountService
from ledgerdesk.attachments.incoming import IncomingFile
from ledgerdesk.attachments.rules import MAX_ATTACHMENTS
from ledgerdesk.db.models import MailAddress, MailMessage, Reply, Ticket, User
from ledgerdesk.errors import InvalidState, NotFound
from ledgerdesk.events.types import EventType
from ledgerdesk.events.work import Actor, Work
from ledgerdesk.mail.addresses import MailAddresses
from ledgerdesk.mail.inbound import Inbound, InboundFile, Unreadable, read
from ledgerdesk.mail.key import mail_key
from ledgerdesk.mail.notify import queue_refusal
from ledgerdesk.mail.tags import Tags
from ledgerdesk.mail.threading import Decision, Policy, TicketRef, decide
from ledgerdesk.tickets.service import MAX_CONTENT, MAX_TITLE, TicketService

NO_TEXT = "(The mail has no text; see its files.)"
WAITING = ("held", "unreadable", "failed")  # the console's queue

# A mail being taken: new (its bytes on disk, not yet stored) or a row of the queue taken
# in again (its bytes stored with it).
Source = IncomingFile | MailMessage


@dataclass(frozen=True)
class Taken:
    """Where a mail went: its row, the state, why, and the ticket it joined or opened."""

    mail_id: int
    state: str
    why: str
    ticket_id: int | None
    again: bool = False  # it had been taken before


class Directory:
    """What the threading rules look up, in the database."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def customer_of(self, address: str) -> int | None:
        found = self.session.scalar(
            select(User.id)
            .where(func.lower(User.email) == address, User.is_staff.is_(False))
            .order_by(User.id)
            .limit(1)
        )
        if found is None:
            found = self.session.scalar(
                select(MailAddress.user_id).where(
                    MailAddress.address == address, MailAddress.confirmed_at.is_not(None)
                )
            )
        return found

    def is_staff(self, address: str) -> bool:
        found = self.session.scalar(
            select(User.id)
            .where(func.lower(User.email) == address, User.is_staff.is_(True))
            .limit(1)
        )
        return found is not None

    def ticket(self, ticket_id: int) -> TicketRef | None:
        """The ticket (one merged into another: that other, where its messages are)."""
        row = self.session.get(Ticket, ticket_id)
        for _ in range(5):
            if row is None or row.merged_into_id is None:
                break
            row = self.session.get(Ticket, row.merged_into_id)
        return None if row is None else TicketRef(row.id, row.code, row.user_id)

    def ticket_by_code(self, code: int) -> TicketRef | None:
        row = self.session.scalars(select(Ticket).where(Ticket.code == code)).first()
        return None if row is None else TicketRef(row.id, row.code, row.user_id)


class MailIntake:
    """Takes in received mail through the ``mail`` door. ``domain`` is the one outgoing
    Message-IDs carry; ``store_file`` writes a mail's file to disk as an upload
    (``runtime.incoming`` with the attachment limit)."""

    def __init__(
        self,
        work: Work,
        *,
        support_address: str,
        domain: str,
        policy: Policy,
        store_file: Callable[[InboundFile], IncomingFile | None],
        hourly_cap: int = 20,
    ) -> None:
        self.work = work
        self.hourly_cap = hourly_cap
        self.session = work.session
        self.support_address = support_address.lower()
        self.tags = Tags(mail_key(self.session), domain)
        self.policy = policy
        self.store_file = store_file

    def take(self, raw: Source, data: bytes, *, via: str) -> Taken:
        """Take in the mail whose bytes are ``data``: new (``raw`` on disk), or a mail of
        the queue taken in again (``raw`` its row: ``retake``)."""
        try:
            mail = read(data)
        except Unreadable as exc:
            return self._keep(raw, None, via, "unreadable", str(exc))
        earlier = self._earlier(mail, raw)
        if earlier is not None:
            if isinstance(raw, MailMessage):  # the queue's copy of a mail taken since
                return self._keep(raw, mail, via, "ignored", f"taken before, as mail {earlier.id}")
            return Taken(earlier.id, earlier.state, earlier.why, earlier.ticket_id, again=True)
        decision = decide(
            mail, self.tags, Directory(self.session), self.policy, self.support_address
        )
        if decision.action == "join":
            return self._join(raw, mail, via, decision)
        if decision.action in ("open", "create_customer"):
            return self._open(raw, mail, via, decision)
        if decision.action == "bounce":
            self._failing(decision, mail)
            return self._keep(raw, mail, via, "bounced", decision.why, ticket_id=decision.ticket_id)
        state = {"hold": "held", "refuse": "refused", "ignore": "ignored"}[decision.action]
        taken = self._keep(
            raw,
            mail,
            via,
            state,
            decision.why,
            customer_id=decision.customer_id,
            named_ticket_id=decision.ticket_id if state == "held" else None,
        )
        if state == "refused":  # the sender is told, once an hour at most
            row = self.session.get(MailMessage, taken.mail_id)
            assert row is not None
            queue_refusal(self.session, row, self.work.now * 1000, hourly_cap=self.hourly_cap)
        return taken

    def keep_failed(self, raw: IncomingFile, data: bytes, *, via: str, why: str) -> Taken:
        """Keep a mail whose taking failed (``why``) in the console's queue."""
        try:
            mail: Inbound | None = read(data)
        except Unreadable:
            mail = None
        return self._keep(raw, mail, via, "failed", f"could not be taken: {why}")

    # -- the console's queue ------------------------------------------------------------

    def waiting(self, mail_id: int) -> MailMessage:
        """A mail of the queue, locked for this unit of work (two staff handling it at
        once: the second finds it handled); ``InvalidState`` when it waits no more."""
        row = self.session.scalars(
            select(MailMessage).where(MailMessage.id == mail_id).with_for_update()
        ).first()
        if row is None:
            raise NotFound("There is no such mail.")
        if row.state not in WAITING:
            raise InvalidState(f"This mail was handled already: {row.state}.")
        return row

    def retake(self, row: MailMessage, data: bytes) -> Taken:
        """Take an unreadable or failed mail in again (after an upgrade, a fix)."""
        if row.state == "held":
            raise InvalidState("A held mail waits for a decision: open a ticket or add it to one.")
        return self.take(row, data, via=row.via)

    def accept(
        self,
        row: MailMessage,
        data: bytes,
        *,
        by: str,
        ticket_id: int | None = None,
        customer_id: int | None = None,
        trust_sender: bool = False,
    ) -> Taken:
        """Staff's decision on a held mail: add it to ``ticket_id`` as its customer's reply
        (``trust_sender``: the sender becomes one of that customer's addresses, whose mail
        threads from now on), or open a ticket for ``customer_id`` (None: the sender's
        customer, made now when the sender is unknown). ``by`` names who decided."""
        if row.state != "held":
            raise InvalidState("Only a held mail is accepted; try an unreadable one again.")
        try:
            mail = read(data)
        except Unreadable as exc:  # it was read before: only a change of the reader can
            raise InvalidState(f"The mail cannot be read now: {exc}") from None
        why = f"{row.why}; accepted by {by}"
        if ticket_id is not None:
            ticket = Directory(self.session).ticket(ticket_id)
            if ticket is None:
                raise NotFound("There is no such ticket.")
            if trust_sender:
                MailAddresses(self.work).add(ticket.customer_id, mail.sender, confirmed=True)
            decision = Decision("join", why, ticket.id, ticket.customer_id)
            return self._join(row, mail, row.via, decision, by_sender=False)
        if trust_sender:
            raise InvalidState("Trusting the sender is for adding the mail to a ticket.")
        if customer_id is None:
            customer_id = Directory(self.session).customer_of(mail.sender)
        else:
            chosen = self.session.get(User, customer_id)
            if chosen is None or chosen.is_staff:
                raise NotFound("There is no such customer.")
        decision = Decision(
            "open" if customer_id is not None else "create_customer", why, customer_id=customer_id
        )
        return self._open(row, mail, row.via, decision, by_sender=False)

    def dismiss(self, row: MailMessage, *, by: str) -> Taken:
        """Staff's decision that a mail of the queue needs nothing (spam, a duplicate)."""
        row.state, row.why = "dismissed", f"{row.why}; dismissed by {by}"[:500]
        self.session.flush()
        self.work.record(
            EventType.MAIL_DISMISSED,
            subject_id=row.id,
            customer_id=row.customer_id,
            payload={"mailId": row.id, "sender": row.sender, "subject": row.subject},
        )
        return Taken(row.id, row.state, row.why, None)

    # -- the outcomes -------------------------------------------------------------------

    def _join(
        self, raw: Source, mail: Inbound, via: str, decision: Decision, *, by_sender: bool = True
    ) -> Taken:
        """The mail as the customer's reply (``by_sender``: they act; else the work's
        actor, staff accepting it, does)."""
        assert decision.ticket_id is not None
        assert decision.customer_id is not None
        customer = self.session.get(User, decision.customer_id)
        assert customer is not None
        if by_sender:
            self.work.actor = Actor.customer(customer.id)
        content, files = self._message(mail)
        try:
            TicketService(self.work).reply(
                decision.ticket_id, author=customer, content=content, files=files
            )
        except InvalidState:  # closed for good by staff: the mail opens a ticket of its own
            return self._open(
                raw,
                mail,
                via,
                Decision(
                    "open",
                    "a reply to a ticket closed for good: a new ticket",
                    customer_id=customer.id,
                ),
                by_sender=by_sender,
            )
        reply_id = self._last_reply(decision.ticket_id)
        return self._keep(
            raw,
            mail,
            via,
            "joined",
            decision.why,
            ticket_id=decision.ticket_id,
            reply_id=reply_id,
            customer_id=customer.id,
            record=False,
        )

    def _open(
        self, raw: Source, mail: Inbound, via: str, decision: Decision, *, by_sender: bool = True
    ) -> Taken:
        """A new ticket of the mail (see ``_join`` for ``by_sender``)."""
        customer_id = decision.customer_id
        if decision.action == "create_customer":
            if by_sender:
                self.work.actor = Actor.VISITOR
            made = AccountService(self.work).create_user(
                name=(mail.sender_name or mail.sender)[:200], email=mail.sender, staff=False
            )
            customer_id = made.id
        assert customer_id is not None
        if by_sender:
            self.work.actor = Actor.customer(customer_id)
        content, files = self._message(mail)
        title = (mail.subject or "(no subject)")[:MAX_TITLE]
        ticket = TicketService(self.work).create(
            customer_id=customer_id,
            title=title,
            content=content,
            reference="",
            priority=2,
            files=files,
        )
        return self._keep(
            raw,
            mail,
            via,
            "opened",
            decision.why,
            ticket_id=ticket.id,
            reply_id=self._last_reply(ticket.id),
            customer_id=customer_id,
            record=False,
        )

    def _failing(self, decision: Decision, mail: Inbound) -> None:
        """A bounce of our notification: the recipient's address fails from now on."""
        user = (
            None if decision.recipient_id is None else self.session.get(User, decision.recipient_id)
        )
        if user is None or not user.email:
            return
        address = user.email.lower()
        row = self.session.get(MailAddress, address)
        if row is None:
            row = MailAddress(address=address, user_id=None)
            self.session.add(row)
        if row.failing_since is None:
            row.failing_since = self.work.now
        row.failing_reason = f"bounced: {mail.subject}"[:500]

    # -- the parts ----------------------------------------------------------------------

    def _message(self, mail: Inbound) -> tuple[str, list[IncomingFile]]:
        """The reply's text and its files (the first ``MAX_ATTACHMENTS`` within the size
        limit; the rest named in the text: the whole mail is kept for staff)."""
        files: list[IncomingFile] = []
        left_out: list[str] = []
        for found in mail.files:
            stored = self.store_file(found) if len(files) < MAX_ATTACHMENTS else None
            if stored is None:
                left_out.append(found.name)
            else:
                files.append(stored)
        text = mail.reply or (NO_TEXT if files else mail.text) or NO_TEXT
        if left_out:
            text += (
                "\n\n(Not attached here, too many or too large; the mail as received has them: "
                + ", ".join(left_out)
                + ")"
            )
        return text[:MAX_CONTENT], files

    def _earlier(self, mail: Inbound, raw: Source) -> MailMessage | None:
        if mail.message_id is None:
            return None
        statement = select(MailMessage).where(
            MailMessage.message_id == mail.message_id[:998],
            MailMessage.sender == mail.sender[:320],
        )
        if isinstance(raw, MailMessage):
            statement = statement.where(MailMessage.id != raw.id)
        return self.session.scalars(statement).first()

    def _last_reply(self, ticket_id: int) -> int | None:
        return self.session.scalar(select(func.max(Reply.id)).where(Reply.ticket_id == ticket_id))

    def _keep(
        self,
        raw: Source,
        mail: Inbound | None,
        via: str,
        state: str,
        why: str,
        *,
        ticket_id: int | None = None,
        reply_id: int | None = None,
        customer_id: int | None = None,
        named_ticket_id: int | None = None,
        record: bool = True,
    ) -> Taken:
        """The mail's row and its bytes (a row of the queue taken again: the row, as it
        is now); unless a ticket's own event says what happened (``record``), a
        ``mail.received`` event of its own."""
        if isinstance(raw, MailMessage):
            row = raw
        else:
            blobs = self.work.blobs
            assert blobs is not None, "mail is taken in a unit of work with a blob batch"
            blobs.add(self.session, raw)
            row = MailMessage(received_at=self.work.now, via=via, size=raw.size)
            row.raw_sha256 = raw.sha256
            self.session.add(row)
        if mail is not None:
            row.message_id = None if mail.message_id is None else mail.message_id[:998]
            row.sender, row.subject = mail.sender[:320], mail.subject[:998]
        else:
            row.message_id, row.sender, row.subject = None, "", ""
        row.state, row.why = state, why[:500]
        row.ticket_id, row.reply_id, row.customer_id = ticket_id, reply_id, customer_id
        row.named_ticket_id = named_ticket_id
        self.session.flush()
        if record:
            self.work.record(
                EventType.MAIL_RECEIVED,
                subject_id=row.id,
                customer_id=customer_id,
                payload={
                    "mailId": row.id,
                    "state": state,
                    "why": row.why,
                    "sender": row.sender,
                    "subject": row.subject,
                    **({"again": True} if isinstance(raw, MailMessage) else {}),
                },
                # taken again by staff from the queue: they act
                actor=None if isinstance(raw, MailMessage) else Actor.VISITOR,
            )
        return Taken(row.id, state, row.why, ticket_id)
