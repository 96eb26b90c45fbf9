"""Signing deliveries by the Standard Webhooks scheme, with its reference library.

A secret is ``whsec_`` and the base64 of 24 random bytes. A delivery carries
``webhook-id`` (the event's id: the same on every retry), ``webhook-timestamp`` (unix
seconds of this attempt) and ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of
"id.timestamp.body">``, one per secret, space-separated, while a rotated-out secret is
still in its grace period.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105 (the scheme's prefix, not a secret)
SECRET_BYTES = 24


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def is_secret(text: str) -> bool:
    """A secret as ``new_secret`` makes them (what a stored one must look like)."""
    if not text.startswith(SECRET_PREFIX):
        return False
    try:
        return len(base64.b64decode(text[len(SECRET_PREFIX) :], validate=True)) >= 16
    except ValueError:
        return False


def signature_headers(
    message_id: str, timestamp: int, body: bytes, secrets_in_use: Sequence[str]
) -> dict[str, str]:
    """The three headers of a delivery, signed with every secret in use (the current one
    first)."""
    if not secrets_in_use:
        raise ValueError("a delivery is signed with at least one secret")
    when = datetime.fromtimestamp(timestamp, UTC)
    text = body.decode()
    signatures = [Webhook(secret).sign(message_id, when, text) for secret in secrets_in_use]
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signatures),
    }
