"""Replaying writes: same key and same request within 24 hours answer the first answer."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence

from pydantic import BaseModel

from ledgerdesk.attachments.incoming import IncomingFile
from ledgerdesk.db.models import IdempotentRequest
from ledgerdesk.errors import IdempotencyConflict, invalid
from ledgerdesk.idempotency.repository import IdempotencyRepository

WINDOW_SECONDS = 24 * 60 * 60
_KEY = re.compile(r"[\x21-\x7e]{1,255}")


def check_key(raw: str) -> str:
    if not _KEY.fullmatch(raw):
        raise invalid("Idempotency-Key", "must be 1 to 255 printable ASCII characters")
    return raw


def fingerprint(action: str, params: BaseModel, files: Sequence[IncomingFile]) -> str:
    """A digest of what the request means: action, parsed parameters and file contents.

    Taken from the parsed parameters, not the body, so that a retry is recognised
    however it is encoded: JSON or form, ``"2"`` or ``2``, the category URL with an
    ``action`` field or the alias URL, an attachment as base64 or as a multipart part.
    Credentials say who asks, not what is asked, and are not parameters.
    """
    described = {
        "action": action,
        # Files are described by their names, types and SHA-256 below, not by how they
        # were encoded in the body.
        "params": params.model_dump(mode="json", exclude={"attachments"}),
        "files": [[f.name, f.content_type, f.sha256] for f in files],
    }
    canonical = json.dumps(described, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class IdempotencyService:
    def __init__(self, repository: IdempotencyRepository) -> None:
        self.repository = repository

    def replay(self, user_id: int, key: str, fingerprint: str, *, now: int) -> bytes | None:
        """The first answer for this key, None if there is none; 3003 if it asked otherwise."""
        row = self.repository.get(user_id, key)
        if row is None:
            return None
        if row.created_at <= now - WINDOW_SECONDS:
            self.repository.forget(user_id, key)
            return None
        if row.fingerprint != fingerprint:
            raise IdempotencyConflict()
        return row.response

    def remember(
        self, user_id: int, key: str, fingerprint: str, response: bytes, *, now: int
    ) -> None:
        self.repository.add(
            IdempotentRequest(
                user_id=user_id,
                key=key,
                fingerprint=fingerprint,
                response=response,
                created_at=now,
            )
        )
