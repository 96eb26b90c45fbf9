"""What happened to a ticket or a customer, from the event log, as the console shows it:
when, what, who, and through which door."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledgerdesk.db.models import User
from ledgerdesk.events.log import EventRecord
from ledgerdesk.tickets.service import PRIORITY_NAMES

DOORS = {
    "api": "the API",
    "console": "the console",
    "portal": "the portal",
    "cli": "the admin CLI",
    "mail": "mail",
    "replay": "a replay",
    "system": "the system",
}


@dataclass(frozen=True)
class HistoryRow:
    event_id: int
    at: int
    what: str
    who: str
    door: str


def history(session: Session, events: Sequence[EventRecord]) -> list[HistoryRow]:
    """The events as rows of a page, each naming who acted (one query for the names)."""
    ids = {e.actor_id for e in events if e.actor_id is not None} | {
        int(e.payload["assigneeId"]) for e in events if e.payload.get("assigneeId") is not None
    }
    names: dict[int, str] = {}
    if ids:
        for user_id, name in session.execute(select(User.id, User.name).where(User.id.in_(ids))):
            names[user_id] = name
    return [
        HistoryRow(
            event_id=event.id,
            at=event.created_at,
            what=describe(event, names),
            who=_who(event, names),
            door=DOORS.get(event.door, event.door),
        )
        for event in events
    ]


def describe(event: EventRecord, names: dict[int, str]) -> str:
    """What happened, in words (``names``: users' names by id, for those it names)."""
    data = event.payload
    kind = event.type
    if kind == "ticket.created":
        return f"Opened ticket #{data.get('ticketCode', event.subject_id)}" + _files(data)
    if kind == "ticket.replied":
        said = "Replied" if data.get("by") == "staff" else "Customer replied"
        if data.get("reopened"):
            said += " (reopened the ticket)"
        return said + _files(data)
    if kind == "ticket.note_added":
        return "Added an internal note"
    if kind == "ticket.closed":
        return "Closed the ticket for good" if data.get("forced") else "Closed the ticket"
    if kind == "ticket.reopened":
        return "Reopened the ticket"
    if kind == "ticket.assigned":
        assignee = data.get("assigneeId")
        if assignee is None:
            return "Unassigned the ticket"
        return f"Assigned the ticket to {names.get(int(assignee), f'user {assignee}')}"
    if kind == "ticket.priority_changed":
        return f"Changed the priority to {PRIORITY_NAMES.get(int(data.get('priorityId', 0)), '?')}"
    if kind == "ticket.merged":
        return f"Merged ticket #{data.get('mergedTicketCode', '')} into this one"
    if kind == "ticket.tagged":
        added = ", ".join(str(t) for t in data.get("added", []))
        removed = ", ".join(str(t) for t in data.get("removed", []))
        parts = ([f"tagged {added}"] if added else []) + (
            [f"untagged {removed}"] if removed else []
        )
        return "; ".join(parts).capitalize() or "Tagged"
    if kind == "ticket.pending":
        return "Made the ticket wait for the customer"
    if kind == "invoice.issued":
        return f"Issued invoice {data.get('number', '')}"
    if kind == "invoice.paid":
        return f"Marked invoice {data.get('number', '')} paid ({data.get('paidOn', '')})"
    if kind == "api_key.created":
        return f"Created API key {event.subject_id}"
    if kind == "api_key.revoked":
        return f"Revoked API key {event.subject_id}"
    if kind == "password.link_created":
        return (
            "Made an invitation link"
            if data.get("purpose") == "invite"
            else "Made a password reset link"
        )
    if kind == "password.changed":
        return f"Set a new password (through the {data.get('via', 'form')})"
    if kind == "signin.succeeded":
        return "Signed in"
    if kind == "signout.succeeded":
        return "Signed out"
    if kind == "mail.received":
        again = " (tried again)" if data.get("again") else ""
        return f"Received mail from {data.get('sender', '')}: {data.get('state', '')}{again}"
    if kind == "mail.dismissed":
        return f"Dismissed mail from {data.get('sender', '')}"
    if kind == "customer.address_added":
        confirmed = "" if data.get("confirmed") else " (to be confirmed by a mailed link)"
        return f"Added the mail address {data.get('address', '')}{confirmed}"
    if kind == "customer.address_confirmed":
        return f"Confirmed the mail address {data.get('address', '')}"
    if kind == "customer.address_removed":
        return f"Removed the mail address {data.get('address', '')}"
    if kind.startswith("saved_reply."):
        verb = kind.partition(".")[2]
        return f"{verb.capitalize()} the saved reply “{data.get('title', '')}”"
    if kind.startswith("webhook."):
        return _webhook(kind, data, event.subject_id)
    if kind.endswith(".created"):
        return "Created the account"
    if kind.endswith(".updated"):
        changed = data.get("changed", {})
        return "Changed " + ", ".join(sorted(changed)) if changed else "Changed the account"
    if kind.endswith(".disabled"):
        return "Disabled the account"
    if kind.endswith(".enabled"):
        return "Enabled the account"
    if kind == "second_factor.enabled":
        return "Turned the second factor on"
    if kind == "second_factor.disabled":
        return "Turned the second factor off"
    return kind


WEBHOOK_WORDS = {
    "webhook.created": "Added webhook endpoint",
    "webhook.enabled": "Enabled webhook endpoint",
    "webhook.deleted": "Deleted webhook endpoint",
    "webhook.secret_rotated": "Rotated the signing secret of webhook endpoint",
    "webhook.tested": "Sent a test event to webhook endpoint",
}


def _webhook(kind: str, data: dict[str, object], endpoint_id: int | None) -> str:
    if kind == "webhook.disabled":
        reason = data.get("reason")
        return f"Disabled webhook endpoint {endpoint_id}" + (f" ({reason})" if reason else "")
    if kind == "webhook.replayed":
        count = data.get("deliveries", 0)
        return (
            f"Replayed {count} event{'s' if count != 1 else ''} to webhook endpoint {endpoint_id}"
        )
    return f"{WEBHOOK_WORDS.get(kind, kind)} {endpoint_id}"


def _files(data: dict[str, object]) -> str:
    attachments = data.get("attachments")
    count = len(attachments) if isinstance(attachments, list) else 0
    return f" with {count} attachment{'s' if count != 1 else ''}" if count else ""


def _who(event: EventRecord, names: dict[int, str]) -> str:
    if event.actor_id is None:
        return "the system" if event.actor_kind == "system" else "a visitor"
    name = names.get(event.actor_id, f"user {event.actor_id}")
    if event.key_id is not None:
        return f"{name} (API key {event.key_id})"
    return name
