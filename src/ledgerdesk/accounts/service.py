"""Accounts and keys: administration, and authentication of customer requests."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Protocol

from sqlalchemy.orm import Session

from ledgerdesk.accounts.billing import BILLING_FIELDS, EMAIL, check_details
from ledgerdesk.accounts.keys import generate_key, hash_key, hashes_match, is_well_formed_key
from ledgerdesk.accounts.queries import KeyRecord
from ledgerdesk.accounts.repository import AccountRepository
from ledgerdesk.config import ConfigError, IPNetwork, parse_networks
from ledgerdesk.db.models import ApiKey, User
from ledgerdesk.db.search import SearchIndex
from ledgerdesk.errors import (
    AddressForbidden,
    AuthenticationFailed,
    CategoryForbidden,
    InvalidParameters,
    NotFound,
    ParamError,
    invalid,
    problems_error,
)
from ledgerdesk.events.types import EventType
from ledgerdesk.events.work import Work

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_CATEGORY = re.compile(r"[a-z][a-zA-Z0-9_-]{0,63}")
MAX_KEY_NOTE = 500


@dataclass(frozen=True)
class Principal:
    """Who is calling: the customer the key belongs to, and the key itself."""

    user_id: int
    key_id: int


@dataclass(frozen=True)
class NewKey:
    key: ApiKey
    secret: str


class AccountReader:
    """What staff and the services read of users and keys."""

    def __init__(self, session: Session) -> None:
        self.repository = AccountRepository(session)

    def list_users(self) -> Sequence[User]:
        return self.repository.list_users()

    def customers(
        self, *, text: str | None = None, after_id: int | None = None, limit: int = 50
    ) -> Sequence[User]:
        return self.repository.customers(text=text, after_id=after_id, limit=limit)

    def find_user_by_email(self, email: str) -> User | None:
        return self.repository.find_user_by_email(email)

    def staff(self) -> Sequence[User]:
        """Every staff member, enabled ones first, by name."""
        return self.repository.staff()

    def last_admin(self, user_id: int) -> bool:
        """Whether the user is the only enabled admin (who must stay one)."""
        return self.repository.enabled_admins(excluding=user_id) == 0

    def require_user(self, user_id: int) -> User:
        user = self.repository.get_user(user_id)
        if user is None:
            raise NotFound(f"User {user_id} does not exist.")
        return user

    def list_keys(self, user_id: int | None) -> Sequence[ApiKey]:
        if user_id is not None:
            self.require_user(user_id)
        return self.repository.list_keys(user_id)

    def key_problems(
        self,
        *,
        user_id: int,
        categories: Sequence[str],
        ip_ranges: Sequence[str],
        expires_on: date | None,
        note: str,
        today: date,
        max_keys: int | None = None,
    ) -> list[ParamError]:
        """Everything wrong with a key to be made, all at once (a form shows them all)."""
        user = self.require_user(user_id)
        problems: list[ParamError] = []
        if user.is_staff:
            problems.append(
                ParamError(
                    "user_id", "staff users answer tickets through the admin CLI, not API keys"
                )
            )
        bad = [c for c in categories if not _CATEGORY.fullmatch(c)]
        if bad:
            names = ", ".join(repr(c) for c in bad)
            verb = "is not a category name" if len(bad) == 1 else "are not category names"
            problems.append(ParamError("categories", f"{names} {verb}"))
        try:
            parse_networks(tuple(ip_ranges), "ip_ranges")
        except ConfigError as exc:
            problems.append(ParamError("ip_ranges", str(exc).removeprefix("ip_ranges: ")))
        if expires_on is not None and expires_on < today:
            problems.append(ParamError("expires_on", "the expiry date is in the past"))
        if len(note) > MAX_KEY_NOTE:
            problems.append(ParamError("note", f"must be at most {MAX_KEY_NOTE} characters"))
        if max_keys is not None and self.repository.count_usable_keys(user_id, today) >= max_keys:
            problems.append(
                ParamError(
                    "user_id",
                    f"already has {max_keys} usable API keys, the most a customer may have; "
                    "revoke one first",
                )
            )
        return problems


# What mail about tickets a staff member wants (mail.notifications).
MAIL_CHOICES = ("all", "own", "none")


class AccountService:
    """Changes to users and keys, each recorded as an event in the unit of work."""

    def __init__(self, work: Work) -> None:
        self.work = work
        self.reader = AccountReader(work.session)
        self.repository = self.reader.repository

    def create_user(
        self, *, name: str, email: str | None, staff: bool, admin: bool = False
    ) -> User:
        """A customer, or a staff member (``admin``: one who administers the others)."""
        if admin and not staff:
            raise invalid("admin", "is a staff member's role")
        name, email = self._checked(name, email, user_id=None)
        user = self.repository.add_user(
            User(name=name, email=email, is_staff=staff, is_admin=admin, created_at=self.work.now)
        )
        self.work.record_about(
            user,
            EventType.STAFF_CREATED if staff else EventType.CUSTOMER_CREATED,
            {
                "userId": user.id,
                "name": user.name,
                "email": user.email,
                **({"admin": admin} if staff else {}),
            },
        )
        return user

    def update_user(
        self,
        user_id: int,
        *,
        name: str | None = None,
        email: str | None = None,
        billing: Mapping[str, str | None] | None = None,
        mail_notify: str | None = None,
        admin: bool | None = None,
    ) -> User:
        """Change a user's name, email, a customer's billing details (``billing``, by
        the names of ``accounts.billing.BILLING_FIELDS``), a staff member's choice of
        mail (``mail_notify``: all, own, none) or admin role (``admin``); ``None`` leaves
        a field as it is, ``""`` clears it. Only what differs is changed, and recorded
        in one event. The last enabled admin stays one."""
        user = self.reader.require_user(user_id)
        if admin is not None:
            if not user.is_staff:
                raise invalid("admin", "is a staff member's role")
            if not admin and user.is_admin and self.reader.last_admin(user.id):
                raise invalid("admin", "is the last enabled admin's: make another admin first")
        if mail_notify is not None:
            if not user.is_staff:
                raise invalid("mail_notify", "is for staff; customers hear of their own tickets")
            if mail_notify not in MAIL_CHOICES:
                raise invalid("mail_notify", f"must be one of {', '.join(MAIL_CHOICES)}")
        billing = {k: v for k, v in (billing or {}).items() if v is not None}
        unknown = set(billing) - set(BILLING_FIELDS)
        assert not unknown, f"not billing details: {unknown}"
        if billing and user.is_staff:
            raise invalid("user", "staff have no billing details; they are never invoiced")
        checked = check_details(billing, current_country=user.country)
        if (
            user.vat_id
            and "country" in checked.values
            and checked.values["country"] != user.country
            and "vat_id" not in billing
        ):
            checked.problems.append(ParamError("vat_id", "give it again with the new country"))
        try:
            new_name, new_email = self._checked(
                user.name if name is None else name,
                user.email if email is None else (email or None),
                user_id=user.id,
            )
        except InvalidParameters as exc:
            raise problems_error([*exc.errors, *checked.problems]) from None
        if checked.problems:
            raise problems_error(checked.problems)
        changed: dict[str, object] = {}
        if new_name != user.name:
            user.name = changed["name"] = new_name
        if new_email != user.email:
            user.email = new_email
            changed["email"] = new_email
        for field, value in checked.values.items():
            if getattr(user, field) != value:
                setattr(user, field, value)
                changed[field] = value
        if mail_notify is not None and mail_notify != user.mail_notify:
            user.mail_notify = changed["mail_notify"] = mail_notify
        if admin is not None and admin != user.is_admin:
            user.is_admin = changed["admin"] = admin
        if not user.is_staff and ("name" in changed or "email" in changed):
            self.work.session.flush()
            SearchIndex(self.work.session).customer_changed(user.id)
        if changed:
            self.work.record_about(
                user,
                EventType.STAFF_UPDATED if user.is_staff else EventType.CUSTOMER_UPDATED,
                {"userId": user.id, "changed": changed},
            )
        return user

    def _checked(
        self, name: str, email: str | None, *, user_id: int | None
    ) -> tuple[str, str | None]:
        name = name.strip()
        problems: list[ParamError] = []
        if not 1 <= len(name) <= 200:
            problems.append(ParamError("name", "must be 1 to 200 characters"))
        if email is not None:
            email = email.strip()
            if len(email) > 320 or not EMAIL.fullmatch(email):
                problems.append(ParamError("email", "is not an email address"))
            else:
                other = self.repository.find_user_by_email(email)
                added_to = self.repository.added_address_owner(email)
                if (other is not None and other.id != user_id) or added_to not in (
                    None,
                    user_id,
                ):
                    problems.append(ParamError("email", "is already the address of another user"))
        if problems:
            raise problems_error(problems)
        return name, email

    def create_key(
        self,
        *,
        user_id: int,
        categories: Sequence[str],
        ip_ranges: Sequence[str],
        expires_on: date | None,
        note: str,
        max_keys: int | None = None,
        also: Sequence[ParamError] = (),
    ) -> NewKey:
        """A new key (``max_keys``: refused when the customer has that many usable keys;
        ``also``: problems the caller found in what it was given, refused together)."""
        problems = self.reader.key_problems(
            user_id=user_id,
            categories=categories,
            ip_ranges=ip_ranges,
            expires_on=expires_on,
            note=note,
            today=self.work.today,
            max_keys=max_keys,
        ) + list(also)
        if problems:
            raise problems_error(problems)
        networks = parse_networks(tuple(ip_ranges), "ip_ranges")
        secret = generate_key()
        key = self.repository.add_key(
            ApiKey(
                user_id=user_id,
                key_hash=hash_key(secret),
                categories=sorted(set(categories)) or None,
                ip_ranges=[str(n) for n in networks] or None,
                expires_on=expires_on,
                note=note,
                created_at=self.work.now,
                use_count=0,
            )
        )
        self.work.record(
            EventType.API_KEY_CREATED,
            subject_id=key.id,
            customer_id=user_id,
            payload={
                "keyId": key.id,
                "userId": user_id,
                "categories": key.categories,
                "ipRanges": key.ip_ranges,
                "expiresOn": None if expires_on is None else expires_on.isoformat(),
                "note": note,
            },
        )
        return NewKey(key=key, secret=secret)

    def revoke_key(self, key_id: int, *, user_id: int | None = None) -> ApiKey:
        """Revoke a key at once; with ``user_id``, only one of that customer's keys."""
        key = self.repository.get_key(key_id)
        if key is None or (user_id is not None and key.user_id != user_id):
            raise NotFound(f"API key {key_id} does not exist.")
        if key.revoked_at is None:
            key.revoked_at = self.work.now
            self.work.record(
                EventType.API_KEY_REVOKED,
                subject_id=key.id,
                customer_id=key.user_id,
                payload={"keyId": key.id, "userId": key.user_id},
            )
        return key


class KeySource(Protocol):
    def usable_keys(self, user_id: int) -> list[KeyRecord]: ...


class Authenticator:
    def __init__(self, queries: KeySource) -> None:
        self.queries = queries

    def authenticate(
        self,
        *,
        user_id: int | None,
        api_key: object,
        category: str,
        client_ip: IPAddress | None,
        today: date,
    ) -> Principal:
        """The caller behind these credentials, or the error that refuses them.

        Every key of the user is compared, in constant time, so that the time taken
        says nothing about which characters of a guess were right.
        """
        if user_id is None or not is_well_formed_key(api_key):
            raise AuthenticationFailed()
        assert isinstance(api_key, str)
        candidate = hash_key(api_key)
        found: KeyRecord | None = None
        for key in self.queries.usable_keys(user_id):
            if hashes_match(key.key_hash, candidate):
                found = key
        if found is None or (found.expires_on is not None and today > found.expires_on):
            raise AuthenticationFailed()
        if found.categories is not None and category not in found.categories:
            raise CategoryForbidden()
        if found.ip_ranges is not None and not _address_allowed(client_ip, found.ip_ranges):
            raise AddressForbidden()
        return Principal(user_id=user_id, key_id=found.id)


def _address_allowed(client_ip: IPAddress | None, ranges: Sequence[str]) -> bool:
    if client_ip is None:
        return False
    if isinstance(client_ip, ipaddress.IPv6Address) and client_ip.ipv4_mapped is not None:
        client_ip = client_ip.ipv4_mapped
    return any(client_ip in network for network in _networks(tuple(ranges)))


@lru_cache(maxsize=4096)
def _networks(ranges: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    # Parsed once per distinct list: keys are few, requests are many.
    return tuple(ipaddress.ip_network(r) for r in ranges)
