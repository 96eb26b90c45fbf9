"""Keeping only what can still be used: the rows that expire, pruned.

Remembered idempotent answers are replayed for 24 hours and then only take room (every
write sent with an ``Idempotency-Key`` leaves one); expired password links, ended web
sessions and notices nobody came for are never read again. ``prune`` removes them, in
batches of their own transactions so that a large backlog never holds SQLite's write
lock (or a PostgreSQL transaction) for long. The server runs it every
``PRUNE_SECONDS``; ``ledgerdesk db prune`` runs it at once.
"""

from __future__ import annotations

from ledgerdesk.accounts.people import PeopleService
from ledgerdesk.idempotency.repository import IdempotencyRepository
from ledgerdesk.idempotency.service import WINDOW_SECONDS
from ledgerdesk.runtime import Runtime

PRUNE_SECONDS = 600.0
BATCH = 1000


def prune(runtime: Runtime) -> dict[str, int]:
    """Remove every expired row; how many of each kind."""
    now = runtime.clock.timestamp()
    with runtime.transaction(write=True) as (session, _):
        removed = PeopleService(session).prune(now=now)
    answers = 0
    while True:
        with runtime.transaction(write=True) as (session, _):
            batch = IdempotencyRepository(session).prune(before=now - WINDOW_SECONDS, limit=BATCH)
        answers += batch
        if batch < BATCH:
            break
    return {"idempotent_answers": answers, **removed}
