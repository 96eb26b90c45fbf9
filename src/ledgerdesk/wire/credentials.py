"""Credentials: ``userId`` and ``apiKey`` in the body, or HTTP Basic ``userId:apiKey``."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ledgerdesk.accounts.keys import parse_user_id
from ledgerdesk.errors import InvalidParameters, ParamError


@dataclass(frozen=True)
class Credentials:
    user_id: int | None
    api_key: str | None
    # Credentials of the wrong JSON type (an object, a list, a number for the key): a
    # 1003 like any bad parameter, counted as a failed authentication.
    malformed: InvalidParameters | None = None


def credentials_from(fields: Mapping[str, Any], authorization: str | None) -> Credentials:
    """Body fields win over the Authorization header; missing parts come out as None."""
    if "userId" in fields or "apiKey" in fields:
        raw_user, raw_key = fields.get("userId"), fields.get("apiKey")
        problems = [
            ParamError(name, message)
            for name, value, message in (
                ("userId", raw_user, "must be a number or a string"),
                ("apiKey", raw_key, "must be a string"),
            )
            if not _plain(value, numbers=name == "userId")
        ]
        if problems:
            names = " and ".join(problem.property for problem in problems)
            return Credentials(
                None, None, InvalidParameters(f"Invalid parameter {names}.", problems)
            )
        return Credentials(parse_user_id(raw_user), raw_key)
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return Credentials(None, None)
            user, _, key = decoded.partition(":")
            return Credentials(parse_user_id(user), key)
    return Credentials(None, None)


def _plain(value: object, *, numbers: bool) -> bool:
    """Absent, a string, or (for the user id) a whole number: what a client may send."""
    if value is None or isinstance(value, str):
        return True
    return numbers and isinstance(value, int) and not isinstance(value, bool)
