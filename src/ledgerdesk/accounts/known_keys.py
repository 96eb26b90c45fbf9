"""The API keys that exist, known to each server process, so that the first request of a
real key is not taken for a guess.

The failed-key limit lets an address have only as many checks of credentials not yet
proven right in flight as it has failures left (see ``wire.rate_limit``): otherwise
forty guesses sent at once are all checked against a limit of ten. A panel serving many
customers from one address would queue behind that limit with every customer's first
request, though none of them guesses. Each process therefore holds a fingerprint of
every unrevoked key (its user id and the first 60 bits of its stored SHA-256), reloaded
every ``REFRESH_SECONDS``: credentials that match one are a real key and skip the
queue; anything else (a guess, or a key made since the last load) waits its turn. A
match is never trusted as authentication: the key is checked against the database as
always, and a wrong one counts as a failure.
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from ledgerdesk.accounts.keys import hash_key, is_well_formed_key
from ledgerdesk.db.models import ApiKey
from ledgerdesk.db.prepared import Db, Prepared

log = logging.getLogger("ledgerdesk.accounts")

REFRESH_SECONDS = 30.0
# Past this many keys the fingerprints are not held (some 60 MB); every first request
# then queues as before.
MOST_KEYS = 1_000_000

_ALL_KEYS = Prepared(
    select(ApiKey.user_id, ApiKey.key_hash).where(ApiKey.revoked_at.is_(None)).limit(MOST_KEYS + 1)
)


def _fingerprint(user_id: int, key_hash: str) -> int:
    return (int(key_hash[:15], 16) << 64) | user_id


class KnownKeys:
    def __init__(self) -> None:
        self._known: frozenset[int] = frozenset()

    def knows(self, user_id: int | None, api_key: str | None) -> bool:
        """Whether these credentials are a key that exists (not whether they are valid)."""
        if user_id is None or api_key is None or not self._known:
            return False
        if not is_well_formed_key(api_key):
            return False
        return _fingerprint(user_id, hash_key(api_key)) in self._known

    def load(self, db: Db) -> int:
        """Read every unrevoked key's fingerprint; how many are held."""
        rows = db.rows(_ALL_KEYS)
        if len(rows) > MOST_KEYS:
            log.warning(
                "over %d API keys: first requests of each key queue (see known_keys)", MOST_KEYS
            )
            self._known = frozenset()
            return 0
        self._known = frozenset(_fingerprint(user_id, key_hash) for user_id, key_hash in rows)
        return len(self._known)
