"""The protocol's work inside a request's transaction: authenticate the caller, run the
action (a read answered from the read cache when it can be; a write once per
Idempotency-Key), and lay out the envelope. Failures are recorded in the audit trail;
what a write changes, its services record in the event log."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from ledgerdesk.accounts.queries import AccountQueries, CachedKeys
from ledgerdesk.accounts.service import Authenticator, Principal
from ledgerdesk.attachments.storage import BlobBatch
from ledgerdesk.audit.service import record_now
from ledgerdesk.db.prepared import Db, session_db
from ledgerdesk.db.read_cache import ReadCache
from ledgerdesk.errors import LedgerdeskError, UnknownAction
from ledgerdesk.events.work import Actor, Work
from ledgerdesk.runtime import Runtime
from ledgerdesk.wire import envelope
from ledgerdesk.wire.registry import ActionContext, ActionRegistry, FileDownload
from ledgerdesk.wire.request import Request
from ledgerdesk.wire.writes import PreparedWrite, Remembered

CATEGORY = "administration"


class Perform:
    """Authenticate, then answer: for reads (``read``) and writes (``write``)."""

    def __init__(self, runtime: Runtime, registry: ActionRegistry) -> None:
        self.runtime = runtime
        self.unknown_action_message = (
            f"Unknown or missing action; known actions: {', '.join(registry.names())}."
        )

    def read(self, request: Request, db: Db, cache: ReadCache | None) -> bytes | FileDownload:
        runtime = self.runtime
        now = runtime.clock.timestamp()
        day = runtime.day_of(now)
        principal = self._authenticate(request, db, cache, now, day)
        action = request.action
        assert action is not None
        key = (
            _answer_key(principal.user_id, action.name, day, request.body.fields)
            if cache is not None and action.cacheable
            else None
        )
        if key is not None:
            assert cache is not None
            cached = cache.answer(key)
            if cached is not None:
                return cached
        params = action.parse(request.body.fields, runtime.settings)
        result = action.handler(self._context(request, principal, db, now, day), params)
        if isinstance(result, FileDownload):
            return result
        answer = envelope.success(result)
        if key is not None:
            assert cache is not None
            cache.keep_answer(key, answer)
        return answer

    def write(
        self, request: Request, prepared: PreparedWrite, session: Session, blobs: BlobBatch
    ) -> bytes | FileDownload:
        runtime = self.runtime
        now = runtime.clock.timestamp()
        day = runtime.day_of(now)
        principal = self._authenticate(request, session_db(session), None, now, day)
        action = request.action
        assert action is not None
        try:
            # Refused parameters are answered after authentication, as for reads.
            if prepared.error is not None:
                raise prepared.error
            assert prepared.params is not None
            params, attachments = prepared.params, prepared.attachments
            remembered = Remembered.of(
                session, principal.user_id, action, request, params, attachments, now
            )
            if remembered is not None and remembered.first_answer is not None:
                record_now(session, request.event(now, "replayed", principal))
                return remembered.first_answer
            actor = Actor.customer(principal.user_id, principal.key_id)
            work = Work(
                session, actor, request.origin, now, day, blobs, self.runtime.service_levels
            )
            context = self._context(request, principal, session_db(session), now, day, work)
            context.attachments.extend(attachments)
            result = action.handler(context, params)
            if isinstance(result, FileDownload):
                return result
            answer = envelope.success(result)
            if remembered is not None:
                remembered.remember(answer)
            return answer
        except LedgerdeskError as exc:
            runtime.audit.record(request.event(now, "error", principal, error_code=exc.error_code))
            raise

    def _authenticate(
        self, request: Request, db: Db, cache: ReadCache | None, now: int, day: date
    ) -> Principal:
        """The caller, or the error that refuses them (recorded in the audit trail)."""
        keys = AccountQueries(db)
        try:
            principal = Authenticator(
                keys if cache is None else CachedKeys(keys, cache)
            ).authenticate(
                user_id=request.credentials.user_id,
                api_key=request.credentials.api_key,
                category=CATEGORY,
                client_ip=request.address,
                today=day,
            )
        except LedgerdeskError as exc:
            self.runtime.audit.record(request.event(now, "error", None, error_code=exc.error_code))
            raise
        request.authenticated = True
        self.runtime.key_usage.record(principal.key_id, now)
        if request.action is None:
            raise UnknownAction(self.unknown_action_message)
        return principal

    def _context(
        self,
        request: Request,
        principal: Principal,
        db: Db,
        now: int,
        day: date,
        work: Work | None = None,
    ) -> ActionContext:
        return ActionContext(
            principal=principal,
            db=db,
            settings=self.runtime.settings,
            now=now,
            today=day,
            files=request.files,
            blob_store=self.runtime.blobs,
            unit=work,
        )


def _answer_key(user_id: int, action: str, day: date, fields: Mapping[str, Any]) -> Hashable | None:
    """The request exactly as sent, each value with its type.

    A cached answer stands for one exact input that was validated and answered before,
    so a hit needs no validation again. The type is part of the key because Python's
    equality is looser than the protocol's: ``True == 1 == 1.0``, but ``1`` is an id
    and ``true`` and ``1.0`` are 1003s.
    """
    key = (user_id, action, day, tuple(fields.items()), tuple(map(type, fields.values())))
    try:
        hash(key)
    except TypeError:
        return None  # lists or objects among the fields: not worth an entry
    return key
