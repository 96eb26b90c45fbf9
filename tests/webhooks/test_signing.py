"""Deliveries are signed by the Standard Webhooks scheme: the reference package verifies
what ledgerdesk signs, and the SDK's ``verify`` accepts exactly what it should."""

from __future__ import annotations

import json
import time

import pytest
from standardwebhooks import Webhook
from standardwebhooks import WebhookVerificationError as ReferenceError

from ledgerdesk.client.webhooks import WebhookVerificationError, verify
from ledgerdesk.webhooks.signing import is_secret, new_secret, signature_headers

BODY = json.dumps(
    {"type": "ticket.replied", "timestamp": "2026-11-30T10:00:00Z", "data": {"ticketId": 7}}
).encode()


def signed(*secrets: str, at: int | None = None) -> dict[str, str]:
    return signature_headers("42", int(time.time()) if at is None else at, BODY, secrets)


def test_the_reference_package_verifies_what_ledgerdesk_signs() -> None:
    secret = new_secret()
    assert is_secret(secret)
    assert Webhook(secret).verify(BODY, signed(secret))["data"] == {"ticketId": 7}
    with pytest.raises(ReferenceError):
        Webhook(new_secret()).verify(BODY, signed(secret))


def test_during_a_rotation_both_secrets_verify() -> None:
    new, old = new_secret(), new_secret()
    headers = signed(new, old)
    assert len(headers["webhook-signature"].split()) == 2
    for secret in (new, old):
        assert Webhook(secret).verify(BODY, headers)["type"] == "ticket.replied"
        assert verify(secret, headers, BODY).id == "42"


def test_the_sdk_verifies_a_delivery_and_gives_its_event() -> None:
    secret = new_secret()
    event = verify(secret, signed(secret), BODY)
    assert (event.id, event.type, event.data) == ("42", "ticket.replied", {"ticketId": 7})
    # Headers in any case, body as text.
    upper = {name.upper(): value for name, value in signed(secret).items()}
    assert verify(secret, upper, BODY.decode()).type == "ticket.replied"


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda h, b: ({k: v for k, v in h.items() if k != "webhook-id"}, b), "webhook-id"),
        (lambda h, b: ({**h, "webhook-timestamp": "soon"}, b), "not a unix time"),
        (lambda h, b: (h, b.replace(b"7", b"8")), "no signature made with this secret"),
        (lambda h, b: ({**h, "webhook-id": "43"}, b), "no signature made with this secret"),
        (lambda h, b: ({**h, "webhook-signature": "v2,abc"}, b), "no signature"),
        (lambda h, b: ({**h, "webhook-signature": "v1,***"}, b), "no signature"),
    ],
)
def test_a_delivery_that_is_not_ledgerdesks_is_refused(change: object, needle: str) -> None:
    secret = new_secret()
    headers, body = change(signed(secret), BODY)  # type: ignore[operator]
    with pytest.raises(WebhookVerificationError, match=needle):
        verify(secret, headers, body)


def test_an_old_or_future_delivery_is_refused_within_the_tolerance() -> None:
    secret = new_secret()
    now = time.time()
    old = signed(secret, at=int(now) - 301)
    with pytest.raises(WebhookVerificationError, match="301 s old"):
        verify(secret, old, BODY, now=now)
    assert verify(secret, old, BODY, now=now, tolerance=600).id == "42"
    future = signed(secret, at=int(now) + 400)
    with pytest.raises(WebhookVerificationError, match="far in the future"):
        verify(secret, future, BODY, now=now)


def test_a_body_that_is_no_event_is_refused_even_when_signed() -> None:
    secret = new_secret()
    body = b'{"hello": "world"}'
    headers = signature_headers("1", int(time.time()), body, [secret])
    with pytest.raises(WebhookVerificationError, match="not an event"):
        verify(secret, headers, body)
    with pytest.raises(WebhookVerificationError, match="not whsec_ and base64"):
        verify("whsec_!!!", headers, body)


def test_signing_needs_a_secret() -> None:
    with pytest.raises(ValueError, match="at least one secret"):
        signature_headers("1", 0, BODY, [])
    assert not is_secret("whsec_short")
    assert not is_secret("sk_live_0123456789abcdef0123")
