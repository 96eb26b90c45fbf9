"""A forgotten password, reset by mail.

Anyone may ask for a link for an address (``ask``); the answer never says whether an
account has it. For an enabled account with that address, a ``password.reset_requested``
event is recorded (at most one per ``QUIET_SECONDS`` for an account), and the mail relay
sends the link (``password_reset``) like any notification. Nothing secret is stored:
the link's token is signed over the account's stored password hash (``mail.tags``), so
it works once (setting the password changes the hash), and for ``VALID_SECONDS``.
"""

from __future__ import annotations

import hmac

from sqlalchemy import func, select

from ledgerdesk.accounts.people import PeopleService
from ledgerdesk.db.models import DomainEvent, User
from ledgerdesk.errors import NotFound
from ledgerdesk.events.types import EventType
from ledgerdesk.events.work import Actor, Work
from ledgerdesk.mail.key import mail_key
from ledgerdesk.mail.tags import Tags

VALID_SECONDS = 3600
QUIET_SECONDS = 300  # a second request within this sends nothing more


class PasswordResets:
    """Reset links, in one unit of work."""

    def __init__(self, work: Work) -> None:
        self.work = work
        self.session = work.session

    def tags(self) -> Tags:
        return Tags(mail_key(self.session), "")

    def ask(self, email: str) -> None:
        """A link for the account of ``email``, if there is one (the caller says the
        same either way)."""
        user = self.session.scalars(
            select(User)
            .where(func.lower(User.email) == email.strip().lower(), User.disabled_at.is_(None))
            .order_by(User.id)
            .limit(1)
        ).first()
        if user is None:
            return
        recent = self.session.scalar(
            select(DomainEvent.id)
            .where(
                DomainEvent.type == EventType.PASSWORD_RESET_REQUESTED.value,
                DomainEvent.subject_id == user.id,
                DomainEvent.created_at > self.work.now - QUIET_SECONDS,
            )
            .limit(1)
        )
        if recent is not None:
            return
        self.work.record_about(
            user, EventType.PASSWORD_RESET_REQUESTED, {"userId": user.id}, actor=Actor.VISITOR
        )

    def link_token(self, user: User, issued: int) -> str:
        return self.tags().reset_token(user.id, issued, user.password_hash or "")

    def user_of(self, token: str, *, lock: bool = False) -> User:
        """The account a link's token resets while it may (``NotFound`` otherwise)."""
        user_part, _, rest = token.partition(".")
        issued_part, _, _ = rest.partition(".")
        gone = NotFound("This link is not valid: it was used, ran out, or a password was set.")
        if not (user_part.isdigit() and issued_part.isdigit()):
            raise gone
        issued = int(issued_part)
        if not issued <= self.work.now <= issued + VALID_SECONDS:
            raise gone
        user = self.session.get(User, int(user_part), with_for_update=lock)
        if user is None or user.disabled_at is not None:
            raise gone
        if not hmac.compare_digest(token.encode(), self.link_token(user, issued).encode()):
            raise gone
        return user

    def take(self, token: str, password_hash: str) -> User:
        """Set the password (hashed beforehand) through the link; every session ends."""
        user = self.user_of(token, lock=True)
        PeopleService.of(self.work).set_password_by_mail(user, password_hash)
        return user
