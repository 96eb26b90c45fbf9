"""A customer's other mail addresses: mail from one of them threads as the customer's
(``mail.threading``: a ticket's code in the subject, a new ticket), once confirmed.

A customer adds one in the portal; a mail with a link goes to it (``address_confirm``,
through the event log like every notification) and the address counts once that link
is followed, within ``CONFIRM_DAYS``. Staff add one in the console (or by accepting a
held mail into a ticket and trusting its sender): confirmed at once, staff vouch for it.
An address is one customer's at most and never another user's own address.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select

from ledgerdesk.accounts.billing import EMAIL
from ledgerdesk.accounts.repository import AccountRepository
from ledgerdesk.db.models import MailAddress, User
from ledgerdesk.errors import InvalidState, NotFound, invalid
from ledgerdesk.events.types import EventType
from ledgerdesk.events.work import Actor, Work
from ledgerdesk.mail.tags import Tags

MAX_ADDRESSES = 10
CONFIRM_DAYS = 7
DAY_MS = 86_400_000


@dataclass(frozen=True)
class AddedAddress:
    address: str
    added_at: int  # ms
    confirmed: bool
    failing: bool


class MailAddresses:
    """The added addresses of customers, in one unit of work."""

    def __init__(self, work: Work) -> None:
        self.work = work
        self.session = work.session

    def of(self, user_id: int) -> Sequence[AddedAddress]:
        rows = self.session.scalars(
            select(MailAddress).where(MailAddress.user_id == user_id).order_by(MailAddress.address)
        )
        return [
            AddedAddress(
                r.address, r.added_at or 0, r.confirmed_at is not None, r.failing_since is not None
            )
            for r in rows
        ]

    def add(self, user_id: int, address: str, *, confirmed: bool) -> AddedAddress:
        """Add ``address`` to the customer's (``confirmed``: staff vouch for it; else a
        confirmation mail goes to it, and adding it again sends another)."""
        address = address.strip().lower()
        if len(address) > 320 or not EMAIL.fullmatch(address):
            raise invalid("address", "is not an email address")
        user = self.session.get(User, user_id)
        if user is None or user.is_staff:
            raise NotFound("There is no such customer.")
        holder = AccountRepository(self.session).find_user_by_email(address)
        owner = None if holder is None else holder.id
        if owner == user_id:
            raise invalid("address", "is the account's own address already")
        if owner is not None:
            raise invalid("address", "is already the address of another user")
        row = self.session.get(MailAddress, address, with_for_update=True)
        if row is not None and row.user_id not in (None, user_id):
            raise invalid("address", "is already the address of another user")
        if row is not None and row.user_id == user_id and row.confirmed_at is not None:
            raise invalid("address", "is added and confirmed already")
        if row is None or row.user_id is None:
            count = self.session.scalar(
                select(func.count()).select_from(MailAddress).where(MailAddress.user_id == user_id)
            )
            if (count or 0) >= MAX_ADDRESSES:
                raise invalid("address", f"a customer has {MAX_ADDRESSES} added addresses at most")
        if row is None:
            row = MailAddress(address=address)
            self.session.add(row)
        now_ms = self.work.now * 1000
        # A new moment of adding makes a new link (the one mailed before stops working).
        row.user_id, row.added_at = user_id, max(now_ms, (row.added_at or 0) + 1)
        row.confirmed_at = self.work.now if confirmed else None
        self.session.flush()
        self.work.record(
            EventType.CUSTOMER_ADDRESS_ADDED,
            subject_id=user_id,
            customer_id=user_id,
            payload={"userId": user_id, "address": address, "confirmed": confirmed},
        )
        return AddedAddress(address, row.added_at, confirmed, row.failing_since is not None)

    def to_confirm(self, tags: Tags, token: str, *, lock: bool = False) -> MailAddress:
        """The added address a link's token confirms, while it may (``NotFound``: no
        such link any more; ``InvalidState``: confirmed already, or the link ran out)."""
        read = tags.read_confirm_token(token)
        row = None
        if read is not None:
            user_id, added_at = read
            statement = select(MailAddress).where(
                MailAddress.user_id == user_id, MailAddress.added_at == added_at
            )
            for candidate in self.session.scalars(
                statement.with_for_update() if lock else statement
            ):
                if tags.confirms(token, candidate.address):
                    row = candidate
        if row is None or row.user_id is None or row.added_at is None:
            raise NotFound("This link confirms no address: it was replaced or removed.")
        if row.confirmed_at is not None:
            raise InvalidState("This address is confirmed already.")
        if self.work.now * 1000 > row.added_at + CONFIRM_DAYS * DAY_MS:
            raise InvalidState(
                f"This link ran out after {CONFIRM_DAYS} days; add the address again."
            )
        return row

    def confirm(self, tags: Tags, token: str) -> AddedAddress:
        """Confirm the address a link's token names; it is the customer's from now on."""
        row = self.to_confirm(tags, token, lock=True)
        assert row.user_id is not None
        assert row.added_at is not None
        row.confirmed_at = self.work.now
        self.session.flush()
        self.work.record(
            EventType.CUSTOMER_ADDRESS_CONFIRMED,
            subject_id=row.user_id,
            customer_id=row.user_id,
            payload={"userId": row.user_id, "address": row.address},
            actor=Actor.customer(row.user_id),
        )
        return AddedAddress(row.address, row.added_at, True, row.failing_since is not None)

    def remove(self, user_id: int, address: str) -> None:
        """The address is the customer's no more (what is known of its failing stays)."""
        address = address.strip().lower()
        row = self.session.get(MailAddress, address, with_for_update=True)
        if row is None or row.user_id != user_id:
            raise NotFound("The customer has no such address.")
        if row.failing_since is None:
            self.session.delete(row)
        else:
            row.user_id = row.added_at = row.confirmed_at = None
        self.session.flush()
        self.work.record(
            EventType.CUSTOMER_ADDRESS_REMOVED,
            subject_id=user_id,
            customer_id=user_id,
            payload={"userId": user_id, "address": address},
        )
