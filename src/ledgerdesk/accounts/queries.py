"""Reads on the request path for accounts: the keys a customer may authenticate with."""

from __future__ import annotations

from datetime import date
from typing import NamedTuple, cast

from sqlalchemy import bindparam, select

from ledgerdesk.db.models import ApiKey, User
from ledgerdesk.db.prepared import Db, Prepared
from ledgerdesk.db.read_cache import ReadCache


class KeyRecord(NamedTuple):
    id: int
    key_hash: str
    categories: list[str] | None
    ip_ranges: list[str] | None
    expires_on: date | None


_USABLE_KEYS = Prepared(
    select(ApiKey.id, ApiKey.key_hash, ApiKey.categories, ApiKey.ip_ranges, ApiKey.expires_on)
    .join(User, User.id == ApiKey.user_id)
    .where(
        ApiKey.user_id == bindparam("user_id"),
        ApiKey.revoked_at.is_(None),
        # Staff answer tickets through the admin CLI and never use the customer API.
        User.is_staff.is_(False),
        # A disabled customer's keys stop working with the commit that disables them.
        User.disabled_at.is_(None),
    )
)


class AccountQueries:
    def __init__(self, db: Db) -> None:
        self.db = db

    def usable_keys(self, user_id: int) -> list[KeyRecord]:
        """The unrevoked keys of a customer who is not disabled."""
        return [KeyRecord(*row) for row in self.db.rows(_USABLE_KEYS, user_id=user_id)]


class CachedKeys:
    """``AccountQueries.usable_keys`` through the SQLite read cache (db.read_cache)."""

    def __init__(self, queries: AccountQueries, cache: ReadCache) -> None:
        self.queries = queries
        self.cache = cache

    def usable_keys(self, user_id: int) -> list[KeyRecord]:
        found = self.cache.remembered(("keys", user_id), lambda: self.queries.usable_keys(user_id))
        return cast(list[KeyRecord], found)
