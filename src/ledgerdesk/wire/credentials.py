"""Credentials: ``userId`` and ``apiKey`` in the body, or HTTP Basic ``userId:apiKey``."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ledgerdesk.accounts.keys import parse_user_id


@dataclass(frozen=True)
class Credentials:
    user_id: int | None
    api_key: object


def credentials_from(fields: Mapping[str, Any], authorization: str | None) -> Credentials:
    """Body fields win over the Authorization header; missing parts come out as None."""
    if "userId" in fields or "apiKey" in fields:
        return Credentials(parse_user_id(fields.get("userId")), fields.get("apiKey"))
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
