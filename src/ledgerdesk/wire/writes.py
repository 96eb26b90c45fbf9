"""What a write needs before its transaction: parameters checked and attachments made
ready (``PreparedWrite``), and the record of an Idempotency-Key (``Remembered``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from ledgerdesk.attachments.incoming import IncomingFile
from ledgerdesk.config import Settings
from ledgerdesk.errors import LedgerdeskError
from ledgerdesk.idempotency.repository import IdempotencyRepository
from ledgerdesk.idempotency.service import IdempotencyService, fingerprint
from ledgerdesk.wire.registry import Action
from ledgerdesk.wire.request import Request
from ledgerdesk.wire.types import Params


@dataclass(frozen=True)
class PreparedWrite:
    """A write's parameters and attachments, or the error that refuses them."""

    params: Params | None
    attachments: list[IncomingFile]
    error: LedgerdeskError | None = None

    @classmethod
    def of(cls, request: Request, settings: Settings) -> PreparedWrite:
        action = request.action
        if action is None:
            return cls(None, [])
        try:
            params = action.parse(request.body.fields, settings)
            files = action.files(request.files, params) if action.files is not None else []
        except LedgerdeskError as exc:
            return cls(None, [], exc)
        return cls(params, files)


@dataclass(frozen=True)
class Remembered:
    """An Idempotency-Key's record for this request: the first answer, if there was one."""

    service: IdempotencyService
    user_id: int
    key: str
    digest: str
    now: int
    first_answer: bytes | None

    @classmethod
    def of(
        cls,
        session: Session,
        user_id: int,
        action: Action[Any, Any],
        request: Request,
        params: Params,
        files: list[IncomingFile],
        now: int,
    ) -> Remembered | None:
        if request.idempotency_key is None:
            return None
        service = IdempotencyService(IdempotencyRepository(session))
        digest = fingerprint(action.name, params, files)
        first = service.replay(user_id, request.idempotency_key, digest, now=now)
        return cls(service, user_id, request.idempotency_key, digest, now, first)

    def remember(self, answer: bytes) -> None:
        self.service.remember(self.user_id, self.key, self.digest, answer, now=self.now)
