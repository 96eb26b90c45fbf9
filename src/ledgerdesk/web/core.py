"""What every page of the console and the portal shares: templates, sessions, CSRF,
forms, uploads, the unit of work, and the answers for errors.

A page's request travels one way: ``Web.visit`` reads the session cookie, then runs the
page's function in a worker thread inside one ``Runtime.transaction`` (the same unit of
work the API's writes use) with the signed-in person, the CSRF check for forms, and the
database; the function returns a ``Page`` (template and values) or a redirect.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from functools import cached_property
from importlib.resources import files
from typing import Any, Literal, TypeVar
from urllib.parse import quote, urlencode

from anyio import CapacityLimiter, to_thread
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import Message, Receive

from ledgerdesk.accounts.people import CurrentSession, Notice, PeopleService
from ledgerdesk.accounts.repository import AccountRepository
from ledgerdesk.accounts.service import IPAddress
from ledgerdesk.attachments.incoming import IncomingFile
from ledgerdesk.attachments.rules import MAX_ATTACHMENTS, check_file_name, check_media_type
from ledgerdesk.attachments.storage import BlobBatch
from ledgerdesk.clock import day_of
from ledgerdesk.config import Settings
from ledgerdesk.db.models import User
from ledgerdesk.db.prepared import Db, session_db
from ledgerdesk.errors import (
    InvalidBody,
    LedgerdeskError,
    NotFound,
    PayloadTooLarge,
    ServerBusy,
    invalid,
)
from ledgerdesk.events.types import Door
from ledgerdesk.events.work import Actor, Origin, Work
from ledgerdesk.execution import Execution
from ledgerdesk.http.client_address import client_address, is_trusted, parse_address
from ledgerdesk.http.counters import Counters
from ledgerdesk.http.multipart import MultipartReader
from ledgerdesk.live import LiveFeed
from ledgerdesk.runtime import Runtime
from ledgerdesk.web import display
from ledgerdesk.web.pages import Frame, MessagePage, Page
from ledgerdesk.web.throttle import SIGNIN_WINDOW, Throttle

log = logging.getLogger("ledgerdesk.web")

SESSION_COOKIE = "ledgerdesk_session"
ANON_CSRF_COOKIE = "ledgerdesk_csrf"
# An address may fail this many times the per-account allowance (an office behind NAT).
ADDRESS_FACTOR = 4
# Password hashes computed at once, and how many more may wait their turn.
HASH_SLOTS = 2
HASH_QUEUE = 64
# One text field of a form, and a form without files in all (files stream to disk and
# are limited on their own).
MAX_FIELD_BYTES = 256 * 1024
MAX_FORM_BYTES = 1024 * 1024

Role = Literal["staff", "customer"]
T = TypeVar("T")

# What pages may load: only this server's own files; images also from data: (the QR code).
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


class SignInRequired(Exception):
    """No live session: the answer is a redirect to the sign-in page."""


class Refused(Exception):
    """A form the domain refused. The unit of work is rolled back (nothing of the form is
    kept) and ``page`` builds the form's page again, with the errors, in a fresh read."""

    def __init__(self, page: Callable[[Visit], Page]) -> None:
        super().__init__("refused")
        self.page = page


class WrongSide(Exception):
    """A page of the other side: a customer on the console, staff on the portal; the
    answer is a redirect to their own side."""


class Forbidden(Exception):
    """A form without its CSRF token, or a page of the other side (staff vs customer)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class Redirect:
    """Where a page sends the browser after a form (every form that did something is
    answered by one, so a reload repeats nothing).

    ``flash`` (a message of the server's) and ``once`` (one-time values: a new key, a
    password link, recovery codes) are shown by the next page, once, from a notice kept
    on the server (``PeopleService.leave_notice``): never from the URL. ``note`` names
    one of ``NOTES`` for pages without a session (sign-in after signing out).
    """

    url: str
    flash: str | None = None
    once: dict[str, Any] = field(default_factory=dict)
    note: str | None = None


# What pages without a session may say, by name (``?note=``): the server's own words
# only, so a link cannot make a page say anything else.
NOTES = {
    "signed-out": "You are signed out.",
    "password-set": "Your password is set. Sign in with it.",
    "password-changed": "Password changed. Sign in again.",
    "address-confirmed": "The address is confirmed: its mail reaches support as the account's.",
    "reset-sent": "If an account has that address, a link to set a new password is on its way"
    " to it. It works for an hour.",
}


@dataclass
class Visit:
    """One page's unit of work: the person, and the domain's unit of work (their
    database session, the time, and the door: the console for staff, the portal for
    customers), which the page hands to the services it calls."""

    work: Work
    person: CurrentSession
    settings: Settings
    # One-time values the form before this page left for it (a new key, a link).
    once: dict[str, Any] = field(default_factory=dict)

    @property
    def session(self) -> Session:
        return self.work.session

    @property
    def now(self) -> int:
        return self.work.now

    @property
    def today(self) -> date:
        return self.work.today

    @cached_property
    def db(self) -> Db:
        return session_db(self.session)

    def user(self) -> User:
        user = self.session.get(User, self.person.user_id)
        assert user is not None  # the session row joined it a moment ago
        return user


def template_environment() -> Environment:
    """The pages' templates: escaped, and a name a page's context lacks is an error."""
    templates = Environment(
        loader=PackageLoader("ledgerdesk.web", "templates"),
        autoescape=select_autoescape(default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    templates.globals.update(display.GLOBALS)
    templates.filters.update(display.FILTERS)
    return templates


class Web:
    """The parts built once per process and shared by every page."""

    def __init__(self, runtime: Runtime, execution: Execution) -> None:
        self.runtime = runtime
        # Where the pages' units of work run: worker threads, as many as the pool has
        # connections, each waiting at most as long as the database may take.
        self.execution = execution
        self.templates = template_environment()
        settings = runtime.settings
        # Sign-in and second-factor tries, counted in 15-minute windows (shared through
        # Redis when set), per account and address (see web.throttle).
        self.throttle = Throttle(
            Counters(redis_url=settings.redis_url, window=SIGNIN_WINDOW),
            free=settings.signin_failure_limit,
            per_address=settings.signin_failure_limit * ADDRESS_FACTOR,
        )
        # Password hashes (Argon2id: 64 MiB and a tenth of a second each) made at once.
        self.hashes = CapacityLimiter(HASH_SLOTS)
        self.static_dir = str(files("ledgerdesk.web") / "static")
        # What the open console pages hear of the event log (run by the app).
        self.live = LiveFeed(runtime)

    async def hashing(self, work: Callable[..., T], *args: Any) -> T:
        """Run a password hash in a worker thread, a few at a time, outside any
        transaction; 503 when too many wait (a flood of sign-ins)."""
        if self.hashes.statistics().tasks_waiting >= HASH_QUEUE:
            raise ServerBusy(2, "Too many sign-ins at once; try again in a moment.")
        return await to_thread.run_sync(work, *args, limiter=self.hashes)  # no connection

    # -- answers ------------------------------------------------------------------------

    def render(
        self,
        request: Request,
        page: Page,
        *,
        person: CurrentSession | None = None,
        notice: Notice | None = None,
    ) -> Response:
        template = self.templates.get_template(page.template)
        csrf = person.csrf_token if person is not None else self.anonymous_csrf(request)
        if person is None:
            flash = NOTES.get(request.query_params.get("note", ""))
        else:
            flash = notice.message if notice is not None else None
        frame = Frame(
            request=request,
            person=person,
            csrf_token=csrf,
            flash=flash,
            path=request.url.path,
            max_file_bytes=self.runtime.settings.max_attachment_bytes,
        )
        html = template.render(**frame.variables(), **page.context.variables())
        response = HTMLResponse(html, page.status, headers=SECURITY_HEADERS)
        if person is None and request.cookies.get(ANON_CSRF_COOKIE) != csrf:
            self.set_cookie(request, response, ANON_CSRF_COOKIE, csrf, max_age=None)
        return response

    def redirect(self, request: Request, target: Redirect) -> Response:
        url = target.url
        if target.note:
            assert target.note in NOTES, f"no such note: {target.note}"
            url += ("&" if "?" in url else "?") + urlencode({"note": target.note})
        return RedirectResponse(url, 303, headers=SECURITY_HEADERS)

    def message(self, request: Request, title: str, text: str, status: int) -> Response:
        return self.render(request, Page(MessagePage(title=title, text=text), status))

    # -- cookies and CSRF ---------------------------------------------------------------

    def secure(self, request: Request) -> bool:
        """Whether the browser reached us over TLS: directly, or through a trusted proxy
        that says so (X-Forwarded-Proto from an address in LEDGERDESK_TRUSTED_PROXIES)."""
        if request.url.scheme == "https":
            return True
        peer = parse_address(request.client.host) if request.client else None
        if peer is None or not is_trusted(peer, self.runtime.settings.trusted_proxies):
            return False
        forwarded = request.headers.get("x-forwarded-proto", "")
        return forwarded.split(",")[-1].strip().lower() == "https"

    def set_cookie(
        self, request: Request, response: Response, name: str, value: str, max_age: int | None
    ) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/",
            httponly=True,
            samesite="lax",
            secure=self.secure(request),
        )

    def anonymous_csrf(self, request: Request) -> str:
        """The token of forms shown before sign-in: a random cookie the form repeats."""
        current = request.cookies.get(ANON_CSRF_COOKIE, "")
        return current if len(current) == 43 else secrets.token_urlsafe(32)

    def check_anonymous_csrf(self, request: Request, form: FormData) -> None:
        expected = request.cookies.get(ANON_CSRF_COOKIE, "")
        _check_token(expected, form.get("csrf"))

    # -- the person ---------------------------------------------------------------------

    def client_ip(self, request: Request) -> IPAddress | None:
        """The person's address, X-Forwarded-For believed from trusted proxies only."""
        peer = request.client.host if request.client else None
        return client_address(
            peer, request.headers.get("x-forwarded-for"), self.runtime.settings.trusted_proxies
        )

    def address(self, request: Request) -> str | None:
        found = self.client_ip(request)
        return None if found is None else str(found)

    async def signed_in(self, request: Request, role: Role) -> CurrentSession | None:
        """The verified person of ``role`` behind the session cookie, or None; read
        before a form's body is, so that nothing a visitor sends is read (or spooled to
        disk) unless they are signed in, and before a password is hashed for them."""
        secret = request.cookies.get(SESSION_COOKIE)
        if not secret:
            return None
        runtime = self.runtime

        def read() -> CurrentSession | None:
            with runtime.transaction(write=False) as (session, _):
                return PeopleService(session).current(secret, now=runtime.clock.timestamp())

        person = await self.execution.blocking(read)
        if person is None or not person.verified or (role == "staff") != person.is_staff:
            return None
        return person

    async def fresh_key_usage(self, request: Request, role: Role) -> None:
        """Write the key usage gathered so far before a page shows keys, for a signed-in
        person only (a visitor's page load writes nothing)."""
        if await self.signed_in(request, role) is not None:
            await self.execution.flush_key_usage()

    async def visit(
        self,
        request: Request,
        role: Role,
        work: Callable[[Visit], Page | Redirect | Response],
        *,
        form: Mapping[str, Any] | None = None,
        write: bool = False,
    ) -> Response:
        """Run a page for the signed-in person of ``role`` in one unit of work.

        Forms (``form`` given) must carry the session's CSRF token. A person of the other
        role is sent to their own side; no session at all goes to the sign-in page.
        """
        secret = request.cookies.get(SESSION_COOKIE)
        if not secret:
            return self._to_sign_in(request)
        runtime = self.runtime
        address = self.address(request)
        notice_id = request.query_params.get("notice") if form is None else None
        notice = (
            await self.execution.blocking(self._take_notice, secret, notice_id)
            if notice_id
            else None
        )

        def run() -> tuple[CurrentSession | None, Page | Redirect | Response | Exception]:
            now = runtime.clock.timestamp()
            person: CurrentSession | None = None
            try:
                with runtime.transaction(write=write) as (session, blobs):
                    people = PeopleService(session)
                    person = people.current(secret, now=now)
                    if person is None or not person.verified:
                        return None, SignInRequired()
                    if (role == "staff") != person.is_staff:
                        return person, WrongSide()
                    if form is not None:
                        _check_token(person.csrf_token, form.get("csrf"))
                    visit = self._visit(session, blobs, person, now, address, role, notice)
                    outcome = work(visit)
                    if form is not None and isinstance(outcome, Page) and outcome.status < 400:
                        raise AssertionError("a form that did something answers a Redirect")
                    if isinstance(outcome, Redirect) and (outcome.flash or outcome.once):
                        shown = people.leave_notice(
                            secret, message=outcome.flash, once=outcome.once, now=now
                        )
                        joined = "&" if "?" in outcome.url else "?"
                        outcome = Redirect(f"{outcome.url}{joined}notice={shown}")
                    return person, outcome
            except Refused as refused:  # rolled back: nothing of the form was kept
                assert person is not None
                with runtime.transaction(write=False) as (session, blobs):
                    visit = self._visit(session, blobs, person, now, address, role, None)
                    return person, refused.page(visit)
            except (Forbidden, LedgerdeskError) as exc:
                return person, exc

        person, outcome = await self.execution.blocking(run)
        if person is not None and PeopleService.needs_touch(person, self.runtime.clock.timestamp()):
            await self.execution.blocking(self._touch, person)
        if isinstance(outcome, SignInRequired):
            return self._to_sign_in(request)
        if isinstance(outcome, WrongSide):
            assert person is not None
            return self.redirect(request, Redirect("/console" if person.is_staff else "/account"))
        if isinstance(outcome, Forbidden):
            return self.render(
                request,
                Page(MessagePage(title="Form refused", text=outcome.message), 403),
                person=person,
            )
        if isinstance(outcome, LedgerdeskError):
            title = "Not found" if isinstance(outcome, NotFound) else "That did not work"
            return self.render(
                request,
                Page(MessagePage(title=title, text=outcome.message), outcome.http_status),
                person=person,
            )
        if isinstance(outcome, Redirect):
            return self.redirect(request, outcome)
        if isinstance(outcome, Response):
            return outcome
        assert isinstance(outcome, Page)
        return self.render(request, outcome, person=person, notice=notice)

    def _take_notice(self, secret: str, notice_id: str) -> Notice | None:
        with self.runtime.transaction(write=True) as (session, _):
            return PeopleService(session).take_notice(
                secret, notice_id, now=self.runtime.clock.timestamp()
            )

    def _visit(
        self,
        session: Session,
        blobs: BlobBatch,
        person: CurrentSession,
        now: int,
        address: str | None,
        role: Role,
        notice: Notice | None,
    ) -> Visit:
        actor = Actor.staff(person.user_id) if role == "staff" else Actor.customer(person.user_id)
        door: Door = "console" if role == "staff" else "portal"
        day = day_of(now, self.runtime.settings.timezone)
        return Visit(
            work=Work(
                session,
                actor,
                Origin(door, address),
                now,
                day,
                blobs,
                self.runtime.service_levels,
            ),
            person=person,
            settings=self.runtime.settings,
            once=notice.once if notice is not None else {},
        )

    def _touch(self, person: CurrentSession) -> None:
        with self.runtime.transaction(write=True) as (session, _):
            PeopleService(session).touch(person.token_hash, now=self.runtime.clock.timestamp())

    def _to_sign_in(self, request: Request) -> Response:
        target = request.url.path
        if request.method == "GET" and request.url.query:
            target += "?" + request.url.query
        return RedirectResponse(f"/signin?next={quote(target, safe='')}", 303)

    # -- forms --------------------------------------------------------------------------

    async def form(self, request: Request, role: Role | None = None) -> FormData:
        """The posted form (no files), its size bounded however it is sent (a declared
        length over it is refused before a byte is read, a chunked body as it passes).

        ``role``: a form of a signed-in page; its body is read only once a session of
        that role is found (``NotSignedIn`` otherwise, answered by the sign-in page).
        """
        if role is not None:
            await self._require(request, role)
        return await self._fields(request)

    async def _fields(self, request: Request) -> FormData:
        _refuse_declared(request, MAX_FORM_BYTES)
        bounded = Request(request.scope, _bounded(request.receive, MAX_FORM_BYTES))
        try:
            return await bounded.form(max_files=0, max_fields=100, max_part_size=MAX_FIELD_BYTES)
        except HTTPException as exc:  # python-multipart's limits and parse errors
            raise BadForm(f"The form could not be read: {exc.detail}", 400) from None

    async def upload_form(self, request: Request, role: Role) -> UploadForm:
        """A signed-in page's form with files (its ``files`` inputs).

        Nothing is read before a session of ``role`` is found. The body is limited as a
        whole (``LEDGERDESK_MAX_BODY_BYTES``: a larger declared length is refused before
        a byte is read) and each file as it streams to disk
        (``LEDGERDESK_MAX_ATTACHMENT_BYTES``), written and hashed as it arrives, like the
        API's multipart uploads. A file the form cannot take is the form's ``problem``:
        the page shows the form again with the error and the text typed so far.
        """
        await self._require(request, role)
        settings = self.runtime.settings
        limit = settings.max_body_bytes
        _refuse_declared(request, limit)
        content_type = request.headers.get("content-type", "")
        if not content_type.lower().startswith("multipart/form-data"):
            fields = await self._fields(request)  # sent without files (not by a browser)
            return UploadForm({k: v for k, v in fields.items() if isinstance(v, str)}, [], None)
        reader = MultipartReader(
            directory=self.runtime.incoming_dir,
            max_files=MAX_ATTACHMENTS,
            max_file_bytes=settings.max_attachment_bytes,
            file_fields=frozenset({"files"}),
        )
        problem: LedgerdeskError | None = None
        files: list[IncomingFile] = []
        try:
            files = await reader.read(content_type, _limited(request.stream(), limit))
        except InvalidBody as exc:
            raise BadForm(f"The form could not be read: {exc.message}", 400) from None
        except LedgerdeskError as exc:
            problem = exc  # the reader removed every file it had written
        form = UploadForm(dict(reader.fields), [], problem)
        for incoming in files:
            if not incoming.name and not incoming.size:
                incoming.discard()  # an empty file input: nothing was chosen
                continue
            form.files.append(incoming)
        if form.problem is None:
            form.problem = _file_problem(form.files)
        if form.problem is not None:
            form.discard()
        form.files[:] = [_plain_type(f) for f in form.files]
        return form

    async def _require(self, request: Request, role: Role) -> None:
        if await self.signed_in(request, role) is None:
            raise NotSignedIn()

    async def refused(self, request: Request, exc: Exception) -> Response:
        """The application's answer to ``BadForm``, ``NotSignedIn`` and ``Forbidden`` (a
        missing or stale CSRF token on a form sent before sign-in)."""
        if isinstance(exc, NotSignedIn):
            return self._to_sign_in(request)
        if isinstance(exc, BadForm):
            return self.message(request, "Form refused", exc.message, exc.status)
        assert isinstance(exc, Forbidden)
        return self.message(request, "Form refused", exc.message, 403)

    async def visit_with_files(
        self,
        request: Request,
        role: Role,
        form: UploadForm,
        work: Callable[[Visit, list[IncomingFile]], Page | Redirect],
        again: Callable[[Visit, dict[str, str]], Page],
    ) -> Response:
        """A writing ``visit`` for a form with files: the files were written and hashed
        before the transaction begins and are removed when it ends; a file the form
        cannot take shows the form ``again`` with the error."""
        try:
            if form.problem is not None:
                errors = field_errors(form.problem)
                return await self.visit(request, role, lambda v: again(v, errors), form=form.fields)
            return await self.visit(
                request, role, lambda visit: work(visit, form.files), form=form.fields, write=True
            )
        finally:
            form.discard()


@dataclass
class UploadForm:
    """A form's text fields and its files (complete, hashed, on disk), or the problem
    that refuses its files."""

    fields: dict[str, str]
    files: list[IncomingFile]
    problem: LedgerdeskError | None

    def discard(self) -> None:
        for incoming in self.files:
            incoming.discard()
        self.files.clear()


class NotSignedIn(Exception):
    """A signed-in page's form sent without a live session: answered by the sign-in
    page before the form's body is read."""


def _refuse_declared(request: Request, limit: int) -> None:
    length = request.headers.get("content-length")
    if length is not None and length.strip().isdigit() and int(length) > limit:
        raise BadForm(f"The form is larger than {limit} bytes.", 413)


def _bounded(receive: Receive, limit: int) -> Receive:
    """``receive`` refusing a body past ``limit`` bytes, declared or not (chunked)."""
    received = 0

    async def bounded() -> Message:
        nonlocal received
        message = await receive()
        received += len(message.get("body", b""))
        if received > limit:
            raise BadForm(f"The form is larger than {limit} bytes.", 413)
        return message

    return bounded


async def _limited(chunks: AsyncIterator[bytes], limit: int) -> AsyncIterator[bytes]:
    received = 0
    async for chunk in chunks:
        received += len(chunk)
        if received > limit:
            raise PayloadTooLarge(f"The form is larger than {limit} bytes.")
        yield chunk


def _file_problem(files: Sequence[IncomingFile]) -> LedgerdeskError | None:
    for incoming in files:
        problem = check_file_name(incoming.name)
        if problem:
            return invalid("attachments", f"file name {problem}")
    return None


def _plain_type(incoming: IncomingFile) -> IncomingFile:
    """A media type the browser sent that is not well formed is stored as bytes."""
    content_type = incoming.content_type.strip()
    if check_media_type(content_type):
        content_type = "application/octet-stream"
    return replace(incoming, content_type=content_type)


class BadForm(Exception):
    """A form that cannot be read (too large, too many files or fields, malformed);
    answered by the application's handler for it with a page saying so."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def _check_token(expected: str, given: object) -> None:
    if (
        not expected
        or not isinstance(given, str)
        or not hmac.compare_digest(expected.encode(), given.encode())
    ):
        raise Forbidden(
            "This form was sent without its security token (or an old one). "
            "Reload the page and try again."
        )


def field_errors(exc: LedgerdeskError) -> dict[str, str]:
    """A refused form's messages by field; ``_`` holds a message about no one field."""
    if exc.errors:
        return {error.property: error.message for error in exc.errors}
    return {"_": exc.message}


def own_only(role: Role, visit: Visit) -> int | None:
    """Whose things a page shows and changes: anyone's for staff (None), else the
    signed-in customer's own (their id, passed into the same scoped statements)."""
    return None if role == "staff" else visit.person.user_id


def path_id(request: Request, name: str) -> int:
    """An id from the path (routes match digits only); one too large for any row is 0,
    which names no row, so it is a plain 404 rather than a database error."""
    value = int(request.path_params[name])
    return value if value < 2**63 else 0


def text_field(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def customer_named(visit: Visit, typed: str) -> int:
    """The customer a staff member named in a form, by id or by email address."""
    accounts = AccountRepository(visit.session)
    found = (
        accounts.get_user(int(typed))
        if typed.isdigit()
        else accounts.find_user_by_email(typed)
        if typed
        else None
    )
    if found is None or found.is_staff:
        raise invalid("customer", "no customer has this id or email address")
    return found.id


def staff_members(session: Session) -> list[tuple[int, str]]:
    """Enabled staff, by name: whom a ticket can be given to."""
    rows = session.execute(
        select(User.id, User.name)
        .where(User.is_staff.is_(True), User.disabled_at.is_(None))
        .order_by(User.name, User.id)
    )
    return [(row.id, row.name) for row in rows]
