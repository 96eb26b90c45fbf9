"""What a delivery carries, and what the documentation says of every event type."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ledgerdesk.errors import InvalidParameters
from ledgerdesk.events.log import EventRecord
from ledgerdesk.events.types import EventType
from ledgerdesk.webhooks.payloads import body_of
from ledgerdesk.webhooks.service import CUSTOMER_TYPES, check_event_types, receives

DOCS = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"
README = DOCS.parent.parent / "README.md"


def test_the_body_is_type_timestamp_and_data() -> None:
    event = EventRecord(
        id=1207,
        type="ticket.replied",
        created_at=1796040007,
        door="console",
        actor_kind="staff",
        actor_id=3,
        key_id=None,
        customer_id=7,
        subject_id=42,
        payload={"ticketId": 42, "content": "Done."},
        client_address="203.0.113.9",
        request_id="r-1",
    )
    body = json.loads(body_of(event))
    assert body == {
        "type": "ticket.replied",
        "timestamp": "2026-11-30T12:00:07+00:00",
        "data": {
            "eventId": 1207,
            "subject": "ticket",
            "subjectId": 42,
            "customerId": 7,
            "actor": {"kind": "staff", "userId": 3, "keyId": None},
            "door": "console",
            "details": {"ticketId": 42, "content": "Done."},
        },
    }
    assert b"203.0.113.9" not in body_of(event)  # the caller's address stays in the log


def test_the_documentation_lists_every_event_type() -> None:
    documented = set(re.findall(r"^\| `([a-z_]+\.[a-z_]+)` \|", DOCS.read_text(), re.MULTILINE))
    assert documented == {t.value for t in EventType}
    readme = README.read_text()
    webhooks = readme[readme.index("## Webhooks") : readme.index("## For customers")]
    assert set(re.findall(r"`([a-z_]+\.[a-z_]+)`", webhooks)) >= {t.value for t in EventType}


def test_customers_never_receive_staff_affairs() -> None:
    assert "ticket.note_added" not in CUSTOMER_TYPES
    assert "password.link_created" not in CUSTOMER_TYPES
    assert not any(t.startswith(("staff.", "seller.", "webhook.")) for t in CUSTOMER_TYPES)
    assert {"ticket.replied", "invoice.issued", "payment.recorded"} <= CUSTOMER_TYPES


class Event:
    def __init__(self, type: str, customer_id: int | None) -> None:
        self.type = type
        self.customer_id = customer_id


def test_who_receives_what() -> None:
    assert receives((), None, Event("seller.updated", None))
    assert receives(("ticket.*",), None, Event("ticket.closed", 3))
    assert not receives(("ticket.*",), None, Event("invoice.issued", 3))
    assert receives((), 3, Event("ticket.closed", 3))
    assert not receives((), 3, Event("ticket.closed", 4))
    assert not receives((), 3, Event("ticket.note_added", 3))


def test_filters_are_checked() -> None:
    assert check_event_types([" ticket.* ", "ticket.*", ""], for_customer=False) == ("ticket.*",)
    for wrong in (["ticket"], ["tickets.*"], ["*"]):
        with pytest.raises(InvalidParameters, match="is no event type"):
            check_event_types(wrong, for_customer=False)
