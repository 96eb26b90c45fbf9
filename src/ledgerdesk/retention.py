"""Keeping only what can still be used: the rows that expire, pruned.

Remembered idempotent answers are replayed for 24 hours and then only take room (every
write sent with an ``Idempotency-Key`` leaves one); expired password links, ended web
sessions and notices nobody came for are never read again; the webhook delivery log
keeps attempts and finished deliveries for ``LEDGERDESK_WEBHOOK_LOG_DAYS``. ``prune``
removes them, in batches of their own transactions so that a large backlog never holds
SQLite's write lock (or a PostgreSQL transaction) for long. The server runs it every
``PRUNE_SECONDS``; ``ledgerdesk db prune`` runs it at once.
"""

from __future__ import annotations

from ledgerdesk.accounts.people import PeopleService
from ledgerdesk.idempotency.repository import IdempotencyRepository
from ledgerdesk.idempotency.service import WINDOW_SECONDS
from ledgerdesk.runtime import Runtime
from ledgerdesk.webhooks.service import prune_log

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
    before_ms = (now - runtime.settings.webhook_log_days * 86_400) * 1000
    log_rows = 0
    while True:
        with runtime.transaction(write=True) as (session, _):
            batch = prune_log(session, before_ms=before_ms, limit=BATCH)
        log_rows += batch
        if batch < BATCH:
            break
    return {"idempotent_answers": answers, **removed, "webhook_log_rows": log_rows}
