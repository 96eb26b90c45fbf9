"""API keys from a form, for staff (any customer's) and customers (their own)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Any

from ledgerdesk.accounts.service import AccountReader, AccountService, NewKey
from ledgerdesk.db.models import ApiKey
from ledgerdesk.errors import ParamError
from ledgerdesk.web.core import Visit, text_field

_SEPARATORS = re.compile(r"[\s,]+")


def create_key(visit: Visit, user_id: int, form: Mapping[str, Any]) -> NewKey:
    """Create a key from the form's fields: categories (comma or space separated; empty
    for all), IP ranges (one per line; empty for any), expiry date and note."""
    categories = [c for c in _SEPARATORS.split(text_field(form, "categories")) if c]
    ip_ranges = [r for r in _SEPARATORS.split(text_field(form, "ip_ranges")) if r]
    raw_expiry = text_field(form, "expires").strip()
    unreadable: list[ParamError] = []
    try:
        expires = date.fromisoformat(raw_expiry) if raw_expiry else None
    except ValueError:
        # Reported with every other problem of the form, not instead of them.
        expires = None
        unreadable.append(ParamError("expires", "must be a date such as 2027-01-31"))
    return AccountService(visit.work).create_key(
        user_id=user_id,
        categories=categories,
        ip_ranges=ip_ranges,
        expires_on=expires,
        note=text_field(form, "note").strip(),
        max_keys=visit.settings.max_keys_per_customer,
        also=unreadable,
    )


def revoke_key(visit: Visit, key_id: int, *, owner: int | None) -> ApiKey:
    """Revoke a key; ``owner`` limits it to that customer's keys (the portal)."""
    return AccountService(visit.work).revoke_key(key_id, user_id=owner)


def keys_of(visit: Visit, user_id: int) -> list[ApiKey]:
    return list(AccountReader(visit.session).list_keys(user_id))


KEY_FORM_FIELDS = ("categories", "ip_ranges", "expires", "note")


def key_values(form: Mapping[str, Any]) -> dict[str, str]:
    """What was typed into the key form, to show it again with the form's problems."""
    return {name: text_field(form, name) for name in KEY_FORM_FIELDS}


# The form fields' names as the services name their parameters.
KEY_FIELDS = {"expires_on": "expires", "user_id": "user"}


def key_errors(errors: dict[str, str]) -> dict[str, str]:
    return {KEY_FIELDS.get(name, name): message for name, message in errors.items()}
