"""Every query about users and keys."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import BigInteger, bindparam, case, func, or_, select, update
from sqlalchemy.orm import Session

from ledgerdesk.db.models import ApiKey, MailAddress, User
from ledgerdesk.db.search import ESCAPE, like_pattern


@dataclass(frozen=True)
class KeyUse:
    key_id: int
    count: int
    last_used_at: int


class AccountRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get_user(self, user_id: int) -> User | None:
        return self.session.get(User, user_id)

    def find_user_by_email(self, email: str) -> User | None:
        return self.session.scalars(
            select(User)
            .where(func.lower(User.email) == email.strip().lower())
            .order_by(User.id)
            .limit(1)
        ).first()

    def added_address_owner(self, email: str) -> int | None:
        """The customer who added ``email`` as another address of theirs (mail.addresses)."""
        return self.session.scalar(
            select(MailAddress.user_id).where(MailAddress.address == email.strip().lower())
        )

    def staff(self) -> Sequence[User]:
        return self.session.scalars(
            select(User)
            .where(User.is_staff.is_(True))
            .order_by(User.disabled_at.is_not(None), func.lower(User.name), User.id)
        ).all()

    def enabled_admins(self, *, excluding: int) -> int:
        return int(
            self.session.scalar(
                select(func.count())
                .select_from(User)
                .where(
                    User.is_admin.is_(True),
                    User.disabled_at.is_(None),
                    User.id != excluding,
                )
            )
            or 0
        )

    def list_users(self) -> Sequence[User]:
        return self.session.scalars(select(User).order_by(User.id)).all()

    def customers(self, *, text: str | None, after_id: int | None, limit: int) -> Sequence[User]:
        """Customers by id, optionally those whose name or email contains ``text``."""
        query = select(User).where(User.is_staff.is_(False)).order_by(User.id).limit(limit)
        if text:
            pattern = like_pattern(text)
            query = query.where(
                or_(
                    func.lower(User.name).like(pattern, escape=ESCAPE),
                    func.lower(User.email).like(pattern, escape=ESCAPE),
                )
            )
        if after_id is not None:
            query = query.where(User.id > after_id)
        return self.session.scalars(query).all()

    def add_user(self, user: User) -> User:
        self.session.add(user)
        self.session.flush()
        return user

    def get_key(self, key_id: int) -> ApiKey | None:
        return self.session.get(ApiKey, key_id)

    def list_keys(self, user_id: int | None) -> Sequence[ApiKey]:
        query = select(ApiKey).order_by(ApiKey.id)
        if user_id is not None:
            query = query.where(ApiKey.user_id == user_id)
        return self.session.scalars(query).all()

    def count_usable_keys(self, user_id: int, today: date) -> int:
        """Keys of the user that are neither revoked nor past their expiry date."""
        return (
            self.session.scalar(
                select(func.count())
                .select_from(ApiKey)
                .where(
                    ApiKey.user_id == user_id,
                    ApiKey.revoked_at.is_(None),
                    or_(ApiKey.expires_on.is_(None), ApiKey.expires_on >= today),
                )
            )
            or 0
        )

    def add_key(self, key: ApiKey) -> ApiKey:
        self.session.add(key)
        self.session.flush()
        return key

    def record_uses(self, uses: Iterable[KeyUse]) -> None:
        """Add use counts and move last-used times forward (see ``RECORD_USES``)."""
        rows = key_use_rows(uses)
        if rows:
            self.session.connection().execute(RECORD_USES, rows)


_LAST = bindparam("b_last", type_=BigInteger())
# Adds a use count and moves the last-used time forward; never back, when another
# process wrote a later one.
RECORD_USES = (
    update(ApiKey)
    .where(ApiKey.id == bindparam("b_id", type_=BigInteger()))
    .values(
        use_count=ApiKey.use_count + bindparam("b_count", type_=BigInteger()),
        last_used_at=case((ApiKey.last_used_at > _LAST, ApiKey.last_used_at), else_=_LAST),
    )
)


def key_use_rows(uses: Iterable[KeyUse]) -> list[dict[str, int]]:
    """The parameters of ``RECORD_USES``, in ascending key order.

    Every process writes its rows in the same order, so two processes flushing
    overlapping keys at once queue behind each other instead of deadlocking
    (PostgreSQL aborts one of two transactions that lock rows in opposite orders).
    """
    return [
        {"b_id": use.key_id, "b_count": use.count, "b_last": use.last_used_at}
        for use in sorted(uses, key=lambda use: use.key_id)
    ]
