"""Receiving ledgerdesk's webhooks: check that a delivery is ledgerdesk's own.

Deliveries are signed by the Standard Webhooks scheme: ``webhook-id``,
``webhook-timestamp`` and ``webhook-signature`` (``v1,<base64 HMAC-SHA256>`` of
``id.timestamp.body`` with the endpoint's secret; several, space-separated, while a
secret is being rotated). ::

    from ledgerdesk.client.webhooks import verify

    event = verify(secret, request.headers, request.body)   # raises if it is not
    if event.type == "ticket.replied":
        ...

The same deliveries verify with the reference ``standardwebhooks`` package.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ledgerdesk.client._errors import WebhookVerificationError

__all__ = ["WebhookEvent", "WebhookVerificationError", "verify"]

SECRET_PREFIX = "whsec_"  # noqa: S105 (the scheme's prefix, not a secret)


@dataclass(frozen=True)
class WebhookEvent:
    """A verified delivery: ``id`` is the event's (the same on every retry: deduplicate
    on it), ``type`` e.g. ``ticket.replied``, ``timestamp`` the event's time (an ISO
    8601 string), ``data`` its payload."""

    id: str
    type: str
    timestamp: str
    data: dict[str, Any]


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes | str,
    *,
    tolerance: int = 300,
    now: float | None = None,
) -> WebhookEvent:
    """The event of a delivery whose signature was made with ``secret`` (``whsec_...``)
    at most ``tolerance`` seconds from ``now`` (default: the clock); else
    ``WebhookVerificationError`` saying what is wrong."""
    key = _key(secret)
    lowered = {name.lower(): value for name, value in headers.items()}
    message_id = lowered.get("webhook-id", "")
    stamp = lowered.get("webhook-timestamp", "")
    signatures = lowered.get("webhook-signature", "")
    missing = [
        name
        for name, value in (
            ("webhook-id", message_id),
            ("webhook-timestamp", stamp),
            ("webhook-signature", signatures),
        )
        if not value
    ]
    if missing:
        raise WebhookVerificationError(f"missing header(s): {', '.join(missing)}")
    if not stamp.isdigit():
        raise WebhookVerificationError("webhook-timestamp is not a unix time in seconds")
    skew = (time.time() if now is None else now) - int(stamp)
    if abs(skew) > tolerance:
        when = "old" if skew > 0 else "far in the future"
        raise WebhookVerificationError(
            f"webhook-timestamp is {abs(int(skew))} s {when}; at most {tolerance} s is accepted"
        )
    raw = body.encode() if isinstance(body, str) else bytes(body)
    expected = hmac.new(key, f"{message_id}.{stamp}.".encode() + raw, hashlib.sha256).digest()
    for signature in signatures.split():
        version, _, value = signature.partition(",")
        if version != "v1":
            continue
        try:
            given = base64.b64decode(value, validate=True)
        except binascii.Error:
            continue
        if hmac.compare_digest(expected, given):
            return _event(message_id, raw)
    raise WebhookVerificationError("no signature made with this secret")


def _key(secret: str) -> bytes:
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error:
        raise WebhookVerificationError("the secret is not whsec_ and base64") from None
    if not key:
        raise WebhookVerificationError("the secret is empty")
    return key


def _event(message_id: str, raw: bytes) -> WebhookEvent:
    try:
        parsed = json.loads(raw)
    except ValueError:
        raise WebhookVerificationError("the body is not JSON") from None
    if not (
        isinstance(parsed, dict)
        and isinstance(parsed.get("type"), str)
        and isinstance(parsed.get("timestamp"), str)
        and isinstance(parsed.get("data"), dict)
    ):
        raise WebhookVerificationError('the body is not an event: {"type", "timestamp", "data"}')
    return WebhookEvent(message_id, parsed["type"], parsed["timestamp"], parsed["data"])
