"""People signing in to the web console and portal: passwords, links, sessions, TOTP.

- Passwords are hashed with Argon2id (argon2-cffi's defaults, RFC 9106's second
  recommended profile) and re-hashed on sign-in when those parameters change. A hash
  costs 64 MiB and a tenth of a second, so it is never computed inside a transaction:
  the stored hash is read (``StoredPassword``), verified and new hashes made outside
  any transaction (the web bounds how many at once), and the write that follows
  refuses if the stored hash changed in between.
- A password is set only through a one-time link: an invitation or a reset, printed by
  the admin CLI (or shown once in the console). The link's secret is stored hashed; it
  is deleted when used and expires.
- A session is a random secret in a cookie; the database keeps its SHA-256. Deleting
  the row ends it, so signing out, disabling the user and changing the password all end
  sessions at once (no token outlives its row).
- Staff may add a TOTP second factor (RFC 6238, 30 s, six digits): a code is accepted
  once (the last accepted time step is kept), and ten one-time recovery codes replace it
  when the phone is lost.

The service never commits; the caller's unit of work does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from ledgerdesk.db.models import User, UserToken, WebNotice, WebSession
from ledgerdesk.errors import LedgerdeskError, NotFound, invalid
from ledgerdesk.events.types import EventType
from ledgerdesk.events.work import Actor, Work

MIN_PASSWORD = 10
MAX_PASSWORD = 1024
INVITE_SECONDS = 7 * 24 * 3600
RESET_SECONDS = 2 * 3600
# A session ends after this long without a page, and after SESSION_MAX_SECONDS in all.
SESSION_IDLE_SECONDS = 12 * 3600
SESSION_MAX_SECONDS = 7 * 24 * 3600
# last_seen_at is written at most this often, not on every page.
SEEN_RESOLUTION = 300
RECOVERY_CODES = 10
TOTP_ISSUER = "ledgerdesk"
# A notice left by a form waits this long for the page that shows it.
NOTICE_SECONDS = 600

Purpose = Literal["invite", "reset"]

_TOTP_SECRET = re.compile(r"[A-Z2-7]{32}")


class Passwords:
    """The password hasher in use (Argon2id, RFC 9106's second recommended profile:
    64 MiB, 3 passes, 4 lanes) and a hash to verify against when the email is unknown,
    so that a wrong address takes as long as a wrong password."""

    def __init__(self, hasher: PasswordHasher) -> None:
        self.hasher = hasher

    @cached_property
    def dummy_hash(self) -> str:
        # Made on first use, not at import: a hash costs 0.2 s and 64 MiB, which every
        # CLI command would otherwise pay at start-up.
        return self.hasher.hash(secrets.token_urlsafe(16))


PASSWORDS = Passwords(PasswordHasher())


class SignInRefused(LedgerdeskError):
    """Wrong email or password, or a disabled user: one message for all of them."""

    http_status = 401
    default_message = "Wrong email or password."


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def normal_email(email: str) -> str:
    return email.strip().lower()


@dataclass(frozen=True)
class StoredPassword:
    """A user's password hash as read before it is verified outside any transaction;
    ``user_id`` None: no such user (verified against a dummy hash all the same)."""

    user_id: int | None
    password_hash: str | None


def password_matches(stored_hash: str | None, password: str) -> bool:
    """Verify a password (an Argon2id hash: call outside any transaction). Without a
    stored hash a dummy one is verified, so an unknown user takes as long."""
    try:
        return PASSWORDS.hasher.verify(stored_hash or PASSWORDS.dummy_hash, password) and (
            stored_hash is not None
        )
    except (VerificationError, InvalidHashError):
        return False


def hash_password(password: str) -> str:
    """A new Argon2id hash (call outside any transaction)."""
    return PASSWORDS.hasher.hash(password)


def needs_rehash(stored_hash: str | None) -> bool:
    return stored_hash is not None and PASSWORDS.hasher.check_needs_rehash(stored_hash)


@dataclass(frozen=True)
class SignedIn:
    """A session just begun: the cookie's secret (shown once) and whether TOTP is due."""

    secret: str
    user: User
    needs_second_factor: bool


@dataclass(frozen=True)
class CurrentSession:
    """The person behind a session cookie, as pages need them."""

    user_id: int
    name: str
    email: str | None
    is_staff: bool
    has_totp: bool
    csrf_token: str
    verified: bool
    token_hash: str
    last_seen_at: int


@dataclass(frozen=True)
class Notice:
    """What a page says once after a form: its message and one-time values."""

    message: str | None
    once: dict[str, Any]


def _sealer(cookie_secret: str) -> Fernet:
    """A key only the browser's cookie can rebuild (the server keeps the cookie's hash)."""
    key = hmac.new(cookie_secret.encode(), b"ledgerdesk notice", hashlib.sha256).digest()
    return Fernet(base64.urlsafe_b64encode(key))


@dataclass(frozen=True)
class Enrolment:
    secret: str
    uri: str


class PeopleService:
    """People who sign in. Reads and the bookkeeping of sessions and notices need only a
    session; changes that are events (``of(work)``) record them in the unit of work."""

    def __init__(self, session: Session, work: Work | None = None) -> None:
        self.session = session
        self.work = work

    @classmethod
    def of(cls, work: Work) -> PeopleService:
        return cls(work.session, work)

    def _record(
        self,
        kind: EventType,
        user: User,
        payload: dict[str, object] | None = None,
        *,
        actor: Actor | None = None,
    ) -> None:
        if self.work is None:
            raise RuntimeError(f"{kind} needs a unit of work (PeopleService.of(work))")
        self.work.record_about(user, kind, payload, actor=actor)

    # -- links ------------------------------------------------------------------------

    def issue_link(self, user_id: int, purpose: Purpose, *, now: int) -> str:
        """A new one-time link secret to set a password; earlier links of the user end."""
        user = self._user(user_id)
        if user.email is None:
            raise invalid("email", f"user {user.id} has no email address to sign in with")
        if user.disabled_at is not None:
            raise invalid("user", f"user {user.id} is disabled")
        others = self.session.scalars(
            select(User.id).where(
                func.lower(User.email) == normal_email(user.email), User.id != user.id
            )
        ).first()
        if others is not None:
            raise invalid("email", f"user {others} has the same email address")
        self.session.execute(delete(UserToken).where(UserToken.user_id == user.id))
        secret = secrets.token_urlsafe(32)
        lifetime = INVITE_SECONDS if purpose == "invite" else RESET_SECONDS
        self.session.add(
            UserToken(
                token_hash=_digest(secret),
                user_id=user.id,
                purpose=purpose,
                created_at=now,
                expires_at=now + lifetime,
            )
        )
        self.session.flush()
        self._record(
            EventType.PASSWORD_LINK_CREATED,
            user,
            {"purpose": purpose, "expiresAt": now + lifetime},
        )
        return secret

    def link_user(self, secret: str, *, now: int, lock: bool = False) -> User:
        """The user a link is for, or NotFound when it is unknown, used or expired.

        ``lock``: the link's row is locked until the transaction ends, so that of two
        transactions taking the same link at once the second finds it gone.
        """
        token = self.session.get(UserToken, _digest(secret), with_for_update=lock)
        if token is None or token.expires_at <= now:
            raise NotFound("This link is not valid any more; ask for a new one.")
        user = self._user(token.user_id)
        if user.disabled_at is not None:
            raise NotFound("This link is not valid any more; ask for a new one.")
        return user

    def take_link(self, secret: str, password_hash: str, *, now: int) -> User:
        """Take the link (once), set the password (hashed beforehand, outside the
        transaction) and end every session of the user."""
        user = self.link_user(secret, now=now, lock=True)
        token = self.session.get(UserToken, _digest(secret))
        purpose = token.purpose if token is not None else "reset"
        self.session.execute(delete(UserToken).where(UserToken.user_id == user.id))
        self._set_password_hash(user, password_hash)
        self._record(
            EventType.PASSWORD_CHANGED, user, {"via": f"{purpose} link"}, actor=Actor.of(user)
        )
        return user

    def set_password_by_mail(self, user: User, password_hash: str) -> None:
        """A forgotten password set through the link mailed to the user (mail.resets has
        checked it): earlier links go, every session ends."""
        self.session.execute(delete(UserToken).where(UserToken.user_id == user.id))
        self._set_password_hash(user, password_hash)
        self._record(EventType.PASSWORD_CHANGED, user, {"via": "reset mail"}, actor=Actor.of(user))

    def set_password_with_link(self, secret: str, password: str, *, now: int) -> User:
        """``take_link`` with a password hashed here (for tools and tests; the web
        hashes outside its transaction)."""
        user = self.link_user(secret, now=now)
        check_password(password, name=user.name, email=user.email)
        return self.take_link(secret, hash_password(password), now=now)

    # -- passwords and sessions -------------------------------------------------------

    def stored_password_of_email(self, email: str) -> StoredPassword:
        """The stored hash of the user who signs in with ``email`` (or none)."""
        row = self.session.execute(
            select(User.id, User.password_hash)
            .where(func.lower(User.email) == normal_email(email), User.password_hash.is_not(None))
            .order_by(User.id)
            .limit(1)
        ).first()
        return StoredPassword(None, None) if row is None else StoredPassword(row[0], row[1])

    def stored_password(self, user_id: int) -> StoredPassword:
        return StoredPassword(user_id, self._user(user_id).password_hash)

    def begin_session(
        self, checked: StoredPassword, *, now: int, rehashed: str | None = None
    ) -> SignedIn:
        """A session for a user whose password was verified against ``checked``; refused
        if the user was disabled or the password changed meanwhile. ``rehashed``: the
        password hashed anew with today's parameters (``needs_rehash``)."""
        if checked.user_id is None:
            raise SignInRefused()
        user = self._user(checked.user_id)
        if user.disabled_at is not None or user.password_hash != checked.password_hash:
            raise SignInRefused()
        if rehashed is not None:
            user.password_hash = rehashed
        self.session.execute(
            delete(WebSession).where(
                WebSession.user_id == user.id,
                (WebSession.last_seen_at < now - SESSION_IDLE_SECONDS)
                | (WebSession.created_at < now - SESSION_MAX_SECONDS),
            )
        )
        secret = secrets.token_urlsafe(32)
        self.session.add(
            WebSession(
                token_hash=_digest(secret),
                user_id=user.id,
                csrf_token=secrets.token_urlsafe(32),
                verified=user.totp_secret is None,
                created_at=now,
                last_seen_at=now,
            )
        )
        self.session.flush()
        if user.totp_secret is None:
            self._record(
                EventType.SIGNIN_SUCCEEDED, user, {"factor": "password"}, actor=Actor.of(user)
            )
        return SignedIn(secret, user, needs_second_factor=user.totp_secret is not None)

    def awaiting_second_factor(self, secret: str, *, now: int) -> int | None:
        """The user of a session that still needs its second factor (or None)."""
        web = self.session.get(WebSession, _digest(secret))
        if web is None or web.verified or now - web.created_at > SESSION_IDLE_SECONDS:
            return None
        return web.user_id

    def current(self, secret: str, *, now: int) -> CurrentSession | None:
        """The live session behind a cookie; an idle, too old or disabled one is None.

        Reads only: a page that only reads stays a read transaction. ``touch`` records
        the visit when ``needs_touch`` says it is time (every few minutes, not per page).
        """
        row = self.session.execute(
            select(WebSession, User)
            .join(User, User.id == WebSession.user_id)
            .where(WebSession.token_hash == _digest(secret))
        ).first()
        if row is None:
            return None
        web, user = row[0], row[1]
        if (
            user.disabled_at is not None
            or now - web.last_seen_at > SESSION_IDLE_SECONDS
            or now - web.created_at > SESSION_MAX_SECONDS
        ):
            return None
        return CurrentSession(
            user_id=user.id,
            name=user.name,
            email=user.email,
            is_staff=user.is_staff,
            has_totp=user.totp_secret is not None,
            csrf_token=web.csrf_token,
            verified=web.verified,
            token_hash=web.token_hash,
            last_seen_at=web.last_seen_at,
        )

    def leave_notice(
        self, cookie_secret: str, *, message: str | None, once: dict[str, Any], now: int
    ) -> str:
        """Keep what the next page says once; the id that page is opened with."""
        notice_id = secrets.token_urlsafe(16)
        session_hash = _digest(cookie_secret)
        self.session.execute(
            delete(WebNotice).where(
                WebNotice.session_hash == session_hash,
                WebNotice.created_at < now - NOTICE_SECONDS,
            )
        )
        sealed = (
            _sealer(cookie_secret).encrypt(json.dumps(once).encode()).decode() if once else None
        )
        self.session.add(
            WebNotice(
                id_hash=_digest(notice_id),
                session_hash=session_hash,
                created_at=now,
                message=message,
                sealed=sealed,
            )
        )
        return notice_id

    def take_notice(self, cookie_secret: str, notice_id: str, *, now: int) -> Notice | None:
        """The notice, once: it is deleted as it is taken (None: gone, expired, or
        another session's)."""
        row = self.session.get(WebNotice, _digest(notice_id), with_for_update=True)
        if row is None or row.session_hash != _digest(cookie_secret):
            return None
        self.session.delete(row)
        if row.created_at < now - NOTICE_SECONDS:
            return None
        once: dict[str, Any] = {}
        if row.sealed is not None:
            try:
                once = json.loads(_sealer(cookie_secret).decrypt(row.sealed.encode()))
            except InvalidToken:
                return None
        return Notice(row.message, once)

    def prune(self, *, now: int) -> dict[str, int]:
        """Remove what can never be used again: expired links, ended sessions, notices
        nobody came for. How many of each."""
        removed = {
            "password_links": self.session.execute(
                delete(UserToken).where(UserToken.expires_at <= now)
            ),
            "web_notices": self.session.execute(
                delete(WebNotice).where(WebNotice.created_at < now - NOTICE_SECONDS)
            ),
            "web_sessions": self.session.execute(
                delete(WebSession).where(
                    (WebSession.last_seen_at < now - SESSION_IDLE_SECONDS)
                    | (WebSession.created_at < now - SESSION_MAX_SECONDS)
                )
            ),
        }
        return {
            name: int(result.rowcount or 0)  # type: ignore[attr-defined]
            for name, result in removed.items()
        }

    @staticmethod
    def needs_touch(person: CurrentSession, now: int) -> bool:
        return now - person.last_seen_at >= SEEN_RESOLUTION

    def touch(self, token_hash: str, *, now: int) -> None:
        web = self.session.get(WebSession, token_hash)
        if web is not None:
            web.last_seen_at = now

    def end_session(self, secret: str) -> None:
        """Sign out: the session behind this cookie ends (nothing if it already has)."""
        web = self.session.get(WebSession, _digest(secret))
        if web is None:
            return
        user = self._user(web.user_id)
        self.session.execute(delete(WebSession).where(WebSession.token_hash == web.token_hash))
        self._record(EventType.SIGNOUT_SUCCEEDED, user, actor=Actor.of(user))

    def change_password(self, checked: StoredPassword, new_hash: str) -> None:
        """Replace a password verified against ``checked`` by one hashed beforehand.
        Every session of the user ends, this one included (the caller signs in again)."""
        user = self._unchanged(checked, "current_password")
        self._set_password_hash(user, new_hash)
        self._record(EventType.PASSWORD_CHANGED, user, {"via": "form"})

    def _unchanged(self, checked: StoredPassword, field: str) -> User:
        """The user whose password was verified, if it is still the one stored."""
        assert checked.user_id is not None
        user = self.session.get(User, checked.user_id, with_for_update=True)
        if user is None or user.password_hash != checked.password_hash:
            raise invalid(field, "changed meanwhile; try again")
        return user

    def set_disabled(self, user_id: int, disabled: bool, *, now: int) -> User:
        """Disable (sessions and links end, keys stop working) or enable a user; the
        last enabled admin stays enabled."""
        user = self._user(user_id)
        if disabled and user.is_admin and user.disabled_at is None:
            others = self.session.scalar(
                select(func.count())
                .select_from(User)
                .where(User.is_admin.is_(True), User.disabled_at.is_(None), User.id != user.id)
            )
            if not others:
                raise invalid("user", "is the last enabled admin: make another admin first")
        changed = (user.disabled_at is None) == disabled
        if disabled:
            if user.disabled_at is None:
                user.disabled_at = now
            self._end_sessions(user.id)
            self.session.execute(delete(UserToken).where(UserToken.user_id == user.id))
        else:
            user.disabled_at = None
        if changed:
            staff = user.is_staff
            if disabled:
                kind = EventType.STAFF_DISABLED if staff else EventType.CUSTOMER_DISABLED
            else:
                kind = EventType.STAFF_ENABLED if staff else EventType.CUSTOMER_ENABLED
            self._record(kind, user)
        return user

    # -- second factor ----------------------------------------------------------------

    def totp_enrolment(self, user_id: int) -> Enrolment:
        """A fresh secret to show as a QR code; nothing is stored until it is confirmed."""
        user = self._user(user_id)
        secret = pyotp.random_base32()
        uri = pyotp.TOTP(secret).provisioning_uri(
            name=user.email or f"user {user.id}", issuer_name=TOTP_ISSUER
        )
        return Enrolment(secret, uri)

    def confirm_totp(self, user_id: int, secret: str, code: str, *, now: int) -> list[str]:
        """Turn TOTP on once a code from the new secret checks out; the recovery codes.
        A factor already on is not replaced (a form sent twice turns it on once)."""
        user = self._user(user_id, lock=True)
        if user.totp_secret is not None:
            raise invalid("code", "the second factor is already on")
        if not _TOTP_SECRET.fullmatch(secret):
            raise invalid("code", "the enrolment expired; scan the new code")
        step = _totp_step(secret, code, now)
        if step is None:
            raise invalid("code", "does not match; check the phone's clock and try again")
        user.totp_secret = secret
        user.totp_last_step = step
        codes = [_recovery_code() for _ in range(RECOVERY_CODES)]
        user.recovery_codes = [_recovery_digest(c) for c in codes]
        self._record(EventType.SECOND_FACTOR_ENABLED, user, {"factor": "totp"})
        return codes

    def disable_totp(self, checked: StoredPassword) -> None:
        """Turn TOTP off for a user whose password was verified against ``checked``."""
        user = self._unchanged(checked, "password")
        user.totp_secret = None
        user.totp_last_step = None
        user.recovery_codes = None
        self._record(EventType.SECOND_FACTOR_DISABLED, user, {"factor": "totp"})

    def second_factor(self, secret: str, code: str, *, now: int) -> None:
        """Complete a session with a TOTP code or a recovery code (each good once)."""
        web = self.session.get(WebSession, _digest(secret), with_for_update=True)
        if web is None or now - web.created_at > SESSION_IDLE_SECONDS:
            raise NotFound("Your sign-in has expired; sign in again.")
        # Locked: of two sessions sending the same code (or recovery code) at once, the
        # second sees it spent.
        user = self._user(web.user_id, lock=True)
        factor = self._check_second_factor(user, code, now)
        web.verified = True
        self._record(EventType.SIGNIN_SUCCEEDED, user, {"factor": factor}, actor=Actor.of(user))

    def _check_second_factor(self, user: User, code: str, now: int) -> str:
        """Which factor ``code`` proved (and spent), or the error that refuses it."""
        if user.totp_secret is None:
            return "password"
        cleaned = code.replace(" ", "").replace("-", "").lower()
        step = _totp_step(user.totp_secret, cleaned, now)
        if step is not None and (user.totp_last_step is None or step > user.totp_last_step):
            user.totp_last_step = step
            return "totp"
        hashes = list(user.recovery_codes or [])
        digest = _recovery_digest(cleaned)
        if digest in hashes:
            hashes.remove(digest)
            user.recovery_codes = hashes
            return "recovery code"
        raise invalid("code", "is not a current code or an unused recovery code")

    # -- helpers ----------------------------------------------------------------------

    def _user(self, user_id: int, *, lock: bool = False) -> User:
        user = self.session.get(User, user_id, with_for_update=lock or None, populate_existing=lock)
        if user is None:
            raise NotFound(f"User {user_id} does not exist.")
        return user

    def _set_password_hash(self, user: User, password_hash: str) -> None:
        user.password_hash = password_hash
        self._end_sessions(user.id)

    def _end_sessions(self, user_id: int) -> None:
        self.session.execute(delete(WebSession).where(WebSession.user_id == user_id))


def check_password(password: str, *, name: str, email: str | None) -> None:
    """The rules a new password must follow (before it is hashed)."""
    if len(password) < MIN_PASSWORD:
        raise invalid("password", f"must be at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise invalid("password", f"must be at most {MAX_PASSWORD} characters")
    lowered = password.lower()
    if email and lowered == email.lower():
        raise invalid("password", "must not be your email address")
    if lowered == name.lower():
        raise invalid("password", "must not be your name")


def _totp_step(secret: str, code: str, now: int) -> int | None:
    """The time step a six-digit code belongs to (now, or one step either side)."""
    if not (len(code) == 6 and code.isdigit()):
        return None
    totp = pyotp.TOTP(secret)
    for offset in (0, -1, 1):
        at = now + offset * totp.interval
        if hmac.compare_digest(totp.at(at), code):
            return at // totp.interval
    return None


def _recovery_code() -> str:
    raw = secrets.token_hex(5)  # 40 bits, ten hex digits, shown as xxxxx-xxxxx
    return f"{raw[:5]}-{raw[5:]}"


def _recovery_digest(code: str) -> str:
    return _digest(code.replace("-", "").replace(" ", "").lower())
